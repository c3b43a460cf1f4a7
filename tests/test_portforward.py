"""The port-forward transport (kube/portforward.py) against the EMULATED API server's pods/portforward.

The emulator's websocket side follows pkg/kubelet/cri/streaming/portforward/websocket.go and
apimachinery's wsstream/conn.go (tests/emulator/README.md); the official client's own
`kubernetes.stream.portforward` is run against it too, so the emulator speaks what the official
client speaks, not only what our transport does.
"""

from __future__ import annotations

import pickle
import ssl
from collections.abc import Iterator

import pytest

from kuscia_components.config import PartyConfig
from kuscia_components.kube import errors
from kuscia_components.kube.kubeconfig import KubeconfigRef, import_kubernetes
from kuscia_components.kube.portforward import PortForwardTransport
from kuscia_components.kube.transport import ApiServerTransport
from kuscia_components.node import manifests
from kuscia_components.peering.client import (
    KubernetesAccessDenied,
    KusciaApiClient,
    NodeNotReady,
    RetryPolicy,
    ServiceNotFound,
    TlsFailed,
)
from tests.emulator import EmulatedNode, KusciaEmulator
from tests.emulator.streams import node_pod
from tests.helpers import kusciaapi_calls, target_of

FAST = RetryPolicy(
    attempts=3, base_seconds=0.01, cap_seconds=0.02, request_timeout_seconds=3, budget_seconds=3
)


@pytest.fixture
def emu() -> Iterator[KusciaEmulator]:
    with KusciaEmulator() as emulator:
        yield emulator


def forward(emu: KusciaEmulator, node: EmulatedNode, port: int = 8082, **tls: object) -> PortForwardTransport:
    ref = KubeconfigRef(emu.kubeconfig_path, emu.context)
    return PortForwardTransport(ref, node.namespace, {"app": node.service}, port, **tls)  # type: ignore[arg-type]


def trusting(pem: str) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(cadata=pem)
    return context


# -- the pod and the labels ------------------------------------------------------------------------


def test_emulated_pod_carries_the_deployments_template_labels_and_the_target_selects_it(
    emu: KusciaEmulator,
) -> None:
    alice = emu.add_node("alice")
    cfg = PartyConfig(domain_id="alice", namespace=alice.namespace)
    template = manifests.deployment(cfg, "checksum")["spec"]["template"]["metadata"]["labels"]
    assert node_pod(alice)["metadata"]["labels"] == template
    assert target_of(emu, "alice").pod_labels == manifests.selector_labels(cfg)


def test_emulated_api_server_lists_each_nodes_pod_by_label_until_a_test_models_its_own(
    emu: KusciaEmulator,
) -> None:
    alice, bob = emu.add_node("alice"), emu.add_node("bob")
    api = ApiServerTransport(KubeconfigRef(emu.kubeconfig_path, emu.context))

    def pods(namespace: str, selector: str) -> list[dict[str, object]]:
        answer = api.request(
            "GET", f"/api/v1/namespaces/{namespace}/pods", query=[("labelSelector", selector)]
        )
        return list(answer.json()["items"])

    [pod] = pods(alice.namespace, "app=kuscia-autonomy-alice")
    assert pod["metadata"]["name"] == alice.instance  # type: ignore[index]
    assert pods(alice.namespace, "app=kuscia-autonomy-bob") == [] and len(pods(bob.namespace, "app")) == 1
    alice.restart(downtime=60)
    [down] = pods(alice.namespace, "app=kuscia-autonomy-alice")
    assert down["status"]["conditions"] == [{"type": "Ready", "status": "False"}]  # type: ignore[index]
    emu.put_object("v1", "Pod", alice.namespace, "mine", {"metadata": {"labels": {"app": alice.service}}})
    assert [p["metadata"]["name"] for p in pods(alice.namespace, "app")] == ["mine"]  # type: ignore[index]
    api.close()


# -- NOTLS and TLS ---------------------------------------------------------------------------------


