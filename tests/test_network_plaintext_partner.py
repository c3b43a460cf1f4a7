"""A network party that would dial a NOTLS party outside the cluster is refused before anything is
deployed (review of #10): the party gets its partners' bundles only at `network up`, after the
partner's node is up, so the bundle check alone (config/exposure `plaintext_partner`) came too
late. Rollouts go through tests/inmemory_runner (an in-memory stand-in for the Pulumi CLI)."""

from __future__ import annotations

import pytest

from kuscia_components.network.automation import deploy_network
from kuscia_components.network.spec import NetworkSpec, NetworkSpecError, PartySpec
from tests.inmemory_runner import InMemoryStackRunner

EXTERNAL_NOTLS = {
    "protocol": "NOTLS",
    "trusted_network": True,
    "public_endpoint": "http://203.0.113.9:31080",
    "service": {"type": "NodePort"},
}


def party(domain_id: str, **settings: object) -> PartySpec:
    return PartySpec(domain_id, runtime="runp", **settings)  # type: ignore[arg-type]


def test_network_up_refuses_before_deploying_anything() -> None:
    runner = InMemoryStackRunner()
    network = NetworkSpec((party("alice"), party("bob", **EXTERNAL_NOTLS)), name="test")
    with pytest.raises(NetworkSpecError) as refused:
        deploy_network(network, runner=runner)
    assert runner.calls == []  # no config set, no stack up: not even bob's node
    [problem] = refused.value.problems
    assert problem.setting == "parties[0] (alice)"
    assert "peers with bob at http://203.0.113.9:31080" in problem.rule and "trustedNetwork" in problem.rule


def test_every_untrusted_party_that_dials_it_is_named() -> None:
    network = NetworkSpec(
        (party("alice"), party("bob", **EXTERNAL_NOTLS), party("carol"), party("dave", trusted_network=True)),
        name="test",
    )
    settings = [p.setting for p in network.problems()]
    assert settings == ["parties[0] (alice)", "parties[2] (carol)"]  # dave trusts the network


def test_trusted_parties_and_in_cluster_partners_pass() -> None:
    trusted = NetworkSpec((party("alice", trusted_network=True), party("bob", **EXTERNAL_NOTLS)), name="test")
    in_cluster = NetworkSpec((party("alice"), party("bob", protocol="NOTLS")), name="test")
    assert trusted.problems() == [] and in_cluster.problems() == []
