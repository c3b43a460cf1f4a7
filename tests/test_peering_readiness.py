"""LinkReadiness: links register and return at once; one wait covers all of them (emulated)."""

from __future__ import annotations

import threading
import time

import pytest

from kuscia_components.peering.provider import PartnerLinkProvider, PeeringError
from kuscia_components.peering.readiness import LinkReadinessProvider, wait_all
from tests.emulator import KusciaEmulator
from tests.helpers import FakeTime, link_props

pytestmark = pytest.mark.usefixtures("quick_evidence")
POLL_PATH = "/api/v1/route/status/batchQuery"


def test_emulated_deferred_links_return_at_once_and_one_wait_sees_all_ready() -> None:
    with KusciaEmulator(handshake_delay=0.0) as emu:
        alice = emu.add_node("alice")
        partners = [emu.add_node(n) for n in ("bob", "carol", "dave")]
        provider = PartnerLinkProvider()
        props = [link_props(alice, p, emu, timeout_seconds=30, defer_wait=True) for p in partners]
        started = time.monotonic()
        made = [provider.create(p).outs for p in props]
        assert time.monotonic() - started < 5 and {m["status"] for m in made} == {"WaitingForPartner"}

        def partners_register() -> None:
            time.sleep(1.0)
            for p in partners:
                provider.create(link_props(p, alice, emu, phase="domain"))

        thread = threading.Thread(target=partners_register)
        thread.start()
        polls_before = sum(1 for r in emu.requests if POLL_PATH in r.path)
        outs = LinkReadinessProvider().create({"links": props, "secrets": []}).outs
        thread.join()
        assert {s["status"] for s in outs["statuses"].values()} == {"Ready"}
        assert sorted(outs["statuses"]) == ["alice-bob", "alice-carol", "alice-dave"]
        polls = sum(1 for r in emu.requests if POLL_PATH in r.path) - polls_before
        assert polls <= 30  # one batch query per round for all three links, not three
        assert alice.token not in str(outs)  # the secrets stay inputs


def test_emulated_partner_that_never_registers_waits_then_warns_or_fails() -> None:
    with KusciaEmulator() as emu:
        alice, bob = emu.add_node("alice"), emu.add_node("bob")
        PartnerLinkProvider().create(link_props(alice, bob, emu, defer_wait=True))
        fake = FakeTime(emu)
        said: list[str] = []
        outs = wait_all(
            [link_props(alice, bob, emu, timeout_seconds=3)],
            clock=fake.clock,
            sleep=fake.sleep,
            say=said.append,
        )
        assert (
            outs["alice-bob"]["status"] == "WaitingForPartner"
            and "DestinationIsNotAuthrized" in outs["alice-bob"]["reason"]
        )
        assert any(m.startswith("warning: alice-bob is not Ready after 3 s") for m in said)
        with pytest.raises(PeeringError, match="not Ready after 3 s"):
            wait_all(
                [link_props(alice, bob, emu, timeout_seconds=3, require_ready=True)],
                clock=fake.clock,
                sleep=fake.sleep,
            )


def test_readiness_diff_waits_again_only_while_a_route_is_not_ready() -> None:
    provider = LinkReadinessProvider()
    links = [
        {
            "domain_id": "alice",
            "partner_domain_id": "bob",
            "partner_endpoint": "https://b:1080",
            "timeout_seconds": 300,
        }
    ]
    routes = ["alice-bob https://b:1080 300"]
    ready = {"routes": routes, "statuses": {"alice-bob": {"status": "Ready"}}}
    assert not provider.diff("r", ready, {"links": links}).changes
    waiting = {"routes": routes, "statuses": {"alice-bob": {"status": "WaitingForPartner"}}}
    assert provider.diff("r", waiting, {"links": links}).changes
    assert provider.diff("r", ready, {"links": [{**links[0], "partner_endpoint": "https://c:1080"}]}).changes
