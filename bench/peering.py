"""Benchmark: peering against the EMULATED Kuscia nodes (tests/emulator), zero-delay handshake.

Measures
1. readiness latency: alice's link waits; bob registers after a random 0.5-5 s; latency is the
   time from bob's registration completing (the route can turn Ready) to alice's link returning
   Ready. Median and max over --trials.
2. KusciaAPI calls per link, excluding status polls (target <= 8), for a first and a repeated create.
3. an N-party full mesh (default 8 parties, 56 links), all links created concurrently: total wall
   time, total calls, calls excluding polls.

Usage: python bench/peering.py [--trials 10] [--parties 8]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kuscia_components import pki
from kuscia_components.peering import PartnerLinkProvider
from tests.emulator import EmulatedNode, KusciaEmulator

POLL_PATH = "/api/v1/route/status/batchQuery"


def props(me: EmulatedNode, other: EmulatedNode, emu: KusciaEmulator, timeout: float = 60) -> dict[str, Any]:
    return {
        "domain_id": me.domain_id, "namespace": me.namespace, "service": me.service, "protocol": me.protocol,
        "token": me.token, "own_cert": pki.cert_b64(me.cert_pem), "kube_context": emu.context,
        "kubeconfig": emu.kubeconfig_path, "partner_domain_id": other.domain_id,
        "partner_cert": pki.cert_b64(other.cert_pem), "partner_endpoint": other.endpoint,
        "partner_protocol": other.protocol, "stage": "all", "timeout_seconds": timeout,
        "health_timeout_seconds": timeout, "require_ready": False,
    }  # fmt: skip


def calls(emu: KusciaEmulator, node: str | None = None, *, polls: bool = False) -> int:
    return sum(
        1 for r in emu.requests
        if (node is None or r.node == node) and (POLL_PATH in r.path) == polls
    )  # fmt: skip


def readiness_latency(trials: int) -> list[float]:
    latencies = []
    for _ in range(trials):
        with KusciaEmulator(handshake_delay=0.0) as emu:
            alice, bob = emu.add_node("alice"), emu.add_node("bob")
            registered: dict[str, float] = {}

            def partner_later(
                emu: KusciaEmulator = emu,
                alice: EmulatedNode = alice,
                bob: EmulatedNode = bob,
                registered: dict[str, float] = registered,
            ) -> None:
                time.sleep(random.uniform(0.5, 5.0))
                PartnerLinkProvider().create(props(bob, alice, emu, timeout=0.0))
                registered["at"] = time.monotonic()

            thread = threading.Thread(target=partner_later)
            thread.start()
            outs = PartnerLinkProvider().create(props(alice, bob, emu)).outs
            done = time.monotonic()
            thread.join()
            assert outs["status"] == "Ready", outs
            latencies.append(max(0.0, done - registered["at"]))
    return latencies


def calls_per_link() -> tuple[int, int]:
    with KusciaEmulator() as emu:
        alice, bob = emu.add_node("alice"), emu.add_node("bob")
        PartnerLinkProvider().create(props(bob, alice, emu, timeout=0.0))
        start = calls(emu, "alice")
        PartnerLinkProvider().create(props(alice, bob, emu))
        first = calls(emu, "alice") - start
        start = calls(emu, "alice")
        PartnerLinkProvider().create(props(alice, bob, emu))
        return first, calls(emu, "alice") - start


def mesh(parties: int) -> dict[str, float]:
    with KusciaEmulator() as emu:
        nodes = [emu.add_node(f"p{i}") for i in range(parties)]
        pairs = [(a, b) for a in nodes for b in nodes if a is not b]
        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=len(pairs)) as pool:
            results = list(pool.map(lambda pair: PartnerLinkProvider().create(props(*pair, emu)).outs, pairs))
        wall = time.monotonic() - started
        ready = sum(1 for r in results if r["status"] == "Ready")
        return {"links": len(pairs), "ready": ready, "wall_s": wall, "calls": len(emu.requests),
                "calls_excl_polls": calls(emu), "polls": calls(emu, polls=True)}  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--parties", type=int, default=8)
    args = parser.parse_args()
    lat = readiness_latency(args.trials)
    print(f"readiness latency over {len(lat)} trials: median {statistics.median(lat) * 1000:.0f} ms, "
          f"max {max(lat) * 1000:.0f} ms")  # fmt: skip
    first, repeat = calls_per_link()
    print(f"KusciaAPI calls per link excluding polls: first create {first}, repeated create {repeat}")
    result = mesh(args.parties)
    print(f"{args.parties}-party mesh: {result['ready']}/{result['links']} links Ready in {result['wall_s']:.2f} s; "
          f"{result['calls']} calls ({result['calls_excl_polls']} excluding {result['polls']} polls)")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
