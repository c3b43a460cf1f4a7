"""Route status -> diagnosis with the next step (pure, NOTES §2.2, §3.5, §7)."""

from __future__ import annotations

import pytest

from kuscia_components.peering.diagnosis import Diagnosis, Evidence, LinkContext, diagnose, parse_reason

ENDPOINT = "https://kuscia-autonomy-bob.autonomy-bob.svc.cluster.local:1080"
CTX = LinkContext("alice", "bob", ENDPOINT, partner_stack="bob", own_stack="alice", partner_protocol="TLS")
BARE = LinkContext("alice", "bob", ENDPOINT)  # partner given inline, stacks unknown


def kuscia(reason: str, message: str = "") -> str:
    """The reason text KusciaAPI's route status carries (domain_route_service.go)."""
    return f"LastUpdateAt=2026-11-25T08:00:00Z, Message={message}, Reason:{reason}"


NOT_AUTHORIZED = kuscia("DestinationIsNotAuthrized", "TokenNotGenerate")
HARD_KINDS = {"key_mismatch_ours", "key_mismatch_theirs", "protocol_mismatch"}


def test_parse_reason_splits_kuscias_format_and_keeps_other_text() -> None:
    parsed = parse_reason(kuscia("HeartBeatTimeout", "token a, b expired"))
    assert (parsed.reason, parsed.message, parsed.last_update) == (
        "HeartBeatTimeout",
        "token a, b expired",
        "2026-11-25T08:00:00Z",
    )
    other = parse_reason("  upstream connect error  ")
    assert (other.reason, other.message, other.raw) == (
        "",
        "upstream connect error",
        "upstream connect error",
    )
    assert parse_reason("").raw == ""


def test_succeeded_is_ready() -> None:
    diagnosis = diagnose("Succeeded", "", CTX)
    assert diagnosis.kind == "ready" and not diagnosis.hard and "alice-bob is Ready" in diagnosis.summary


def test_not_authorized_without_evidence_waits_for_the_partner_and_says_what_they_run() -> None:
    diagnosis = diagnose("Failed", NOT_AUTHORIZED, CTX)
    assert diagnosis.kind == "waiting_for_partner" and not diagnosis.hard
    assert "DestinationIsNotAuthrized" in diagnosis.summary
    assert "bob adds alice to its kuscia:peers and runs `pulumi up -s bob`" in diagnosis.next_step
    assert "`pulumi stack output peeringBundle -s alice`" in diagnosis.next_step
    assert f"`curl -kvvv {ENDPOINT}` answers 401" in diagnosis.next_step


def test_without_stack_names_the_commands_stay_generic() -> None:
    step = diagnose("Failed", NOT_AUTHORIZED, BARE).next_step
    assert "`pulumi up` on their stack" in step and "`pulumi stack output peeringBundle`" in step
    assert "-s " not in step


def test_one_program_with_both_nodes_does_not_ask_the_partner_for_anything() -> None:
    ctx = LinkContext("alice", "bob", ENDPOINT, own_stack="pair", same_program=True)
    step = diagnose("Failed", NOT_AUTHORIZED, ctx).next_step
    assert "bob is deployed by this same program" in step and "kuscia:peers" not in step


def test_partner_without_our_domain_is_definitely_waiting() -> None:
    diagnosis = diagnose(
        "Failed", NOT_AUTHORIZED, CTX, Evidence(partner_has_us=False, gateway_reachable=True)
    )
    assert diagnosis.kind == "waiting_for_partner"
    assert diagnosis.summary == "bob has not registered alice yet: its node has no partner Domain for alice."


def test_reachable_gateway_rules_out_the_network_in_the_advice() -> None:
    step = diagnose("Failed", NOT_AUTHORIZED, CTX, Evidence(gateway_reachable=True)).next_step
    assert "gateway answers, so the network is fine" in step and "curl" not in step


def test_partner_holding_our_stale_cert_is_their_side_and_hard() -> None:
    diagnosis = diagnose(
        "Failed", NOT_AUTHORIZED, CTX, Evidence(partner_has_us=True, partner_copy_matches=False)
    )
    assert diagnosis.kind == "key_mismatch_theirs" and diagnosis.hard
    assert diagnosis.summary.startswith("bob holds a stale or wrong certificate for alice")
    assert "`pulumi stack output peeringBundle -s alice`" in diagnosis.next_step
    assert "`pulumi up -s bob`" in diagnosis.next_step


def test_our_stale_copy_of_the_partner_is_our_side_and_hard() -> None:
    diagnosis = diagnose("Failed", NOT_AUTHORIZED, CTX, Evidence(our_copy_matches=False))
    assert diagnosis.kind == "key_mismatch_ours" and diagnosis.hard
    assert diagnosis.summary.startswith("alice holds a stale or wrong certificate for bob")
    assert "`pulumi up -s bob` first" in diagnosis.next_step and "kuscia:peers" in diagnosis.next_step


def test_gateway_log_phrases_name_the_side_too() -> None:
    theirs = diagnose(
        "Failed", "source domain [alice] publickey hash mismatch in domainroute [alice-bob]", CTX
    )
    ours = diagnose("Failed", "dest domain [bob] publickey in source domain [alice] may be not correct", CTX)
    assert (theirs.kind, ours.kind) == ("key_mismatch_theirs", "key_mismatch_ours")


