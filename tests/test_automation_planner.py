"""Network specs, the phase planner, and rollouts end to end through a stack runner.

Rollouts go through `InMemoryStackRunner`, an IN-MEMORY STAND-IN FOR THE PULUMI CLI (emulation
only, tests/inmemory_runner.py); tests using it say `emulated` in their names. The spec parsing
and the planner functions are the real code, tested directly.
"""

from __future__ import annotations

import json
import logging
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

import pytest

from kuscia_components.config import SETTINGS, ConfigError, parse_party_config
from kuscia_components.network.automation import deploy_network, deploy_party, destroy_network, network_status
from kuscia_components.network.planner import (
    SHORT_WAIT,
    LinkWait,
    StackState,
    plan_links,
    plan_nodes,
    plan_ready,
    plan_removals,
)
from kuscia_components.network.rollout import ProgressEvent
from kuscia_components.network.spec import (
    NETWORK_KEY,
    CapacitySpec,
    ConfigEntry,
    NetworkSpec,
    NetworkSpecError,
    PartySpec,
)
from kuscia_components.network.specfile import load_network_spec
from kuscia_components.offline.stackfile import find_stack_file, load_stack_file
from tests.inmemory_runner import InMemoryStackRunner, cert_for

ROOT = Path(__file__).resolve().parent.parent
CAPACITY: CapacitySpec = {"cpu": "1", "memory": "1Gi", "storage": "1Gi"}


def party(name: str, **settings: Any) -> PartySpec:
    return PartySpec(name, capacity=CAPACITY, **settings)


def mesh(*names: str, topology: Any = "mesh", name: str = "test") -> NetworkSpec:
    return NetworkSpec(tuple(party(n) for n in names), topology, name)


def bundle(name: str, protocol: str = "TLS") -> dict[str, str]:
    scheme = "http" if protocol == "NOTLS" else "https"
    return {
        "domainId": name,
        "cert": cert_for(name),
        "protocol": protocol,
        "endpoint": f"{scheme}://kuscia-autonomy-{name}.autonomy-{name}.svc.cluster.local:1080",
    }


def peers(config: dict[str, ConfigEntry]) -> list[str]:
    return [p["domainId"] for p in json.loads(config.get("kuscia:peers", ConfigEntry("[]")).value)]


def problems_of(err: pytest.ExceptionInfo[ConfigError]) -> dict[str, str]:
    return {p.setting: f"{p.rule} | {p.example}" for p in err.value.problems}


# -- specs ---------------------------------------------------------------------------------------


def test_mesh_links_every_pair_both_ways_and_pairs_only_the_listed_ones() -> None:
    network = mesh("alice", "bob", "carol", "dave")
    assert len(network.links()) == 4 * 3
    assert network.partners("bob") == ("alice", "carol", "dave")
    pairs = mesh("alice", "bob", "carol", topology=(("alice", "bob"), ("carol", "bob")))
    assert sorted(pairs.links()) == [("alice", "bob"), ("bob", "alice"), ("bob", "carol"), ("carol", "bob")]
    assert pairs.partners("alice") == ("bob",)


def test_party_spec_names_every_setting_a_stack_file_can_hold() -> None:
    named = {f.metadata["key"] for f in fields(PartySpec) if f.metadata.get("key")}
    assert named == set(SETTINGS), (
        "a setting was added to config/model.py: run python -m kuscia_components.config.docs"
    )


def test_to_config_is_the_stack_file_shape_with_secrets_marked(rsa_key_pem: str) -> None:
    spec = PartySpec(
        "alice",
        protocol="NOTLS",
        capacity=CAPACITY,
        require_peer_ready=True,
        peering_timeout_seconds=120,
        domain_key_data=rsa_key_pem,
    )
    config = spec.to_config([bundle("bob")], network="demo")
    assert config["kuscia:capacity"] == ConfigEntry('{"cpu":"1","memory":"1Gi","storage":"1Gi"}')
    assert config["kuscia:requirePeerReady"] == ConfigEntry("true")
    assert config["kuscia:peeringTimeoutSeconds"] == ConfigEntry("120")
    assert config["kuscia:domainKeyData"] == ConfigEntry(rsa_key_pem, secret=True)
    assert [k for k, v in config.items() if v.secret] == ["kuscia:domainKeyData"]
    assert config[NETWORK_KEY] == ConfigEntry("demo")
    assert json.loads(config["kuscia:peers"].value) == [bundle("bob")]
    assert rsa_key_pem not in repr(spec) and rsa_key_pem not in repr(config)
    parsed = spec.parse([bundle("bob")])  # what the program will see
    assert parsed.protocol == "NOTLS" and parsed.peers[0].cert == bundle("bob")["cert"]


