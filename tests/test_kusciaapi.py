"""KusciaAPI client: unit tests with a scripted transport, then against the EMULATED API server.

Tests named `emulated` send real HTTP through our kubeconfig handling to tests/emulator (a fake
Kubernetes API server and emulated Kuscia nodes); the others script the transport directly. This
module pins `kusciaApiTransport: serviceProxy`; tests/test_portforward.py covers the default.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from kuscia_components.peering.client import (
    MIN_ATTEMPT_SECONDS,
    ApiUnavailable,
    DomainExists,
    DomainNotFound,
    KubeconfigError,
    KubernetesAccessDenied,
    KusciaApiClient,
    KusciaApiError,
    NodeTarget,
    RawResponse,
    RetryPolicy,
    RouteExists,
    RouteNotFound,
    ServiceNotFound,
    Unauthorized,
    UnexpectedAnswer,
    ValidationFailed,
)
from tests.emulator import KusciaEmulator
from tests.helpers import ScriptedTransport, target_of

TOKEN = "tok-0123456789abcdef0123456789ab"
TLS = NodeTarget(
    "autonomy-alice", "kuscia-autonomy-alice", "alice", "TLS", token=TOKEN, transport="serviceProxy"
)
NOTLS = NodeTarget(
    "autonomy-bob", "kuscia-autonomy-bob", "bob", "NOTLS", token=TOKEN, transport="serviceProxy"
)


def ok(data: Any = None, code: int = 0, message: str = "success") -> RawResponse:
    body = {"status": {"code": code, "message": message, "details": []}, "data": data}
    return RawResponse(200, json.dumps(body).encode(), {"Content-Type": "application/json"})


def kube_status(code: int, message: str) -> RawResponse:
    body = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": message, "code": code}
    return RawResponse(code, json.dumps(body).encode(), {})


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def client_with(
    script: ScriptedTransport,
    target: NodeTarget = TLS,
    policy: RetryPolicy | None = None,
    time: FakeTime | None = None,
) -> KusciaApiClient:
    fake = time or FakeTime()
    return KusciaApiClient(
        target,
        retry=policy or RetryPolicy(),
        transport=script,
        sleep=fake.sleep,
        clock=fake.clock,
        rng=lambda: 1.0,
    )


# -- requests ------------------------------------------------------------------------------------


def test_path_is_kubectls_service_proxy_path_with_literal_colons_and_slashes() -> None:
    script = ScriptedTransport(ok())
    client_with(script).create_partner_domain("bob", "Y2VydA==")
    assert script.sent[0]["path"] == (
        "/api/v1/namespaces/autonomy-alice/services/https:kuscia-autonomy-alice:8082/proxy/api/v1/domain/create"
    )
    script = ScriptedTransport(ok({"ready": True}))
    client_with(script, NOTLS).health()
    assert (
        script.sent[0]["path"]
        == "/api/v1/namespaces/autonomy-bob/services/http:kuscia-autonomy-bob:8082/proxy/healthZ"
    )


def test_tls_sends_the_token_header_and_notls_none_even_when_given_one() -> None:
    tls, plain = ScriptedTransport(ok({"ready": True})), ScriptedTransport(ok({"ready": True}))
    client_with(tls, TLS).health()
    client_with(plain, NOTLS).health()
    assert tls.sent[0]["headers"]["Token"] == TOKEN
    assert "Token" not in plain.sent[0]["headers"]
    assert all(
        s["method"] == "POST" and s["headers"]["Content-Type"] == "application/json"
        for s in tls.sent + plain.sent
    )


def test_partner_domain_create_and_update_both_send_role_and_auth_center() -> None:
    script = ScriptedTransport(ok())
    client = client_with(script)
    client.create_partner_domain("bob", "Y2VydA==")
    client.update_partner_domain("bob", "bmV3")
    bodies = [json.loads(s["body"]) for s in script.sent]
    for body, cert in zip(bodies, ("Y2VydA==", "bmV3"), strict=True):
        assert body == {
            "domain_id": "bob",
            "role": "partner",
            "cert": cert,
            "auth_center": {"authentication_type": "Token", "token_gen_method": "RSA-GEN"},
        }
    assert script.sent[1]["path"].endswith("/proxy/api/v1/domain/update")


def test_route_create_body_carries_host_port_tls_and_path_prefix_only_when_set() -> None:
    script = ScriptedTransport(ok())
    client = client_with(script)
    client.create_route("alice", "bob", host="gw.example.com", port=443, is_tls=True, path_prefix="/kuscia")
    client.create_route("alice", "bob", host="10.0.0.5", port=1080, is_tls=False)
    first, second = (json.loads(s["body"]) for s in script.sent)
    assert first["endpoint"] == {
        "host": "gw.example.com",
        "ports": [{"name": "http", "port": 443, "protocol": "HTTP", "isTLS": True, "path_prefix": "/kuscia"}],
    }
    assert first["authentication_type"] == "Token" and first["token_config"]["token_gen_method"] == "RSA-GEN"
    assert second["endpoint"]["ports"] == [{"name": "http", "port": 1080, "protocol": "HTTP", "isTLS": False}]


def test_route_status_is_keyed_by_route_name() -> None:
    routes = [
        {
            "name": "alice-bob",
            "source": "alice",
            "destination": "bob",
            "status": {"status": "Succeeded", "reason": ""},
        },
        {"source": "alice", "destination": "carol", "status": {"status": "Failed", "reason": "x"}},
    ]
    script = ScriptedTransport(ok({"routes": routes}))
    statuses = client_with(script).route_status([("alice", "bob"), ("alice", "carol")])
    assert statuses == {
        "alice-bob": {"status": "Succeeded", "reason": ""},
        "alice-carol": {"status": "Failed", "reason": "x"},
    }
    assert json.loads(script.sent[0]["body"]) == {
        "route_keys": [{"source": "alice", "destination": "bob"}, {"source": "alice", "destination": "carol"}]
    }


# -- errors --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "error"),
    [
        (11305, DomainNotFound),
        (11306, DomainExists),
        (11404, RouteNotFound),
        (11405, RouteExists),
        (11100, ValidationFailed),
        (11999, ValidationFailed),
    ],
)
def test_kuscia_codes_map_to_typed_errors_and_are_never_retried(
    code: int, error: type[KusciaApiError]
) -> None:
    script = ScriptedTransport(ok(code=code, message='domains.kuscia.secretflow "bob" not found'))
    with pytest.raises(error) as raised:
        client_with(script).query_domain("bob")
    assert raised.value.code == code and len(script.sent) == 1
    assert str(code) in str(raised.value) and "alice" in str(raised.value)


def test_kuscias_401_is_a_rejected_token_without_the_token_in_the_message() -> None:
    script = ScriptedTransport(RawResponse(401, b"unauthorized", {}))
    with pytest.raises(Unauthorized) as raised:
        client_with(script).health()
    message = str(raised.value)
    assert message.startswith(
        "token rejected: the KusciaAPI token derived from the domain key does not match the node"
    )
    assert TOKEN not in message and "pulumi up" in message
    assert len(script.sent) == 1


def test_api_server_refusals_are_told_apart_from_kuscias() -> None:
    denied = ScriptedTransport(
        kube_status(403, 'services "kuscia-autonomy-alice:8082" is forbidden: User "dev" cannot create')
    )
    with pytest.raises(KubernetesAccessDenied) as raised:
        client_with(denied).health()
    assert "services/proxy" in str(raised.value) and "autonomy-alice" in str(raised.value)
    missing = ScriptedTransport(kube_status(404, 'services "kuscia-autonomy-alice" not found'))
    with pytest.raises(ServiceNotFound):
        client_with(missing).health()
    assert len(denied.sent) == len(missing.sent) == 1


def test_other_4xx_are_validation_errors_and_non_json_successes_unexpected_none_retried() -> None:
    cases = (
        (RawResponse(400, b"invalid json", {}), ValidationFailed),
        (RawResponse(200, b"<html>x</html>", {}), UnexpectedAnswer),
    )
    for answer, error in cases:
        script = ScriptedTransport(answer)
        with pytest.raises(error):
            client_with(script).health()
        assert len(script.sent) == 1


# -- retries -------------------------------------------------------------------------------------


def test_5xx_and_429_are_retried_with_capped_exponential_backoff() -> None:
    fake = FakeTime()
    script = ScriptedTransport(
        RawResponse(503, b"no endpoints available", {}),
        RawResponse(429, b"", {}),
        RawResponse(502, b"", {}),
        RawResponse(503, b"", {}),
        ok({"ready": True}),
    )
    policy = RetryPolicy(attempts=6, base_seconds=0.5, cap_seconds=1.5, budget_seconds=100)
    assert client_with(script, policy=policy, time=fake).health() is True
    assert len(script.sent) == 5
    assert fake.sleeps == [0.5, 1.0, 1.5, 1.5]  # rng = 1.0: the top of each jitter window, capped


def test_full_jitter_stays_inside_the_window() -> None:
    policy = RetryPolicy(base_seconds=0.25, cap_seconds=4.0)
    assert policy.delay(0, lambda: 0.0) == 0.0
    assert policy.delay(3, lambda: 0.5) == 1.0
    assert policy.delay(30, lambda: 0.999) == pytest.approx(3.996)


def test_connection_errors_and_timeouts_are_retried_then_reported_unavailable() -> None:
    script = ScriptedTransport(
        ConnectionRefusedError("connect: connection refused"), TimeoutError("read timed out")
    )
    policy = RetryPolicy(attempts=3, base_seconds=0.1, budget_seconds=100)
    with pytest.raises(ApiUnavailable) as raised:
        client_with(script, policy=policy).health()
    assert len(script.sent) == 3
    message = str(raised.value)
    assert (
        "3 attempts" in message
        and "read timed out" in message
        and "kubectl -n autonomy-alice get pods" in message
    )
    assert TOKEN not in message


def test_no_attempt_too_short_to_answer_hides_the_last_real_reason() -> None:
    """Each 503 takes 0.45 s and each pause 0.04 s: after two attempts a budget of 1.0 s has
    0.02 s left once paused. Since the transports' timeout is whole-request, an attempt with
    that sliver could only time out, and its timeout replaced the 503 in the error (seen in a
    CI run of the emulated test of a node that stays down)."""
    fake = FakeTime()

    class Slow503(ScriptedTransport):
        def request(self, method: str, path: str, **kwargs: Any) -> RawResponse:
            self.sent.append({"timeout": kwargs["timeout"]})
            if kwargs["timeout"] < 0.45:
                fake.now += kwargs["timeout"]
                raise TimeoutError("timed out")
            fake.now += 0.45
            return RawResponse(503, b"", {})

    transport = Slow503()
    policy = RetryPolicy(
        attempts=50, base_seconds=0.05, cap_seconds=0.05, request_timeout_seconds=0.5, budget_seconds=1.0
    )
    client = KusciaApiClient(
        TLS, retry=policy, transport=transport, sleep=fake.sleep, clock=fake.clock, rng=lambda: 0.8
    )
    with pytest.raises(ApiUnavailable) as raised:
        client.health()
    assert "HTTP 503" in str(raised.value) and "2 attempts" in str(raised.value)
    assert all(sent["timeout"] >= MIN_ATTEMPT_SECONDS for sent in transport.sent)


def test_the_total_retry_time_is_bounded_by_the_budget() -> None:
    fake = FakeTime()

    class Slow503(ScriptedTransport):
        def request(self, method: str, path: str, **kwargs: Any) -> RawResponse:
            fake.now += kwargs["timeout"]  # every attempt uses its whole timeout
            return RawResponse(503, b"", {})

    client = KusciaApiClient(
        TLS,
        retry=RetryPolicy(
            attempts=100, base_seconds=1, cap_seconds=4, request_timeout_seconds=3, budget_seconds=20
        ),
        transport=Slow503(),
        sleep=fake.sleep,
        clock=fake.clock,
        rng=lambda: 1.0,
    )
    with pytest.raises(ApiUnavailable):
        client.health()
    assert fake.now <= 20.0
    assert 2 <= client.calls < 100


def test_no_token_in_reprs_or_debug_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    script = ScriptedTransport(RawResponse(503, b"upstream connect error", {}), ok({"ready": True}))
    client = client_with(script)
    client.health()
    assert "upstream connect error" in caplog.text  # the retry was logged...
    assert TOKEN not in caplog.text  # ...without the token
    assert TOKEN not in repr(client) and TOKEN not in repr(TLS)


# -- against the emulated API server ---------------------------------------------------------------


@pytest.fixture(scope="module")
def emu() -> Iterator[KusciaEmulator]:
    with KusciaEmulator() as emulator:
        emulator.add_node("alice", protocol="TLS")
        emulator.add_node("bob", protocol="NOTLS")
        yield emulator


FAST = RetryPolicy(
    attempts=6, base_seconds=0.05, cap_seconds=0.2, request_timeout_seconds=2, budget_seconds=10
)


def requests_since(emu: KusciaEmulator, start: int) -> list[Any]:
    return emu.requests[start:]


def test_emulated_requests_reach_the_node_unencoded_with_the_right_auth(emu: KusciaEmulator) -> None:
    start = len(emu.requests)
    with KusciaApiClient(target_of(emu, "alice", transport="serviceProxy"), retry=FAST) as alice:
        assert alice.health() is True
    with KusciaApiClient(target_of(emu, "bob", transport="serviceProxy"), retry=FAST) as bob:
        assert bob.health() is True
    tls, plain = requests_since(emu, start)
    assert (
        tls.path
        == "/api/v1/namespaces/autonomy-alice/services/https:kuscia-autonomy-alice:8082/proxy/healthZ"
    )
    assert (
        plain.path == "/api/v1/namespaces/autonomy-bob/services/http:kuscia-autonomy-bob:8082/proxy/healthZ"
    )
    assert "%" not in tls.path + plain.path
    assert tls.headers.get("Token") == emu.nodes["alice"].token
    assert "Token" not in plain.headers


def test_emulated_kuscia_codes_come_back_typed(emu: KusciaEmulator) -> None:
    cert = emu.nodes["bob"].cert_pem
    import base64

    cert_b64 = base64.b64encode(cert.encode()).decode()
    with KusciaApiClient(target_of(emu, "alice", transport="serviceProxy"), retry=FAST) as alice:
        with pytest.raises(DomainNotFound):
            alice.query_domain("carol")
        with pytest.raises(DomainNotFound):  # route create needs both Domains (kuscia#429)
            alice.create_route("alice", "carol", host="h", port=1080, is_tls=True)
        alice.create_partner_domain("bob", cert_b64)
        with pytest.raises(DomainExists):
            alice.create_partner_domain("bob", cert_b64)
        assert alice.query_domain("bob")["role"] == "partner"
        with pytest.raises(RouteNotFound):
            alice.query_route("alice", "bob")
        alice.create_route(
            "alice", "bob", host="kuscia-autonomy-bob.autonomy-bob.svc.cluster.local", port=1080, is_tls=False
        )
        with pytest.raises(RouteExists):
            alice.create_route("alice", "bob", host="x", port=1080, is_tls=False)
        assert alice.route_status([("alice", "bob")])["alice-bob"]["status"] in ("Succeeded", "Failed")
        alice.delete_route("alice", "bob")
        alice.delete_domain("bob")
        with pytest.raises(RouteNotFound):
            alice.delete_route("alice", "bob")


def test_emulated_wrong_token_is_rejected_once(emu: KusciaEmulator) -> None:
    client = KusciaApiClient(
        target_of(emu, "alice", transport="serviceProxy", token="not-the-token-not-the-token-0000"),
        retry=FAST,
    )
    with pytest.raises(Unauthorized) as raised:
        client.health()
    assert client.calls == 1 and "not-the-token" not in str(raised.value)


def test_emulated_bad_kubeconfig_credentials_are_the_api_servers_refusal(
    emu: KusciaEmulator, tmp_path: Path
) -> None:
    config = yaml.safe_load(Path(emu.kubeconfig_path).read_text())
    for user in config["users"]:
        user["user"] = {"token": "wrong-bearer"}
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(config))
    client = KusciaApiClient(
        target_of(emu, "alice", transport="serviceProxy", kubeconfig=str(path)), retry=FAST
    )
    with pytest.raises(KubernetesAccessDenied):
        client.health()
    assert client.calls == 1


def test_emulated_5xx_burst_slow_answer_and_restart_are_retried(emu: KusciaEmulator) -> None:
    alice = emu.nodes["alice"]
    with KusciaApiClient(target_of(emu, "alice", transport="serviceProxy"), retry=FAST) as client:
        alice.fail_next(2, status=503)
        assert client.health() is True and client.calls == 3
    with KusciaApiClient(
        target_of(emu, "alice", transport="serviceProxy"),
        retry=RetryPolicy(attempts=4, base_seconds=0.05, request_timeout_seconds=0.3),
    ) as client:
        alice.delay_next(1, 1.0)
        assert client.health() is True and client.calls == 2
    with KusciaApiClient(
        target_of(emu, "alice", transport="serviceProxy"),
        retry=RetryPolicy(attempts=30, base_seconds=0.1, cap_seconds=0.3, budget_seconds=10),
    ) as client:
        alice.restart(downtime=0.6)
        assert client.health() is True and client.calls >= 2


def test_emulated_api_that_stays_down_ends_unavailable_within_the_budget(emu: KusciaEmulator) -> None:
    import time

    emu.add_node("dave", protocol="NOTLS").restart(downtime=5.0)
    policy = RetryPolicy(
        attempts=50, base_seconds=0.1, cap_seconds=0.3, request_timeout_seconds=0.5, budget_seconds=1.0
    )
    started = time.monotonic()
    with pytest.raises(ApiUnavailable) as raised:
        KusciaApiClient(target_of(emu, "dave", transport="serviceProxy"), retry=policy).health()
    assert time.monotonic() - started < 2.0
    assert "HTTP 503" in str(raised.value)


def test_emulated_missing_kubeconfig_is_read_at_call_time(emu: KusciaEmulator, tmp_path: Path) -> None:
    client = KusciaApiClient(
        target_of(emu, "alice", transport="serviceProxy", kubeconfig=str(tmp_path / "absent")), retry=FAST
    )
    with pytest.raises(KubeconfigError) as raised:  # building the client did not read it; the call does
        client.health()
    assert str(tmp_path / "absent") in str(raised.value) and "kuscia:kubeconfig" in str(raised.value)
    assert client.calls == 1


def test_route_rotates_its_token_daily_like_join_to_host() -> None:
    """Kuscia's own peering script creates routes with rollingUpdatePeriod 86400
    (secretflow/kuscia scripts/templates/cluster_domain_route.token.yaml), not 0 (never)."""
    script = ScriptedTransport(ok())
    client_with(script).create_route("alice", "bob", host="h", port=1080, is_tls=True)
    assert json.loads(script.sent[0]["body"])["token_config"]["rolling_update_period"] == 86400
