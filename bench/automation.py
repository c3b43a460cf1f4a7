"""Benchmark: planning and program evaluation for an N-party mesh (32 parties: 992 links).

1. spec: build and validate the NetworkSpec (every party's config parsed), list the links;
2. planning: the phase plans of a first rollout (every party's config with 31 partner bundles);
3. rollout bookkeeping: `deploy_network` end to end through the IN-MEMORY STAND-IN FOR THE PULUMI
   CLI (tests/inmemory_runner.py): our phases and reports without Pulumi;
4. program evaluation: one party's real inline program with 31 partners under OfflineMocks (what
   the Pulumi engine would evaluate, minus the providers). Target: <= 3 s.

Wall time by time.perf_counter, memory by tracemalloc (peak of Python allocations) and the
process's max RSS. Usage: python bench/automation.py [--parties 32] [--repeat 5]
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kuscia_components.network.automation import deploy_network, inline_program
from kuscia_components.network.planner import StackState, plan_links, plan_nodes
from kuscia_components.network.spec import NetworkSpec, PartySpec
from kuscia_components.offline.mocks import OfflineMocks, run_offline
from tests.inmemory_runner import InMemoryStackRunner, cert_for

TARGET_SECONDS = 3.0


def measure(work: Callable[[], Any], repeat: int) -> tuple[Any, list[float], float]:
    """(last result, wall times, peak traced MB of one extra traced run)."""
    times = []
    result = None
    for _ in range(repeat):
        started = time.perf_counter()
        result = work()
        times.append(time.perf_counter() - started)
    tracemalloc.start()
    work()
    _current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return result, times, peak / 1e6


def line(name: str, times: list[float], peak_mb: float, detail: str) -> str:
    return (
        f"| {name} | {detail} | {statistics.median(times) * 1000:.0f} ms | {min(times) * 1000:.0f} ms | "
        f"{max(times) * 1000:.0f} ms | {peak_mb:.2f} MB |"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parties", type=int, default=32)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    names = [f"party{i:02d}" for i in range(args.parties)]
    capacity = {"cpu": "1", "memory": "1Gi", "storage": "1Gi"}
    for name in names:  # real certificates (generated once, outside the timings)
        cert_for(name)

    def build() -> NetworkSpec:
        spec = NetworkSpec(tuple(PartySpec(n, capacity=capacity) for n in names), name="bench")  # type: ignore[arg-type]
        spec.validate()
        spec.links()
        return spec

    spec, spec_times, spec_mb = measure(build, args.repeat)
    runner = InMemoryStackRunner()

    def plan() -> int:
        nodes = plan_nodes(spec, {})
        states = {
            s.party: StackState(dict(s.config), {"peeringBundle": runner.bundle(s.party, s.config)})
            for s in nodes
        }
        links = plan_links(spec, states, ran=set(states), failed=set())
        return sum(len(s.config["kuscia:peers"].value) for s in links)

    peers_bytes, plan_times, plan_mb = measure(plan, args.repeat)

    def rollout() -> int:
        report = deploy_network(spec, runner=InMemoryStackRunner(), parallelism=8)
        assert report.ok, report.format_table()
        return len(report.links)

    links, rollout_times, rollout_mb = measure(rollout, max(1, args.repeat // 2))

    me = spec.parties[0]
    partners = [runner.bundle(n, me.to_config()) for n in names[1:]]
    config = me.to_config(partners, network="bench")

    def evaluate() -> int:
        mocks = OfflineMocks(execute_dynamic=lambda p: getattr(p, "offline_safe", False))
        run_offline(
            inline_program(),
            mocks,
            stack=me.domain_id,
            config={k: v.value for k, v in config.items()},
            secret_keys=[k for k, v in config.items() if v.secret],
        )
        return len(mocks.resources)

    resources, eval_times, eval_mb = measure(evaluate, args.repeat)

    def evaluate_all() -> int:  # every party's program once: what one full rollout evaluates
        total = 0
        for party in spec.parties:
            others = [runner.bundle(n, party.to_config()) for n in spec.partners(party.domain_id)]
            cfg = party.to_config(others, network="bench")
            mocks = OfflineMocks(execute_dynamic=lambda p: getattr(p, "offline_safe", False))
            run_offline(
                inline_program(), mocks, stack=party.domain_id, config={k: v.value for k, v in cfg.items()}
            )
            total += len(mocks.resources)
        return total

    started = time.perf_counter()
    all_resources = evaluate_all()
    all_seconds = time.perf_counter() - started
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    print(
        f"{args.parties} parties, {len(spec.links())} directed links; {args.repeat} runs each (median, best, worst)"
    )
    print()
    print("| step | what | median | best | worst | peak traced memory |")
    print("|---|---|---|---|---|---|")
    print(
        line(
            "spec",
            spec_times,
            spec_mb,
            f"validate {args.parties} party configs, list {len(spec.links())} links",
        )
    )
    print(
        line(
            "planning",
            plan_times,
            plan_mb,
            f"phase 1 + phase 2 plans, {peers_bytes // 1024} KiB of peer config",
        )
    )
    print(
        line(
            "rollout bookkeeping",
            rollout_times,
            rollout_mb,
            f"deploy_network via the in-memory stand-in, {links} links Ready",
        )
    )
    print(
        line(
            "program evaluation",
            eval_times,
            eval_mb,
            f"one party, {len(partners)} partners, {resources} resources (OfflineMocks)",
        )
    )
    print(
        f"| all programs | every party's program once ({args.parties} x {len(partners)} partners), "
        f"{all_resources} resources | {all_seconds * 1000:.0f} ms (1 run) | | | |"
    )
    print()
    verdict = "met" if max(eval_times) <= TARGET_SECONDS else "NOT met"
    print(
        f"target: one party's program with {len(partners)} partners <= {TARGET_SECONDS:.0f} s: {verdict} "
        f"(worst {max(eval_times):.2f} s); process max RSS {rss_mb:.0f} MB"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
