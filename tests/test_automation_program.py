"""The Pulumi side of the Automation API: the inline program and the workspace.

- The inline program (`automation.inline_program`) runs under Pulumi mocks (OfflineMocks: our
  own offline-safe dynamic providers really run, Kubernetes objects echo their inputs) for each
  party of a 3-party mesh, and must register exactly the resources the stack-file path does.
- Workspace settings, project settings and plugin pins are checked directly.
- `PulumiStackRunner` runs against an EMULATED PULUMI CLI (a small script answering the commands
  the real `pulumi.automation` LocalWorkspace sends; tests say `emulated`), to pin down what
  reaches the CLI: secrets only on stdin, plugins pinned, stale config removed. There is no real
  Pulumi CLI here; the missing-CLI error is tested for real in test_automation_cli.py.
"""

from __future__ import annotations

import base64
import json
import sys
from importlib import metadata
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml
from pulumi.runtime import rpc

from kuscia_components.network.automation import (
    DEFAULT_PROJECT,
    MAIN_PY,
    PulumiStackRunner,
    StackOperationError,
    WorkspaceSettings,
    inline_program,
    plugin_pins,
    project_settings,
)
from kuscia_components.network.planner import SECRET_OUTPUT, LinkWait
from kuscia_components.network.spec import NETWORK_KEY, ConfigEntry, NetworkSpec, PartySpec
from kuscia_components.offline.mocks import OfflineMocks, RecordedResource, run_offline, unwrap_secrets
from kuscia_components.offline.stackfile import load_stack_file
from kuscia_components.program import party_program
from tests.helpers import offline_safe

ROOT = Path(__file__).resolve().parent.parent
CAPACITY = {"cpu": "1", "memory": "1Gi", "storage": "1Gi"}
PROTOCOLS = {"alice": "TLS", "bob": "TLS", "carol": "NOTLS"}
NETWORK = NetworkSpec(
    tuple(PartySpec(n, protocol=p, capacity=CAPACITY) for n, p in PROTOCOLS.items()),  # type: ignore[arg-type]
    name="trio",
)


class Replay:
    """Records what our dynamic providers generate (keys, certs, passwords) in the first run and
    hands the same values back in later runs, so two runs can be compared input by input."""

    def __init__(self) -> None:
        self.recorded: dict[str, dict[str, Any]] = {}

    def hook(self, name: str, outs: dict[str, Any]) -> None:
        if name in self.recorded:
            outs.clear()
            outs.update(self.recorded[name])
        else:
            self.recorded[name] = dict(outs)


def run(
    program: Any,
    stack: str,
    config: dict[str, ConfigEntry],
    *,
    replay: Replay | None = None,
    stack_outputs: dict[str, Any] | None = None,
) -> tuple[OfflineMocks, dict[str, Any]]:
    mocks = OfflineMocks(
        cluster_ip="10.96.0.10",
        stack_outputs=stack_outputs or {},
        execute_dynamic=offline_safe,
        on_dynamic_create=replay.hook if replay else None,
    )
    outputs = run_offline(
        program,
        mocks,
        stack=stack,
        config={k: v.value for k, v in config.items()},
        secret_keys=[k for k, v in config.items() if v.secret],
    )
    return mocks, outputs


def from_stack_file(path: Path) -> dict[str, ConfigEntry]:
    """What `pulumi up -s <stack>` hands the program for this stack file."""
    loaded = load_stack_file(path)
    return {f"kuscia:{k}": ConfigEntry(v, k in loaded.secret_keys) for k, v in loaded.values.items()}


def registrations(
    mocks: OfflineMocks, *, skip_types: tuple[str, ...] = ()
) -> list[tuple[str, str, str, str]]:
    """(type, name, parent, inputs) of every resource, providers' pickles left out."""

    def inputs(resource: RecordedResource) -> str:
        plain = {k: v for k, v in resource.plain_inputs.items() if k != "__provider"}
        return json.dumps(plain, sort_keys=True, default=str)

    return sorted(
        (r.type, r.name, r.parent_urn, inputs(r)) for r in mocks.resources if r.type not in skip_types
    )


