"""EMULATION ONLY: the Token + RSA-GEN handshake between emulated nodes, and the route conditions.

A background thread re-runs one round every `Timings.tick`. Each round, per node that is up:
- every outbound route (source == the node) without a token tries the handshake; one with a token
  sends a heartbeat (NOTES §3.2);
- every inbound route (destination == the node) updates its own condition from the tokens that
  handshakes left on it (destination-side CDR, NOTES §2.2 and §3.1).
The RSA work is real: the source encrypts "kuscia" + 16 random bytes to the destination key it
holds (its partner Domain's cert), the destination decrypts with its own key, checks sha256 of the
source's public-key PEM against its partner Domain for the source, and answers with its half
encrypted to the source key it holds (pkg/gateway/controller/handshake.go). Error texts and route
reasons are Kuscia's (NOTES §2.2, §3.5; pkg/controllers/clusterdomainroute/domainroute.go).
"""

from __future__ import annotations

import datetime as dt
import os
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives.asymmetric import padding

from .identity import cert_public_key, fingerprint, pubhash

if TYPE_CHECKING:
    from . import KusciaEmulator
    from .node import EmulatedNode

# What the source gateway's local envoy answers when it cannot reach the peer (source gateway log
# lines are `DomainRoute <name>: handshake fail:<error>`; handshake.go, pkg/gateway/utils/http.go).
_UPSTREAM = (
    "response status code [503], detail -> upstream connect error or disconnect/reset before headers. "
)
REFUSED = (
    _UPSTREAM
    + "reset reason: remote connection failure, transport failure reason: delayed connect error: Connection refused"
)
TIMEOUT = _UPSTREAM + "reset reason: connection timeout"
NO_UPSTREAM = "response status code [503], detail -> no healthy upstream"
# isTLS true towards a plain-HTTP gateway: the TLS client reads an HTTP answer (kuscia#450).
WRONG_VERSION = _UPSTREAM + (
    "reset reason: connection failure, transport failure reason: TLS error: "
    "268435703:SSL routines:OPENSSL_internal:WRONG_VERSION_NUMBER"
)
# isTLS false towards a TLS gateway: the peer drops the plaintext connection.
PLAINTEXT_TO_TLS = _UPSTREAM + "reset reason: connection termination"
WRONG_PEER = "response status code [404], detail -> "

# Heartbeat answers (handshake.go DestinationStatus).
TOKEN_READY, DOMAIN_ID_INVALID, REVISION_INVALID, TOKEN_NOT_READY, TOKEN_NOT_FOUND, NO_AUTHENTICATION = range(
    6
)


# Token lifetimes (pkg/gateway/controller/handshake.go DestReplyHandshake and
# UpdateDomainRouteRevisionToken; pkg/controllers/domainroute/controller.go and check.go).
NEVER = 100 * 365 * 86400.0  # a rolling period of 0 stamps "now + 100 years"
SYNC_PERIOD = 120.0  # domainRouteSyncPeriod: the destination drops a token this long after expiry


@dataclass(frozen=True)
class Timings:
    """How fast the emulated controllers react. Defaults are fast for tests; real Kuscia is slower."""

    tick: float = 0.05  # real: event-driven, informer resync every 2 min (NOTES §3.3)
    handshake_delay: float = 0.0  # real: seconds when set up in order, 2-5 min after a fix (§3.3)
    unreachable_after: float = 0.0  # real: 45 s without a good heartbeat (check_healthy.go)
    heartbeat_timeout: float = 0.0  # real: 30 s = 2 x 15 s heartbeat (IsTokenHeartBeatTimeout)


def go_time(when: dt.datetime) -> str:
    """metav1.Time printed with %s, as KusciaAPI's route status reason shows it."""
    return when.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S +0000 UTC")


@dataclass
class Condition:
    status: str  # "True" | "False"
    reason: str
    message: str
    last_update: dt.datetime


@dataclass
class _Pending:
    inputs: tuple[Any, ...]
    since: float
    token: bytes


