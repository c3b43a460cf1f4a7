"""The emulator's own semantics over raw HTTP (EMULATION: these check the stand-in, not Kuscia).

Each rule asserted here is one the README traces to Kuscia or Kubernetes behaviour; the project's
clients are tested against the emulator elsewhere, so a wrong rule here would hide their bugs.
"""

from __future__ import annotations

import base64
import http.client
import re
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from tests.emulator import EmulatedNode, KusciaEmulator
from tests.emulator.identity import kuscia_cert, new_key
from tests.helpers import Reply, api, call, proxy_path


@pytest.fixture
def manual() -> Iterator[KusciaEmulator]:
    """The background handshake never ticks on its own: each round is `engine.run_once()`."""
    with KusciaEmulator(tick=3600) as emulator:
        yield emulator


# -- raw HTTP helpers -------------------------------------------------------------------------------


def code(reply: Reply) -> int:
    return int(reply[1]["status"]["code"])


def register(emu: KusciaEmulator, me: EmulatedNode, other: EmulatedNode, cert: str | None = None) -> int:
    return code(
        api(
            emu,
            me,
            "/api/v1/domain/create",
            {"domain_id": other.domain_id, "role": "partner", "cert": cert or other.cert_pem},
        )
    )


def route(
    emu: KusciaEmulator,
    me: EmulatedNode,
    other: EmulatedNode,
    *,
    is_tls: bool | None = None,
    host: str | None = None,
    port: int = 1080,
) -> int:
    endpoint = {
        "host": host or f"{other.service}.{other.namespace}.svc.cluster.local",
        "ports": [
            {
                "name": "http",
                "port": port,
                "protocol": "HTTP",
                "isTLS": other.is_tls if is_tls is None else is_tls,
            }
        ],
    }
    body = {
        "source": me.domain_id,
        "destination": other.domain_id,
        "authentication_type": "Token",
        "endpoint": endpoint,
        "token_config": {"token_gen_method": "RSA-GEN", "rolling_update_period": 0},
    }
    return code(api(emu, me, "/api/v1/route/create", body))


def link(emu: KusciaEmulator, a: EmulatedNode, b: EmulatedNode) -> None:
    assert register(emu, a, b) == register(emu, b, a) == 0
    assert route(emu, a, b) == route(emu, b, a) == 0


def status_of(emu: KusciaEmulator, node: EmulatedNode, name: str) -> dict[str, str]:
    source, destination = name.split("-")
    reply = api(
        emu,
        node,
        "/api/v1/route/status/batchQuery",
        {"route_keys": [{"source": source, "destination": destination}]},
    )
    return dict(reply[1]["data"]["routes"][0]["status"])


def ready(node: EmulatedNode, *names: str) -> bool:
    routes = node.routes()
    return all(routes[name]["status"] == "Succeeded" for name in names)


# -- the API server ---------------------------------------------------------------------------------


def test_emulated_apiserver_checks_the_bearer_token_from_its_kubeconfig(emu: KusciaEmulator) -> None:
    config = yaml.safe_load(Path(emu.kubeconfig_path).read_text(encoding="utf-8"))
    assert config["current-context"] == emu.context == "kuscia-emulator"
    assert config["clusters"][0]["cluster"]["server"] == emu.url
    assert config["users"][0]["user"]["token"] == emu.bearer_token
    assert call(emu, "/version", method="GET")[1]["major"] == "1"
    for bearer in ("wrong", ""):
        status, body, _ = call(emu, "/version", method="GET", bearer=bearer or "x" * 32)
        assert status == 401
        assert (body["kind"], body["reason"], body["code"]) == ("Status", "Unauthorized", 401)


