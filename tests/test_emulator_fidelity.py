"""The emulator answers as a real API server and real Kuscia nodes do (EMULATION: these check the
stand-in), and our client classifies those answers. Each rule's upstream source is cited in
tests/emulator/README.md.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from kuscia_components.peering.client import (
    ApiUnavailable,
    KusciaApiClient,
    NodeNotReady,
    RetryPolicy,
    ServiceNotFound,
    ServicePortMissing,
    probe_gateway,
)
from kuscia_components.peering.provider import PartnerLinkProvider
from tests.emulator import EmulatedNode, KusciaEmulator
from tests.helpers import api, call, link_props, proxy_path, target_of

SHORT = RetryPolicy(
    attempts=4, base_seconds=0.05, cap_seconds=0.1, request_timeout_seconds=2, budget_seconds=2
)
PATIENT = RetryPolicy(
    attempts=40, base_seconds=0.05, cap_seconds=0.1, request_timeout_seconds=2, budget_seconds=8
)


@pytest.fixture
def manual() -> Iterator[KusciaEmulator]:
    """No background rounds: every round is `emu.step()`, on the emulator's fake clock."""
    with KusciaEmulator(tick=3600) as emulator:
        yield emulator


# -- the API server's service proxy -------------------------------------------------------------------


def test_emulated_proxy_missing_endpoints_answers_404_endpoints_not_found(emu: KusciaEmulator) -> None:
    alice = emu.add_node("alice")
    alice.set_endpoints_missing()
    status, body, _ = api(emu, alice, "/healthZ")
    assert (status, body["reason"], body["message"]) == (
        404,
        "NotFound",
        'endpoints "kuscia-autonomy-alice" not found',
    )
    assert body["details"]["kind"] == "endpoints"
    alice.set_endpoints_missing(False)
    assert api(emu, alice, "/healthZ")[0] == 200


def test_emulated_proxy_checks_the_port_before_the_endpoints(emu: KusciaEmulator) -> None:
    alice = emu.add_node("alice")
    alice.set_endpoints_missing()  # ResourceLocation: the Service's port is looked up first
    status, body, _ = call(emu, proxy_path(alice, "/healthZ", port=9999), {}, headers={"Token": alice.token})
    assert (status, body["reason"]) == (503, "ServiceUnavailable")
    assert body["message"] == 'no service port 9999 found for service "kuscia-autonomy-alice"'


def test_emulated_restart_is_no_endpoint_then_connection_refused_then_up(emu: KusciaEmulator) -> None:
    alice = emu.add_node("alice")
    alice.restart(downtime=0.3, refusing=0.4)
    status, body, _ = api(emu, alice, "/healthZ")
    assert (status, body["message"]) == (503, 'no endpoints available for service "kuscia-autonomy-alice"')
    assert emu.wait_until(lambda: alice.serving_phase() == "refusing")
    status, body, _ = api(emu, alice, "/healthZ")
    assert status == 503 and body["message"] == (
        f"error trying to reach service: dial tcp {alice.pod_ip}:8082: connect: connection refused"
    )
    assert emu.wait_until(lambda: api(emu, alice, "/healthZ")[0] == 200)


def test_emulated_restart_during_a_call_answers_503_connection_reset(emu: KusciaEmulator) -> None:
    alice = emu.add_node("alice")
    alice.delay_next(1, 0.4)
    replies: list[tuple[int, object]] = []
    worker = threading.Thread(target=lambda: replies.append(api(emu, alice, "/healthZ")[:2]))
    worker.start()
    time.sleep(0.1)
    alice.restart(downtime=0.0)
    worker.join(timeout=5)
    status, body = replies[0]
    assert status == 503 and isinstance(body, dict)
    assert str(body["message"]).startswith("error trying to reach service: read tcp ")
    assert str(body["message"]).endswith("read: connection reset by peer")


def test_emulated_drop_next_closes_the_connection_without_an_answer(emu: KusciaEmulator) -> None:
    import http.client

    alice = emu.add_node("alice")
    alice.drop_next(1)
    with pytest.raises((http.client.RemoteDisconnected, ConnectionError)):
        api(emu, alice, "/healthZ")
    assert api(emu, alice, "/healthZ")[0] == 200


# -- the client's classification ----------------------------------------------------------------------


def test_emulated_endpoints_missing_is_transient_and_never_service_gone(emu: KusciaEmulator) -> None:
    alice = emu.add_node("alice")
    alice.set_endpoints_missing()
    with (
        KusciaApiClient(target_of(emu, "alice", transport="serviceProxy"), retry=SHORT) as client,
        pytest.raises(NodeNotReady) as raised,
    ):
        client.health()
    assert not isinstance(raised.value, ServiceNotFound) and client.calls >= 2
    assert 'endpoints "kuscia-autonomy-alice" not found' in str(raised.value)
    threading.Timer(0.3, alice.set_endpoints_missing, args=(False,)).start()
    with KusciaApiClient(target_of(emu, "alice", transport="serviceProxy"), retry=PATIENT) as client:
        assert client.health() is True and client.calls >= 2  # retried until the Endpoints came


def test_emulated_wrong_port_is_a_config_error_naming_port_and_service(emu: KusciaEmulator) -> None:
    emu.add_node("alice")
    with KusciaApiClient(target_of(emu, "alice", transport="serviceProxy", port=9999), retry=SHORT) as client:
        with pytest.raises(ServicePortMissing) as raised:
            client.health()
        assert client.calls == 1  # no retry fixes a configuration
    text = str(raised.value)
    assert "autonomy-alice/kuscia-autonomy-alice has no port 9999" in text and "8082" in text
    assert not isinstance(raised.value, ApiUnavailable)


