"""Benchmark: a 32-party mesh (992 directed links) — planning, and one party's program.

1. planning: build and validate the NetworkSpec and list its links;
2. rollout bookkeeping: deploy_network through the in-memory stand-in for the Pulumi CLI
   (tests/test_automation.py), i.e. our phases without Pulumi;
3. program evaluation: one party's real program with 31 partners under OfflineMocks (what the
   Pulumi engine would run, minus the providers), wall time and peak memory.

Usage: python bench/automation.py [--parties 32]
"""

from __future__ import annotations

import argparse
import sys
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kuscia_components import pki
from kuscia_components.automation import NetworkSpec, PartySpec, deploy_network
from kuscia_components.offline import OfflineMocks, run_offline
from kuscia_components.program import party_program

CAPACITY = {"cpu": "1", "memory": "1Gi", "storage": "1Gi"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parties", type=int, default=32)
    args = parser.parse_args()
    names = [f"party{i:02d}" for i in range(args.parties)]

    started = time.perf_counter()
    spec = NetworkSpec(tuple(PartySpec(n, {"capacity": CAPACITY}) for n in names))
    spec.validate()
    links = spec.links()
    planning = time.perf_counter() - started
    print(
        f"planning: {len(names)} parties, {len(links)} directed links, validated in {planning * 1000:.0f} ms"
    )

    import tests.test_automation as stand_in

    cert = pki.cert_b64(pki.build_domain_cert(pki.generate_domain_key(), "x"))
    stand_in.CERTS.update({n: cert for n in names})
    runner = stand_in.InMemoryStackRunner()
    started = time.perf_counter()
    report = deploy_network(spec, runner, parallelism=8, progress=lambda _m: None)
    rollout = time.perf_counter() - started
    ready = sum(1 for link in report.links if link.status == "Ready")
    print(f"rollout bookkeeping (in-memory stand-in): {ready}/{len(report.links)} links Ready, "
          f"{sum(1 for c in runner.calls if c[0] == 'up')} stack ups, {rollout:.2f} s")  # fmt: skip

    bundles = [{"domainId": n, "endpoint": f"https://kuscia-autonomy-{n}.autonomy-{n}.svc.cluster.local:1080",
                "cert": cert, "protocol": "TLS"} for n in names[1:]]  # fmt: skip
    config, secret = spec.parties[0].stack_config(bundles)

    def evaluate() -> int:
        mocks = OfflineMocks(execute_dynamic=lambda p: getattr(p, "offline_safe", False))
        run_offline(lambda: party_program(), mocks, stack=names[0], config=config, secret_keys=sorted(secret))
        return len(mocks.resources)

    timings = []
    for _ in range(3):
        started = time.perf_counter()
        count = evaluate()
        timings.append(time.perf_counter() - started)
    tracemalloc.start()
    evaluate()
    _current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(f"program evaluation, one party with {len(bundles)} partners: {count} resources, "
          f"{min(timings):.2f} s best / {max(timings):.2f} s worst of 3, peak traced memory {peak / 1e6:.1f} MB")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