def test_emulated_proxy_decodes_encoded_slash_and_answers_like_kubernetes(emu: KusciaEmulator) -> None:
    alice, bob = emu.add_node("alice", protocol="TLS"), emu.add_node("bob", protocol="NOTLS")
    token = {"Token": alice.token}
    encoded = proxy_path(alice, "/api%2Fv1/domain/query")  # decoded to /api/v1/... as Go decodes it
    status, body, _ = call(emu, encoded, {"domain_id": "alice"}, headers=token)
    assert (status, body["status"]["code"]) == (200, 0)
    status, body, _ = call(
        emu, "/api/v1/namespaces/autonomy-alice/services/https:nope:8082/proxy/healthZ", {}
    )
    assert (status, body["reason"], body["message"]) == (404, "NotFound", 'services "nope" not found')
    status, body, _ = call(emu, proxy_path(alice, "/healthZ", port=9999), {}, headers=token)
    assert (status, body["message"]) == (
        503,
        'no service port 9999 found for service "kuscia-autonomy-alice"',
    )
    status, body, _ = call(emu, proxy_path(bob, "/healthZ", scheme="https"), {})
    assert status == 503 and "first record does not look like a TLS handshake" in body["message"]
    status, body, _ = call(emu, proxy_path(alice, "/healthZ", scheme="http"), {}, headers=token)
    assert (status, body) == (400, "Client sent an HTTP request to an HTTPS server.\n")
    percent_colon = proxy_path(alice, "/healthZ").replace(
        "https:kuscia-autonomy-alice:", "https%3Akuscia-autonomy-alice%3A"
    )
    assert call(emu, percent_colon, {}, headers=token)[0] == 200


def test_emulated_proxy_forwards_method_headers_and_body_and_records_them(emu: KusciaEmulator) -> None:
    alice = emu.add_node("alice")
    api(emu, alice, "/api/v1/domain/query", {"domain_id": "alice"})
    seen = emu.requests[-1]
    assert (seen.node, seen.method, seen.port) == ("alice", "POST", "8082")
    assert seen.path == proxy_path(alice, "/api/v1/domain/query")
    assert seen.headers["Token"] == alice.token and seen.body == {"domain_id": "alice"}
    status, body, _ = call(emu, proxy_path(alice, "/healthZ"), method="GET", headers={"Token": alice.token})
    assert (status, body) == (404, "404 page not found")  # KusciaAPI routes are POST only
    assert emu.requests[-1].method == "GET"