def test_emulated_portforward_sends_the_kusciaapi_path_itself_to_a_notls_node(emu: KusciaEmulator) -> None:
    alice = emu.add_node("alice", protocol="NOTLS")
    with forward(emu, alice) as transport:
        answer = transport.request("POST", "/healthZ", body=b"{}")
    assert answer.status == 200 and answer.json()["data"] == {"ready": True}
    assert transport.pod == alice.instance
    [(recorded, path)] = kusciaapi_calls(emu, "alice")
    assert recorded.via == "portforward" and path == "/healthZ" and "Token" not in recorded.headers
    upgrades = [r for r in emu.requests if r.path.endswith("/portforward?ports=8082")]
    assert upgrades and upgrades[0].path.startswith(
        f"/api/v1/namespaces/{alice.namespace}/pods/{alice.instance}/"
    )
    assert not [r for r in emu.requests if "/proxy" in r.path]


def test_emulated_portforward_reuses_the_pod_and_follows_a_replaced_one(emu: KusciaEmulator) -> None:
    alice = emu.add_node("alice", protocol="NOTLS")

    def lists() -> int:
        return len(
            [r for r in emu.requests if r.path.startswith(f"/api/v1/namespaces/{alice.namespace}/pods?")]
        )

    with forward(emu, alice) as transport:
        transport.request("POST", "/healthZ", body=b"{}")
        transport.request("POST", "/healthZ", body=b"{}")
        assert lists() == 1  # the pod found first is used again
        first = transport.pod
        alice.restart(downtime=0)  # a new pod (Recreate): the old name answers 404
        assert transport.request("POST", "/healthZ", body=b"{}").status == 200
    assert transport.pod == alice.instance != first and lists() == 2


def test_emulated_portforward_tls_verifies_the_server_certificate_and_its_name(emu: KusciaEmulator) -> None:
    bob = emu.add_node("bob")  # kusciaapi-server.crt signed by bob's domain key: trust bob's domain cert
    good = forward(emu, bob, ssl_context=trusting(bob.cert_pem), server_hostname="kusciaapi")
    answer = good.request("POST", "/healthZ", body=b"{}", headers={"Token": bob.token})
    assert answer.status == 200 and answer.json()["data"] == {"ready": True}
    [(recorded, _path)] = kusciaapi_calls(emu, "bob")
    assert recorded.headers.get("Token") == bob.token  # inside TLS: the API server never sees it
    assert bob.token not in str([r.headers for r in emu.requests if r.via == "proxy"])

    with pytest.raises(errors.StreamTlsError) as stranger:  # a CA that did not sign it
        forward(emu, bob, ssl_context=ssl.create_default_context(), server_hostname=bob.service).request(
            "POST", "/healthZ", body=b"{}"
        )
    assert "certificate verify failed" in str(stranger.value) or "unable to get" in str(stranger.value)
    with pytest.raises(errors.StreamTlsError) as misnamed:  # trusted, but for other names
        forward(
            emu,
            bob,
            ssl_context=trusting(bob.cert_pem),
            server_hostname=bob.service,  # not in its SANs
        ).request("POST", "/healthZ", body=b"{}")
    assert "hostname" in str(misnamed.value).lower() or "match" in str(misnamed.value).lower()
    assert len(kusciaapi_calls(emu, "bob")) == 1  # no request left the refused TLS sessions


def test_emulated_portforward_tls_to_a_notls_node_is_a_tls_error_not_a_retry(
    emu: KusciaEmulator,
) -> None:
    alice = emu.add_node("alice", protocol="NOTLS")  # plain HTTP reads our ClientHello as a request
    context = ssl.create_default_context()
    with pytest.raises(errors.StreamTlsError) as err:  # Go answers 400 in plain text: not a TLS record
        forward(emu, alice, ssl_context=context, server_hostname=alice.service).request("POST", "/healthZ")
    assert "WRONG_VERSION_NUMBER" in str(err.value)


