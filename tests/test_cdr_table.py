"""The `kubectl get cdr`-like table: Ready, not-ready, no-status-yet and missing routes (pure)."""

from __future__ import annotations

import pytest

from kuscia_components.checks.cdr_table import MISSING, RouteRow, ready_column, render_cdr_table

HOST = "kuscia-autonomy-bob.autonomy-bob.svc.cluster.local"
REASON = (
    "LastUpdateAt=2026-11-25 08:00:00 +0000 UTC, Message=TokenNotGenerate, Reason:DestinationIsNotAuthrized"
)


@pytest.mark.parametrize(
    ("status", "reason", "column"),
    [("Succeeded", "", "True"), ("Failed", REASON, "False"), ("Failed", "", ""), ("", "", "")],
)
def test_kusciaapi_status_maps_to_kubectls_ready_column(status: str, reason: str, column: str) -> None:
    assert ready_column(status, reason) == column


def test_table_renders_ready_not_ready_and_missing_routes() -> None:
    rows = [
        RouteRow("alice-bob", "alice", "bob", HOST, "Token", "True", reason="ignored when Ready"),
        RouteRow(
            "bob-alice",
            "bob",
            "alice",
            "",
            "Token",
            "False",
            REASON,
            "bob has not registered alice. Next: ask bob.",
        ),
        RouteRow(
            "alice-carol", "alice", "carol", "", "", MISSING, "", "alice's node has no route alice-carol."
        ),
        RouteRow("carol-alice", "carol", "alice", "", "Token", "", "", ""),
    ]
    lines = render_cdr_table(rows).splitlines()
    assert lines == [
        "NAME          SOURCE   DESTINATION   HOST                                                 AUTHENTICATION   READY",
        f"alice-bob     alice    bob           {HOST}   Token            True",
        "bob-alice     bob      alice                                                              Token            False",
        f"    reason: {REASON}",
        "    diagnosis: bob has not registered alice. Next: ask bob.",
        "alice-carol   alice    carol                                                                               <missing>",
        "    diagnosis: alice's node has no route alice-carol.",
        "carol-alice   carol    alice                                                              Token",
    ]


def test_columns_follow_the_widest_cell() -> None:
    narrow = render_cdr_table([RouteRow("a-b", "a", "b", "h", "Token", "True")]).splitlines()
    assert narrow[0] == "NAME   SOURCE   DESTINATION   HOST   AUTHENTICATION   READY"
    assert narrow[1].index("True") == narrow[0].index("READY")
    assert render_cdr_table([]) == narrow[0]
