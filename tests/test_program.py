"""The whole party program under Pulumi mocks (no engine, no cluster), for both stacks.

Our own dynamic providers (identity, passwords) really run; PartnerLink only records its inputs
here (it needs a cluster; it is tested against the emulator in test_peering*.py).
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pulumi
import pytest
import yaml

from kuscia_components.config import PartyConfig, parse_party_config
from kuscia_components.core import pki
from kuscia_components.core.dsn import parse_dsn
from kuscia_components.node import manifests
from kuscia_components.offline.mocks import OfflineMocks, run_offline, unwrap_secrets
from kuscia_components.offline.render import render
from kuscia_components.offline.stackfile import find_stack_file, load_stack_file
from kuscia_components.program import party_program
from tests.helpers import CLUSTER_IP, ROOT, offline_safe, peer_outputs

SCHEMA_VERSION = kubernetes_validate.latest_version()


def stack_config(stack: str) -> PartyConfig:
    stack_file = load_stack_file(find_stack_file(stack, ROOT))
    return parse_party_config(stack_file.values, stack_file.secret_keys)


def run_stack(stack: str, cfg: PartyConfig | None = None) -> tuple[OfflineMocks, dict[str, Any]]:
    mocks = OfflineMocks(
        cluster_ip=CLUSTER_IP,
        stack_outputs=peer_outputs(stack),
        execute_dynamic=offline_safe,
    )
    config = cfg or stack_config(stack)
    outputs = run_offline(lambda: party_program(config), mocks, stack=stack)
    return mocks, outputs


@pytest.fixture(scope="module", params=["alice", "bob"])
def deployed(request: pytest.FixtureRequest) -> tuple[str, OfflineMocks, dict[str, Any]]:
    mocks, outputs = run_stack(request.param)
    return request.param, mocks, outputs


def kubernetes_objects(mocks: OfflineMocks) -> list[dict[str, Any]]:
    out = []
    for res in mocks.resources:
        if res.type.startswith("kubernetes:"):
            inputs = unwrap_secrets(res.inputs)
            out.append(inputs)
    return out


def test_every_kubernetes_object_passes_the_openapi_schema(deployed: Any) -> None:
    _stack, mocks, _ = deployed
    objects = kubernetes_objects(mocks)
    kinds = sorted(o["kind"] for o in objects)
    assert kinds == sorted(
        [
            "Namespace",
            "ServiceAccount",
            "Role",
            "RoleBinding",
            "Service",
            "Service",
            "Secret",
            "Secret",
            "StatefulSet",
            "NetworkPolicy",
            "Deployment",
        ]
    )
    for obj in objects:
        kubernetes_validate.validate(obj, SCHEMA_VERSION, strict=True)


def test_children_are_parented_to_the_components(deployed: Any) -> None:
    stack, mocks, _ = deployed
    node = mocks.one("kuscia:index:AutonomyNode", stack)
    database = mocks.one("kuscia:index:NodeDatabase", f"{stack}-database")
    assert database.parent_urn == node.urn
    for res in mocks.resources:
        if res.name.startswith(f"{stack}-database-"):
            assert res.parent_urn == database.urn, res.name
        elif res.type.startswith("kubernetes:") or "DomainIdentity" in res.type:
            assert res.parent_urn == node.urn, res.name


def test_kuscia_yaml_in_the_secret_is_complete_and_consistent(deployed: Any) -> None:
    stack, mocks, _ = deployed
    secret = mocks.one("kubernetes:core/v1:Secret", f"{stack}-config")
    assert secret.is_secret("stringData")
    data = unwrap_secrets(secret.inputs["stringData"])
    doc = yaml.safe_load(data["kuscia.yaml"])
    assert doc["mode"] == "autonomy" and doc["domainID"] == stack and doc["protocol"] == "TLS"
    assert doc["runk"] == {"namespace": f"autonomy-{stack}", "dnsServers": [CLUSTER_IP]}
    assert doc["capacity"]["cpu"] == "4"
    key_pem = base64.b64decode(doc["domainKeyData"]).decode()
    assert key_pem.startswith("-----BEGIN RSA PRIVATE KEY-----")
    assert pki.same_public_key(data["domain.crt"], key_pem)
    parsed = parse_dsn(doc["datastoreEndpoint"])
    assert parsed.addr == f"kuscia-mysql.autonomy-{stack}.svc.cluster.local:3306"
    mysql = unwrap_secrets(
        mocks.one("kubernetes:core/v1:Secret", f"{stack}-database-secret").inputs["stringData"]
    )
    assert (parsed.user, parsed.password, parsed.database) == (
        mysql["user"],
        mysql["password"],
        mysql["database"],
    )


def test_pod_template_carries_the_checksum_of_the_rendered_config(deployed: Any) -> None:
    stack, mocks, _ = deployed
    secret = unwrap_secrets(mocks.one("kubernetes:core/v1:Secret", f"{stack}-config").inputs["stringData"])
    deployment = mocks.one("kubernetes:apps/v1:Deployment", f"{stack}-deployment")
    assert not deployment.is_secret("spec"), "the pod template must stay readable in previews"
    annotations = deployment.plain_inputs["spec"]["template"]["metadata"]["annotations"]
    expected = hashlib.sha256(secret["kuscia.yaml"].encode()).hexdigest()
    assert annotations[manifests.CONFIG_CHECKSUM_ANNOTATION] == expected


def test_secret_outputs_are_secret_and_the_bundle_is_public(deployed: Any) -> None:
    stack, mocks, outputs = deployed
    identity = mocks.one("pulumi-python:dynamic/kuscia:DomainIdentity", f"{stack}-identity")
    for key in ("private_key_pem", "domain_key_data", "kusciaapi_token"):
        assert identity.is_secret(key), key
    assert not identity.is_secret("cert_pem")
    for password in [r for r in mocks.resources if "GeneratedPassword" in r.type]:
        assert password.is_secret("result")
    link = mocks.one(
        "pulumi-python:dynamic/kuscia:PartnerLink", f"{stack}-link-{'bob' if stack == 'alice' else 'alice'}"
    )
    assert link.is_secret("token")
    bundle = outputs["peeringBundle"]
    assert set(bundle) == {"domainId", "cert", "endpoint", "protocol"}
    assert bundle["cert"] == identity.plain_state["cert_b64"]
    # A partner's StackReference copies every output into its state: the token is not one.
    assert "kusciaapiToken" not in outputs


def test_stack_outputs_mark_only_the_token_secret() -> None:
    @pulumi.runtime.test
    def check() -> pulumi.Output[Any]:
        node = party_program(stack_config("alice"))
        return pulumi.Output.all(
            pulumi.Output.is_secret(node.kusciaapi_token),  # type: ignore[attr-defined]
            pulumi.Output.is_secret(node.peering_bundle),  # type: ignore[attr-defined]
        ).apply(lambda flags: _assert_flags(flags))

    def _assert_flags(flags: list[bool]) -> None:
        assert flags == [True, False]

    from kuscia_components.offline.mocks import install

    install(
        OfflineMocks(stack_outputs=peer_outputs("alice"), execute_dynamic=offline_safe),
        stack="alice",
    )
    check()


def test_partner_link_gets_the_partner_bundle_from_the_stack_reference() -> None:
    mocks, _ = run_stack("alice")
    link = mocks.one("pulumi-python:dynamic/kuscia:PartnerLink", "alice-link-bob")
    state = link.plain_state
    bundle = peer_outputs("alice")["bob"]["peeringBundle"]
    assert state["partner_cert"] == bundle["cert"] and state["partner_endpoint"] == bundle["endpoint"]
    assert (state["namespace"], state["service"], state["domain_id"]) == (
        "autonomy-alice",
        "kuscia-autonomy-alice",
        "alice",
    )
    assert state["timeout_seconds"] == 300 and state["require_ready"] is False
    assert state["trusted_network"] is False  # the StackReference bundle gets the NOTLS rule too


def test_a_trusted_network_reaches_the_link_so_its_bundle_check_allows_notls_outside() -> None:
    config = dataclasses.replace(stack_config("alice"), trusted_network=True)
    mocks, _ = run_stack("alice", config)
    link = mocks.one("pulumi-python:dynamic/kuscia:PartnerLink", "alice-link-bob")
    assert link.plain_state["trusted_network"] is True


def test_config_change_rolls_the_pod() -> None:
    base = stack_config("alice")
    from dataclasses import replace

    first, _ = run_stack("alice", replace(base, peers=()))
    second, _ = run_stack("alice", replace(base, peers=(), log_level="DEBUG"))

    def checksum(m: OfflineMocks) -> str:
        dep = m.one("kubernetes:apps/v1:Deployment", "alice-deployment").plain_inputs
        return dep["spec"]["template"]["metadata"]["annotations"][manifests.CONFIG_CHECKSUM_ANNOTATION]

    assert checksum(first) != checksum(second)


def test_external_database_uses_pulumi_mysql_with_only_kine_grants(rsa_key_pem: str) -> None:
    cfg = parse_party_config(
        {
            "domainId": "carol",
            "capacity": json.dumps({"cpu": "2", "memory": "2Gi", "storage": "10Gi"}),
            "database": json.dumps(
                {"mode": "external", "endpoint": "mysql.example.com:3306", "adminUser": "root"}
            ),
            "databaseAdminPassword": "admin-s3cret-pw",
            "domainKeyData": rsa_key_pem,
        },
        {"databaseAdminPassword", "domainKeyData"},
    )
    mocks = OfflineMocks(execute_dynamic=offline_safe)
    run_offline(lambda: party_program(cfg), mocks, stack="carol")
    assert not mocks.of_type("kubernetes:apps/v1:StatefulSet")
    provider = mocks.one("pulumi:providers:mysql")
    assert provider.plain_inputs["endpoint"] == "mysql.example.com:3306"
    assert provider.plain_inputs["password"] == "admin-s3cret-pw"
    database = mocks.one("mysql:index/database:Database").plain_inputs
    assert (database["name"], database["defaultCharacterSet"]) == ("kuscia_carol", "utf8mb4")
    grant = mocks.one("mysql:index/grant:Grant").plain_inputs
    assert sorted(grant["privileges"]) == sorted(["SELECT", "INSERT", "UPDATE", "DELETE", "CREATE", "INDEX"])
    assert grant["database"] == "kuscia_carol"
    identity = mocks.one("pulumi-python:dynamic/kuscia:DomainIdentity").plain_state
    assert identity["private_key_pem"] == rsa_key_pem
    doc = yaml.safe_load(
        unwrap_secrets(mocks.one("kubernetes:core/v1:Secret", "carol-config").inputs["stringData"])[
            "kuscia.yaml"
        ]
    )
    assert parse_dsn(doc["datastoreEndpoint"]).addr == "mysql.example.com:3306"


def test_read_pulumi_config_sees_the_stack_file_like_the_cli(tmp_path: Path) -> None:
    """The program's own config path (pulumi up) and the stack-file path (render) agree."""
    stack_file = load_stack_file(find_stack_file("alice", ROOT))
    mocks = OfflineMocks(stack_outputs=peer_outputs("alice"), execute_dynamic=offline_safe)
    config = {f"kuscia:{k}": v for k, v in stack_file.values.items()}
    run_offline(lambda: party_program(), mocks, stack="alice", config=config)
    direct, _ = run_stack("alice")
    assert sorted((r.type, r.name) for r in mocks.resources) == sorted(
        (r.type, r.name) for r in direct.resources
    )