def test_emulated_portforward_tls_failure_is_not_retried_by_the_client(emu: KusciaEmulator) -> None:
    emu.add_node("bob")
    target = target_of(
        emu, "bob", ssl_context=ssl.create_default_context(), server_hostname="kuscia-autonomy-bob"
    )
    with KusciaApiClient(target, retry=FAST) as client, pytest.raises(TlsFailed):
        client.health()
    assert client.calls == 1


def test_emulated_portforward_plain_http_to_a_tls_node_is_what_go_answers(emu: KusciaEmulator) -> None:
    bob = emu.add_node("bob")
    answer = forward(emu, bob).request("POST", "/healthZ", body=b"{}")  # no ssl_context: plain
    assert answer.status == 400 and answer.text() == "Client sent an HTTP request to an HTTPS server."


def test_emulated_portforward_gateway_of_a_tls_node_answers_401_like_the_seeds_curl(
    emu: KusciaEmulator,
) -> None:
    emu.add_node("bob")
    target = target_of(emu, "bob")
    transport = target.open_transport(1080)  # unverified, as `curl -k` and the proxy are
    answer = transport.request("GET", "/", headers={"Accept": "*/*"})
    assert answer.status == 401 and "kuscia-error-message" in {k.lower() for k in answer.headers}


# -- failures, each typed ----------------------------------------------------------------------------


def test_emulated_portforward_without_a_pod_is_pod_not_found_and_service_gone_for_the_client(
    emu: KusciaEmulator,
) -> None:
    alice = emu.add_node("alice", protocol="NOTLS", pod=False)
    with pytest.raises(errors.PodNotFound):
        forward(emu, alice).request("POST", "/healthZ", body=b"{}")
    with KusciaApiClient(target_of(emu, "alice"), retry=FAST) as client, pytest.raises(ServiceNotFound):
        client.health()  # no Service object either (none was put): the node is not deployed


def test_emulated_portforward_pod_not_ready_is_transient(emu: KusciaEmulator) -> None:
    alice = emu.add_node("alice", protocol="NOTLS")
    alice.restart(downtime=60)
    with pytest.raises(errors.PodNotReady) as err:
        forward(emu, alice).request("POST", "/healthZ", body=b"{}")
    assert isinstance(err.value, OSError) and "not Ready" in str(err.value)
    with KusciaApiClient(target_of(emu, "alice"), retry=FAST) as client, pytest.raises(NodeNotReady):
        client.health()
    assert client.calls == 3


def test_emulated_portforward_forbidden_by_rbac_is_access_denied(emu: KusciaEmulator) -> None:
    alice = emu.add_node("alice", protocol="NOTLS")
    emu.deny("create", "pods/portforward")
    with pytest.raises(errors.StreamForbidden) as err:
        forward(emu, alice).request("POST", "/healthZ", body=b"{}")
    assert err.value.status == 403 and 'cannot create resource "pods/portforward"' in err.value.message
    with KusciaApiClient(target_of(emu, "alice"), retry=FAST) as client:
        with pytest.raises(KubernetesAccessDenied) as denied:
            client.health()
        assert "pods/portforward" in str(denied.value) and client.calls == 1


def test_emulated_portforward_to_a_closed_port_is_stream_closed_with_the_kubelets_words(
    emu: KusciaEmulator,
) -> None:
    alice = emu.add_node("alice", protocol="NOTLS")
    with pytest.raises(errors.StreamClosed) as err:
        forward(emu, alice, port=9999).request("POST", "/healthZ", body=b"{}")
    assert str(err.value).count("connection refused") >= 1 and "port 9999" in str(err.value)


def test_emulated_portforward_dropped_connection_is_retried_and_then_answers(emu: KusciaEmulator) -> None:
    alice = emu.add_node("alice", protocol="NOTLS")
    alice.drop_next(1)
    with pytest.raises(errors.StreamClosed, match="closed the connection before answering"):
        forward(emu, alice).request("POST", "/healthZ", body=b"{}")
    alice.drop_next(1)
    with KusciaApiClient(target_of(emu, "alice"), retry=FAST) as client:
        assert client.health() and client.calls == 2


