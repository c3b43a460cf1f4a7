"""Why a route is not Ready, in user terms, with the next step (pure; NOTES §2.2, §3.5, §7).

Kuscia reports most failed handshakes the same way on the route: reason `DestinationIsNotAuthrized`
(sic) with message `TokenNotGenerate`. The specific cause (the partner has not registered us, a
stale certificate on either side, an unreachable gateway, an http/https mismatch) only reaches
the gateway's log (NOTES §2.2, §3.5, pitfall 4). So the diagnosis combines Kuscia's reason with
evidence gathered by the caller through KusciaAPI and the service proxy (`Evidence`: does our
node hold the partner's current key? does the partner's node know us, with our current key? does
the partner's gateway answer?) and, where evidence is missing, says which check tells the causes
apart (the seed's curl that must answer 401).
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Literal

from kuscia_components.config import gateway_scheme
from kuscia_components.peering.probe import ProbeResult

Kind = Literal[
    "ready",
    "pending",  # no status yet, or our own side is incomplete: the next `up` fixes it
    "waiting_for_partner",
    "unreachable",
    "key_mismatch_ours",
    "key_mismatch_theirs",
    "protocol_mismatch",
    "transient",  # HeartBeatTimeout / TokenRevisionNotMatch: usual for minutes after a restart
    "unknown",
]

# Kuscia's route status reason (`domain_route_service.go`): "LastUpdateAt=…, Message=…, Reason:…".
_REASON_FORMAT = re.compile(
    r"^LastUpdateAt=(?P<at>[^,]*), Message=(?P<message>.*), Reason:(?P<reason>.*)$", re.S
)
NOT_AUTHORIZED = ("DestinationIsNotAuthrized", "DestinationIsNotAuthorized", "TokenNotGenerate")
TRANSIENT = ("HeartBeatTimeout", "TokenRevisionNotMatch")
PROXY_RULES = (
    "HTTP/1.1, keepalive longer than 20 minutes, no request or response buffering, bodies up to 2 MB, no "
    "keyword filtering"
)


@dataclass(frozen=True)
class RouteReason:
    """Kuscia's reason text split into its parts; `reason` is the condition reason."""

    reason: str
    message: str
    last_update: str
    raw: str


def parse_reason(text: str) -> RouteReason:
    """Split `LastUpdateAt=…, Message=…, Reason:…`; any other text is kept as the message."""
    raw = (text or "").strip()
    match = _REASON_FORMAT.match(raw)
    if match is None:
        return RouteReason("", raw, "", raw)
    return RouteReason(match["reason"].strip(), match["message"].strip(), match["at"].strip(), raw)


@dataclass(frozen=True)
class LinkContext:
    source: str  # our domain ID
    destination: str  # the partner's domain ID
    endpoint: str  # the partner endpoint our route dials
    partner_stack: str | None = None  # the partner's stack, when we know it by name
    own_stack: str | None = None  # our stack, for the command that prints our bundle
    partner_protocol: str | None = None  # NOTLS | TLS, from the partner's bundle
    same_program: bool = False  # one program deploys both nodes (the Peering component)


@dataclass(frozen=True)
class Evidence:
    """What the caller could check; None means unknown (e.g. no access to the partner's node)."""

    our_partner_domain_present: bool | None = None  # our node has a partner Domain for them
    our_copy_matches: bool | None = None  # ...holding the partner's current public key
    partner_has_us: bool | None = None  # the partner's node has a partner Domain for us
    partner_copy_matches: bool | None = None  # ...holding our current public key
    node_key_matches: bool | None = None  # our node runs with the key this stack holds
    gateway_reachable: bool | None = None  # the partner's gateway answers our node (401, NOTES §4.4)
    gateway_detail: str = ""  # what the gateway check found, in words
    # The seed's `curl -kvvv <endpoint>` run inside our Kuscia pod (peering/probe.py): the one
    # check that shares the route's network path (egress IP, DNS, NetworkPolicy).
    pod_probe: ProbeResult | None = None


@dataclass(frozen=True)
class Diagnosis:
    kind: Kind
    summary: str
    next_step: str
    hard: bool  # True: waiting longer will not help, fail the deployment
    answered_in_pod: bool | None = None  # did the partner's endpoint answer our pod's probe?

    def __str__(self) -> str:
        return f"{self.summary} Next: {self.next_step}" if self.next_step else self.summary