# -- offline render and secret leaks -----------------------------------------------------------


def test_render_redacts_every_secret_and_show_secrets_reveals_them(tmp_path: Path) -> None:
    cfg = stack_config("alice")
    result = render(cfg, tmp_path / "plain", stack="alice")
    assert {o.kind for o in result.objects} >= {"Deployment", "Secret", "Service", "kuscia.yaml"}
    shown = render(cfg, tmp_path / "shown", stack="alice", show_secrets=True)
    assert shown.secrets_shown
    revealed = (tmp_path / "shown" / "kuscia.yaml").read_text()
    key_b64 = yaml.safe_load(revealed)["domainKeyData"]
    assert base64.b64decode(key_b64).decode().startswith("-----BEGIN RSA PRIVATE KEY-----")
    text = "".join(p.read_text() for p in (tmp_path / "plain").iterdir())
    assert "PRIVATE KEY" not in text
    redacted = yaml.safe_load((tmp_path / "plain" / "kuscia.yaml").read_text())
    assert redacted["domainKeyData"].startswith("<redacted")
    assert redacted["datastoreEndpoint"].startswith("mysql://kuscia_alice:<redacted")
    assert redacted["datastoreEndpoint"].endswith(
        "@tcp(kuscia-mysql.autonomy-alice.svc.cluster.local:3306)/kuscia_alice?charset=utf8mb4&parseTime=True&loc=Local"
    )
    assert "<ClusterIP" in (tmp_path / "plain" / "kuscia.yaml").read_text()