@dataclass
class Route:
    """A ClusterDomainRoute on one node, with its DomainRoute's token status folded in."""

    source: str
    destination: str
    host: str
    ports: list[dict[str, Any]]
    authentication_type: str = "Token"
    token_gen_method: str = "RSA-GEN"
    rolling_update_period: int = 0
    destination_side: bool = False  # auto-created (and owned) by a partner Domain, empty host (§3.1)
    # -- DomainRoute status -------------------------------------------------------------------
    revision: int = 0
    token: bytes | None = None
    authorized: bool = False  # isDestinationAuthorized
    unreachable: bool = False  # isDestinationUnreachable
    last_ok: float = 0.0  # last good heartbeat (source side)
    heartbeat: float = 0.0  # last heartbeat received (destination side)
    had_token: bool = False
    renew: bool = False  # re-handshake after a restart, or to roll the token
    revision_time: float = 0.0  # when the current token was made (emulated clock)
    expires: float = 0.0  # ExpirationTime of the current token (emulated clock)
    keys: tuple[str, str] | None = None  # public keys the DomainRoute was built from
    condition: Condition | None = None
    _pending: _Pending | None = None
    _failed: tuple[tuple[Any, ...], str] | None = None
    _last_log: str = field(default="", repr=False)

    @property
    def name(self) -> str:
        return f"{self.source}-{self.destination}"

    @property
    def status(self) -> str:
        """KusciaAPI's view: Succeeded only with a Ready=True condition (buildRouteStatus)."""
        return "Succeeded" if self.condition is not None and self.condition.status == "True" else "Failed"

    @property
    def reason(self) -> str:
        return self.condition.reason if self.condition else ""

    @property
    def message(self) -> str:
        return self.condition.message if self.condition else ""

    def kusciaapi_reason(self) -> str:
        cond = self.condition
        if cond is None or cond.status == "True":
            return ""
        return f"LastUpdateAt={go_time(cond.last_update)}, Message={cond.message}, Reason:{cond.reason}"

    def reset(self) -> None:
        """The DomainRoute was recreated (its keys changed): a fresh, empty status."""
        self.token, self.authorized, self.unreachable, self.renew = None, False, False, False
        self._pending = self._failed = None

    def snapshot(self) -> dict[str, Any]:
        cond = self.condition
        return {
            "name": self.name,
            "source": self.source,
            "destination": self.destination,
            "host": self.host,
            "ports": [dict(p) for p in self.ports],
            "authentication_type": self.authentication_type,
            "token_gen_method": self.token_gen_method,
            "destination_side": self.destination_side,
            "status": self.status,
            "ready": cond.status if cond else "",
            "reason": self.reason,
            "message": self.message,
            "kusciaapi_reason": self.kusciaapi_reason(),
            "revision": self.revision,
            "has_token": self.token is not None,
            "rolling_update_period": self.rolling_update_period,
        }


def _set_condition(route: Route, status: str, reason: str, message: str) -> None:
    current = route.condition
    if current is None or (current.status, current.reason, current.message) != (status, reason, message):
        route.condition = Condition(status, reason, message, dt.datetime.now(dt.UTC))