def test_emulated_connection_refused_while_starting_is_retried(emu: KusciaEmulator) -> None:
    alice = emu.add_node("alice")
    alice.restart(downtime=0.0, refusing=0.4)
    with KusciaApiClient(target_of(emu, "alice", transport="serviceProxy"), retry=PATIENT) as client:
        assert client.health() is True and client.calls >= 2
    alice.restart(downtime=0.0, refusing=30)
    with (
        KusciaApiClient(target_of(emu, "alice", transport="serviceProxy"), retry=SHORT) as client,
        pytest.raises(NodeNotReady) as raised,
    ):
        client.health()
    assert "connection refused" in str(raised.value)


def test_emulated_restart_mid_call_and_dropped_connection_are_retried(emu: KusciaEmulator) -> None:
    alice = emu.add_node("alice")
    alice.delay_next(1, 0.4)
    threading.Timer(0.1, alice.restart, kwargs={"downtime": 0.2, "refusing": 0.2}).start()
    with KusciaApiClient(target_of(emu, "alice", transport="serviceProxy"), retry=PATIENT) as client:
        assert client.health() is True and client.calls >= 2
    alice.drop_next(1)
    with KusciaApiClient(target_of(emu, "alice", transport="serviceProxy"), retry=PATIENT) as client:
        assert client.health() is True and client.calls == 2


def test_emulated_probe_gateway_reads_missing_endpoints_and_port(emu: KusciaEmulator) -> None:
    alice = emu.add_node("alice")
    alice.set_endpoints_missing()
    serving, why = probe_gateway(target_of(emu, "alice", transport="serviceProxy"))
    assert serving is False and "no ready endpoint" in why
    alice.set_endpoints_missing(False)
    serving, why = probe_gateway(target_of(emu, "alice", transport="serviceProxy"), port=1081)
    assert serving is False and "has no port 1081" in why


def test_emulated_link_read_keeps_the_link_when_endpoints_are_missing(emu: KusciaEmulator) -> None:
    alice, bob = emu.add_node("alice"), emu.add_node("bob")
    provider = PartnerLinkProvider()
    provider.create(link_props(bob, alice, emu))
    created = provider.create(link_props(alice, bob, emu))
    alice.set_endpoints_missing()  # e.g. the Service was just recreated: its pod is not ready
    try:
        result = provider.read(created.id, created.outs)
    except ApiUnavailable:
        pass  # refresh fails loudly; the state keeps the link
    else:
        assert result.id == created.id  # never read as "gone"


# -- token rolling and expiry (fake clock) ------------------------------------------------------------


def _linked(emu: KusciaEmulator, period: int) -> None:
    alice, bob = emu.add_node("alice"), emu.add_node("bob")
    for a, b in ((alice, bob), (bob, alice)):
        assert api(emu, a, "/api/v1/domain/create", _partner(b))[1]["status"]["code"] == 0
    for a, b in ((alice, bob), (bob, alice)):
        body = {
            "source": a.domain_id,
            "destination": b.domain_id,
            "authentication_type": "Token",
            "endpoint": {"host": f"{b.service}.{b.namespace}.svc", "ports": [_port(b)]},
            "token_config": {"token_gen_method": "RSA-GEN", "rolling_update_period": period},
        }
        assert api(emu, a, "/api/v1/route/create", body)[1]["status"]["code"] == 0
    emu.step()
    assert alice.routes()["alice-bob"]["status"] == "Succeeded"


def _partner(node: EmulatedNode) -> dict[str, object]:
    import base64

    pem = node.cert_pem
    return {
        "domain_id": node.domain_id,
        "role": "partner",
        "cert": base64.b64encode(pem.encode()).decode(),
        "auth_center": {"authentication_type": "Token", "token_gen_method": "RSA-GEN"},
    }


def _port(node: EmulatedNode) -> dict[str, object]:
    return {"name": "http", "port": 1080, "protocol": "HTTP", "isTLS": node.is_tls}


def _walk(emu: KusciaEmulator, hours: int) -> list[tuple[float, str, int]]:
    """(hours, alice-bob status, revision) after each fake hour."""
    seen = []
    for hour in range(1, hours + 1):
        emu.step(seconds=3600)
        route = emu.nodes["alice"].route_table["alice-bob"]
        seen.append((hour, route.status, route.revision))
    return seen


def test_emulated_rolling_86400_keeps_the_route_ready_across_three_days(manual: KusciaEmulator) -> None:
    _linked(manual, 86400)
    seen = _walk(manual, 72)
    assert all(status == "Succeeded" for _, status, _ in seen), seen
    assert seen[-1][2] >= 3  # it rolled about once a day: a new handshake, a new revision
    log = manual.nodes["alice"].gateway_log
    assert "Domainroute alice-bob token is out of time, need to rolling" in log
    assert not any("not exist" in line for line in log)


def test_emulated_rolling_0_loses_the_token_after_two_days(manual: KusciaEmulator) -> None:
    _linked(manual, 0)
    seen = _walk(manual, 72)
    failed = [hour for hour, status, _ in seen if status != "Succeeded"]
    assert failed and 48 <= failed[0] <= 50, seen  # bob dropped it 2 x 86400 s (+ 2 min) after the handshake
    assert all(status == "Succeeded" for _, status, _ in seen[:47])
    assert any(
        "found destination token(revision 1) not exist" in line for line in manual.nodes["alice"].gateway_log
    )
    assert any("delete expirated token 1" in line for line in manual.nodes["bob"].gateway_log)
    assert seen[-1] == (72, "Succeeded", 2)  # a new handshake brought it back