def test_no_secret_of_the_run_appears_in_outputs_files_or_logs(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from kuscia_components.offline import render as render_module

    captured: dict[str, OfflineMocks] = {}
    original = render_module.plan

    def spying_plan(*args: Any, **kwargs: Any) -> OfflineMocks:
        captured["mocks"] = original(*args, **kwargs)
        return captured["mocks"]

    render_module.plan = spying_plan  # type: ignore[assignment]
    try:
        render(stack_config("alice"), tmp_path, stack="alice")
    finally:
        render_module.plan = original  # type: ignore[assignment]
    secrets = [s for s in captured["mocks"].secret_values() if len(s) >= 8]
    assert len(secrets) >= 5  # key PEM, key data, token, two passwords (+ DSNs)
    haystack = "".join(p.read_text() for p in tmp_path.iterdir()) + caplog.text
    for secret in secrets:
        assert secret not in haystack
        for line in secret.splitlines()[1:-1]:
            assert line not in haystack


# -- the CLI -------------------------------------------------------------------------------------


def cli(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kuscia_components", *args], cwd=cwd, capture_output=True, text=True
    )


def test_cli_render_writes_files_and_a_summary(tmp_path: Path) -> None:
    done = cli("render", "--stack", "bob", "--out", str(tmp_path / "bob"))
    assert done.returncode == 0, done.stderr
    assert "Deployment" in done.stdout and "kuscia-autonomy-bob" in done.stdout
    assert (tmp_path / "bob" / "all.yaml").is_file()
    for doc in yaml.safe_load_all((tmp_path / "bob" / "all.yaml").read_text()):
        kubernetes_validate.validate(doc, SCHEMA_VERSION, strict=True)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (
            "config:\n  kuscia:domainId: Bad_Id\n  kuscia:protocol: ssl\n",
            ["kuscia:domainId", "kuscia:protocol", "must be one of NOTLS, TLS, MTLS"],
        ),
        ("config:\n  kuscia:domainId: [\n", ["not valid YAML"]),
        ("config:\n  kuscia:domainID: alice\n", ["did you mean 'domainId'"]),
        (
            "config:\n  kuscia:domainId: 12345\n  kuscia:capacity: 4\n",
            ["kuscia:capacity", "must be an object"],
        ),
    ],
)
def test_cli_bad_config_exits_2_without_traceback(tmp_path: Path, content: str, expected: list[str]) -> None:
    path = tmp_path / "Pulumi.bad.yaml"
    path.write_text(content)
    for command in ("check", "render"):
        extra = ["--out", str(tmp_path / "out")] if command == "render" else []
        done = cli(command, "--config", str(path), *extra)
        assert done.returncode == 2, (command, done.stdout, done.stderr)
        assert "Traceback" not in done.stderr
        for fragment in expected:
            assert fragment in done.stderr


