"""Benchmark: N PartnerLinks through Pulumi's REAL dynamic-provider host (tests/provider_host.py).

The host serves calls on 4 worker threads. Each partner registers its side D seconds after our
link to it was created. Two designs:
- `per-link wait` (the old one, `defer_wait=False`): each create waits for its own route, so
  the links are served in batches of 4 and the stack takes about ceil(N/4) x D;
- `shared wait` (today's program): creates register and return; one LinkReadiness create waits
  for all routes with one batch status query per round: about D plus a constant.

Usage: python bench/peering_host.py [--links 16] [--delay 3]
Results: bench/peering.md.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kuscia_components.peering.provider import PartnerLinkProvider
from kuscia_components.peering.readiness import LinkReadinessProvider
from kuscia_components.peering.resource import SECRET_OUTPUTS
from tests.emulator import KusciaEmulator
from tests.provider_host import PROVIDER_KEY, ProviderHost, provider_value
from tests.test_peering import link_props

LINK_TYPE = "pulumi-python:dynamic/kuscia:PartnerLink"
POLL_PATH = "/api/v1/route/status/batchQuery"


def run(links: int, delay: float, *, shared: bool) -> dict[str, Any]:
    with KusciaEmulator(handshake_delay=0.0) as emu:
        alice = emu.add_node("alice")
        partners = [emu.add_node(f"p{i}") for i in range(links)]
        with ProviderHost(
            PartnerLinkProvider(), type_token=LINK_TYPE, secret_outputs=SECRET_OUTPUTS, call_timeout=600
        ) as host:
            props = [link_props(alice, p, emu, timeout_seconds=120, defer_wait=shared) for p in partners]

            def partner_later(partner: Any) -> None:
                time.sleep(delay)
                PartnerLinkProvider().create(link_props(partner, alice, emu, phase="domain"))

            def watch(stop: threading.Event) -> None:
                """Each partner registers D s after our route to it appears on our node."""
                seen: set[str] = set()
                while not stop.is_set():
                    for partner in partners:
                        if partner.domain_id not in seen and f"alice-{partner.domain_id}" in alice.routes():
                            seen.add(partner.domain_id)
                            threading.Thread(target=partner_later, args=(partner,), daemon=True).start()
                    time.sleep(0.02)

            def create(i: int) -> dict[str, Any]:
                return host.create(props[i], name=f"link-{i}", timeout=600).wire

            stop = threading.Event()
            threading.Thread(target=watch, args=(stop,), daemon=True).start()
            started = time.monotonic()
            with ThreadPoolExecutor(max_workers=links) as pool:  # the engine sends them all at once
                made = list(pool.map(create, range(links)))
            created = time.monotonic() - started
            if shared:
                readiness = {
                    PROVIDER_KEY: provider_value(LinkReadinessProvider()),
                    "links": props,
                    "secrets": [],
                }
                statuses = host.create(readiness, name="ready", timeout=600).wire["statuses"]
                ready = sum(1 for s in statuses.values() if s["status"] == "Ready")
            else:
                ready = sum(1 for m in made if m["status"] == "Ready")
            wall = time.monotonic() - started
            stop.set()
            polls = sum(1 for r in emu.requests if POLL_PATH in r.path and r.node == "alice")
    return {"links": links, "ready": ready, "creates_s": created, "wall_s": wall, "polls": polls}


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--links", type=int, default=16)
    parser.add_argument("--delay", type=float, default=3.0)
    args = parser.parse_args()
    for shared in (True, False):
        r = run(args.links, args.delay, shared=shared)
        print(
            f"{'shared wait' if shared else 'per-link wait'}: {r['ready']}/{r['links']} Ready in {r['wall_s']:.1f} s "
            f"(creates done after {r['creates_s']:.1f} s; D = {args.delay:.0f} s); {r['polls']} status polls",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
