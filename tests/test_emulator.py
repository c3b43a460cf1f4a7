"""The emulator's own semantics, over raw HTTP (EMULATION: checks the stand-in, not Kuscia)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from tests.emulator import EmulatedNode, KusciaEmulator


@pytest.fixture
def emu() -> Iterator[KusciaEmulator]:
    with KusciaEmulator() as emulator:
        yield emulator


def call(emu: KusciaEmulator, path: str, body: Any = None, *, token: str | None = None,
         bearer: str | None = None, method: str = "POST") -> tuple[int, Any, dict[str, str]]:  # fmt: skip
    headers = {"Authorization": f"Bearer {bearer or emu.bearer_token}", "Content-Type": "application/json"}
    if token:
        headers["Token"] = token
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(emu.url + path, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            raw = response.read()
            return response.status, _json(raw), dict(response.headers)
    except urllib.error.HTTPError as err:
        return err.code, _json(err.read()), dict(err.headers)


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode()


def api(emu: KusciaEmulator, node: EmulatedNode, path: str, body: Any) -> tuple[int, Any, dict[str, str]]:
    scheme = "http" if node.protocol == "NOTLS" else "https"
    proxy = f"/api/v1/namespaces/{node.namespace}/services/{scheme}:{node.service}:8082/proxy{path}"
    return call(emu, proxy, body, token=node.token if node.protocol != "NOTLS" else None)


def test_emulated_apiserver_checks_the_bearer_token(emu: KusciaEmulator) -> None:
    assert call(emu, "/version", method="GET")[0] == 200
    status, body, _ = call(emu, "/version", bearer="wrong", method="GET")
    assert status == 401 and body["kind"] == "Status"


def test_emulated_proxy_refuses_encoded_slash_and_unknown_services(emu: KusciaEmulator) -> None:
    alice = emu.add_node("alice")
    encoded = f"/api/v1/namespaces/{alice.namespace}/services/https:{alice.service}:8082/proxy/api%2Fv1/domain/query"
    assert call(emu, encoded, {}, token=alice.token)[0] == 400
    assert call(emu, "/api/v1/namespaces/x/services/https:nope:8082/proxy/healthZ", {})[0] == 404


def test_emulated_tls_node_wants_https_and_the_token(emu: KusciaEmulator) -> None:
    alice = emu.add_node("alice")
    base = f"/api/v1/namespaces/{alice.namespace}/services"
    assert call(emu, f"{base}/http:{alice.service}:8082/proxy/healthZ", {}, token=alice.token)[0] == 400
    assert call(emu, f"{base}/https:{alice.service}:8082/proxy/healthZ", {}, token="bad")[0] == 401
    status, body, _ = call(emu, f"{base}/https:{alice.service}:8082/proxy/healthZ", {}, token=alice.token)
    assert status == 200 and body["data"] == {"ready": True}


def test_emulated_kusciaapi_error_codes(emu: KusciaEmulator) -> None:
    alice, bob = emu.add_node("alice"), emu.add_node("bob")
    cert = bob.cert_pem
    assert api(emu, alice, "/api/v1/domain/query", {"domain_id": "bob"})[1]["status"]["code"] == 11305
    route = {
        "source": "alice",
        "destination": "bob",
        "endpoint": {"host": "h", "ports": [{"port": 1080, "protocol": "HTTP"}]},
    }
    assert api(emu, alice, "/api/v1/route/create", route)[1]["status"]["code"] == 11305  # needs both Domains
    assert (
        api(emu, alice, "/api/v1/domain/create", {"domain_id": "bob", "role": "partner", "cert": cert})[1][
            "status"
        ]["code"]
        == 0
    )
    assert (
        api(emu, alice, "/api/v1/domain/create", {"domain_id": "bob", "role": "partner", "cert": cert})[1][
            "status"
        ]["code"]
        == 11306
    )
    assert api(emu, alice, "/api/v1/route/create", route)[1]["status"]["code"] == 0
    assert api(emu, alice, "/api/v1/route/create", route)[1]["status"]["code"] == 11405
    assert (
        api(emu, alice, "/api/v1/route/query", {"source": "x", "destination": "y"})[1]["status"]["code"]
        == 11404
    )
    assert (
        api(emu, alice, "/api/v1/domain/create", {"domain_id": "carol", "cert": "junk"})[1]["status"]["code"]
        == 11100
    )


def test_emulated_update_without_role_downgrades_the_partner_and_breaks_the_handshake(
    emu: KusciaEmulator,
) -> None:
    alice, bob = emu.add_node("alice"), emu.add_node("bob")
    for me, other in ((alice, bob), (bob, alice)):
        api(
            emu,
            me,
            "/api/v1/domain/create",
            {"domain_id": other.domain_id, "role": "partner", "cert": other.cert_pem},
        )
    for me, other in ((alice, bob), (bob, alice)):
        route = {"source": me.domain_id, "destination": other.domain_id,
                 "endpoint": {"host": f"{other.service}.{other.namespace}.svc", "ports": [{"port": 1080, "protocol": "HTTP", "isTLS": True}]}}  # fmt: skip
        api(emu, me, "/api/v1/route/create", route)
    assert alice.routes()["alice-bob"]["status"] == "Succeeded"
    api(emu, bob, "/api/v1/domain/update", {"domain_id": "alice", "cert": alice.cert_pem})  # role not re-sent
    assert bob.snapshot_domains()["alice"]["role"] == ""
    assert alice.routes()["alice-bob"]["status"] == "Failed"


def test_emulated_gateway_answers_401_with_kuscias_header(emu: KusciaEmulator) -> None:
    alice = emu.add_node("alice", protocol="NOTLS")
    status, body, headers = call(
        emu, f"/api/v1/namespaces/{alice.namespace}/services/http:{alice.service}:1080/proxy/", method="GET"
    )
    assert status == 401 and "kuscia-error-message" in {k.lower() for k in headers}
    assert body["domain"] == "alice"


def test_emulated_object_store_serves_gets_and_label_selected_lists(emu: KusciaEmulator) -> None:
    emu.put_object("apps/v1", "Deployment", "ns", "d1", {"metadata": {"name": "d1", "labels": {"app": "x"}}})
    emu.put_object("v1", "Pod", "ns", "p1", {"metadata": {"name": "p1", "labels": {"app": "x"}}})
    emu.put_object("v1", "Pod", "ns", "p2", {"metadata": {"name": "p2", "labels": {"app": "y"}}})
    assert (
        call(emu, "/apis/apps/v1/namespaces/ns/deployments/d1", method="GET")[1]["metadata"]["name"] == "d1"
    )
    pods = call(emu, "/api/v1/namespaces/ns/pods?labelSelector=app=x", method="GET")[1]["items"]
    assert [p["metadata"]["name"] for p in pods] == ["p1"]
    assert call(emu, "/api/v1/namespaces/ns/secrets/missing", method="GET")[0] == 404
