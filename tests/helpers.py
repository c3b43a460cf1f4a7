"""Helpers shared by several test modules (fixtures live in tests/conftest.py).

Test modules import from here, never from each other: a test module is collected by pytest, and
importing one from another runs its module-level setup twice and ties unrelated tests together
(tests/test_suite_layout.py enforces it).
"""

from __future__ import annotations

import ast
import base64
import datetime as dt
import functools
import hashlib
import json
import pickle
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.x509.oid import NameOID

from kuscia_components.checks.database import DOMAIN_KEY_PREFIX
from kuscia_components.checks.report import Report
from kuscia_components.config import PartyConfig
from kuscia_components.core import pki
from kuscia_components.core.dsn import build_dsn, datastore_endpoint
from kuscia_components.kube.transport import Response
from kuscia_components.node import manifests
from kuscia_components.node.database import provisioning_statements
from kuscia_components.node.kuscia_yaml import KusciaYamlInputs, render_kuscia_yaml
from kuscia_components.peering.client import NodeTarget
from tests.emulator import EmulatedNode, KusciaEmulator
from tests.mariadb import KINE_DDL, MariaDB, free_port

# -- offline runs -----------------------------------------------------------------------------------


def offline_safe(provider: Any) -> bool:
    """`OfflineMocks(execute_dynamic=...)`: run only the providers that compute locally (identity,
    passwords); PartnerLink needs a cluster, so offline it only records its inputs."""
    return bool(getattr(provider, "offline_safe", False))


# -- check reports ----------------------------------------------------------------------------------


def statuses(report: Report) -> dict[str, str]:
    return {c.name: c.status for c in report.checks}


def check(report: Report, name: str) -> Any:
    return next(c for c in report.checks if c.name == name)


# -- certificates -----------------------------------------------------------------------------------


def self_signed_cert(
    key: CertificateIssuerPrivateKeyTypes, common_name: str, *, not_before: dt.datetime | None = None
) -> x509.Certificate:
    """A bare one-day self-signed certificate (no extensions), for keys pki does not make itself."""
    start = not_before or dt.datetime.now(dt.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )


# -- emulated Kubernetes and Kuscia -----------------------------------------------------------------


def link_props(me: Any, other: Any, emu: KusciaEmulator, **changes: Any) -> dict[str, Any]:
    """PartnerLink inputs for `me`'s side of a peering with `other` (emulated nodes)."""
    props: dict[str, Any] = {
        "domain_id": me.domain_id,
        "namespace": me.namespace,
        "service": me.service,
        "protocol": me.protocol,
        "token": me.token,
        "own_cert": pki.cert_b64(me.cert_pem),
        "kube_context": emu.context,
        "kubeconfig": emu.kubeconfig_path,
        "partner_domain_id": other.domain_id,
        "bundle_domain_id": other.domain_id,
        "partner_cert": pki.cert_b64(other.cert_pem),
        "partner_endpoint": other.endpoint,
        "partner_protocol": other.protocol,
        "partner_stack": other.domain_id,
        "own_stack": me.domain_id,
        "phase": "all",
        "timeout_seconds": 5,
        "health_timeout_seconds": 5,
        "require_ready": False,
    }
    props.update(changes)
    return props


def dead_kubeconfig(tmp_path: Path) -> Path:
    """A kubeconfig whose only context points at a loopback port nothing listens on."""
    path = tmp_path / "kubeconfig"
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "dead",
                "clusters": [{"name": "c", "cluster": {"server": f"http://127.0.0.1:{free_port()}"}}],
                "users": [{"name": "u", "user": {"token": "t"}}],
                "contexts": [{"name": "dead", "context": {"cluster": "c", "user": "u"}}],
            }
        )
    )
    return path


# -- the node's database on a REAL MariaDB ----------------------------------------------------------


def domain_row(domain_id: str, role: str = "") -> tuple[str, bytes]:
    """A Kuscia Domain as the API server stores a custom resource in kine (JSON under its key)."""
    spec = {"role": role, "cert": "LS0t"} if role else {"cert": "LS0t"}
    body = {
        "apiVersion": "kuscia.secretflow/v1alpha1",
        "kind": "Domain",
        "metadata": {"name": domain_id},
        "spec": spec,
    }
    return DOMAIN_KEY_PREFIX + domain_id, json.dumps(body).encode()


def provision(
    server: MariaDB, name: str, *, table: bool = True, rows: list[tuple[str, bytes]] | None = None
) -> tuple[str, str]:
    """Database, user and grant as `pulumi up` makes them; kine's table with `rows`. -> (DSN, password)."""
    password = f"Pw{name}X9q"
    with server.connect() as conn, conn.cursor() as cursor:
        for sql, args in provisioning_statements(name, name, password):
            cursor.execute(sql, args or None)
    if table:
        with server.connect(name, password, name) as conn, conn.cursor() as cursor:
            cursor.execute(KINE_DDL)
            for index, (key, value) in enumerate(rows if rows is not None else [domain_row("alice")]):
                cursor.execute(
                    "INSERT INTO kine (name, created, deleted, create_revision, prev_revision, lease, value, old_value)"
                    " VALUES (%s, 1, 0, %s, 0, 0, %s, '')",
                    (key, index + 1, value),
                )
    return datastore_endpoint(build_dsn(name, password, server.host, server.port, name)), password