def test_cli_missing_stack_and_unknown_command() -> None:
    done = cli("check", "--stack", "nobody")
    assert done.returncode == 2 and "no stack file" in done.stderr and "Traceback" not in done.stderr
    assert cli("frobnicate").returncode == 2


def test_missing_kubeconfig_file_is_a_config_problem_not_a_traceback(tmp_path: Path) -> None:
    path = tmp_path / "Pulumi.k.yaml"
    path.write_text(
        "config:\n  kuscia:domainId: k1\n  kuscia:runtime: runp\n  kuscia:kubeconfig: /nonexistent/kubeconfig\n"
    )
    done = cli("render", "--config", str(path), "--out", str(tmp_path / "out"))
    assert done.returncode == 2, done.stderr
    assert "kuscia:kubeconfig" in done.stderr and "readable kubeconfig" in done.stderr
    assert "Traceback" not in done.stderr


def test_the_repo_root_main_is_the_program_pulumi_up_runs() -> None:
    """`pulumi up -s alice` runs ./__main__.py (Pulumi.yaml has no `main:`)."""
    import runpy

    stack_file = load_stack_file(find_stack_file("alice", ROOT))
    mocks = OfflineMocks(stack_outputs=peer_outputs("alice"), execute_dynamic=offline_safe)
    config = {f"kuscia:{k}": v for k, v in stack_file.values.items()}
    outputs = run_offline(
        lambda: runpy.run_path(str(ROOT / "__main__.py")), mocks, stack="alice", config=config
    )
    assert outputs["domainId"] == "alice" and set(outputs["peeringBundle"]) == {
        "domainId",
        "cert",
        "endpoint",
        "protocol",
    }
    assert any(r.type == "kubernetes:apps/v1:Deployment" for r in mocks.resources)


