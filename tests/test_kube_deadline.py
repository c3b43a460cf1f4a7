"""An API server that drips its answer (a header line, or a body byte, every 0.2 s) must not hold
a request past its timeout: the transport, the peering client's retry budget, preflight and
verify each finish with an "unreachable/timed out" error. A real loopback socket server plays
the API server; nothing here is emulated Kubernetes. Each case runs in a thread joined with a
generous bound, so a hang fails the test instead of hanging the suite (no timing asserts)."""

from __future__ import annotations

import socketserver
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from kuscia_components.checks.preflight import run_preflight
from kuscia_components.checks.verify import run_verify
from kuscia_components.config import parse_party_config
from kuscia_components.kube.errors import ApiServerUnreachable
from kuscia_components.kube.kubeconfig import KubeconfigRef
from kuscia_components.kube.transport import ApiServerTransport
from kuscia_components.peering.client import ApiUnavailable, KusciaApiClient, NodeTarget, RetryPolicy
from tests.helpers import check, finishes

DRIPS: dict[str, tuple[bytes, bytes]] = {  # what is sent once, then what is sent every 0.2 s
    "body": (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000000\r\n\r\n", b" "),
    "header lines": (b"HTTP/1.1 200 OK\r\n", b"X-A: b\r\n"),
    "one header byte": (b"HTTP/1.1 200 OK\r\nX-A: ", b"b"),
    "chunked body": (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", b"1\r\n \r\n"),
}


class _Server(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    allow_reuse_address = True
    first = b""
    drip = b""
    stop = threading.Event()


class _Drip(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        server: Any = self.server
        self.request.settimeout(1.0)
        try:
            self.request.recv(65536)
            self.request.sendall(server.first)
            while not server.stop.is_set():
                self.request.sendall(server.drip)
                time.sleep(0.2)
        except OSError:
            pass  # the client gave up: what we want


@pytest.fixture(params=sorted(DRIPS))
def dripping(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A kubeconfig whose API server drips its answer; yields the kubeconfig path."""
    server = _Server(("127.0.0.1", 0), _Drip)
    server.first, server.drip = DRIPS[request.param]
    server.stop = threading.Event()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    path = tmp_path / "kubeconfig"
    cluster = {"server": f"http://127.0.0.1:{server.server_address[1]}"}
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "drip",
                "clusters": [{"name": "c", "cluster": cluster}],
                "users": [{"name": "u", "user": {"token": "t"}}],
                "contexts": [{"name": "drip", "context": {"cluster": "c", "user": "u"}}],
            }
        ),
        encoding="utf-8",
    )
    yield str(path)
    server.stop.set()
    server.shutdown()
    server.server_close()


def test_a_dripping_answer_is_cut_at_the_timeout(dripping: str) -> None:
    def request() -> Any:
        with ApiServerTransport(KubeconfigRef(dripping)) as api:
            return api.request("GET", "/api/v1/namespaces", timeout=1.0)

    error = finishes(request)
    assert isinstance(error, ApiServerUnreachable), error
    assert "timed out" in error.reason


def test_the_transport_still_reuses_its_connection_after_a_cut(dripping: str, tmp_path: Path) -> None:
    """The cut connection is dropped, not handed back: the next request gets the same error,
    not a stale half-read answer."""

    def twice() -> Any:
        with ApiServerTransport(KubeconfigRef(dripping)) as api:
            errors = []
            for _ in range(2):
                try:
                    api.request("GET", "/api/v1/namespaces", timeout=0.5)
                except ApiServerUnreachable as err:
                    errors.append(err.reason)
            return errors

    reasons = finishes(twice)
    assert len(reasons) == 2 and all("timed out" in reason for reason in reasons)


FEW = pytest.mark.parametrize("dripping", ["body", "one header byte"], indirect=True)


@FEW
@pytest.mark.parametrize("transport", ["portForward", "serviceProxy"])
def test_the_peering_clients_budget_bounds_a_dripping_api_server(dripping: str, transport: str) -> None:
    target = NodeTarget(
        namespace="autonomy-alice",
        service="kuscia-autonomy-alice",
        domain_id="alice",
        protocol="NOTLS",
        kubeconfig=dripping,
        transport=transport,
    )
    client = KusciaApiClient(
        target, retry=RetryPolicy(attempts=2, request_timeout_seconds=1, budget_seconds=3)
    )
    error = finishes(lambda: client.call("/api/v1/domain/query", {"domain_id": "bob"}))
    assert isinstance(error, ApiUnavailable), repr(error)
    assert "did not answer" in str(error) and "timed out" in str(error)


def party(kubeconfig: str) -> Any:
    return parse_party_config(
        {"domainId": "alice", "runtime": "runp", "kubeconfig": kubeconfig, "kubeContext": "drip"},
        secret_keys=set(),
    )


@FEW
def test_preflight_finishes_against_a_dripping_api_server(dripping: str) -> None:
    report = finishes(lambda: run_preflight(party(dripping), timeout=1.0))
    result = check(report, "API server") if report.checks else None
    assert result is not None and result.status == "FAIL", report
    assert "timed out" in result.detail


@FEW
def test_verify_finishes_against_a_dripping_api_server(dripping: str) -> None:
    report = finishes(lambda: run_verify(party(dripping), timeout=1.0))
    assert not isinstance(report, BaseException), report
    failed = [c for c in report.checks if c.status == "FAIL"]
    assert failed and any("timed out" in c.detail for c in failed), report