@pytest.fixture(scope="module")
def bundles() -> dict[str, dict[str, str]]:
    """Phase 1 for real: each party's program alone, and the peering bundle it exports."""
    found = {}
    for party in NETWORK.parties:
        _mocks, outputs = run(inline_program(), party.domain_id, party.to_config(network=NETWORK.name))
        found[party.domain_id] = outputs["peeringBundle"]
    return found


@pytest.mark.parametrize("me", list(PROTOCOLS))
def test_inline_program_registers_what_the_stack_file_path_registers(
    me: str, bundles: dict[str, dict[str, str]], tmp_path: Path
) -> None:
    party = NETWORK.party(me)
    partners = [bundles[p] for p in NETWORK.partners(me)]
    replay = Replay()
    inline, inline_outputs = run(
        inline_program(), me, party.to_config(partners, network=NETWORK.name), replay=replay
    )

    stack_file = tmp_path / f"Pulumi.{me}.yaml"  # what an operator writes by hand for the same party
    stack_file.write_text(
        yaml.safe_dump(
            {
                "config": {
                    "kuscia:domainId": me,
                    "kuscia:protocol": PROTOCOLS[me],
                    "kuscia:capacity": CAPACITY,
                    "kuscia:peers": [
                        {
                            "domainId": b["domainId"],
                            "endpoint": b["endpoint"],
                            "cert": b["cert"],
                            "protocol": b["protocol"],
                        }
                        for b in partners
                    ],
                }
            }
        )
    )
    by_file, file_outputs = run(party_program, me, from_stack_file(stack_file), replay=replay)

    assert registrations(inline) == registrations(by_file)
    assert inline_outputs == file_outputs
    links = [r for r in inline.resources if r.type.endswith("PartnerLink")]
    assert sorted(r.plain_inputs["partner_domain_id"] for r in links) == sorted(NETWORK.partners(me))
    for link in links:
        partner = link.plain_inputs["partner_domain_id"]
        assert link.plain_inputs["partner_cert"] == bundles[partner]["cert"]
        assert link.plain_inputs["partner_endpoint"].startswith(
            "http://" if partner == "carol" else "https://"
        )


def test_stack_references_give_the_same_links_as_inline_bundles(
    bundles: dict[str, dict[str, str]], tmp_path: Path
) -> None:
    """The other stack-file form (partners by StackReference): the same resources, the links
    differing only in the stack they name for hints."""
    partners = [bundles[p] for p in NETWORK.partners("alice")]
    replay = Replay()
    inline, _ = run(inline_program(), "alice", NETWORK.party("alice").to_config(partners), replay=replay)
    stack_file = tmp_path / "Pulumi.alice.yaml"
    stack_file.write_text(
        yaml.safe_dump(
            {
                "config": {
                    "kuscia:domainId": "alice",
                    "kuscia:protocol": "TLS",
                    "kuscia:capacity": CAPACITY,
                    "kuscia:peers": [{"domainId": p, "stack": p} for p in ("bob", "carol")],
                }
            }
        )
    )
    stack_outputs = {p: {"peeringBundle": bundles[p]} for p in ("bob", "carol")}
    by_ref, _ = run(
        party_program, "alice", from_stack_file(stack_file), replay=replay, stack_outputs=stack_outputs
    )

    hints = sorted(
        r.plain_inputs["partner_stack"] for r in by_ref.resources if r.type.endswith("PartnerLink")
    )
    assert hints == ["bob", "carol"]  # these links really came through StackReferences
    ignore = ("pulumi:pulumi:StackReference",)

    def without_stack_hint(rows: list[tuple[str, str, str, str]]) -> list[tuple[str, str, str, str]]:
        return [
            (t, n, p, json.dumps({**json.loads(i), "partner_stack": None}, sort_keys=True))
            if t.endswith("PartnerLink")
            else (t, n, p, _links_without_stack_hint(i))
            if t.endswith("LinkReadiness")  # it carries the links' inputs
            else (t, n, p, i)
            for t, n, p, i in rows
        ]

    assert without_stack_hint(registrations(inline, skip_types=ignore)) == without_stack_hint(
        registrations(by_ref, skip_types=ignore)
    )


