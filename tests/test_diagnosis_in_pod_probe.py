"""The link's diagnosis with the in-pod probe: a WaitingForPartner route says whether the partner's
endpoint answered from inside our pod (the recorded real curl outputs of tests/fixtures/curl_probe).

Kuscia reports an unregistered partner and an unreachable one alike (`DestinationIsNotAuthrized`
/ `TokenNotGenerate`, NOTES §3.5, pitfall 4); upstream's network_authorization_check.md tells them
apart with curl from the source node, which is what the probe runs.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kuscia_components.peering import probe
from kuscia_components.peering.diagnosis import Evidence, LinkContext, diagnose

RECORDINGS = json.loads((Path(__file__).parent / "fixtures" / "curl_probe" / "recordings.json").read_text())
ENDPOINT = "https://bob.example.com:1080"
CTX = LinkContext(
    source="alice", destination="bob", endpoint=ENDPOINT, partner_stack="bob", own_stack="alice"
)
NOT_AUTHORIZED = (
    "LastUpdateAt=2026-12-01 10:00:00 +0000 UTC, Message=TokenNotGenerate, Reason:DestinationIsNotAuthrized"
)


def _probed(case: str, tool: str = "curl") -> probe.ProbeResult:
    rec = RECORDINGS["cases"][case][tool]
    return probe.classify(tool, ENDPOINT, rec["exit_code"], rec["stdout"], rec["stderr"])


def test_in_pod_probe_reachable_partner_means_they_have_not_registered_us() -> None:
    found = diagnose("Failed", NOT_AUTHORIZED, CTX, Evidence(pod_probe=_probed("reachable_https")))
    assert found.kind == "waiting_for_partner" and found.answered_in_pod is True
    assert "answered from inside alice's pod (401 from a Kuscia gateway)" in found.summary
    assert "cannot be reached" not in found.summary  # the probe ruled the network out
    assert "pulumi up -s bob" in found.next_step


def test_a_401_from_inside_our_pod_outweighs_the_api_servers_view_of_the_service() -> None:
    """The API server's Service check can be wrong about a gateway (review of #11: a port-forward
    looked for pods labelled with the gateway Service's name); a Kuscia 401 from our pod cannot."""
    evidence = Evidence(
        pod_probe=_probed("reachable_https"),
        gateway_reachable=False,
        gateway_detail="the Service autonomy-bob/kuscia-gateway-bob:1080 has no ready endpoint",
    )
    found = diagnose("Failed", NOT_AUTHORIZED, CTX, evidence)
    assert found.kind == "waiting_for_partner" and found.answered_in_pod is True
    assert "cannot be reached" not in found.summary


@pytest.mark.parametrize(
    ("case", "words"),
    [
        ("connect_timeout", "not allow-listed our egress IP"),
        ("answer_timeout", "sent nothing back in time"),
        ("refused", "nothing listens there"),
        ("dns", "does not resolve from inside our pod"),
        ("other_server_https", "not as a Kuscia gateway"),
    ],
)
def test_in_pod_probe_failure_turns_waiting_into_unreachable_with_its_meaning(case: str, words: str) -> None:
    found = diagnose("Failed", NOT_AUTHORIZED, CTX, Evidence(pod_probe=_probed(case)))
    assert found.kind == "unreachable" and found.answered_in_pod is False
    assert words in found.summary and "did not answer alice's pod" in found.summary
    assert found.next_step  # each failure kind says what fixes it


def test_in_pod_probe_http_https_mismatch_is_a_hard_protocol_mismatch() -> None:
    found = diagnose("Failed", NOT_AUTHORIZED, CTX, Evidence(pod_probe=_probed("https_to_plain_http")))
    assert found.kind == "protocol_mismatch" and found.hard
    assert "wrong version number" in found.summary


def test_in_pod_probe_that_cannot_tell_keeps_kuscias_reading_and_says_why() -> None:
    missing = probe.ProbeResult(
        "tool_missing", ENDPOINT, "bash", "could not probe it: none of curl is in the image"
    )
    found = diagnose("Failed", NOT_AUTHORIZED, CTX, Evidence(pod_probe=missing))
    assert found.kind == "waiting_for_partner" and found.answered_in_pod is None
    assert "The in-pod probe could not tell" in found.summary


def test_a_known_unregistered_partner_still_reports_the_probe() -> None:
    found = diagnose(
        "Failed", NOT_AUTHORIZED, CTX, Evidence(partner_has_us=False, pod_probe=_probed("reachable_https"))
    )
    assert found.kind == "waiting_for_partner" and "answered from inside alice's pod" in found.summary


def test_without_a_probe_nothing_changes() -> None:
    found = diagnose("Failed", NOT_AUTHORIZED, CTX)
    assert found.answered_in_pod is None and "cannot be reached" in found.summary