def test_a_stack_file_becomes_a_party_spec_with_the_same_config() -> None:
    path = find_stack_file("alice", ROOT)
    spec = PartySpec.from_stack_file(path)
    assert (
        spec.domain_id == "alice"
        and spec.stack is None
        and spec.capacity == {"cpu": "4", "memory": "4Gi", "storage": "100Gi", "ephemeralStorage": "200Gi"}
    )
    from_file = load_stack_file(path)
    assert spec.parse() == parse_party_config(from_file.values, from_file.secret_keys)


def test_spec_problems_name_the_setting_the_rule_and_an_example() -> None:
    network = NetworkSpec(
        (
            party("alice"),
            party("alice"),
            PartySpec("bob", protocol="tls-ish", capacity=CAPACITY),  # type: ignore[arg-type]
            party("carol", peers=({"domainId": "bob", "stack": "bob"},)),
            party("dave", database={"mode": "external", "host": "db", "adminPassword": "x"}),
        ),
        (("alice", "zed"), ("bob", "bob"), ("alice", "carol"), ("carol", "alice")),
        "Not A Label",
    )
    with pytest.raises(NetworkSpecError) as err:
        network.validate()
    found = problems_of(err)
    assert "each party once" in found["parties[1].domainId"]
    assert "'zed', which is not a party" in found["topology[0]"]
    assert "links a party to itself" in found["topology[1]"]
    assert "each pair once" in found["topology[3]"]
    assert "DNS label" in found["name"] and "| demo" in found["name"]
    assert any(k.startswith("parties[2] (bob) kuscia:protocol") for k in found)
    assert "a party of this network" in found["parties[3].peers[0]"]
    assert "databaseAdminPassword" in found["parties[4].database.adminPassword"]
    assert all(p.example for p in err.value.problems)


def test_the_sample_network_yaml_is_a_three_party_mesh_with_merged_defaults() -> None:
    loaded = load_network_spec(ROOT / "network.yaml")
    network = loaded.network
    assert [p.domain_id for p in network.parties] == ["alice", "bob", "carol"] and network.name == "demo"
    assert len(network.links()) == 6
    carol = network.party("carol")
    assert carol.protocol == "NOTLS" and carol.capacity == {
        "cpu": "2",
        "memory": "4Gi",
        "storage": "100Gi",
        "ephemeralStorage": "200Gi",
    }
    assert network.party("alice").protocol == "TLS"


def test_network_yaml_takes_secrets_from_the_environment_or_files_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, rsa_key_pem: str
) -> None:
    (tmp_path / "alice.pem").write_text(rsa_key_pem)
    monkeypatch.setenv("BOB_DB_ADMIN", "s3cr3t-Pa55word")
    spec = tmp_path / "network.yaml"
    spec.write_text(
        "backend: file://./state\n"
        "parties:\n"
        "  - {domainId: alice, capacity: {cpu: '1', memory: 1Gi, storage: 1Gi}, domainKeyData: {fromFile: alice.pem}}\n"
        "  - domainId: bob\n"
        "    capacity: {cpu: '1', memory: 1Gi, storage: 1Gi}\n"
        "    database: {mode: external, host: db.example.com, adminUser: root}\n"
        "    databaseAdminPassword: {fromEnv: BOB_DB_ADMIN}\n"
    )
    loaded = load_network_spec(spec)
    assert loaded.backend == f"file://{(tmp_path / 'state').resolve()}"  # relative to the spec file
    alice, bob = loaded.network.parties
    assert alice.to_config()["kuscia:domainKeyData"] == ConfigEntry(rsa_key_pem, secret=True)
    assert bob.to_config()["kuscia:databaseAdminPassword"] == ConfigEntry("s3cr3t-Pa55word", secret=True)

    monkeypatch.delenv("BOB_DB_ADMIN")
    spec.write_text(spec.read_text().replace("{fromFile: alice.pem}", "literal-key-text"))
    with pytest.raises(NetworkSpecError) as err:
        load_network_spec(spec)
    found = problems_of(err)
    assert "instead of writing it in the spec" in found["parties[0].domainKeyData"]
    assert "ALICE_DOMAIN_KEY_DATA" in found["parties[0].domainKeyData"]
    assert "$BOB_DB_ADMIN, which is not set" in found["parties[1].databaseAdminPassword.fromEnv"]
    assert "literal-key-text" not in str(err.value)


