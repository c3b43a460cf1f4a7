"""IN-MEMORY STAND-IN FOR THE PULUMI CLI (emulation only): a `StackRunner` for tests and benches.

There is no Pulumi CLI on these machines, so the rollout logic is exercised through this class.
It keeps each stack's config (replaced, like `PulumiStackRunner.set_config`) and answers `up`
the way the real party program does, in outline: it parses the `kuscia:` config with the real
`parse_party_config` (a bad config fails the `up`), exports a peering bundle, and a link per
configured peer that is Ready only when both sides hold each other's current bundle at the time
of the `up` (Kuscia's handshake needs both partner Domains), else WaitingForPartner. It records
every call, counts concurrent `up`s, and can inject failures and delays.
"""

from __future__ import annotations

import functools
import json
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from kuscia_components.config import parse_party_config
from kuscia_components.core import pki
from kuscia_components.network.planner import SECRET_OUTPUT, LinkWait, OutputSink
from kuscia_components.network.spec import ConfigEntry


def cert_for(domain_id: str, generation: int = 0) -> str:
    """A real Kuscia-shaped cert per domain (generation > 0: the node got a new key)."""
    return _cert(domain_id, generation)


@functools.cache
def _cert(domain_id: str, generation: int) -> str:
    return pki.cert_b64(pki.build_domain_cert(pki.generate_domain_key(), domain_id))


@dataclass
class Call:
    op: str
    stack: str
    at: float
    wait: LinkWait | None = None
    config: dict[str, ConfigEntry] = field(default_factory=dict, repr=False)


class InMemoryStackRunner:
    """In-memory stand-in for the Pulumi CLI; see the module docstring."""

    def __init__(self, *, delay: float = 0.0) -> None:
        self.configs: dict[str, dict[str, ConfigEntry]] = {}  # stack -> config (the stack exists)
        self.applied: dict[str, dict[str, ConfigEntry]] = {}  # stack -> config of its last `up`
        self.state: dict[str, dict[str, Any]] = {}  # stack -> outputs of its last `up`
        self.calls: list[Call] = []
        self.delay = delay
        self.fail_up: set[str] = set()  # stacks whose `up` fails
        self.fail_destroy: set[str] = set()
        self.never_ready: set[tuple[str, str]] = set()  # (source, destination) handshakes that never finish
        self.generation: dict[str, int] = {}  # domain -> key generation (bump: the node's cert changes)
        self.running = 0
        self.max_running = 0
        self._lock = threading.Lock()

    # -- StackRunner ---------------------------------------------------------------------------

    def list_stacks(self) -> list[str]:
        with self._lock:
            return sorted(self.configs)

    def get_config(self, stack: str) -> dict[str, ConfigEntry] | None:
        with self._lock:
            return dict(self.configs[stack]) if stack in self.configs else None

    def set_config(self, stack: str, config: Mapping[str, ConfigEntry]) -> None:
        with self._lock:
            self.calls.append(Call("set_config", stack, time.monotonic(), config=dict(config)))
            self.configs[stack] = dict(config)

    def up(
        self, stack: str, *, wait: LinkWait | None = None, on_output: OutputSink | None = None
    ) -> dict[str, Any]:
        with self._lock:
            self.calls.append(Call("up", stack, time.monotonic(), wait, dict(self.configs.get(stack, {}))))
            self.running += 1
            self.max_running = max(self.max_running, self.running)
        try:
            time.sleep(self.delay)
            if on_output is not None:
                on_output(f"Updating ({stack}):\n")
            if stack in self.fail_up:
                raise RuntimeError(
                    f"error: update of {stack} failed: the Kubernetes API server is unreachable"
                )
            with self._lock:
                config = dict(self.configs[stack])
                outputs = self._program(config)
                self.applied[stack] = config
                self.state[stack] = outputs
            return _masked(outputs)
        finally:
            with self._lock:
                self.running -= 1

    def outputs(self, stack: str) -> dict[str, Any] | None:
        with self._lock:
            if stack not in self.configs:
                return None
            return _masked(self.state.get(stack, {}))

    def destroy(self, stack: str, *, on_output: OutputSink | None = None) -> None:
        with self._lock:
            self.calls.append(Call("destroy", stack, time.monotonic()))
            if stack in self.fail_destroy:
                raise RuntimeError(f"error: destroy of {stack} failed: namespace stuck Terminating")
            for store in (self.configs, self.applied, self.state):
                store.pop(stack, None)

    # -- the emulated program ------------------------------------------------------------------

    def bundle(self, domain_id: str, config: Mapping[str, ConfigEntry]) -> dict[str, str]:
        protocol = config.get("kuscia:protocol", ConfigEntry("TLS")).value
        scheme = "http" if protocol == "NOTLS" else "https"
        return {
            "domainId": domain_id,
            "cert": cert_for(domain_id, self.generation.get(domain_id, 0)),
            "endpoint": f"{scheme}://kuscia-autonomy-{domain_id}.autonomy-{domain_id}.svc.cluster.local:1080",
            "protocol": protocol,
        }

    def _program(self, config: dict[str, ConfigEntry]) -> dict[str, Any]:
        values = {k.split(":", 1)[1]: v.value for k, v in config.items() if k.startswith("kuscia:")}
        secrets = {k.split(":", 1)[1] for k, v in config.items() if v.secret and k.startswith("kuscia:")}
        cfg = parse_party_config(values, secrets, source="emulated up")
        me = cfg.domain_id
        mine = self.bundle(me, config)
        links = {}
        for peer in cfg.peers:
            status, diagnosis = "WaitingForPartner", f"{peer.domain_id} has not registered {me} yet"
            theirs = self._stack_of(peer.domain_id)
            if theirs is not None:
                current = self.bundle(peer.domain_id, self.applied[theirs])
                their_peers = json.loads(self.applied[theirs].get("kuscia:peers", ConfigEntry("[]")).value)
                holds_mine = any(
                    p.get("domainId") == me and p.get("cert") == mine["cert"] for p in their_peers
                )
                if peer.cert != current["cert"]:
                    diagnosis = f"{me} holds a stale certificate of {peer.domain_id}"
                elif holds_mine and (me, peer.domain_id) not in self.never_ready:
                    status, diagnosis = "Ready", ""
            links[peer.domain_id] = {
                "routeName": f"{me}-{peer.domain_id}",
                "status": status,
                "reason": "",
                "diagnosis": diagnosis,
            }
        return {
            "domainId": me,
            "namespace": f"autonomy-{me}",
            "serviceName": f"kuscia-autonomy-{me}",
            "peeringBundle": mine,
            "kusciaapiToken": ("secret", f"token-of-{me}"),  # (marker, value): a secret output
            "links": links,
        }

    def _stack_of(self, domain_id: str) -> str | None:
        for stack, config in self.applied.items():
            if config.get("kuscia:domainId", ConfigEntry("")).value == domain_id and stack in self.state:
                return stack
        return None

    # -- for assertions ------------------------------------------------------------------------

    def ups(self) -> list[Call]:
        return [c for c in self.calls if c.op == "up"]

    def peers_of(self, stack: str) -> list[str]:
        return [
            p["domainId"]
            for p in json.loads(self.configs[stack].get("kuscia:peers", ConfigEntry("[]")).value)
        ]


def _masked(outputs: Mapping[str, Any]) -> dict[str, Any]:
    """Secret outputs as the real runner hands them back."""
    return {
        k: SECRET_OUTPUT if isinstance(v, tuple) and v[:1] == ("secret",) else v for k, v in outputs.items()
    }