def parse_source(source: Path | str) -> ast.Module:
    """`ast.parse` of a file (or of source text), safe against CPython 3.11's AST state bug: once a
    RecursionError has left the interpreter's AST recursion counter off (a test that recurses
    deeply does that), every later `ast.parse` in the process raises "SystemError: AST constructor
    recursion depth mismatch". Then the text is parsed in a fresh interpreter and the tree pickled
    back."""
    text = source.read_text(encoding="utf-8") if isinstance(source, Path) else source
    try:
        return ast.parse(text, str(source) if isinstance(source, Path) else "<source>")
    except SystemError:
        code = "import ast, pickle, sys; sys.stdout.buffer.write(pickle.dumps(ast.parse(sys.stdin.read())))"
        done = subprocess.run(
            [sys.executable, "-c", code], input=text.encode(), capture_output=True, timeout=60, check=True
        )
        tree: ast.Module = pickle.loads(done.stdout)
        return tree


ROOT = Path(__file__).resolve().parent.parent
CLUSTER_IP = "10.96.12.34"  # what the mocks give the node's Service


@functools.cache
def peer_outputs(stack: str) -> dict[str, dict[str, Any]]:
    other = "bob" if stack == "alice" else "alice"
    cert = pki.cert_b64(pki.build_domain_cert(pki.generate_domain_key(), other))
    endpoint = f"https://kuscia-autonomy-{other}.autonomy-{other}.svc.cluster.local:1080"
    return {
        other: {"peeringBundle": {"domainId": other, "cert": cert, "endpoint": endpoint, "protocol": "TLS"}}
    }


def target_of(emu: KusciaEmulator, domain_id: str, **changes: Any) -> NodeTarget:
    node = emu.nodes[domain_id]
    values: dict[str, Any] = {
        "namespace": node.namespace,
        "service": node.service,
        "domain_id": node.domain_id,
        "protocol": node.protocol,
        "token": node.token,
        "kube_context": emu.context,
        "kubeconfig": emu.kubeconfig_path,
        **changes,
    }
    return NodeTarget(**values)


Reply = tuple[int, Any, dict[str, str]]


def _parse(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode()


def call(
    emu: KusciaEmulator,
    path: str,
    body: Any = None,
    *,
    method: str = "POST",
    headers: dict[str, str] | None = None,
    bearer: str | None = None,
    timeout: float = 5,
) -> Reply:
    sent = {"Authorization": f"Bearer {bearer or emu.bearer_token}", "Content-Type": "application/json"}
    sent.update(headers or {})
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(emu.url + path, data=data, headers=sent, method=method)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, _parse(response.read()), dict(response.headers)
    except urllib.error.HTTPError as err:
        return err.code, _parse(err.read()), dict(err.headers)


def proxy_path(node: EmulatedNode, path: str, *, port: int = 8082, scheme: str | None = None) -> str:
    scheme = scheme or ("https" if node.is_tls else "http")
    return f"/api/v1/namespaces/{node.namespace}/services/{scheme}:{node.service}:{port}/proxy{path}"


def api(emu: KusciaEmulator, node: EmulatedNode, path: str, body: Any = None, **kw: Any) -> Reply:
    headers = {"Token": node.token} if node.is_tls else {}
    return call(emu, proxy_path(node, path), {} if body is None else body, headers=headers, **kw)


class FakeTime:
    """Deadlines without real waiting: sleeping advances the clock and lets the emulated nodes
    run one handshake round, as they would have in that time."""

    def __init__(self, emu: KusciaEmulator) -> None:
        self.now = 1000.0
        self.emu = emu

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds
        self.emu.engine.run_once()


def kusciaapi_calls(
    emu: KusciaEmulator, node: str | None = None, start: int = 0, port: str = "8082"
) -> list[tuple[Any, str]]:
    """(recorded request, KusciaAPI path) of every call that reached a node's `port`, whichever
    transport carried it: the service proxy (the path after `/proxy`) or a port-forward (the
    path as the pod got it)."""
    found = []
    for r in emu.requests[start:]:
        if r.node is None or (node is not None and r.node != node) or r.port != port:
            continue
        if r.via == "portforward":
            found.append((r, r.path))
        elif "/proxy" in r.path:
            found.append((r, r.path.split("/proxy", 1)[1]))
    return found


# -- a deployed node, as the API server serves it back (verify) ---------------------------------------


def pod_body(cfg: PartyConfig, state: str = "ready", suffix: str = "5d8f7-x2k9q") -> dict[str, Any]:
    """A pod of the node's Deployment as the API server reports it, in one of a few states."""
    container: dict[str, Any] = {"name": "kuscia", "restartCount": 0, "ready": True, "state": {"running": {}}}
    ready = "True"
    if state == "crashloop":
        ready = "False"
        container = {
            "name": "kuscia",
            "restartCount": 7,
            "ready": False,
            "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 5m0s restarting"}},
            "lastState": {
                "terminated": {"reason": "Error", "exitCode": 1, "finishedAt": "2026-11-25T08:00:00Z"}
            },
        }
    elif state == "oom-restarted":
        container = {
            **container,
            "restartCount": 2,
            "lastState": {"terminated": {"reason": "OOMKilled", "exitCode": 137}},
        }
    elif state == "image":
        ready = "False"
        container = {
            "name": "kuscia",
            "restartCount": 0,
            "ready": False,
            "state": {"waiting": {"reason": "ImagePullBackOff", "message": "manifest unknown"}},
        }
    return {
        "metadata": {
            "name": f"{cfg.service_name}-{suffix}",
            "namespace": cfg.namespace,
            "labels": manifests.selector_labels(cfg),
            "creationTimestamp": "2026-11-25T07:00:00Z",
        },
        "status": {
            "phase": "Running",
            "conditions": [{"type": "Ready", "status": ready}],
            "containerStatuses": [container],
        },
    }