@pytest.mark.parametrize(
    ("text", "setting", "words"),
    [
        ("parties: [{domainId: alice}\n", "(file)", "not valid YAML at line 2"),
        ("- alice\n", "(file)", "must be a mapping"),
        ("topolgy: mesh\nparties: [{domainId: alice}]\n", "topolgy", "did you mean 'topology'"),
        ("parties: [{name: alice}]\n", "parties[0].domainId", "is required"),
        ("parties: []\n", "parties", "at least one party"),
        ("parties: {alice: {}}\n", "parties", "must be a list"),
        ("topology: star\nparties: [{domainId: alice}]\n", "topology", "mesh or a list"),
        ("backend: 3\nparties: [{domainId: alice}]\n", "backend", "must be a string"),
    ],
)
def test_bad_network_yaml_is_a_problem_list(tmp_path: Path, text: str, setting: str, words: str) -> None:
    path = tmp_path / "network.yaml"
    path.write_text(text)
    with pytest.raises(NetworkSpecError) as err:
        load_network_spec(path)
    assert words in problems_of(err)[setting]


def test_a_missing_spec_file_is_a_problem() -> None:
    with pytest.raises(NetworkSpecError) as err:
        load_network_spec(Path("/nonexistent/network.yaml"))
    assert "existing file" in problems_of(err)["--spec"]


# -- the planner (pure) ----------------------------------------------------------------------------


def outputs_for(name: str, links: dict[str, str] | None = None) -> dict[str, Any]:
    return {"peeringBundle": bundle(name), "links": {p: {"status": s} for p, s in (links or {}).items()}}


def test_first_rollout_plans_every_node_alone_then_every_party_with_all_partners() -> None:
    network = mesh("alice", "bob", "carol")
    nodes = plan_nodes(network, {})
    assert [s.party for s in nodes] == ["alice", "bob", "carol"]
    assert all(peers(dict(s.config)) == [] and s.wait == SHORT_WAIT for s in nodes)
    assert SHORT_WAIT.require_ready is False and SHORT_WAIT.timeout_seconds <= 10  # a brief look, never fatal
    states = {s.party: StackState(dict(s.config), outputs_for(s.party)) for s in nodes}
    links = plan_links(network, states, ran={"alice", "bob", "carol"}, failed=set())
    assert {s.party: peers(dict(s.config)) for s in links} == {
        "alice": ["bob", "carol"],
        "bob": ["alice", "carol"],
        "carol": ["alice", "bob"],
    }


def test_nodes_phase_skips_parties_whose_own_settings_did_not_change() -> None:
    network = mesh("alice", "bob")
    states = {}
    for p in network.parties:
        other = "bob" if p.domain_id == "alice" else "alice"
        states[p.domain_id] = StackState(
            p.to_config([bundle(other)], network="test"), outputs_for(p.domain_id)
        )
    assert plan_nodes(network, states) == []
    changed = NetworkSpec((replace(network.parties[0], protocol="NOTLS"), network.parties[1]), name="test")
    assert [s.party for s in plan_nodes(changed, states)] == ["alice"]
    grown = plan_nodes(mesh("alice", "bob", "carol"), states)  # a new partner is not a node change
    assert [s.party for s in grown] == ["carol"] and peers(dict(grown[0].config)) == ["alice", "bob"]