def _links_without_stack_hint(inputs: str) -> str:
    given = json.loads(inputs)
    given["links"] = [{**link, "partner_stack": None} for link in given["links"]]
    return json.dumps(given, sort_keys=True)


def test_a_phase_wait_changes_only_the_links_wait_inputs(bundles: dict[str, dict[str, str]]) -> None:
    config = NETWORK.party("bob").to_config([bundles["alice"], bundles["carol"]], network=NETWORK.name)
    replay = Replay()
    plain, _ = run(inline_program(), "bob", config, replay=replay)
    short, _ = run(inline_program(LinkWait(7, require_ready=True)), "bob", config, replay=replay)
    differing = set()
    ordered = [sorted(m.resources, key=lambda r: (r.type, r.name)) for m in (plain, short)]
    for a, b in zip(*ordered, strict=True):
        assert (a.type, a.name) == (b.type, b.name)
        differing |= {
            (a.type.rsplit(":", 1)[-1], k)
            for k in a.plain_inputs
            if a.plain_inputs[k] != b.plain_inputs.get(k)
        }
    assert differing == {
        ("PartnerLink", "timeout_seconds"),
        ("PartnerLink", "require_ready"),
        ("LinkReadiness", "links"),  # the one wait for all links, with their wait inputs
    }
    waits = {
        (r.plain_inputs["timeout_seconds"], r.plain_inputs["require_ready"])
        for r in short.resources
        if r.type.endswith("PartnerLink")
    }
    assert waits == {(7, True)}


def test_secrets_of_a_party_spec_stay_secret_in_the_program(
    rsa_key_pem: str, bundles: dict[str, dict[str, str]]
) -> None:
    party = PartySpec("alice", capacity=CAPACITY, domain_key_data=rsa_key_pem)  # type: ignore[arg-type]
    config = party.to_config([bundles["bob"]], network="trio")
    assert config["kuscia:domainKeyData"].secret
    mocks, outputs = run(inline_program(), "alice", config)
    key_body = rsa_key_pem.splitlines()[1]
    assert key_body not in json.dumps(outputs, default=str)
    for resource in mocks.resources:
        for state in (resource.inputs, resource.state):
            assert key_body not in json.dumps(_masked(state), default=str), f"{resource.type} {resource.name}"
        pickled = resource.inputs.get("__provider")
        if isinstance(pickled, str):
            assert key_body.encode() not in base64.b64decode(pickled)
    identity = next(r for r in mocks.resources if "DomainIdentity" in r.type)
    assert key_body in json.dumps(unwrap_secrets(identity.state), default=str)  # it is there, as a secret


def _masked(value: Any) -> Any:
    """`value` with every secret replaced, as the engine would show it."""
    if rpc.is_rpc_secret(value):
        return "[secret]"
    if isinstance(value, dict):
        return {k: _masked(v) for k, v in value.items() if k != "__provider"}
    if isinstance(value, list):
        return [_masked(v) for v in value]
    return value


# -- workspace settings -----------------------------------------------------------------------------


def test_project_settings_are_the_repos_with_this_interpreter_and_the_backend(tmp_path: Path) -> None:
    repo = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
    assert {
        k: repo[k] for k in DEFAULT_PROJECT
    } == DEFAULT_PROJECT  # installed without the repo: same project
    settings = project_settings(WorkspaceSettings(work_dir=tmp_path))
    assert settings.name == repo["name"] and settings.description == repo["description"]
    assert settings.runtime.name == "python"  # type: ignore[union-attr]
    options = settings.runtime.options or {}  # type: ignore[union-attr]
    if sys.prefix != sys.base_prefix:
        assert options["virtualenv"] == sys.prefix  # dynamic providers import this very package
    assert settings.backend is not None and settings.backend.url == f"file://{tmp_path.resolve()}/state"
    other = tmp_path / "project"
    other.mkdir()
    (other / "Pulumi.yaml").write_text("name: acme-kuscia\nruntime: python\n")
    assert project_settings(WorkspaceSettings(work_dir=tmp_path, project_dir=other)).name == "acme-kuscia"


