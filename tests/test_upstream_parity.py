"""Behaviour that must match the real systems we talk to: Kuscia, pulumi-kubernetes, the Pulumi
engine. Each test names the upstream file it was checked against."""

from __future__ import annotations

import json

from tests.test_kusciaapi import Script, client_with, ok


def test_route_rotates_its_token_daily_like_join_to_host() -> None:
    """Kuscia's own peering script creates routes with rollingUpdatePeriod 86400
    (secretflow/kuscia scripts/templates/cluster_domain_route.token.yaml), not 0 (never)."""
    script = Script(ok())
    client_with(script).create_route("alice", "bob", host="h", port=1080, is_tls=True)
    assert json.loads(script.sent[0]["body"])["token_config"]["rolling_update_period"] == 86400