def test_ready_phase_reruns_only_parties_with_waiting_links_or_changed_partners() -> None:
    network = mesh("alice", "bob", "carol")
    states = {}
    for p in network.parties:
        partners = network.partners(p.domain_id)
        links = {o: "Ready" for o in partners}
        if p.domain_id == "alice":
            links["bob"] = "WaitingForPartner"
        states[p.domain_id] = StackState(
            p.to_config([bundle(o) for o in partners], network="test"), outputs_for(p.domain_id, links)
        )
    wait = LinkWait(300)
    assert [s.party for s in plan_ready(network, states, failed=set(), wait=wait)] == ["alice"]
    assert plan_ready(network, states, failed={"bob"}, wait=wait) == []  # bob failed: nothing to wait for
    assert plan_ready(network, states, failed=set(), wait=wait, touched={"carol"}) == []
    assert [s.party for s in plan_ready(network, states, failed=set(), wait=wait, touched={"bob"})] == [
        "alice"
    ]
    states["carol"].outputs = {**outputs_for("carol"), "peeringBundle": bundle("carol", "NOTLS")}
    replanned = plan_ready(network, states, failed=set(), wait=wait, touched=set())
    assert [s.party for s in replanned] == ["alice", "bob"]  # carol's bundle changed under them


def test_removals_are_the_members_left_out_of_the_spec() -> None:
    assert plan_removals(mesh("alice", "bob"), ["alice", "bob", "carol"]) == ["carol"]


# -- rollouts through the in-memory stand-in for the Pulumi CLI -----------------------------------


def test_three_party_mesh_rollout_emulated_nodes_first_then_links_then_ready() -> None:
    runner = InMemoryStackRunner()
    report = deploy_network(mesh("alice", "bob", "carol"), runner=runner)
    assert report.ok, report.format_table()
    assert len(report.links) == 6 and {link.status for link in report.links} == {"Ready"}
    assert all(link.ready_after_seconds is not None and link.route_name for link in report.links)
    ups = runner.ups()
    alone = [c for c in ups if not peers(c.config)]
    assert sorted(c.stack for c in alone) == ["alice", "bob", "carol"]
    assert max(c.at for c in alone) <= min(c.at for c in ups if peers(c.config))  # nodes before links
    assert all(
        set(p.phases) <= {"nodes", "links", "ready"} and "nodes" in p.phases for p in report.parties.values()
    )
    for stack in ("alice", "bob", "carol"):  # the stacks end with exactly the spec's config
        network = mesh("alice", "bob", "carol")
        me = network.party(stack)
        assert runner.configs[stack] == me.to_config(
            [runner.bundle(o, runner.configs[o]) for o in network.partners(stack)], network="test"
        )


@pytest.mark.parametrize("limit", [1, 2, 5])
def test_parallelism_is_bounded_emulated(limit: int) -> None:
    runner = InMemoryStackRunner(delay=0.1)  # long enough for every worker to be inside an up at once
    deploy_network(mesh("alice", "bob", "carol", "dave", "erin"), runner=runner, parallelism=limit)
    assert runner.max_running == limit


def test_link_waits_emulated_short_in_phases_one_and_two_then_up_to_the_deadline() -> None:
    runner = InMemoryStackRunner()
    network = NetworkSpec((party("alice", require_peer_ready=True), party("bob")), name="test")
    runner.never_ready.add(("alice", "bob"))
    report = deploy_network(network, runner=runner, ready_timeout_seconds=120)
    waits = [(c.stack, c.wait) for c in runner.ups()]
    assert all(w == SHORT_WAIT for _, w in waits[:4])  # nodes, links: short, never required
    ready = waits[4:]
    assert ready and all(
        w is not None and w.require_ready is None and w.timeout_seconds <= 120 for _, w in ready
    )
    assert {s for s, _ in ready} >= {"alice"}
    link = next(link for link in report.links if (link.source, link.destination) == ("alice", "bob"))
    assert link.status == "WaitingForPartner" and "has not registered" in link.diagnosis
    assert not report.ok
    assert runner.configs["alice"]["kuscia:requirePeerReady"] == ConfigEntry("true")  # config untouched


def test_a_failed_party_does_not_hide_the_others_emulated() -> None:
    runner = InMemoryStackRunner()
    runner.fail_up.add("carol")
    report = deploy_network(mesh("alice", "bob", "carol"), runner=runner)
    carol = report.parties["carol"]
    assert carol.status == "failed" and "API server is unreachable" in carol.error
    assert report.parties["alice"].status == report.parties["bob"].status == "ok"
    status = {(link.source, link.destination): link for link in report.links}
    assert status["alice", "bob"].status == status["bob", "alice"].status == "Ready"
    assert (
        status["carol", "alice"].status == "Unknown"
        and "carol: its stack failed" in status["carol", "alice"].diagnosis
    )
    assert status["alice", "carol"].status == "NotConfigured"
    assert "unreachable" in status["alice", "carol"].diagnosis
    assert not report.ok
    assert [c.stack for c in runner.ups()].count("carol") == 1  # left out after it failed

    runner.fail_up.clear()  # the cause is fixed: the next run completes the mesh
    assert deploy_network(mesh("alice", "bob", "carol"), runner=runner).ok