def deploy(
    emu: KusciaEmulator,
    node: EmulatedNode,
    cfg: PartyConfig,
    dsn: str,
    *,
    pod: str = "ready",
    key_pem: str | None = None,
    secret: bool = True,
) -> None:
    """What `pulumi up` leaves in the cluster, as the API server serves it back."""
    deployment = manifests.deployment(cfg, "checksum")
    available = 1 if pod in ("ready", "oom-restarted") else 0
    deployment["status"] = {
        "replicas": 1,
        "availableReplicas": available,
        "readyReplicas": available,
        "conditions": [{"type": "Available", "status": "True" if available else "False"}],
    }
    emu.put_object("apps/v1", "Deployment", cfg.namespace, cfg.service_name, deployment)
    emu.put_object("v1", "Pod", cfg.namespace, pod_body(cfg)["metadata"]["name"], pod_body(cfg, pod))
    if secret:
        text = render_kuscia_yaml(
            KusciaYamlInputs(
                domain_id=cfg.domain_id,
                domain_key_data=pki.domain_key_data(key_pem or node.key_pem),
                protocol=cfg.protocol,
                runtime=cfg.runtime,
                log_level="INFO",
                runk_namespace=cfg.namespace,
                dns_servers=("10.96.0.10",),
                runk_kubeconfig_file=None,
                capacity=cfg.capacity,
                datastore_endpoint=dsn,
            )
        )
        body = manifests.config_secret(cfg, text, node.cert_pem)
        body["data"] = {k: base64.b64encode(v.encode()).decode() for k, v in body.pop("stringData").items()}
        emu.put_object("v1", "Secret", cfg.namespace, f"{cfg.service_name}-config", body)


HANG_BOUND = 60.0  # far above every timeout a test sets: reaching it means "waited forever"


def finishes(work: Callable[[], Any]) -> Any:
    """What `work` returned or raised, failing the test if it is still running at HANG_BOUND
    (a hang fails instead of blocking the suite; no timing threshold is asserted)."""
    outcome: list[Any] = []

    def run() -> None:
        try:
            outcome.append(work())
        except BaseException as err:  # handed to the test to check
            outcome.append(err)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(HANG_BOUND)
    assert not thread.is_alive(), f"still waiting after {HANG_BOUND} s: the timeout does not bound it"
    return outcome[0]


WEBSOCKET_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455 section 1.3


def websocket_upgrade(request: bytes, subprotocol: str = "v4.channel.k8s.io") -> bytes:
    """A server's 101 answer to the websocket upgrade `request` (RFC 6455 section 4.2.2:
    Sec-WebSocket-Accept from the client's key), choosing `subprotocol`, for loopback servers
    that play the API server of a pod stream."""
    key = next(
        line.split(b":", 1)[1].strip()
        for line in request.split(b"\r\n")
        if line.lower().startswith(b"sec-websocket-key:")
    )
    accept = base64.b64encode(hashlib.sha1(key + WEBSOCKET_GUID).digest())
    return (
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: "
        + accept
        + b"\r\nSec-WebSocket-Protocol: "
        + subprotocol.encode()
        + b"\r\n\r\n"
    )


class ScriptedTransport:
    """A transport (kube.transport.Transport) that answers from a list, the last answer again
    once the others are used (an exception in the list is raised), and records what was sent."""

    def __init__(self, *answers: Response | Exception) -> None:
        self.answers = list(answers)
        self.sent: list[dict[str, Any]] = []

    def request(
        self,
        method: str,
        path: str,
        *,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        query: Sequence[tuple[str, str]] = (),
        timeout: float = 10.0,
        max_bytes: int = 0,
    ) -> Response:
        self.sent.append(
            {
                "method": method,
                "path": path,
                "headers": dict(headers or {}),
                "body": body,
                "timeout": timeout,
                "max_bytes": max_bytes,
            }
        )
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer

    def close(self) -> None:
        pass
