"""EMULATION ONLY: a fake Kubernetes API server and emulated Kuscia autonomy nodes.

Nothing here is Kubernetes or Kuscia: it follows their documented behaviour closely enough for
the project's clients to be tested over real HTTP. README.md in this folder lists what is
emulated, what is not, and the upstream source of each rule.
"""

from __future__ import annotations

import os
import secrets
import tempfile
import threading
import time
from collections.abc import Callable
from typing import Any

import yaml

from .apiserver import ApiServer, RecordedRequest
from .handshake import HandshakeEngine, Route, Timings
from .identity import load_key
from .node import EmulatedNode
from .objects import ObjectStore

__all__ = ["EmulatedNode", "KusciaEmulator", "RecordedRequest", "Route", "Timings"]

UNREACHABLE_MODES = ("refused", "timeout")


class KusciaEmulator:
    """Context manager: an API server on 127.0.0.1:<free port> and any number of emulated nodes.

    Timing knobs default to fast values for tests; Kuscia's real ones are in `Timings`.
    """

    context = "kuscia-emulator"

    def __init__(
        self,
        handshake_delay: float = 0.0,
        *,
        tick: float = 0.05,
        unreachable_after: float = 0.0,
        heartbeat_timeout: float = 0.0,
    ) -> None:
        self.timings = Timings(
            tick=tick,
            handshake_delay=handshake_delay,
            unreachable_after=unreachable_after,
            heartbeat_timeout=heartbeat_timeout,
        )
        self.lock = threading.RLock()  # one lock for all emulated state
        self.bearer_token = secrets.token_hex(16)
        self.nodes: dict[str, EmulatedNode] = {}
        self.requests: list[RecordedRequest] = []
        self.store = ObjectStore()
        self.denied: set[tuple[str, str]] = set()
        self.engine = HandshakeEngine(self, self.timings)
        self._aliases: dict[tuple[str, int], str] = {}
        self._unreachable: dict[str, str] = {}
        self._clock_offset = 0.0  # fake time that `step(seconds=...)` added
        self._server: ApiServer | None = None
        self._dir: tempfile.TemporaryDirectory[str] | None = None
        self.url = ""
        self.kubeconfig_path = ""

    @property
    def handshake_delay(self) -> float:
        return self.timings.handshake_delay

    # -- lifecycle ---------------------------------------------------------------------------

    def __enter__(self) -> KusciaEmulator:
        self._server = ApiServer(self)
        host, port = self._server.server_address[:2]
        self.url = f"http://{host!s}:{port}"
        self._dir = tempfile.TemporaryDirectory(prefix="kuscia-emulator-")
        self.kubeconfig_path = os.path.join(self._dir.name, "kubeconfig")
        with open(self.kubeconfig_path, "w", encoding="utf-8") as handle:
            yaml.safe_dump(self.kubeconfig(), handle)
        self.engine.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.engine.stop()
        if self._server is not None:
            self._server.close()
            self._server = None
        if self._dir is not None:
            self._dir.cleanup()
            self._dir = None

    def kubeconfig(self) -> dict[str, Any]:
        return {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "emulated", "cluster": {"server": self.url}}],
            "users": [{"name": "emulated-admin", "user": {"token": self.bearer_token}}],
            "contexts": [
                {"name": self.context, "context": {"cluster": "emulated", "user": "emulated-admin"}}
            ],
            "current-context": self.context,
        }

    # -- nodes -------------------------------------------------------------------------------

    def add_node(
        self,
        domain_id: str,
        *,
        protocol: str = "TLS",
        namespace: str | None = None,
        service: str | None = None,
        key_pem: str | None = None,
        pod: bool = True,
    ) -> EmulatedNode:
        """A running node with its own RSA-2048 key (or `key_pem`). `protocol` is used as Kuscia
        uses it: only the exact string NOTLS is plain HTTP; anything else is HTTPS + Token. The API
        server serves the node's pod (streams.node_pod) unless `pod` is False."""
        with self.lock:
            if domain_id in self.nodes:
                raise ValueError(f"node {domain_id!r} already exists in this emulator")
            node = EmulatedNode(
                self,
                domain_id,
                protocol=protocol,
                namespace=namespace or f"autonomy-{domain_id}",
                service=service or f"kuscia-autonomy-{domain_id}",
                key=load_key(key_pem) if key_pem else None,
            )
            node.has_pod = pod
            self.nodes[domain_id] = node
            return node

    def node_by_service(self, namespace: str, service: str) -> EmulatedNode | None:
        with self.lock:
            return next(
                (n for n in self.nodes.values() if (n.namespace, n.service) == (namespace, service)), None
            )

    def alias(self, host: str, port: int, domain_id: str) -> None:
        """Make host:port (a LoadBalancer IP, a NodePort) reach a node's gateway."""
        with self.lock:
            self._aliases[(host, int(port))] = domain_id

    def set_unreachable(self, domain_id: str, unreachable: bool = True, *, how: str = "refused") -> None:
        """Partners cannot reach the node's gateway: `how` = "refused" (port closed) or "timeout"
        (not allow-listed, the connection hangs). The API server's proxy still reaches it."""
        if how not in UNREACHABLE_MODES:
            raise ValueError(f"how must be one of {UNREACHABLE_MODES}, e.g. how='refused'")
        with self.lock:
            if unreachable:
                self._unreachable[domain_id] = how
            else:
                self._unreachable.pop(domain_id, None)

    def unreachable_mode(self, domain_id: str) -> str:
        return self._unreachable.get(domain_id, "")

    def resolve(self, host: str, port: int) -> EmulatedNode | None:
        """Which node's gateway an endpoint reaches: an alias, or a Service DNS name on port 1080."""
        if (host, port) in self._aliases:
            return self.nodes.get(self._aliases[(host, port)])
        if port != 1080:
            return None
        for node in self.nodes.values():
            base = f"{node.service}.{node.namespace}"
            if host in (base, f"{base}.svc", f"{base}.svc.cluster.local"):
                return node
        return None

    def now(self) -> float:
        """The emulated clock: monotonic time plus what `step(seconds=...)` moved it on."""
        return time.monotonic() + self._clock_offset

    def step(self, rounds: int = 1, *, seconds: float = 0.0) -> None:
        """Run handshake rounds now, each after moving the emulated clock on by `seconds`. A test
        that fakes the client's clock calls this from its fake `sleep`, so the emulated nodes move
        on with the fake time instead of the 50 ms tick; `seconds=3600` walks through days of
        token rolling and expiry in a moment."""
        for _ in range(rounds):
            if seconds:
                with self.lock:
                    self._clock_offset += seconds
            self.engine.run_once()

    def wait_until(self, predicate: Callable[[], bool], timeout: float = 2.0) -> bool:
        """Poll `predicate` until it holds (True) or `timeout` passes (False)."""
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() >= deadline:
                return False
            time.sleep(min(self.timings.tick / 2, 0.02))
        return True

    # -- Kubernetes objects for verify/preflight --------------------------------------------

    def put_object(
        self,
        api_version: str,
        kind: str,
        namespace: str | None,
        name: str,
        body: dict[str, Any],
        plural: str | None = None,
    ) -> None:
        """Serve `body` at the standard REST path (GET, and LIST with label/field selectors)."""
        self.store.put(api_version, kind, namespace, name, body, plural)

    def delete_object(
        self, api_version: str, kind: str, namespace: str | None, name: str, plural: str | None = None
    ) -> bool:
        return self.store.delete(api_version, kind, namespace, name, plural)

    def deny(self, verb: str, resource: str) -> None:
        """SelfSubjectAccessReviews for (verb, resource) answer allowed=false."""
        with self.lock:
            self.denied.add((verb, resource))

    def allow(self, verb: str, resource: str) -> None:
        with self.lock:
            self.denied.discard((verb, resource))