def test_rerun_converges_emulated_one_noop_up_per_party_and_no_config_change() -> None:
    runner = InMemoryStackRunner()
    network = mesh("alice", "bob", "carol")
    deploy_network(network, runner=runner)
    before = {k: dict(v) for k, v in runner.configs.items()}
    calls = len(runner.calls)
    report = deploy_network(network, runner=runner)
    assert report.ok and runner.configs == before
    again = runner.calls[calls:]
    assert sorted(c.stack for c in again if c.op == "up") == ["alice", "bob", "carol"]
    assert all(c.config == before[c.stack] for c in again)
    assert all(set(p.phases) == {"links"} for p in report.parties.values())


def test_removing_a_party_drops_its_links_then_destroys_its_stack_emulated() -> None:
    runner = InMemoryStackRunner()
    deploy_network(mesh("alice", "bob", "carol"), runner=runner)
    runner.set_config("unrelated", {"kuscia:domainId": ConfigEntry("zed")})  # no network marker
    runner.set_config("other-net", {NETWORK_KEY: ConfigEntry("elsewhere")})
    report = deploy_network(mesh("alice", "bob"), runner=runner)
    assert report.parties["carol"].status == "removed" and report.ok
    assert sorted(runner.configs) == ["alice", "bob", "other-net", "unrelated"]
    assert runner.peers_of("alice") == ["bob"] and runner.peers_of("bob") == ["alice"]
    destroyed = next(c.at for c in runner.calls if c.op == "destroy")
    dropped = [c.at for c in runner.ups() if c.stack in ("alice", "bob") and "carol" not in peers(c.config)]
    assert dropped and max(dropped) <= destroyed  # partners dropped carol before carol went


def test_a_failed_removal_is_reported_emulated() -> None:
    runner = InMemoryStackRunner()
    deploy_network(mesh("alice", "bob", "carol"), runner=runner)
    runner.fail_destroy.add("carol")
    report = deploy_network(mesh("alice", "bob"), runner=runner)
    assert report.parties["carol"].status == "failed" and "namespace stuck" in report.parties["carol"].error
    assert not report.ok


def test_a_changed_bundle_reaches_every_partner_in_the_same_run_emulated() -> None:
    runner = InMemoryStackRunner()
    deploy_network(mesh("alice", "bob", "carol"), runner=runner, parallelism=1)
    runner.generation["carol"] = 1  # carol's node gets a new key (cert) on its next up
    network = NetworkSpec((party("alice"), party("bob"), party("carol", protocol="NOTLS")), name="test")
    report = deploy_network(network, runner=runner, parallelism=1)
    assert report.ok, report.format_table()
    for stack in ("alice", "bob"):
        carol = next(
            p for p in json.loads(runner.configs[stack]["kuscia:peers"].value) if p["domainId"] == "carol"
        )
        assert carol["cert"] == cert_for("carol", 1) and carol["endpoint"].startswith("http://")


def test_explicit_pairs_rollout_emulated() -> None:
    runner = InMemoryStackRunner()
    report = deploy_network(
        mesh("alice", "bob", "carol", topology=(("alice", "bob"), ("bob", "carol"))), runner=runner
    )
    assert report.ok and len(report.links) == 4
    assert runner.peers_of("alice") == ["bob"] and runner.peers_of("bob") == ["alice", "carol"]


def test_progress_goes_to_the_callback_logging_and_pulumi_output_emulated(
    caplog: pytest.LogCaptureFixture,
) -> None:
    events: list[ProgressEvent] = []
    lines: list[tuple[str, str]] = []
    with caplog.at_level(logging.INFO, logger="kuscia_components.network.rollout"):
        deploy_network(
            mesh("alice", "bob"),
            runner=InMemoryStackRunner(),
            on_progress=events.append,
            on_output=lambda stack, line: lines.append((stack, line)),
        )
    assert [e.phase for e in events][:2] == ["plan", "nodes"] and events[-1].phase == "done"
    assert any(e.party == "alice" and "links 1/1 Ready" in e.message for e in events)
    logged = [r.getMessage() for r in caplog.records if r.name == "kuscia_components.network.rollout"]
    assert logged == [str(e) for e in events]
    assert ("alice", "Updating (alice):\n") in lines