def test_our_node_running_another_key_wins_over_everything() -> None:
    evidence = Evidence(node_key_matches=False, partner_has_us=False, gateway_reachable=False)
    diagnosis = diagnose("Failed", NOT_AUTHORIZED, CTX, evidence)
    assert diagnosis.kind == "key_mismatch_ours" and diagnosis.hard
    assert "alice's node runs with another domain key" in diagnosis.summary
    assert "kuscia:domainKeyData" in diagnosis.next_step


@pytest.mark.parametrize(
    ("endpoint", "protocol", "reason"),
    [
        (ENDPOINT, "NOTLS", NOT_AUTHORIZED),  # https to a plain gateway
        ("http://203.0.113.7:31080", "TLS", NOT_AUTHORIZED),  # http to a TLS gateway
        (ENDPOINT, None, "send request error: tls: first record does not look like a TLS handshake"),
        (ENDPOINT, None, "SSL routines:OPENSSL_internal:WRONG_VERSION_NUMBER"),  # kuscia#450
    ],
)
def test_http_https_mismatch_is_hard(endpoint: str, protocol: str | None, reason: str) -> None:
    ctx = LinkContext("alice", "bob", endpoint, partner_protocol=protocol)
    diagnosis = diagnose("Failed", reason, ctx)
    assert diagnosis.kind == "protocol_mismatch" and diagnosis.hard
    assert "https:// for a partner running protocol TLS and http:// for NOTLS" in diagnosis.next_step


def test_matching_scheme_is_no_protocol_mismatch() -> None:
    ctx = LinkContext("alice", "bob", "http://10.0.0.9:1080", partner_protocol="NOTLS")
    assert diagnose("Failed", NOT_AUTHORIZED, ctx).kind == "waiting_for_partner"


def test_failed_gateway_probe_is_unreachable_with_the_network_checks() -> None:
    diagnosis = diagnose("Failed", NOT_AUTHORIZED, CTX, Evidence(gateway_reachable=False))
    assert diagnosis.kind == "unreachable" and not diagnosis.hard
    step = diagnosis.next_step
    assert f"`curl -kvvv {ENDPOINT}`" in step and "401" in step and "allow-listed" in step
    assert "connection refused" in step and "NetworkPolicies" in step and "TCP 1080" in step
    assert "HTTP/1.1" in step and "20 minutes" in step and "2 MB" in step and "buffering" in step


def test_destination_unreachable_after_a_token_existed() -> None:
    diagnosis = diagnose("Failed", kuscia("DestinationUnreachable"), CTX)
    assert diagnosis.kind == "unreachable" and "a token exists" in diagnosis.summary


@pytest.mark.parametrize("reason", ["HeartBeatTimeout", "TokenRevisionNotMatch"])
def test_heartbeat_and_revision_problems_are_transient_not_unreachable(reason: str) -> None:
    diagnosis = diagnose("Failed", kuscia(reason), CTX)
    assert diagnosis.kind == "transient" and not diagnosis.hard
    assert reason in diagnosis.summary and "3-5 minutes" in diagnosis.summary


def test_no_status_yet_is_pending() -> None:
    assert diagnose("", "", CTX).kind == "pending"
    assert diagnose("Failed", "", CTX).kind == "pending"  # KusciaAPI before the first handshake round


def test_our_missing_partner_domain_is_fixed_by_our_own_up() -> None:
    diagnosis = diagnose("Failed", NOT_AUTHORIZED, CTX, Evidence(our_partner_domain_present=False))
    assert diagnosis.kind == "pending" and "`pulumi up` for alice" in diagnosis.next_step


def test_unrecognised_reason_is_unknown_and_points_at_the_logs() -> None:
    diagnosis = diagnose("Failed", kuscia("SomethingNew", "odd"), CTX)
    assert diagnosis.kind == "unknown" and "SomethingNew" in diagnosis.summary
    assert "var/logs/envoy/external.log" in diagnosis.next_step
    assert "kuscia diagnose network alice bob" in diagnosis.next_step


def test_only_key_and_protocol_problems_are_hard() -> None:
    cases = [
        diagnose("Failed", reason, ctx, evidence)
        for reason in (
            NOT_AUTHORIZED,
            kuscia("DestinationUnreachable"),
            kuscia("HeartBeatTimeout"),
            "",
            "odd",
        )
        for ctx in (CTX, LinkContext("alice", "bob", ENDPOINT, partner_protocol="NOTLS"))
        for evidence in (
            None,
            Evidence(partner_has_us=False),
            Evidence(partner_copy_matches=False),
            Evidence(our_copy_matches=False),
            Evidence(gateway_reachable=False),
            Evidence(node_key_matches=False),
        )
    ]
    kinds = {d.kind for d in cases}
    assert kinds >= HARD_KINDS | {"waiting_for_partner", "unreachable", "transient", "unknown"}
    assert all(d.hard == (d.kind in HARD_KINDS) for d in cases)
    assert all(d.next_step and str(d) == f"{d.summary} Next: {d.next_step}" for d in cases)


def test_str_without_next_step_is_the_summary() -> None:
    assert str(Diagnosis("ready", "Route a-b is Ready.", "", False)) == "Route a-b is Ready."