def diagnose(status: str, reason: str, ctx: LinkContext, evidence: Evidence | None = None) -> Diagnosis:
    """Map Kuscia's route status (`Succeeded`/`Failed`/empty), its reason text and our evidence."""
    if status == "Succeeded":
        return Diagnosis("ready", f"Route {_route(ctx)} is Ready: the token handshake succeeded.", "", False)
    ev = evidence or Evidence()
    found = _diagnose(status, reason, ctx, ev)
    if ev.pod_probe is None:
        return found
    return dataclasses.replace(found, answered_in_pod=ev.pod_probe.reachable)


def _diagnose(status: str, reason: str, ctx: LinkContext, ev: Evidence) -> Diagnosis:
    parsed = parse_reason(reason)
    probed = ev.pod_probe
    text = f"{parsed.reason} {parsed.message}".lower()
    # Most specific first: facts we checked ourselves, then Kuscia's reason, then its silence.
    if ev.node_key_matches is False:
        return _node_runs_another_key(ctx)
    if _scheme_mismatch(ctx) or any(s in text for s in _PROTOCOL_SIGNS):
        return _protocol_mismatch(ctx)
    if probed is not None and probed.verdict == "protocol_mismatch":
        return _protocol_mismatch(ctx, probed)
    if ev.our_partner_domain_present is False:
        return _our_side_incomplete(ctx)
    if ev.partner_has_us is False:
        return _waiting_for_partner(ctx, ev, definite=True)
    if ev.partner_copy_matches is False or "publickey hash mismatch" in text:
        return _stale_cert(ctx, holder=ctx.destination, of=ctx.source)
    if ev.our_copy_matches is False or "may be not correct" in text:
        return _stale_cert(ctx, holder=ctx.source, of=ctx.destination)
    if probed is not None and probed.reachable is False:
        return _unreachable_from_pod(ctx, probed)
    answered_in_pod = probed is not None and probed.reachable is True  # a 401 from inside our pod wins
    unreachable = ev.gateway_reachable is False or parsed.reason == "DestinationUnreachable"
    if not answered_in_pod and (unreachable or _says_unreachable(text)):
        return _unreachable(
            ctx, after_token=parsed.reason == "DestinationUnreachable", detail=ev.gateway_detail
        )
    if parsed.reason in TRANSIENT:
        return Diagnosis(
            "transient",
            f"Route {_route(ctx)} reports {parsed.reason}: the token lost its heartbeat or revision, which is "
            "usual for 3-5 minutes after either node restarts.",
            f"Wait a few minutes, then `pulumi refresh`; if it stays, check that {ctx.destination}'s pod is "
            f"running and that `curl -kvvv {ctx.endpoint}` from your cluster answers 401.",
            False,
        )
    if parsed.reason in NOT_AUTHORIZED or "not found in dest domain" in text:
        return _waiting_for_partner(ctx, ev, definite=False, reason=parsed.reason or "TokenNotGenerate")
    if not parsed.raw:  # a new route has no Ready condition until the first handshake round
        return Diagnosis(
            "pending", f"Route {_route(ctx)} has no status yet: the handshake has not run.", "Wait.", False
        )
    return Diagnosis(
        "unknown",
        f"Route {_route(ctx)} is not Ready: {parsed.raw or 'Kuscia gave no reason'}.",
        f"Read the gateway logs in {ctx.source}'s Kuscia pod (var/logs/envoy/external.log and "
        "internal.log, then kuscia.log), or run `kuscia diagnose network "
        f"{ctx.source} {ctx.destination}` inside it.",
        False,
    )


# -- the diagnoses ---------------------------------------------------------------------------------

_PROTOCOL_SIGNS = (
    "wrong_version_number",
    "first record does not look like a tls handshake",
    "http request to an https server",
    "server gave http response to https",
)
_UNREACHABLE_SIGNS = (
    "connection refused",
    "no route to host",
    "i/o timeout",
    "send request error",
    "dial tcp",
)


def _route(ctx: LinkContext) -> str:
    return f"{ctx.source}-{ctx.destination}"


def _partner_command(ctx: LinkContext) -> str:
    """What the partner runs, and how they get our bundle when they are another organisation."""
    if ctx.same_program:
        return (
            f"{ctx.destination} is deployed by this same program, so `pulumi up` registers both sides; check "
            f"that {ctx.destination}'s Kuscia pod is Ready and run `pulumi up` again."
        )
    up = f"`pulumi up -s {ctx.partner_stack}`" if ctx.partner_stack else "`pulumi up` on their stack"
    bundle = (
        f"`pulumi stack output peeringBundle -s {ctx.own_stack}`"
        if ctx.own_stack
        else "`pulumi stack output peeringBundle`"
    )
    return (
        f"{ctx.destination} adds {ctx.source} to its kuscia:peers and runs {up}. Across organisations, send "
        f"them {ctx.source}'s bundle first: {bundle} (it is public)."
    )


