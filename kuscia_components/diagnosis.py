"""Why a route is not Ready, in user terms, with the next step (pure; NOTES §2.2, §3.5, §7).

Kuscia reports every failed handshake the same way on the route: `DestinationIsNotAuthrized`
(sic) / `TokenNotGenerate`; the specific cause (partner has not registered us, a stale
certificate, unreachable, http/https mismatch) only reaches the gateway's log (NOTES §2.2, §3.5).
So the diagnosis combines the reason with evidence we can gather ourselves through KusciaAPI
(`Evidence`: does the partner's node know us, with the right key? does our node hold the
partner's current key?) and, when evidence is missing, says which checks tell the causes apart
(the seed's curl that must answer 401).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal[
    "ready",
    "pending",
    "waiting_for_partner",
    "unreachable",
    "key_mismatch_ours",
    "key_mismatch_theirs",
    "protocol_mismatch",
    "transient",
    "unknown",
]


@dataclass(frozen=True)
class LinkContext:
    source: str  # our domain ID
    destination: str  # the partner's domain ID
    endpoint: str  # the partner endpoint our route dials
    partner_stack: str | None = None  # when the partner is a stack we know by name


@dataclass(frozen=True)
class Evidence:
    """What we could check ourselves; None means unknown (e.g. no access to the partner's node)."""

    our_copy_matches: bool | None = None  # our partner Domain holds the partner's current key
    partner_has_us: bool | None = None  # the partner's node has a partner Domain for us
    partner_copy_matches: bool | None = None  # ...holding our current key
    node_key_matches: bool | None = None  # our node runs with the key this stack holds


@dataclass(frozen=True)
class Diagnosis:
    kind: Kind
    summary: str
    next_step: str
    hard: bool  # True: waiting longer will not help, fail the deployment

    def __str__(self) -> str:
        return f"{self.summary} Next: {self.next_step}" if self.next_step else self.summary


def diagnose(status: str, reason: str, ctx: LinkContext, evidence: Evidence | None = None) -> Diagnosis:
    """Map Kuscia's route status (`Succeeded`/`Failed`/empty), its reason and our evidence."""
    route = f"{ctx.source}-{ctx.destination}"
    text = reason or ""
    lowered = text.lower()
    ev = evidence or Evidence()
    if status == "Succeeded":
        return Diagnosis("ready", f"Route {route} is Ready: the token handshake succeeded.", "", False)
    if ev.node_key_matches is False:
        return Diagnosis(
            "key_mismatch_ours",
            f"{ctx.source}'s node runs with a different domain key than this stack holds, so partners hold a "
            f"certificate that does not match it.",
            f"Make the node use the stack's key again (`pulumi up` for {ctx.source} rewrites kuscia.yaml and rolls "
            "the pod), or hand partners the node's current certificate.",
            True,
        )
    if ev.partner_has_us is False:
        return _waiting_for_partner(ctx, definite=True)
    if ev.partner_copy_matches is False or "publickey hash mismatch" in lowered:
        return Diagnosis(
            "key_mismatch_theirs",
            f"{ctx.destination} holds a stale or wrong certificate for {ctx.source}: the public key it has for "
            f"{ctx.source} does not match {ctx.source}'s key.",
            f"Give {ctx.destination} {ctx.source}'s current peeringBundle (pulumi stack output peeringBundle) and "
            f"run their `pulumi up`; their link updates the partner Domain.",
            True,
        )
    if (
        ev.our_copy_matches is False
        or "may be not correct" in lowered
        or "mismatch source public key" in lowered
    ):
        return Diagnosis(
            "key_mismatch_ours",
            f"{ctx.source} holds a stale or wrong certificate for {ctx.destination}: {ctx.destination} could not "
            f"decrypt the handshake made with the public key {ctx.source} has for it.",
            f"Refresh {ctx.destination}'s bundle in {ctx.source}'s config (or its stack output) and run "
            f"`pulumi up` for {ctx.source}; the link updates the partner Domain by public key.",
            True,
        )
    if any(
        s in lowered for s in ("wrong_version_number", "server gave http response to https", "tls handshake")
    ):
        return Diagnosis(
            "protocol_mismatch",
            f"http/https mismatch on {route}: {ctx.endpoint} does not speak the scheme the route uses.",
            f"Use https:// for a partner running protocol TLS and http:// for NOTLS; fix {ctx.destination}'s "
            "endpoint or protocol in the peer config.",
            True,
        )
    if (
        "not found in dest domain" in lowered
        or "destinationisnotauthrized" in lowered
        or ("tokennotgenerate" in lowered and "unreachable" not in lowered)
    ):
        return _waiting_for_partner(ctx, definite=False)
    if any(
        s in lowered
        for s in ("destinationunreachable", "send request error", "connection refused", "timeout")
    ):
        return Diagnosis(
            "unreachable",
            f"{ctx.destination}'s gateway at {ctx.endpoint} is unreachable from {ctx.source}.",
            f"From {ctx.source}'s cluster run `curl -kvvv {ctx.endpoint}`: 401 is healthy; a hang means "
            f"{ctx.destination} has not allow-listed your egress IP; 'connection refused' means their Service/port "
            "is down; other codes point at a proxy or firewall (HTTP/1.1, keepalive > 20 min, no buffering, bodies "
            "up to 2 MB). Also check NetworkPolicies on both sides let port 1080 in.",
            False,
        )
    if "heartbeattimeout" in lowered or "tokenrevisionnotmatch" in lowered:
        return Diagnosis(
            "transient",
            f"Route {route} lost its heartbeat or token revision (common for 3-5 minutes after a pod restart).",
            "Wait a few minutes and `pulumi refresh`; if it persists, check the partner pod and reachability.",
            False,
        )
    if not status:
        return Diagnosis(
            "pending", f"Route {route} has no status yet: the handshake has not run.", "Waiting.", False
        )
    return Diagnosis(
        "unknown",
        f"Route {route} is not Ready: {text or 'no reason given'}.",
        "Inspect the gateway logs in the Kuscia pod (var/logs/envoy/external.log, kuscia.log).",
        False,
    )


def _waiting_for_partner(ctx: LinkContext, *, definite: bool) -> Diagnosis:
    partner_cmd = (
        f"`pulumi up -s {ctx.partner_stack}`" if ctx.partner_stack else "`pulumi up` for their stack"
    )
    ask = (
        f"Ask {ctx.destination} to add {ctx.source} as a peer and run {partner_cmd} (across organisations: send "
        f"them `pulumi stack output peeringBundle`)."
    )
    if definite:
        return Diagnosis(
            "waiting_for_partner",
            f"{ctx.destination} has not registered {ctx.source} yet (no partner Domain for {ctx.source} on their node).",
            ask,
            False,
        )
    return Diagnosis(
        "waiting_for_partner",
        f"{ctx.destination} has not completed the handshake with {ctx.source}. Kuscia reports the same reason "
        f"when {ctx.destination} has not registered {ctx.source} yet, holds a stale certificate of {ctx.source}, "
        f"or cannot be reached at {ctx.endpoint}.",
        f"{ask} If they have: check from {ctx.source}'s cluster that `curl -kvvv {ctx.endpoint}` answers 401, and "
        f"that their partner Domain {ctx.source} holds the certificate in your peeringBundle.",
        False,
    )
