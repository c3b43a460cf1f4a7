"""EMULATION ONLY: a fake Kubernetes API server and emulated Kuscia autonomy nodes.

See README.md in this folder for what is emulated, what is not, and where each rule comes from.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import secrets
import tempfile
import time
from typing import Any

import yaml
from cryptography.hazmat.primitives.asymmetric import padding

from . import apiserver
from .apiserver import RecordedRequest
from .kuscia import EmulatedNode, Route, handshake_half, public_key_from_cert_field, public_pem

__all__ = ["EmulatedNode", "KusciaEmulator", "RecordedRequest"]


class KusciaEmulator:
    """Context manager: an API server on 127.0.0.1 and any number of emulated Kuscia nodes."""

    context = "kuscia-emulator"

    def __init__(self, handshake_delay: float = 0.0) -> None:
        self.handshake_delay = handshake_delay
        self.bearer_token = secrets.token_hex(16)
        self.nodes: dict[str, EmulatedNode] = {}
        self.requests: list[RecordedRequest] = []
        self.objects: dict[str, Any] = {}
        self.collections: set[str] = set()
        self.denied: set[tuple[str, str]] = set()
        self._aliases: dict[tuple[str, int], str] = {}
        self._unreachable: set[str] = set()
        self._server: Any = None
        self._dir: tempfile.TemporaryDirectory[str] | None = None
        self.kubeconfig_path = ""

    # -- lifecycle ---------------------------------------------------------------------------

    def __enter__(self) -> KusciaEmulator:
        self._server, _thread = apiserver.start(self)
        host, port = self._server.server_address[:2]
        self.url = f"http://{host}:{port}"
        self._dir = tempfile.TemporaryDirectory(prefix="kuscia-emulator-")
        self.kubeconfig_path = os.path.join(self._dir.name, "kubeconfig")
        with open(self.kubeconfig_path, "w", encoding="utf-8") as handle:
            yaml.safe_dump(self.kubeconfig(), handle)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._dir is not None:
            self._dir.cleanup()

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
    ) -> EmulatedNode:
        from cryptography.hazmat.primitives import serialization

        kwargs: dict[str, Any] = {}
        if key_pem is not None:
            kwargs["key"] = serialization.load_pem_private_key(key_pem.encode(), password=None)
        node = EmulatedNode(
            domain_id=domain_id,
            namespace=namespace or f"autonomy-{domain_id}",
            service=service or f"kuscia-autonomy-{domain_id}",
            protocol=protocol,
            network=self,
            **kwargs,
        )
        self.nodes[domain_id] = node
        return node

    def node_by_service(self, namespace: str, service: str) -> EmulatedNode | None:
        return next(
            (n for n in self.nodes.values() if n.namespace == namespace and n.service == service), None
        )

    def alias(self, host: str, port: int, domain_id: str) -> None:
        """Make host:port (a LoadBalancer IP, a NodePort) reach a node's gateway."""
        self._aliases[(host, port)] = domain_id

    def set_unreachable(self, domain_id: str, unreachable: bool = True) -> None:
        (self._unreachable.add if unreachable else self._unreachable.discard)(domain_id)

    def resolve(self, host: str, port: int) -> EmulatedNode | None:
        if (host, port) in self._aliases:
            return self.nodes.get(self._aliases[(host, port)])
        if port != 1080:
            return None
        for node in self.nodes.values():
            base = f"{node.service}.{node.namespace}"
            if host in (base, f"{base}.svc", f"{base}.svc.cluster.local"):
                return node
        return None

    # -- objects for verify/preflight --------------------------------------------------------

    def put_object(
        self, api_version: str, kind: str, namespace: str | None, name: str, body: dict[str, Any]
    ) -> None:
        prefix = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
        plural = kind.lower() + ("es" if kind.lower().endswith("s") else "s")
        collection = f"{prefix}/namespaces/{namespace}/{plural}" if namespace else f"{prefix}/{plural}"
        self.collections.add(collection)
        self.objects[f"{collection}/{name}"] = {"apiVersion": api_version, "kind": kind, **body}

    def deny(self, verb: str, resource: str) -> None:
        self.denied.add((verb, resource))

    # -- the handshake, evaluated when a route's status is read ------------------------------

    def evaluate(self, source: EmulatedNode, route: Route) -> None:
        if route.destination_side:
            self._mirror_source_side(route)
            return
        now = time.monotonic()
        error, unreachable = self._handshake(source, route)
        name = f"{route.source}-{route.destination}"
        stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        if error is None:
            if route.ready_since is None:
                route.ready_since = now
            if now - route.ready_since >= self.handshake_delay:
                route.status, route.reason, route.message, route.had_token = "Succeeded", "", "Success", True
                route.last_update = stamp
            return
        route.ready_since = None
        line = f"DomainRoute {name}: handshake fail, return error:{error}"
        if not source.gateway_log or source.gateway_log[-1] != line:
            source.gateway_log.append(line)
        route.status = "Failed"
        route.last_update = stamp
        if unreachable and route.had_token:
            route.reason, route.message = "DestinationUnreachable", ""
        else:
            route.reason, route.message = "DestinationIsNotAuthrized", "TokenNotGenerate"

    def _mirror_source_side(self, route: Route) -> None:
        """A destination-side CDR is Ready once the source's handshake to us succeeded."""
        peer = self.nodes.get(route.source)
        source_route = peer.route_table.get(f"{route.source}-{route.destination}") if peer else None
        if peer is not None and source_route is not None and not source_route.destination_side:
            self.evaluate(peer, source_route)
            route.status, route.reason, route.message = (
                source_route.status,
                source_route.reason,
                source_route.message,
            )
            route.last_update = source_route.last_update
            if route.status == "Succeeded":
                return
        route.status = "Failed"
        route.reason, route.message = route.reason or "TokenNotGenerate", route.message or "TokenNotGenerate"
        route.last_update = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")

    def _handshake(self, source: EmulatedNode, route: Route) -> tuple[str | None, bool]:
        """(error text or None, unreachable?) for one handshake attempt source -> destination."""
        with source.lock:
            partner = source.domains.get(route.destination)
            own = source.domains.get(source.domain_id)
            dest_public = public_key_from_cert_field(partner.get("cert", "")) if partner else None
            if partner is None or own is None:
                return f"get Domain {route.destination} fail", False
            if dest_public is None:
                return (
                    "select initializer failed, because source or destination pub is null, wait domain update",
                    False,
                )
            port = route.ports[0]
            target_port, is_tls = int(port.get("port") or 0), bool(port.get("isTLS"))
            host = route.host
        dest = self.resolve(host, target_port)
        if dest is None or dest.domain_id in self._unreachable or dest.is_down:
            return f"send request error: dial tcp {host}:{target_port}: connect: connection refused", True
        if dest.domain_id != route.destination:
            return "response status code [404]", True
        if is_tls and dest.protocol == "NOTLS":
            return "send request error: tls: first record does not look like a TLS handshake", True
        if not is_tls and dest.protocol != "NOTLS":
            return "response status code [400]", True
        encrypted = dest_public.encrypt(handshake_half(), padding.PKCS1v15())
        pubhash = hashlib.sha256(public_pem(source.key.public_key())).digest()
        return dest.answer_handshake(source.domain_id, encrypted, pubhash), False