def _scheme_mismatch(ctx: LinkContext) -> bool:
    if ctx.partner_protocol not in ("NOTLS", "TLS", "MTLS") or "://" not in ctx.endpoint:
        return False
    scheme = ctx.endpoint.split("://", 1)[0].lower()
    return scheme != gateway_scheme(ctx.partner_protocol)


def _protocol_mismatch(ctx: LinkContext, probed: ProbeResult | None = None) -> Diagnosis:
    protocol = ctx.partner_protocol or "its protocol"
    seen = f" From inside {ctx.source}'s pod: {probed.evidence or probed.summary}." if probed else ""
    return Diagnosis(
        "protocol_mismatch",
        f"http/https mismatch on {_route(ctx)}: {ctx.destination}'s gateway at {ctx.endpoint} does not speak the "
        f"scheme the route uses ({ctx.destination} runs {protocol}).{seen}",
        f"Use https:// for a partner running protocol TLS and http:// for NOTLS: fix {ctx.destination}'s endpoint "
        "or protocol in kuscia:peers (or ask them to re-export their peeringBundle), then `pulumi up`; the route "
        "is recreated with the right scheme (kuscia#450).",
        True,
    )


def _node_runs_another_key(ctx: LinkContext) -> Diagnosis:
    return Diagnosis(
        "key_mismatch_ours",
        f"{ctx.source}'s node runs with another domain key than this stack holds, so the certificate partners "
        f"got from {ctx.source}'s peeringBundle does not match the node.",
        f"Run `pulumi up` for {ctx.source}: it rewrites kuscia.yaml with the stack's key and rolls the pod. If "
        "the node's key is the right one, put it in kuscia:domainKeyData instead and hand partners the new "
        "peeringBundle.",
        True,
    )


def _our_side_incomplete(ctx: LinkContext) -> Diagnosis:
    return Diagnosis(
        "pending",
        f"{ctx.source}'s node has no partner Domain {ctx.destination} (deleted by hand, or never created).",
        f"Run `pulumi up` for {ctx.source}: the link registers {ctx.destination} again.",
        False,
    )


def _stale_cert(ctx: LinkContext, *, holder: str, of: str) -> Diagnosis:
    ours = holder == ctx.source
    if ours:
        fix = (
            f"Refresh {of}'s bundle in {holder}'s kuscia:peers (a StackReference picks it up by itself: run "
            f"`pulumi up -s {of}` first if its key changed), then run `pulumi up` for {holder}; the link "
            "compares public keys and updates the partner Domain."
        )
    else:
        bundle = (
            f"`pulumi stack output peeringBundle -s {ctx.own_stack}`"
            if ctx.own_stack
            else "`pulumi stack output peeringBundle`"
        )
        up = f"`pulumi up -s {ctx.partner_stack}`" if ctx.partner_stack else "their `pulumi up`"
        fix = (
            f"{holder} needs {of}'s current certificate: give them {of}'s bundle ({bundle}) and have them run "
            f"{up}; their link updates the partner Domain."
        )
    return Diagnosis(
        "key_mismatch_ours" if ours else "key_mismatch_theirs",
        f"{holder} holds a stale or wrong certificate for {of}: the public key {holder}'s node has for {of} is "
        f"not {of}'s current key, so the handshake cannot be decrypted or verified.",
        fix,
        True,
    )


def _says_unreachable(text: str) -> bool:
    return any(s in text for s in _UNREACHABLE_SIGNS)


def _unreachable(ctx: LinkContext, *, after_token: bool, detail: str = "") -> Diagnosis:
    when = " (it was reachable before: a token exists)" if after_token else ""
    found = f" Found: {detail}." if detail else ""
    return Diagnosis(
        "unreachable",
        f"{ctx.destination}'s gateway at {ctx.endpoint} is unreachable from {ctx.source}'s node{when}.{found}",
        f"From {ctx.source}'s cluster run `curl -kvvv {ctx.endpoint}` (for example in {ctx.source}'s Kuscia pod): "
        f"401 with a kuscia-error-message header is healthy; a hang means {ctx.destination} has not allow-listed "
        f"your egress IP; 'connection refused' means their Service or port is down; any other code points at a "
        f"proxy or firewall in between, which must allow {PROXY_RULES}. In Kubernetes, check NetworkPolicies: "
        f"{ctx.destination}'s namespace must admit TCP 1080 from your egress, and an egress policy in yours must "
        "let it out.",
        False,
    )