def test_plugins_are_pinned_to_the_installed_provider_sdks() -> None:
    assert plugin_pins() == [
        ("kubernetes", "v" + metadata.version("pulumi-kubernetes")),
        ("mysql", "v" + metadata.version("pulumi-mysql")),
    ]


@pytest.mark.parametrize(
    ("settings", "environ", "setting", "words"),
    [
        (WorkspaceSettings(), {}, "PULUMI_CONFIG_PASSPHRASE", "must be set"),
        (
            WorkspaceSettings(),
            {"PULUMI_CONFIG_PASSPHRASE_FILE": "/nonexistent"},
            "PULUMI_CONFIG_PASSPHRASE_FILE",
            "readable file",
        ),
        (
            WorkspaceSettings(backend_url="ftp://x"),
            {"PULUMI_CONFIG_PASSPHRASE": "p"},
            "backend",
            "backend URL",
        ),
        (
            WorkspaceSettings(secrets_provider="default"),
            {"PULUMI_CONFIG_PASSPHRASE": "p"},
            "secretsProvider",
            "Pulumi Cloud",
        ),
        (WorkspaceSettings(secrets_provider="vault"), {}, "secretsProvider", "KMS URL"),
    ],
)
def test_workspace_settings_that_cannot_work_are_named(
    settings: WorkspaceSettings, environ: dict[str, str], setting: str, words: str
) -> None:
    found = {p.setting: f"{p.rule} | {p.example}" for p in settings.problems(environ)}
    assert words in found[setting] and "|" in found[setting]


@pytest.mark.parametrize(
    ("settings", "environ"),
    [
        (WorkspaceSettings(), {"PULUMI_CONFIG_PASSPHRASE": ""}),
        (WorkspaceSettings(passphrase="given-in-code"), {}),
        (WorkspaceSettings(backend_url="https://api.pulumi.com"), {}),  # the service encrypts
        (WorkspaceSettings(backend_url="s3://bucket/kuscia", secrets_provider="awskms://alias/kuscia"), {}),
    ],
)
def test_workspace_settings_that_work(settings: WorkspaceSettings, environ: dict[str, str]) -> None:
    assert settings.problems(environ) == []


def test_an_explicit_passphrase_reaches_pulumi_but_no_repr() -> None:
    settings = WorkspaceSettings(passphrase="correct-horse-battery")
    assert settings.cli_env()["PULUMI_CONFIG_PASSPHRASE"] == "correct-horse-battery"
    assert settings.cli_env()["PULUMI_PYTHON_CMD"] == sys.executable
    assert "correct-horse" not in repr(settings)


# -- PulumiStackRunner against an emulated CLI --------------------------------------------------------