def test_emulated_token_is_derived_independently_and_checked_only_when_tls(emu: KusciaEmulator) -> None:
    alice, bob = emu.add_node("alice", protocol="TLS"), emu.add_node("bob", protocol="NOTLS")
    lower = emu.add_node("carol", protocol="notls")  # Kuscia compares the exact string NOTLS
    key = serialization.load_pem_private_key(alice.key_pem.encode(), password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    signature = key.sign(b"alice", padding.PKCS1v15(), hashes.SHA256())
    assert alice.token == base64.b64encode(signature).decode()[:32]
    health = proxy_path(alice, "/healthZ")
    for headers in ({}, {"Token": "x" * 32}, {"Token": alice.token[:-1]}):
        assert call(emu, health, {}, headers=headers)[:2] == (401, "")
    assert call(emu, health, {}, headers={"token": alice.token})[0] == 200  # header names are case-free
    for headers in ({}, {"Token": "anything"}):
        assert call(emu, proxy_path(bob, "/healthZ"), {}, headers=headers)[0] == 200
    assert lower.is_tls and call(emu, proxy_path(lower, "/healthZ"), {})[0] == 401


def test_emulated_healthz_has_kuscias_shape(emu: KusciaEmulator) -> None:
    bob = emu.add_node("bob", protocol="NOTLS")
    status, body, headers = api(emu, bob, "/healthZ", {})
    assert status == 200 and headers["Content-Type"] == "application/json"
    assert body == {"status": {"code": 0, "message": "success", "details": []}, "data": {"ready": True}}


# -- the domain service -----------------------------------------------------------------------------


def test_emulated_domain_service_answers_kuscias_codes(emu: KusciaEmulator) -> None:
    alice, bob = emu.add_node("alice"), emu.add_node("bob")
    assert register(emu, alice, bob) == 0
    again = api(
        emu, alice, "/api/v1/domain/create", {"domain_id": "bob", "role": "partner", "cert": bob.cert_pem}
    )
    assert (code(again), again[1]["status"]["message"]) == (
        11306,
        'domains.kuscia.secretflow "bob" already exists',
    )
    for path in ("query", "delete", "update"):
        missing = api(emu, alice, f"/api/v1/domain/{path}", {"domain_id": "carol"})
        assert code(missing) == 11305 and missing[1]["data"] is None
        assert missing[1]["status"]["message"] == 'domains.kuscia.secretflow "carol" not found'
    assert code(api(emu, alice, "/api/v1/domain/batchQuery", {"domain_ids": ["bob", "carol"]})) == 11305
    invalid = [
        {"domain_id": ""},
        {"domain_id": "master"},
        {"domain_id": "Bob_1"},
        {"domain_id": "dave", "role": "admin"},
        {"domain_id": "dave", "cert": "junk!"},
        {"domain_id": "dave", "cert": base64.b64encode(b"not a cert").decode()},
    ]
    replies = [api(emu, alice, "/api/v1/domain/create", body) for body in invalid]
    assert [code(r) for r in replies] == [11100] * len(invalid)
    assert replies[4][1]["status"]["message"] == "cert must be encoded with base64"
    assert replies[5][1]["status"]["message"] == "cert format is invalid, must be an x509 certificate"
    assert "dave" not in alice.domains()
    batch = api(emu, alice, "/api/v1/domain/batchQuery", {"domain_ids": ["alice", "bob"]})[1]["data"][
        "domains"
    ]
    assert [d["domain_id"] for d in batch] == ["alice", "bob"] and batch[1]["role"] == "partner"


def test_emulated_cert_is_accepted_in_every_form_kuscia_accepts(emu: KusciaEmulator) -> None:
    alice, bob = emu.add_node("alice"), emu.add_node("bob")
    pem = bob.cert_pem
    body = "".join(pem.strip().splitlines()[1:-1])
    forms = {
        "raw": pem,
        "b64": base64.b64encode(pem.encode()).decode(),
        "headerless": body,
        "twice": base64.b64encode(base64.b64encode(pem.encode())).decode(),
    }
    for n, (label, cert) in enumerate(forms.items()):
        assert (
            code(
                api(
                    emu,
                    alice,
                    "/api/v1/domain/create",
                    {"domain_id": f"p{n}", "role": "partner", "cert": cert},
                )
            )
            == 0
        ), label
    stored = [alice.domains()[f"p{n}"]["cert"] for n in range(len(forms))]
    assert stored[0] == base64.b64encode(pem.strip("\n").encode()).decode()  # raw PEM: encoded by Kuscia
    assert stored[1] == forms["b64"]  # already base64: stored as sent
    der = {
        x509.load_pem_x509_certificate(base64.b64decode(s)).public_bytes(serialization.Encoding.DER)
        for s in stored
    }
    assert der == {x509.load_pem_x509_certificate(pem.encode()).public_bytes(serialization.Encoding.DER)}
    own = api(emu, alice, "/api/v1/domain/query", {"domain_id": "alice"})[1]["data"]
    assert base64.b64decode(own["cert"]).decode() == alice.cert_pem and own["role"] == ""


def test_emulated_partner_defaults_and_the_update_caveat(emu: KusciaEmulator) -> None:
    alice, bob = emu.add_node("alice"), emu.add_node("bob")
    assert register(emu, alice, bob) == 0
    query = api(emu, alice, "/api/v1/domain/query", {"domain_id": "bob"})[1]["data"]
    assert query["auth_center"] == {"authentication_type": "Token", "token_gen_method": "RSA-GEN"}
    assert alice.domains()["bob"]["interConnProtocols"] == ["kuscia"]
    assert "bob-alice" in alice.routes() and alice.routes()["bob-alice"]["destination_side"]
    assert code(api(emu, alice, "/api/v1/domain/update", {"domain_id": "bob"})) == 0  # role not re-sent
    after = alice.domains()["bob"]
    assert (after["role"], after["auth_center"], after["interConnProtocols"]) == ("", None, [])
    assert after["cert"] == base64.b64encode(bob.cert_pem.strip("\n").encode()).decode()  # no cert: kept


# -- the route service ------------------------------------------------------------------------------


def test_emulated_route_service_answers_kuscias_codes_and_shapes(emu: KusciaEmulator) -> None:
    alice, bob = emu.add_node("alice"), emu.add_node("bob")
    missing = api(
        emu,
        alice,
        "/api/v1/route/create",
        {
            "source": "alice",
            "destination": "bob",
            "authentication_type": "Token",
            "endpoint": {"host": "h", "ports": [{"name": "http", "port": 1080, "protocol": "HTTP"}]},
        },
    )
    assert (code(missing), missing[1]["status"]["message"]) == (
        11305,
        'domains.kuscia.secretflow "bob" not found',
    )
    assert register(emu, alice, bob) == 0
    good = {
        "source": "alice",
        "destination": "bob",
        "authentication_type": "Token",
        "endpoint": {"host": "bob.example", "ports": [{"name": "g", "port": 1080, "protocol": "https"}]},
    }
    broken = [
        ({**good, "authentication_type": ""}, 11100),
        ({**good, "endpoint": {"host": "h", "ports": []}}, 11100),
        ({**good, "endpoint": {"host": "h", "ports": [{"port": 70000, "protocol": "HTTP"}]}}, 11100),
        ({**good, "endpoint": {"host": "h", "ports": [{"port": 1080, "protocol": "TCP"}]}}, 11400),
        (
            {**good, "endpoint": {"host": "https://h:1080", "ports": [{"port": 1080, "protocol": "HTTP"}]}},
            11400,
        ),
        ({**good, "token_config": {"token_gen_method": "RAND-GEN"}}, 11400),
        ({**good, "source": "carol"}, 11305),
    ]
    assert [code(api(emu, alice, "/api/v1/route/create", body)) for body, _ in broken] == [
        c for _, c in broken
    ]
    assert code(api(emu, alice, "/api/v1/route/create", good)) == 0
    assert code(api(emu, alice, "/api/v1/route/create", good)) == 11405
    data = api(emu, alice, "/api/v1/route/query", {"source": "alice", "destination": "bob"})[1]["data"]
    assert data["name"] == "alice-bob" and data["mtls_config"] is None
    assert data["endpoint"]["ports"] == [
        {"name": "g", "port": 1080, "protocol": "HTTP", "isTLS": True, "path_prefix": ""}
    ]
    assert (
        data["token_config"]["token_gen_method"] == "RSA-GEN"
        and data["token_config"]["rolling_update_period"] == "0"
    )
    bob_public = serialization.load_pem_public_key(
        base64.b64decode(data["token_config"]["destination_public_key"])
    )
    assert bob_public.public_numbers() == bob.key.public_key().public_numbers()  # type: ignore[union-attr]
    for path in ("query", "delete"):
        assert code(api(emu, alice, f"/api/v1/route/{path}", {"source": "x", "destination": "y"})) == 11404
    assert code(api(emu, alice, "/api/v1/route/status/batchQuery", {"route_keys": []})) == 11100
    keys = {"route_keys": [{"source": "alice", "destination": "bob"}, {"source": "x", "destination": "y"}]}
    assert code(api(emu, alice, "/api/v1/route/status/batchQuery", keys)) == 11404


def test_emulated_route_status_is_empty_at_first_then_formatted_like_kuscia(manual: KusciaEmulator) -> None:
    alice, bob = manual.add_node("alice"), manual.add_node("bob")
    assert register(manual, alice, bob) == 0 and route(manual, alice, bob) == 0
    assert status_of(manual, alice, "alice-bob") == {"status": "Failed", "reason": ""}  # no condition yet
    manual.engine.run_once()
    reason = status_of(manual, alice, "alice-bob")["reason"]
    assert re.fullmatch(
        r"LastUpdateAt=\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \+0000 UTC, "
        r"Message=TokenNotGenerate, Reason:DestinationIsNotAuthrized",
        reason,
    )
    assert "domainRoute [alice-bob] not found in dest domain [bob]" in alice.gateway_log[-1]
    assert "bob-alice" not in bob.route_table  # bob never registered alice: no authorization there


# -- the handshake ----------------------------------------------------------------------------------


def test_emulated_handshake_is_ready_only_once_both_sides_hold_the_right_keys(emu: KusciaEmulator) -> None:
    alice, bob = emu.add_node("alice"), emu.add_node("bob", protocol="NOTLS")
    assert register(emu, alice, bob) == 0 and route(emu, alice, bob) == 0
    assert emu.wait_until(lambda: "not found in dest domain [bob]" in "".join(alice.gateway_log))
    assert alice.routes()["alice-bob"]["reason"] == "DestinationIsNotAuthrized"
    assert register(emu, bob, alice) == 0  # bob authorizes alice: its inbound route alice-bob appears
    assert emu.wait_until(lambda: ready(alice, "alice-bob"))
    assert bob.routes()["alice-bob"]["ready"] == "True"  # the destination side saw the token
    assert alice.routes()["bob-alice"]["ready"] == ""  # bob has no route to alice yet: empty READY
    assert route(emu, bob, alice) == 0
    assert emu.wait_until(
        lambda: ready(alice, "alice-bob", "bob-alice") and ready(bob, "alice-bob", "bob-alice")
    )
    assert status_of(emu, bob, "bob-alice") == {"status": "Succeeded", "reason": ""}
    assert alice.routes()["alice-bob"]["revision"] == bob.routes()["alice-bob"]["revision"] == 1


def test_emulated_wrong_partner_cert_fails_decryption_until_fixed(emu: KusciaEmulator) -> None:
    alice, bob = emu.add_node("alice"), emu.add_node("bob")
    impostor = kuscia_cert(new_key(), "bob")  # a valid cert for "bob" with another key
    assert register(emu, alice, bob, cert=impostor) == register(emu, bob, alice) == 0
    assert route(emu, alice, bob) == 0
    assert emu.wait_until(lambda: "may be not correct" in "".join(alice.gateway_log))
    assert "dest domain [bob] publickey in source domain [alice] may be not correct" in alice.gateway_log[-1]
    assert not ready(alice, "alice-bob")
    fix = {"domain_id": "bob", "role": "partner", "cert": bob.cert_pem}
    assert code(api(emu, alice, "/api/v1/domain/update", fix)) == 0
    assert emu.wait_until(lambda: ready(alice, "alice-bob"))


def test_emulated_stale_copy_on_the_destination_is_a_hash_mismatch(emu: KusciaEmulator) -> None:
    alice, bob = emu.add_node("alice"), emu.add_node("bob")
    assert register(emu, bob, alice) == 0  # bob holds alice's current cert...
    alice.rotate_key()  # ...which then goes stale
    assert register(emu, alice, bob) == 0 and route(emu, alice, bob) == 0
    assert emu.wait_until(lambda: "hash mismatch" in "".join(alice.gateway_log))
    assert "source domain [alice] publickey hash mismatch in domainroute [alice-bob]" in alice.gateway_log[-1]
    assert alice.routes()["alice-bob"]["reason"] == "DestinationIsNotAuthrized"


def test_emulated_update_that_forgets_the_role_downgrades_and_breaks_the_handshake(
    emu: KusciaEmulator,
) -> None:
    alice, bob = emu.add_node("alice"), emu.add_node("bob")
    link(emu, alice, bob)
    assert emu.wait_until(lambda: ready(alice, "alice-bob") and ready(bob, "bob-alice"))
    assert code(api(emu, bob, "/api/v1/domain/update", {"domain_id": "alice", "cert": alice.cert_pem})) == 0
    assert bob.domains()["alice"]["role"] == ""
    assert emu.wait_until(lambda: alice.routes()["alice-bob"]["reason"] == "DestinationIsNotAuthrized")
    assert bob.routes()["alice-bob"]["reason"] == "TokenNotGenerate"  # bob's side lost the token
    assert "destination domain [alice] is not a partner" in bob.gateway_log[-1]
    resent = {
        "domain_id": "alice",
        "cert": alice.cert_pem,
        "role": "partner",
        "auth_center": {"authentication_type": "Token", "token_gen_method": "RSA-GEN"},
    }
    assert code(api(emu, bob, "/api/v1/domain/update", resent)) == 0
    assert emu.wait_until(lambda: ready(alice, "alice-bob") and ready(bob, "bob-alice"))


def test_emulated_http_https_mismatch_fails_distinguishably(emu: KusciaEmulator) -> None:
    alice, bob = emu.add_node("alice", protocol="TLS"), emu.add_node("bob", protocol="NOTLS")
    assert register(emu, alice, bob) == register(emu, bob, alice) == 0
    assert route(emu, alice, bob, is_tls=True) == route(emu, bob, alice, is_tls=False) == 0
    assert emu.wait_until(lambda: len(alice.gateway_log) > 0 and len(bob.gateway_log) > 0)
    assert "WRONG_VERSION_NUMBER" in alice.gateway_log[-1]  # https:// to a plain gateway (kuscia#450)
    assert "reset reason: connection termination" in bob.gateway_log[-1]  # http:// to a TLS gateway
    assert alice.routes()["alice-bob"]["status"] == bob.routes()["bob-alice"]["status"] == "Failed"


def test_emulated_unreachable_peer_before_and_after_a_token(emu: KusciaEmulator) -> None:
    alice, bob = emu.add_node("alice"), emu.add_node("bob")
    emu.set_unreachable("bob")
    link(emu, alice, bob)
    assert emu.wait_until(lambda: "Connection refused" in "".join(alice.gateway_log))
    assert alice.routes()["alice-bob"]["reason"] == "DestinationIsNotAuthrized"  # no token yet (§3.5)
    emu.set_unreachable("bob", False)
    assert emu.wait_until(lambda: ready(alice, "alice-bob"))
    emu.set_unreachable("bob", how="timeout")
    assert emu.wait_until(lambda: alice.routes()["alice-bob"]["reason"] == "DestinationUnreachable")
    emu.set_unreachable("bob", False)
    assert emu.wait_until(lambda: ready(alice, "alice-bob"))
    assert alice.routes()["alice-bob"]["revision"] == 1  # the token survived; no new handshake
    with pytest.raises(ValueError, match="how must be one of"):
        emu.set_unreachable("bob", how="slow")


def test_emulated_endpoint_resolution_aliases_and_unknown_hosts(emu: KusciaEmulator) -> None:
    alice, bob, carol = emu.add_node("alice"), emu.add_node("bob"), emu.add_node("carol")
    emu.alias("203.0.113.10", 31080, "bob")
    assert register(emu, alice, bob) == register(emu, bob, alice) == register(emu, alice, carol) == 0
    assert route(emu, alice, bob, host="203.0.113.10", port=31080) == 0
    assert route(emu, alice, carol, host="carol.invalid") == 0
    assert emu.wait_until(lambda: ready(alice, "alice-bob"))
    assert emu.wait_until(lambda: "no healthy upstream" in "".join(alice.gateway_log))
    for host in ("kuscia-autonomy-bob.autonomy-bob", "kuscia-autonomy-bob.autonomy-bob.svc"):
        assert emu.resolve(host, 1080) is bob
    assert emu.resolve("kuscia-autonomy-bob.autonomy-bob.svc", 8082) is None


def test_emulated_handshake_delay_holds_readiness_back() -> None:
    with KusciaEmulator(handshake_delay=0.3, tick=3600) as emu:
        alice, bob = emu.add_node("alice"), emu.add_node("bob")
        link(emu, alice, bob)
        emu.engine.run_once()  # the handshake would succeed: it is pending from now on
        assert alice.routes()["alice-bob"]["status"] == "Failed"
        time.sleep(0.35)
        assert alice.routes()["alice-bob"]["status"] == "Succeeded"


# -- faults -----------------------------------------------------------------------------------------


def test_emulated_restart_keeps_state_and_shows_the_heartbeat_gap(emu: KusciaEmulator) -> None:
    alice, bob = emu.add_node("alice"), emu.add_node("bob")
    link(emu, alice, bob)
    assert emu.wait_until(lambda: ready(alice, "alice-bob") and ready(bob, "bob-alice", "alice-bob"))
    old_cert, old_key = alice.cert_pem, alice.key_pem
    alice.restart(downtime=0.6)
    status, body, _ = api(emu, alice, "/healthZ")
    assert (status, body["message"]) == (503, 'no endpoints available for service "kuscia-autonomy-alice"')
    assert alice.cert_pem != old_cert and alice.key_pem == old_key  # same key, new bytes (§3.4)
    assert emu.wait_until(lambda: bob.routes()["alice-bob"]["reason"] == "HeartBeatTimeout")
    assert bob.routes()["bob-alice"]["reason"] == "DestinationUnreachable"
    assert emu.wait_until(
        lambda: ready(alice, "alice-bob") and ready(bob, "bob-alice", "alice-bob"), timeout=3
    )
    assert api(emu, alice, "/healthZ")[0] == 200 and "bob" in alice.domains()
    assert alice.routes()["alice-bob"]["revision"] == 2  # it re-handshook after the restart


def test_emulated_key_rotation_breaks_both_ways_until_the_partner_updates(emu: KusciaEmulator) -> None:
    alice, bob = emu.add_node("alice"), emu.add_node("bob")
    link(emu, alice, bob)
    assert emu.wait_until(lambda: ready(alice, "alice-bob") and ready(bob, "bob-alice"))
    old_token = bob.token
    bob.rotate_key()
    assert bob.token != old_token
    assert call(emu, proxy_path(bob, "/healthZ"), {}, headers={"Token": old_token})[0] == 401
    assert bob.routes()["bob-alice"]["status"] == "Failed"
    assert emu.wait_until(lambda: "may be not correct" in "".join(alice.gateway_log))
    assert not ready(alice, "alice-bob")
    update = {
        "domain_id": "bob",
        "role": "partner",
        "cert": bob.cert_pem,
        "auth_center": {"authentication_type": "Token", "token_gen_method": "RSA-GEN"},
    }
    assert code(api(emu, alice, "/api/v1/domain/update", update)) == 0
    assert emu.wait_until(lambda: ready(alice, "alice-bob") and ready(bob, "bob-alice"))


def test_emulated_fail_next_and_delay_next(emu: KusciaEmulator) -> None:
    bob = emu.add_node("bob", protocol="NOTLS")
    bob.fail_next(2, status=502)
    assert [api(emu, bob, "/healthZ")[0] for _ in range(3)] == [502, 502, 200]
    bob.delay_next(1, 1.0)
    with pytest.raises((TimeoutError, urllib.error.URLError)):
        api(emu, bob, "/healthZ", timeout=0.2)
    assert api(emu, bob, "/healthZ")[0] == 200


# -- the gateway, objects, access reviews -----------------------------------------------------------


def test_emulated_gateway_answers_401_with_kuscias_header_and_the_handshake_probe(
    emu: KusciaEmulator,
) -> None:
    alice = emu.add_node("alice", protocol="NOTLS")
    status, body, headers = call(emu, proxy_path(alice, "/", port=1080), method="GET")
    assert status == 401 and headers["kuscia-error-message"].startswith("Domain alice.")
    assert body == {
        "domain": "alice",
        "instance": alice.instance,
        "kuscia": "v1.1.0b0",
        "reason": "unauthorized.",
    }
    probe = call(
        emu,
        proxy_path(alice, "/handshake", port=1080),
        method="GET",
        headers={"Kuscia-Host": "kuscia-handshake.alice.svc"},
    )
    assert probe[:2] == (200, {"namespace": "alice", "state": 1})  # no Kuscia-Source: DomainIDInputInvalid
    probe = call(
        emu,
        proxy_path(alice, "/handshake", port=1080),
        method="GET",
        headers={"Kuscia-Host": "kuscia-handshake.alice.svc", "Kuscia-Source": "bob"},
    )
    assert probe[1]["state"] == 5  # alice does not authorize bob: NoAuthentication


def test_emulated_object_store_gets_and_lists_like_kubernetes(emu: KusciaEmulator) -> None:
    emu.put_object("apps/v1", "Deployment", "ns", "d1", {"metadata": {"labels": {"app": "x"}}})
    emu.put_object(
        "v1",
        "Pod",
        "ns",
        "p1",
        {"metadata": {"labels": {"app": "x", "tier": "a"}}, "status": {"phase": "Running"}},
    )
    emu.put_object("v1", "Pod", "ns", "p2", {"metadata": {"labels": {"app": "y"}}})
    emu.put_object("v1", "Pod", "other", "p3", {"metadata": {"labels": {"app": "x"}}})
    emu.put_object("networking.k8s.io/v1", "NetworkPolicy", "ns", "np", {})
    got = call(emu, "/apis/apps/v1/namespaces/ns/deployments/d1", method="GET")[1]
    assert (got["kind"], got["apiVersion"], got["metadata"]["name"], got["metadata"]["namespace"]) == (
        "Deployment",
        "apps/v1",
        "d1",
        "ns",
    )

    def names(path: str) -> list[str]:
        listed = call(emu, path, method="GET")[1]
        return [item["metadata"]["name"] for item in listed["items"]]

    assert names("/api/v1/namespaces/ns/pods?labelSelector=app%3Dx") == ["p1"]
    assert names("/api/v1/pods?labelSelector=app%3D%3Dx") == ["p1", "p3"]
    assert names("/api/v1/namespaces/ns/pods?labelSelector=app!%3Dx") == ["p2"]
    assert names("/api/v1/namespaces/ns/pods?labelSelector=app+in+(x,y),tier") == ["p1"]
    assert names("/api/v1/namespaces/ns/pods?labelSelector=!tier") == ["p2"]
    assert names("/api/v1/namespaces/ns/pods?fieldSelector=status.phase%3DRunning") == ["p1"]
    assert names("/apis/networking.k8s.io/v1/namespaces/ns/networkpolicies") == ["np"]
    listed = call(emu, "/api/v1/namespaces/ns/secrets", method="GET")
    assert listed[0] == 200 and listed[1]["kind"] == "SecretList" and listed[1]["items"] == []
    status, body, _ = call(emu, "/apis/apps/v1/namespaces/ns/deployments/gone", method="GET")
    assert (status, body["message"]) == (404, 'deployments.apps "gone" not found')
    assert call(emu, "/apis/example.com/v1/widgets", method="GET")[0] == 404
    assert call(emu, "/api/v1/pods?labelSelector=app+in+x", method="GET")[0] == 400
    assert emu.delete_object("v1", "Pod", "ns", "p2") and names("/api/v1/namespaces/ns/pods") == ["p1"]


def test_emulated_access_reviews_are_allowed_unless_denied(emu: KusciaEmulator) -> None:
    def allowed(verb: str, resource: str, sub: str = "") -> bool:
        review = {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SelfSubjectAccessReview",
            "spec": {"resourceAttributes": {"verb": verb, "resource": resource, "subresource": sub}},
        }
        status, body, _ = call(emu, "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", review)
        assert status == 201
        return bool(body["status"]["allowed"])

    assert allowed("create", "deployments")
    emu.deny("create", "deployments")
    emu.deny("get", "pods/log")
    assert (
        not allowed("create", "deployments") and allowed("get", "pods") and not allowed("get", "pods", "log")
    )
    emu.allow("create", "deployments")
    assert allowed("create", "deployments")


def test_emulated_add_node_refuses_a_duplicate_id(emu: KusciaEmulator) -> None:
    emu.add_node("alice")
    with pytest.raises(ValueError, match="already exists"):
        emu.add_node("alice")


def test_emulated_shutdown_leaves_no_threads_and_frees_the_port() -> None:
    before = {t.ident for t in threading.enumerate()}
    with KusciaEmulator() as emu:
        alice = emu.add_node("alice")
        port = int(emu.url.rsplit(":", 1)[1])
        kept_open = http.client.HTTPConnection("127.0.0.1", port, timeout=5)  # an idle keep-alive client
        kept_open.request("GET", "/version", headers={"Authorization": f"Bearer {emu.bearer_token}"})
        assert kept_open.getresponse().read()
        alice.delay_next(1, 30)  # a request still sleeping when the emulator stops
        outcome: list[object] = []

        def slow_call() -> None:
            try:
                outcome.append(api(emu, alice, "/healthZ", timeout=10)[0])
            except (OSError, http.client.HTTPException) as err:
                outcome.append(type(err).__name__)

        slow = threading.Thread(target=slow_call, daemon=True)
        slow.start()
        assert emu.wait_until(lambda: len(emu.requests) == 2)
    slow.join(timeout=5)
    kept_open.close()
    leaked = [
        t.name for t in threading.enumerate() if t.ident not in before and t.name.startswith("emulated")
    ]
    assert leaked == [] and not slow.is_alive()
    assert outcome and outcome[0] != 200  # the sleeping request was cut off, not answered late
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        pass