def test_emulated_portforward_answer_cap_and_timeout_are_bounded(emu: KusciaEmulator) -> None:
    alice = emu.add_node("alice", protocol="NOTLS")
    with pytest.raises(errors.AnswerTooLarge):
        forward(emu, alice).request("POST", "/healthZ", body=b"{}", max_bytes=10)
    alice.delay_next(1, 5.0)
    with pytest.raises(errors.StreamClosed, match="timed out"):
        forward(emu, alice).request("POST", "/healthZ", body=b"{}", timeout=0.5)


def test_emulated_portforward_upgrade_offering_no_known_subprotocol_is_refused(emu: KusciaEmulator) -> None:
    alice = emu.add_node("alice", protocol="NOTLS")
    from websocket import WebSocket, WebSocketBadStatusException

    url = (
        emu.url.replace("http", "ws")
        + f"/api/v1/namespaces/{alice.namespace}/pods/{alice.instance}/portforward?ports=8082"
    )
    ws = WebSocket()
    with pytest.raises(WebSocketBadStatusException) as err:
        ws.connect(
            url, header=[f"Authorization: Bearer {emu.bearer_token}"], subprotocols=["SPDY/3.1"], timeout=3
        )
    assert err.value.status_code == 403  # x/net/websocket answers a failed handshake with 403


def test_emulated_portforward_with_the_official_clients_own_portforward(emu: KusciaEmulator) -> None:
    """kubernetes.stream.portforward offers v5 and v4 channel protocols and checks the port
    header of each channel's first frame; the emulator must satisfy it as the kubelet does."""
    alice = emu.add_node("alice", protocol="NOTLS")
    import_kubernetes()
    from kubernetes import client, config
    from kubernetes.stream import portforward

    api = client.CoreV1Api(config.new_client_from_config(emu.kubeconfig_path, context=emu.context))
    forwarded = portforward(
        api.connect_get_namespaced_pod_portforward, alice.instance, alice.namespace, ports="8082"
    )
    sock = forwarded.socket(8082)
    sock.settimeout(5)
    sock.sendall(b"POST /healthZ HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}")
    received = b""
    while chunk := sock.recv(65536):
        received += chunk
    forwarded.close()
    assert received.startswith(b"HTTP/1.1 200") and b'"ready": true' in received
    assert forwarded.error(8082) is None


# -- state ---------------------------------------------------------------------------------------------


def test_emulated_portforward_pickles_without_credentials_or_tls_context(emu: KusciaEmulator) -> None:
    alice = emu.add_node("alice", protocol="NOTLS")
    transport = forward(emu, alice)
    transport.request("POST", "/healthZ", body=b"{}")  # connected: the token was loaded
    data = pickle.dumps(transport)
    assert emu.bearer_token.encode() not in data
    again = pickle.loads(data)
    assert again.request("POST", "/healthZ", body=b"{}").status == 200
    bob = emu.add_node("bob")
    secure = forward(emu, bob, ssl_context=trusting(bob.cert_pem), server_hostname="kusciaapi")
    restored = pickle.loads(pickle.dumps(secure))
    with pytest.raises(errors.KubeError, match="without its TLS context"):
        restored.request("POST", "/healthZ", body=b"{}")  # never silently plain


def test_emulated_portforward_leaves_no_open_connection_behind(emu: KusciaEmulator) -> None:
    alice = emu.add_node("alice", protocol="NOTLS")
    with forward(emu, alice) as transport:
        for _ in range(3):
            transport.request("POST", "/healthZ", body=b"{}")
    server = emu._server
    assert server is not None
    # Each websocket was closed by us and the pods-list pool on `close`: every connection ended.
    assert emu.wait_until(lambda: not server._connections, 3)