FAKE_PULUMI = r"""
import json, os, sys
if sys.argv[1:] == ["version"]:  # asked before any workspace environment exists
    print("v3.272.0"); sys.exit(0)
state_path, log_path = os.environ["FAKE_PULUMI_STATE"], os.environ["FAKE_PULUMI_LOG"]
argv = [a for a in sys.argv[1:] if a != "--non-interactive"]  # PulumiCommand.run adds it
stdin = sys.stdin.read() if argv[:2] == ["config", "set"] else None
with open(log_path, "a") as log:
    log.write(json.dumps({"argv": argv, "stdin": stdin, "passphrase": os.environ.get("PULUMI_CONFIG_PASSPHRASE"),
                          "cwd": os.getcwd()}) + "\n")
state = json.load(open(state_path)) if os.path.exists(state_path) else {}
stack = argv[argv.index("--stack") + 1] if "--stack" in argv else None
def fail(text):
    sys.stderr.write(text + "\n"); sys.exit(255)
def save():
    json.dump(state, open(state_path, "w"))
if argv[:2] == ["plugin", "install"]:
    pass
elif argv[:2] == ["stack", "init"]:
    if argv[2] in state: fail(f"error: stack '{argv[2]}' already exists")
    state[argv[2]] = {"config": {}, "outputs": {}, "provider": argv[argv.index("--secrets-provider") + 1]}; save()
elif argv[:2] == ["stack", "select"]:
    if stack not in state: fail(f"error: no stack named '{stack}' found")
elif argv[:3] == ["stack", "ls", "--json"]:
    print(json.dumps([{"name": n, "current": False} for n in sorted(state)]))
elif argv[:1] == ["config"] and "--json" in argv:
    print(json.dumps(state[stack]["config"]))
elif argv[:2] == ["config", "set-all"]:
    for flag, pair in zip(argv[2::1], argv[3::1]):
        if flag in ("--plaintext", "--secret"):
            key, _, value = pair.partition("=")
            state[stack]["config"][key] = {"value": value, "secret": flag == "--secret"}
    save()
elif argv[:2] == ["config", "rm-all"]:
    for key in argv[4:]:
        state[stack]["config"].pop(key, None)
    save()
elif argv[:2] == ["config", "set"] and "--secret" in argv:
    state[stack]["config"][argv[2]] = {"value": stdin, "secret": True}; save()
elif argv[:2] == ["stack", "output"]:
    print(json.dumps({k: ("[secret]" if v[1] else v[0]) for k, v in state[stack]["outputs"].items()}))
elif argv[:1] == ["destroy"]:
    if stack == "stuck": fail("error: deleting urn:pulumi:stuck::kuscia-p2p::kubernetes:core/v1:Namespace::ns: timed out")
    state[stack]["outputs"] = {}; save()
elif argv[:3] == ["stack", "history", "--json"]:
    print(json.dumps([{"kind": "destroy", "startTime": "2026-01-01T00:00:00.000000Z", "message": "",
                       "environment": {}, "config": {}, "result": "succeeded"}]))
elif argv[:2] == ["stack", "rm"]:
    state.pop(argv[-1]); save()
else:
    fail("fake pulumi: unsupported command " + " ".join(argv))
"""


@pytest.fixture
def emulated_cli(tmp_path: Path) -> tuple[WorkspaceSettings, Path, Path]:
    root = tmp_path / "pulumi"
    (root / "bin").mkdir(parents=True)
    script = root / "bin" / "pulumi"
    script.write_text(f"#!{sys.executable}\n{FAKE_PULUMI}")
    script.chmod(0o755)
    state, log = tmp_path / "fake-state.json", tmp_path / "fake-log.jsonl"
    settings = WorkspaceSettings(
        work_dir=tmp_path / "ws",
        passphrase="pass-for-the-emulated-cli",
        pulumi_root=root,
        env={"FAKE_PULUMI_STATE": str(state), "FAKE_PULUMI_LOG": str(log)},
    )
    return settings, state, log


def calls(log: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.read_text().splitlines()]


