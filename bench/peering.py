"""Benchmark: peering against the EMULATED Kuscia nodes (tests/emulator), zero-delay handshake.

Measures
1. readiness latency: alice's link is waiting; after a random 0.5-5 s bob registers alice (a
   `phase="domain"` link), and the emulator's handshake engine turns the route alice-bob Ready at
   its next round. Latency = alice's link returning Ready minus the moment the emulator set the
   route's Ready condition (also reported from bob's registration). Median and max over --trials.
2. KusciaAPI calls per link, excluding status polls (target <= 8), for a first and a repeated
   create.
3. an N-party full mesh (default 8 parties, 56 links), all links created concurrently: total wall
   time, total calls, calls excluding polls, and whether every link ended Ready.

Usage: python bench/peering.py [--trials 10] [--parties 8]
Results and the machine they were measured on: bench/peering.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kuscia_components.peering.provider import PartnerLinkProvider
from tests.emulator import KusciaEmulator
from tests.test_peering import link_props

POLL_PATH = "/api/v1/route/status/batchQuery"


def calls(emu: KusciaEmulator, node: str | None = None, *, polls: bool = False) -> int:
    """KusciaAPI requests seen by the emulated API server (gateway probes excluded)."""
    return sum(
        1
        for r in emu.requests
        if ":8082/proxy" in r.path and (node is None or r.node == node) and (POLL_PATH in r.path) == polls
    )


def readiness_latency(trials: int) -> tuple[list[float], list[float]]:
    """(from the route turning Ready, from the partner's registration), seconds per trial."""
    from_ready, from_registration = [], []
    for _ in range(trials):
        with KusciaEmulator(handshake_delay=0.0) as emu:
            alice, bob = emu.add_node("alice"), emu.add_node("bob")
            registered: dict[str, float] = {}

            def partner_later(
                emu: Any = emu, alice: Any = alice, bob: Any = bob, at: dict[str, float] = registered
            ) -> None:
                time.sleep(random.uniform(0.5, 5.0))
                PartnerLinkProvider().create(link_props(bob, alice, emu, phase="domain"))
                at["registered"] = time.time()

            thread = threading.Thread(target=partner_later)
            thread.start()
            outs = PartnerLinkProvider().create(link_props(alice, bob, emu, timeout_seconds=60)).outs
            done = time.time()
            thread.join()
            assert outs["status"] == "Ready", outs
            condition = alice.route_table["alice-bob"].condition  # when the emulator set Ready=True
            ready_at = condition.last_update.astimezone(dt.UTC).timestamp()
            from_ready.append(done - ready_at)
            from_registration.append(done - registered["registered"])
    return from_ready, from_registration


def calls_per_link() -> tuple[int, int]:
    with KusciaEmulator() as emu:
        alice, bob = emu.add_node("alice"), emu.add_node("bob")
        PartnerLinkProvider().create(link_props(bob, alice, emu, phase="domain"))
        start = calls(emu, "alice")
        first = PartnerLinkProvider().create(link_props(alice, bob, emu)).outs
        after_first = calls(emu, "alice")
        again = PartnerLinkProvider().create(link_props(alice, bob, emu)).outs
        assert first["status"] == again["status"] == "Ready", (first, again)
        return after_first - start, calls(emu, "alice") - after_first


def mesh(parties: int) -> dict[str, float]:
    with KusciaEmulator() as emu:
        nodes = [emu.add_node(f"p{i}") for i in range(parties)]
        pairs = [(a, b) for a in nodes for b in nodes if a is not b]
        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=len(pairs)) as pool:
            results = list(
                pool.map(
                    lambda pair: (
                        PartnerLinkProvider().create(link_props(*pair, emu, timeout_seconds=120)).outs
                    ),
                    pairs,
                )
            )
        wall = time.monotonic() - started
        return {
            "links": len(pairs),
            "ready": sum(1 for r in results if r["status"] == "Ready"),
            "wall_s": wall,
            "calls": calls(emu) + calls(emu, polls=True),
            "calls_excl_polls": calls(emu),
            "polls": calls(emu, polls=True),
        }


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--parties", type=int, default=8)
    args = parser.parse_args()
    from_ready, from_registration = readiness_latency(args.trials)
    for label, lat in (
        ("the route turning Ready", from_ready),
        ("the partner's registration", from_registration),
    ):
        print(
            f"readiness detected after {label} ({len(lat)} trials): median {statistics.median(lat) * 1000:.0f} ms, "
            f"max {max(lat) * 1000:.0f} ms"
        )
    first, repeat = calls_per_link()
    print(f"KusciaAPI calls per link excluding polls: first create {first}, repeated create {repeat}")
    result = mesh(args.parties)
    print(
        f"{args.parties}-party mesh: {result['ready']}/{result['links']} links Ready in {result['wall_s']:.2f} s; "
        f"{result['calls']} KusciaAPI calls ({result['calls_excl_polls']} excluding {result['polls']} polls)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