# -- the Kubernetes provider -------------------------------------------------------------------


def test_the_kubernetes_provider_lets_secrets_change_in_place(deployed: Any) -> None:
    """Without enableSecretMutable pulumi-kubernetes replaces a Secret whose data changes
    (pulumi-kubernetes provider/pkg/provider/diff.go); with our fixed names that is
    delete-then-create of the config Secret the pod mounts."""
    _stack, mocks, _ = deployed
    provider = mocks.one("pulumi:providers:kubernetes", "kubernetes")
    assert provider.plain_inputs["enableSecretMutable"] in (True, "true")


def test_a_relative_kubeconfig_is_read_from_the_project_and_passed_on_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The engine starts dynamic providers in its own working directory (pulumi
    sdk/go/common/resource/plugin/provider_plugin.go), so the link must get an absolute path."""
    import dataclasses

    from kuscia_components.program import with_absolute_kubeconfig

    (tmp_path / "kube").mkdir()
    (tmp_path / "kube" / "config").write_text("apiVersion: v1\nkind: Config\n")
    cfg = dataclasses.replace(stack_config("alice"), kubeconfig="kube/config")
    assert with_absolute_kubeconfig(cfg, str(tmp_path)).kubeconfig == str(tmp_path / "kube" / "config")
    assert with_absolute_kubeconfig(cfg, "/p").kubeconfig == "/p/kube/config"
    assert (
        with_absolute_kubeconfig(dataclasses.replace(cfg, kubeconfig="/abs/k"), "/p").kubeconfig == "/abs/k"
    )

    monkeypatch.chdir(tmp_path)  # no engine: the project directory is the cwd
    mocks, _ = run_stack("alice", cfg)
    provider = mocks.one("pulumi:providers:kubernetes", "kubernetes")
    assert provider.plain_inputs["kubeconfig"].startswith("apiVersion: v1")
    link = mocks.one("pulumi-python:dynamic/kuscia:PartnerLink", "alice-link-bob")
    assert link.plain_inputs["kubeconfig"] == str(tmp_path / "kube" / "config")


# -- exposure and await ---------------------------------------------------------------------------


def test_a_node_port_exposes_only_the_gateway_and_kuscia_yaml_takes_the_internal_cluster_ip() -> None:
    """pulumi-kubernetes awaits a selector Service until its pods are Ready, and a LoadBalancer
    until it has an address (provider/pkg/await/service.go): the Service whose ClusterIP goes
    into kuscia.yaml must be ClusterIP and skipAwait, the partner-facing one separate."""
    import dataclasses

    from kuscia_components.config import ServiceSettings

    cfg = dataclasses.replace(
        stack_config("alice"),
        service=ServiceSettings(type="NodePort", node_port=31080, annotations={"a/b": "c"}),
    )
    mocks = OfflineMocks(
        cluster_ips={"kuscia-autonomy-alice": CLUSTER_IP, "kuscia-gateway-alice": "10.96.99.99"},
        stack_outputs=peer_outputs("alice"),
        execute_dynamic=lambda p: bool(getattr(p, "offline_safe", False)),
    )
    run_offline(lambda: party_program(cfg), mocks, stack="alice")
    internal = mocks.one("kubernetes:core/v1:Service", "alice-service").plain_inputs
    gateway = mocks.one("kubernetes:core/v1:Service", "alice-gateway-service")
    assert internal["spec"]["type"] == "ClusterIP"
    assert internal["metadata"]["annotations"] == {"pulumi.com/skipAwait": "true"}
    assert gateway.plain_inputs["spec"]["type"] == "NodePort"
    assert [(p["port"], p.get("nodePort")) for p in gateway.plain_inputs["spec"]["ports"]] == [(1080, 31080)]
    assert gateway.custom_timeouts == {"create": "30m", "update": "30m"}
    secret = unwrap_secrets(mocks.one("kubernetes:core/v1:Secret", "alice-config").inputs["stringData"])
    assert yaml.safe_load(secret["kuscia.yaml"])["runk"]["dnsServers"] == [CLUSTER_IP]
    for obj in kubernetes_objects(mocks):
        kubernetes_validate.validate(obj, SCHEMA_VERSION, strict=True)


def test_the_kuscia_rollout_may_take_a_first_image_pull(deployed: Any) -> None:
    """pulumi-kubernetes' Deployment await defaults to 10 minutes (provider/pkg/await/deployment.go);
    the Kuscia image is over a gigabyte and Kuscia gets 5 minutes to start."""
    stack, mocks, _ = deployed
    deployment = mocks.one("kubernetes:apps/v1:Deployment", f"{stack}-deployment")
    assert deployment.custom_timeouts == {"create": "30m", "update": "30m"}
    assert not [r for r in mocks.of_type("kubernetes:core/v1:Service") if r.name.endswith("-gateway-service")]


# -- partner stacks: the README's real path ------------------------------------------------------------


def test_up_before_the_partner_stack_exists_fails_and_names_it() -> None:
    """`pulumi up -s alice` with `{stack: bob}` and no `pulumi stack init bob` fails in the
    engine (pulumi pkg/backend/backend.go: unknown stack "bob"); the README creates bob first."""
    from kuscia_components.offline.mocks import UnknownStack

    mocks = OfflineMocks(execute_dynamic=lambda p: bool(getattr(p, "offline_safe", False)))
    with pytest.raises(UnknownStack, match='unknown stack "bob"'):
        run_offline(lambda: party_program(stack_config("alice")), mocks, stack="alice")


def test_a_partner_stack_without_a_bundle_yet_waits_and_says_which_stack_to_bring_up() -> None:
    """After `pulumi stack init bob`, bob's stack exists with no outputs: alice's `up` succeeds,
    its link waits (it touches no cluster for that) and names the stack to bring up."""
    mocks = OfflineMocks(stack_outputs={"bob": {}})  # every dynamic provider really runs
    outputs = run_offline(lambda: party_program(stack_config("alice")), mocks, stack="alice")
    link = outputs["links"]["bob"]
    assert link["status"] == "WaitingForPartner"
    assert "stack bob has no peeringBundle output yet" in link["diagnosis"]
    assert "Run `pulumi up -s bob` first" in link["diagnosis"]


def test_render_keeps_going_without_a_backend_and_says_the_partner_stack_was_not_read(tmp_path: Path) -> None:
    done = cli("render", "--stack", "alice", "--out", str(tmp_path / "alice"))
    assert done.returncode == 0, done.stderr
    assert "partner stack 'bob' (bob) was not read: offline has no Pulumi backend" in done.stderr
    assert "pulumi stack init bob" in done.stderr
    assert (tmp_path / "alice" / "kuscia.yaml").exists()


def test_the_readme_creates_every_partner_stack_before_the_first_up() -> None:
    """The real path must run as written: `pulumi up -s alice` reads stack bob, so bob exists first."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    real_path = text.split("## The real path", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    lines = [line.split("#", 1)[0].strip() for line in real_path.splitlines()]
    first_up = next(i for i, line in enumerate(lines) if line.startswith("pulumi up"))
    for stack in ("alice", "bob"):
        assert any(f"pulumi stack init {stack}" in line for line in lines[:first_up]), stack