class HandshakeEngine:
    def __init__(self, network: KusciaEmulator, timings: Timings) -> None:
        self.network = network
        self.timings = timings
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="emulated-kuscia-handshake", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _loop(self) -> None:
        while not self._stop.wait(self.timings.tick):
            self.run_once()

    def run_once(self) -> None:
        """One round over every node that is up: outbound routes first, then inbound conditions."""
        with self.network.lock:
            now = self.network.now()
            nodes = [n for n in self.network.nodes.values() if not n.is_down]
            for node in nodes:
                for route in list(node.route_table.values()):
                    if route.source == node.domain_id and route.destination != node.domain_id:
                        self._outbound(node, route, now)
            for node in nodes:
                for route in list(node.route_table.values()):
                    if route.destination == node.domain_id and route.source != node.domain_id:
                        self._inbound(node, route, now)

    # -- the source side ------------------------------------------------------------------------

    def _outbound(self, s: EmulatedNode, route: Route, now: float) -> None:
        problem = self._local_problem(s, route)
        if problem is not None:
            text, drop = problem
            self._log(s, route, text)
            if drop is None:  # the CDR controller fails before writing a status
                return
            if drop:
                route.reset()
            self._source_condition(route)
            return
        keys = (s.own_fingerprint(), fingerprint(cert_public_key(s.domains[route.destination]["cert"])))
        if route.keys is not None and route.keys != keys:
            route.reset()
        route.keys = keys
        period = route.rolling_update_period
        if (
            route.token is not None
            and not route.renew
            and period > 0
            and (now - route.revision_time > period or now > route.expires)
        ):  # needRollingToNext: a period of 0 never rolls
            route.renew = True
            self._log(s, route, f"Domainroute {route.name} token is out of time, need to rolling")
        if route.token is None or route.renew:
            self._try_handshake(s, route, now)
        else:
            self._heartbeat(s, route, now)
        self._source_condition(route)

    def _local_problem(self, s: EmulatedNode, route: Route) -> tuple[str, bool | None] | None:
        """(log text, drop the token? None = no status written at all) when S cannot start."""
        name = route.name
        if route.authentication_type != "Token" or route.token_gen_method != "RSA-GEN":
            return f"DomainRoute {name}: only Token + RSA-GEN is emulated", None
        for domain_id in (s.domain_id, route.destination):
            if domain_id not in s.domains:
                return f"ClusterDomainRoute {name}: get Domain {domain_id} fail", None
        partner = s.domains[route.destination]
        if partner.get("role") != "partner":
            return f"DomainRoute {name}: destination domain [{route.destination}] is not a partner", True
        if cert_public_key(partner.get("cert") or "") is None:
            return (
                f"DomainRoute {name}: select initializer failed, because source or destination pub is "
                "null, wait domain update",
                True,
            )
        if s.own_fingerprint() != s.key_fingerprint:
            return f"DomainRoute {name}: mismatch source public key", False
        return None

    def _source_condition(self, route: Route) -> None:
        if route.token is None:
            reason = "TokenNotGenerate" if route.authorized else "DestinationIsNotAuthrized"  # (sic)
            _set_condition(route, "False", reason, "TokenNotGenerate")
        elif route.unreachable:
            _set_condition(route, "False", "DestinationUnreachable", "DestinationUnreachable")
        else:
            _set_condition(route, "True", "", "Success")

    def _connect(self, s: EmulatedNode, route: Route) -> tuple[EmulatedNode | None, str | None]:
        """The peer node the endpoint reaches, or the error the source's envoy reports."""
        port = route.ports[0] if route.ports else {}
        is_tls = bool(port.get("isTLS"))
        dest = self.network.resolve(route.host, int(port.get("port") or 0))
        if dest is None:
            return None, NO_UPSTREAM
        how = self.network.unreachable_mode(dest.domain_id)
        if how == "timeout":
            return dest, TIMEOUT
        if how or dest.is_down:
            return dest, REFUSED
        if is_tls and not dest.is_tls:
            return dest, WRONG_VERSION
        if not is_tls and dest.is_tls:
            return dest, PLAINTEXT_TO_TLS
        if dest.domain_id != route.destination:
            return dest, WRONG_PEER
        return dest, None

    def _inputs(self, s: EmulatedNode, dest: EmulatedNode | None, route: Route) -> tuple[Any, ...]:
        """Everything a handshake's outcome depends on; an unchanged failure is not retried with RSA."""
        port = route.ports[0] if route.ports else {}
        theirs: tuple[Any, ...] = ()
        if dest is not None:
            copy_of_us = dest.domains.get(s.domain_id) or {}
            inbound = dest.route_table.get(route.name)
            theirs = (
                dest.domain_id,
                dest.key_fingerprint,
                dest.is_tls,
                dest.is_down,
                self.network.unreachable_mode(dest.domain_id),
                copy_of_us.get("role"),
                copy_of_us.get("cert"),
                id(inbound) if inbound is not None else None,
            )
        return (
            s.key_fingerprint,
            s.domains[route.destination].get("cert"),
            route.host,
            port.get("port"),
            port.get("isTLS"),
            theirs,
        )

    def _try_handshake(self, s: EmulatedNode, route: Route, now: float) -> None:
        dest, error = self._connect(s, route)
        inputs = self._inputs(s, dest, route)
        pending = route._pending
        if pending is not None and pending.inputs == inputs:
            if now - pending.since >= self.timings.handshake_delay:
                assert dest is not None
                self._commit(s, dest, route, pending.token, now)
            return
        route._pending = None
        if route._failed is not None and route._failed[0] == inputs:
            error = route._failed[1]
        elif error is not None:
            error = f"handshake fail:{error}"
        else:
            assert dest is not None
            token, error = self._exchange(s, dest, route)
            if token is not None:
                route._pending = _Pending(inputs, now, token)
                if self.timings.handshake_delay <= 0:
                    self._commit(s, dest, route, token, now)
                return
        assert error is not None
        route._failed = (inputs, error)
        self._log(s, route, f"DomainRoute {route.name}: {error}")
        if route.renew:
            route.token, route.renew = None, False

    def _exchange(self, s: EmulatedNode, dest: EmulatedNode, route: Route) -> tuple[bytes | None, str]:
        """The RSA exchange for real: (token, "") or (None, the error text the source logs)."""
        dest_public = cert_public_key(s.domains[route.destination]["cert"])
        assert dest_public is not None
        half = os.urandom(16)
        sent = dest_public.encrypt(b"kuscia" + half, padding.PKCS1v15())
        error, reply = self._reply(dest, s.domain_id, sent, pubhash(s.key.public_key()))
        if error:
            return None, f"handshake fail, return error:{error}"
        try:
            theirs = s.key.decrypt(reply, padding.PKCS1v15())
        except ValueError:
            theirs = b""
        if not theirs.startswith(b"kuscia") or len(theirs) != 22:
            return None, "handshake fail, decryptToken  error:"
        return half + theirs[6:], ""

    def _reply(self, d: EmulatedNode, source: str, sent: bytes, hash_: bytes) -> tuple[str, bytes]:
        """DestReplyHandshake on the destination: ("", its half encrypted to the source) or an error."""
        name = f"{source}-{d.domain_id}"
        if not self.authorizes(d, source):
            return f"domainRoute [{name}] not found in dest domain [{d.domain_id}]", b""
        source_public = cert_public_key(d.domains[source].get("cert") or "")
        if source_public is None:
            return (
                f"invalid source domain [{source}] publickey in domainroute [{name}], error: public key is empty",
                b"",
            )
        if pubhash(source_public) != hash_:
            return f"source domain [{source}] publickey hash mismatch in domainroute [{name}]", b""
        try:
            plain = d.key.decrypt(sent, padding.PKCS1v15())
        except ValueError:
            plain = b""
        if not plain.startswith(b"kuscia") or len(plain) != 22:
            return (
                f"dest domain [{d.domain_id}] publickey in source domain [{source}] may be not correct",
                b"",
            )
        return "", source_public.encrypt(b"kuscia" + os.urandom(16), padding.PKCS1v15())

    def _commit(self, s: EmulatedNode, dest: EmulatedNode, route: Route, token: bytes, now: float) -> None:
        inbound = dest.route_table[route.name]
        inbound.revision += 1
        inbound.token, inbound.heartbeat, inbound.had_token = token, now, True
        inbound.keys = self._inbound_keys(dest, s.domain_id)
        # The destination stamps the expiry from ITS period; the source keeps it only if its own
        # period is > 0 (otherwise it stamps its copy "never").
        inbound.revision_time = route.revision_time = now
        inbound.expires = now + (
            2 * inbound.rolling_update_period if inbound.rolling_update_period else NEVER
        )
        route.expires = inbound.expires if route.rolling_update_period > 0 else now + NEVER
        route.revision, route.token = inbound.revision, token
        route.authorized, route.unreachable, route.renew = True, False, False
        route.last_ok, route._pending, route._failed = now, None, None
        self._log(s, route, f"DomainRoute {route.name}: handshake success, revision {route.revision}")

    def _heartbeat(self, s: EmulatedNode, route: Route, now: float) -> None:
        dest, error = self._connect(s, route)
        if error is not None or dest is None:
            if not route.unreachable and now - route.last_ok > self.timings.unreachable_after:
                route.unreachable = True
                self._log(s, route, f"markDestUnreachable of dr({route.name})")
            return
        route.last_ok = now
        if route.unreachable:
            route.unreachable = False
            self._log(s, route, f"markDestReachable of dr({route.name})")
        state = self.probe(dest, s.domain_id, str(route.revision))
        if state == NO_AUTHENTICATION:
            route.token, route.authorized = None, False
            self._log(
                s,
                route,
                f"{route.name} can't contact destination because destination authentication is false",
            )
        elif state == TOKEN_NOT_FOUND:
            route.token = None
            self._log(
                s,
                route,
                f"Domainroute {route.name} found destination token(revision {route.revision}) not exist",
            )
        elif state == TOKEN_READY:
            dest.route_table[route.name].heartbeat = now

    # -- the destination side -------------------------------------------------------------------

    def authorizes(self, d: EmulatedNode, source: str) -> bool:
        """D holds a route `<source>-<D>` and a partner Domain for the source."""
        route = d.route_table.get(f"{source}-{d.domain_id}")
        domain = d.domains.get(source)
        return route is not None and domain is not None and domain.get("role") == "partner"

    def probe(self, d: EmulatedNode, source: str, revision: str) -> int:
        """checkTokenStatus: what D answers a heartbeat `GET /handshake`."""
        if not source:
            return DOMAIN_ID_INVALID
        if not self.authorizes(d, source):
            return NO_AUTHENTICATION
        if not revision:
            return REVISION_INVALID
        route = d.route_table[f"{source}-{d.domain_id}"]
        return TOKEN_READY if route.token is not None and str(route.revision) == revision else TOKEN_NOT_FOUND

    def _inbound_keys(self, d: EmulatedNode, source: str) -> tuple[str, str]:
        return fingerprint(
            cert_public_key((d.domains.get(source) or {}).get("cert") or "")
        ), d.own_fingerprint()

    def _inbound(self, d: EmulatedNode, route: Route, now: float) -> None:
        if route.destination_side and route.source not in d.domains:
            del d.route_table[route.name]  # owned by the Domain: garbage-collected with it
            return
        keys = self._inbound_keys(d, route.source)
        if route.token is not None and (route.keys != keys or not self.authorizes(d, route.source)):
            route.token = None  # DomainRoute recreated with the new keys, or authorization gone
        route.keys = keys
        if (
            route.token is not None and route.rolling_update_period > 0 and now - route.expires > SYNC_PERIOD
        ):  # the destination's controller deletes the expired token
            route.token = None
            self._log(
                d, route, f"domainroute {d.domain_id}/{route.name} delete expirated token {route.revision}"
            )
        if route.token is not None:
            if now - route.heartbeat > self.timings.heartbeat_timeout:
                _set_condition(route, "False", "HeartBeatTimeout", "HeartBeatTimeout")
            else:
                _set_condition(route, "True", "", "Success")
        elif route.had_token:
            _set_condition(route, "False", "TokenNotGenerate", "TokenNotGenerate")

    # -- logging ----------------------------------------------------------------------------------

    def _log(self, node: EmulatedNode, route: Route, line: str) -> None:
        """Kuscia logs every retry; the emulator logs a line when a route's outcome changes."""
        if route._last_log != line:
            route._last_log = line
            node.gateway_log.append(line)