def test_runner_sets_secrets_on_stdin_only_and_replaces_config_emulated(
    emulated_cli: tuple[WorkspaceSettings, Path, Path], rsa_key_pem: str
) -> None:
    settings, _state, log = emulated_cli
    runner = PulumiStackRunner(settings)
    party = PartySpec("alice", protocol="NOTLS", capacity=CAPACITY, domain_key_data=rsa_key_pem)  # type: ignore[arg-type]
    config = party.to_config(network="trio")
    assert runner.get_config("alice") is None
    runner.set_config("alice", config)
    assert runner.get_config("alice") == config and runner.list_stacks() == ["alice"]

    seen = calls(log)
    key_line = rsa_key_pem.splitlines()[1]
    assert all(key_line not in " ".join(c["argv"]) for c in seen)  # never on a command line
    assert [c["stdin"] for c in seen if c["argv"][:2] == ["config", "set"]] == [rsa_key_pem]
    assert all(c["passphrase"] == "pass-for-the-emulated-cli" for c in seen if c["argv"] != ["version"])
    installs = [c["argv"][2:] for c in seen if c["argv"][:2] == ["plugin", "install"]]
    assert installs == [["resource", name, version] for name, version in plugin_pins()]
    init = next(c["argv"] for c in seen if c["argv"][:2] == ["stack", "init"])
    assert init[init.index("--secrets-provider") + 1] == "passphrase"
    work_dir = Path(seen[-1]["cwd"])
    assert (work_dir / "__main__.py").read_text() == MAIN_PY
    project = yaml.safe_load((work_dir / "Pulumi.yaml").read_text())
    assert project["backend"]["url"] == settings.backend and project["name"] == "kuscia-p2p"

    before = len(seen)
    smaller = {k: v for k, v in config.items() if k != "kuscia:protocol"}
    runner.set_config("alice", smaller)
    assert runner.get_config("alice") == smaller
    again = calls(log)[before:]
    assert ["config", "rm-all", "--stack", "alice", "kuscia:protocol"] in [c["argv"] for c in again]
    assert not any(
        c["argv"][:2] in (["config", "set"], ["config", "set-all"]) for c in again
    )  # nothing else changed
    assert not any(c["argv"][:2] == ["plugin", "install"] for c in again)  # once per runner


def test_runner_outputs_are_masked_and_destroy_removes_the_stack_emulated(
    emulated_cli: tuple[WorkspaceSettings, Path, Path],
) -> None:
    settings, state_path, log = emulated_cli
    runner = PulumiStackRunner(settings)
    runner.set_config("bob", PartySpec("bob").to_config(network="trio"))
    state = json.loads(state_path.read_text())
    state["bob"]["outputs"] = {"peeringBundle": [{"domainId": "bob"}, False], "kusciaapiToken": ["tok", True]}
    state_path.write_text(json.dumps(state))
    assert runner.outputs("bob") == {"peeringBundle": {"domainId": "bob"}, "kusciaapiToken": SECRET_OUTPUT}
    assert runner.outputs("nobody") is None
    runner.destroy("bob")
    assert runner.list_stacks() == [] and runner.get_config("bob") is None
    runner.destroy("bob")  # gone already: nothing to do
    destroys = [c["argv"] for c in calls(log) if c["argv"][:1] == ["destroy"]]
    assert len(destroys) == 1 and "--stack" in destroys[0]


def test_a_failing_pulumi_command_is_one_short_error_emulated(
    emulated_cli: tuple[WorkspaceSettings, Path, Path],
) -> None:
    settings, _state, _log = emulated_cli
    runner = PulumiStackRunner(settings)
    runner.set_config("stuck", PartySpec("stuck").to_config(network="trio"))
    with pytest.raises(StackOperationError) as err:
        runner.destroy("stuck")
    assert str(err.value).startswith("destroy stuck: error: deleting urn:pulumi:stuck")
    assert "\n" not in str(err.value)
    assert NETWORK_KEY in runner.get_config("stuck")  # type: ignore[operator]


def test_runner_up_refreshes_first_like_the_stack_file_path(
    emulated_cli: tuple[WorkspaceSettings, Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pulumi.yaml says `refresh: always`; the Automation API writes its own project settings, so
    the runner passes refresh=True (pulumi/automation/_stack.py: `--refresh`) to see broken routes."""
    from pulumi import automation as auto

    settings, _state, _log = emulated_cli
    runner = PulumiStackRunner(settings)
    seen: dict[str, Any] = {}

    class Handle:
        def up(self, **kwargs: Any) -> Any:
            seen.update(kwargs)
            return SimpleNamespace(outputs={})

    monkeypatch.setattr(auto.Stack, "select", staticmethod(lambda *_a, **_k: Handle()))
    assert runner.up("alice") == {}
    assert seen["refresh"] is True