def _unreachable_from_pod(ctx: LinkContext, probed: ProbeResult) -> Diagnosis:
    """The probe from our pod failed: say what it saw and what fixes that kind of failure."""
    fix = {
        "not_allow_listed": f"{ctx.destination} must allow-list {ctx.source}'s egress IP (the address your "
        "cluster's traffic leaves from), and any firewall or egress NetworkPolicy in between must let TCP to "
        f"{ctx.endpoint} out.",
        "no_answer": f"A proxy or firewall between the clusters holds the request: it must pass {ctx.endpoint} "
        f"through with {PROXY_RULES}.",
        "refused": f"{ctx.destination}'s gateway Service or port is down, or the port in the endpoint is wrong: "
        f"{ctx.destination} checks their Kuscia pod and the Service exposing 1080.",
        "no_route": f"{ctx.source}'s cluster has no route to that address: use an endpoint reachable from it.",
        "dns": f"Use an address that resolves from {ctx.source}'s pod (a public name or IP, not another "
        f"cluster's *.svc name), or fix the DNS the pod uses; then update {ctx.destination}'s endpoint.",
        "tls_error": f"{ctx.destination}'s gateway or a proxy in front of it breaks the TLS handshake; check "
        "what terminates TLS at that address.",
        "other_answer": f"Point the endpoint at {ctx.destination}'s Kuscia gateway itself, or make the proxy at "
        f"that address forward to it with {PROXY_RULES}.",
    }.get(probed.verdict, "")
    found = f" Found: {probed.evidence}." if probed.evidence else ""
    return Diagnosis(
        "unreachable",
        f"{ctx.destination}'s gateway did not answer {ctx.source}'s pod: {probed.summary}.{found}",
        fix,
        False,
    )


def _probe_sentence(ctx: LinkContext, ev: Evidence) -> str:
    """What the in-pod probe adds to a 'waiting' diagnosis, in one sentence (or nothing)."""
    probed = ev.pod_probe
    if probed is None:
        return ""
    if probed.reachable:
        return (
            f" {ctx.endpoint} answered from inside {ctx.source}'s pod (401 from a Kuscia gateway), so the network "
            "path is fine."
        )
    return f" The in-pod probe could not tell whether {ctx.endpoint} answers: {probed.summary}."


def _waiting_for_partner(ctx: LinkContext, ev: Evidence, *, definite: bool, reason: str = "") -> Diagnosis:
    seen = _probe_sentence(ctx, ev)
    if definite:
        return Diagnosis(
            "waiting_for_partner",
            f"{ctx.destination} has not registered {ctx.source} yet: its node has no partner Domain for "
            f"{ctx.source}.{seen}",
            _partner_command(ctx),
            False,
        )
    if ev.pod_probe is not None and ev.pod_probe.reachable:
        return Diagnosis(
            "waiting_for_partner",
            f"{ctx.destination} has not completed the handshake with {ctx.source} (Kuscia: {reason}).{seen} So "
            f"{ctx.destination} has not registered {ctx.source} yet, or holds a stale certificate of {ctx.source}.",
            f"{_partner_command(ctx)} If they already have: their partner Domain {ctx.source} must hold the "
            f"certificate in {ctx.source}'s current peeringBundle.",
            False,
        )
    network = (
        f"{ctx.destination}'s gateway answers, so the network is fine"
        if ev.gateway_reachable
        else f"check from {ctx.source}'s cluster that `curl -kvvv {ctx.endpoint}` answers 401"
    )
    return Diagnosis(
        "waiting_for_partner",
        f"{ctx.destination} has not completed the handshake with {ctx.source} "
        f"(Kuscia: {reason}). Kuscia reports this when {ctx.destination} has not registered "
        f"{ctx.source} yet, holds a stale certificate of {ctx.source}, or cannot be reached at {ctx.endpoint}."
        f"{seen}",
        f"{_partner_command(ctx)} If they already have: {network}, and their partner Domain {ctx.source} must "
        f"hold the certificate in {ctx.source}'s current peeringBundle.",
        False,
    )