def test_secrets_are_secret_config_and_never_in_reports_logs_or_errors_emulated(
    rsa_key_pem: str, caplog: pytest.LogCaptureFixture
) -> None:
    password = "Adm1n-pa55word-for-the-test"
    alice = party("alice", domain_key_data=rsa_key_pem)
    bob = party(
        "bob",
        database={"mode": "external", "host": "db.example.com", "adminUser": "root"},
        database_admin_password=password,
    )
    runner = InMemoryStackRunner()
    events: list[ProgressEvent] = []
    with caplog.at_level(logging.INFO):
        report = deploy_network(
            NetworkSpec((alice, bob), name="test"), runner=runner, on_progress=events.append
        )
    assert report.ok
    assert {k for k, v in runner.configs["alice"].items() if v.secret} == {"kuscia:domainKeyData"}
    assert {k for k, v in runner.configs["bob"].items() if v.secret} == {"kuscia:databaseAdminPassword"}
    shown = json.dumps(report.to_dict()) + report.format_table() + repr(report) + caplog.text + str(events)
    for secret in (password, rsa_key_pem, rsa_key_pem.splitlines()[1], "token-of-alice"):
        assert secret not in shown
    assert report.parties["alice"].outputs["kusciaapiToken"] == "[secret]"

    class Leaky(InMemoryStackRunner):  # a Pulumi error that echoes a secret back
        def up(self, stack: str, **kwargs: Any) -> dict[str, Any]:
            raise RuntimeError(f"error: provider said: bad password {password!r}")

    failed = deploy_network(NetworkSpec((alice, bob), name="test"), runner=Leaky())
    assert password not in failed.parties["bob"].error and "****" in failed.parties["bob"].error


def test_status_reads_outputs_and_names_orphans_emulated() -> None:
    runner = InMemoryStackRunner()
    deploy_network(mesh("alice", "bob", "carol"), runner=runner)
    status = network_status(mesh("alice", "bob", "carol"), runner=runner)
    assert status.ok and len(status.links) == 6
    assert (
        status.parties["alice"].bundle is not None and status.parties["alice"].namespace == "autonomy-alice"
    )
    calls = len(runner.calls)
    partial = network_status(mesh("alice", "bob", "dave"), runner=runner)
    assert len(runner.calls) == calls  # status changes nothing
    assert partial.parties["dave"].status == "absent" and partial.parties["carol"].status == "orphaned"
    assert not partial.ok


def test_destroy_removes_every_member_and_is_idempotent_emulated() -> None:
    runner = InMemoryStackRunner()
    deploy_network(mesh("alice", "bob", "carol"), runner=runner)
    runner.set_config("unrelated", {"kuscia:domainId": ConfigEntry("zed")})
    report = destroy_network(mesh("alice", "bob"), runner=runner)  # carol left the spec but is a member
    assert {p.stack: p.status for p in report.parties.values()} == {
        "alice": "removed",
        "bob": "removed",
        "carol": "removed",
    }
    assert list(runner.configs) == ["unrelated"]
    again = destroy_network(mesh("alice", "bob"), runner=runner)
    assert {p.status for p in again.parties.values()} == {"absent"}


def test_deploy_party_alone_with_a_partner_bundle_emulated() -> None:
    runner = InMemoryStackRunner()
    report = deploy_party(party("alice"), partners=[bundle("bob")], runner=runner)
    assert report.status == "ok" and report.bundle is not None and report.bundle["domainId"] == "alice"
    assert runner.peers_of("alice") == ["bob"] and NETWORK_KEY not in runner.configs["alice"]
    with pytest.raises(ConfigError) as err:
        deploy_party(party("alice"), partners=[{**bundle("bob"), "cert": "not a certificate"}], runner=runner)
    assert any("peers[0].cert" in p.setting for p in err.value.problems)
    assert len(runner.ups()) == 1  # the bad partner was refused before any Pulumi call


def test_a_bad_spec_is_refused_before_any_stack_is_touched_emulated() -> None:
    runner = InMemoryStackRunner()
    with pytest.raises(NetworkSpecError):
        deploy_network([party("alice"), party("alice")], runner=runner)
    assert runner.calls == []
