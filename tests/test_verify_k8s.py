"""verify/preflight Kubernetes-side checks against the EMULATED API server and Kuscia nodes."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from kuscia_components import pki, verify
from kuscia_components.config import PartyConfig, parse_party_config
from kuscia_components.dsn import build_dsn, datastore_endpoint
from kuscia_components.peering import PartnerLinkProvider
from tests.emulator import EmulatedNode, KusciaEmulator
from tests.mariadb import KINE_DDL, MariaDB
from tests.test_peering import link_props

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def emu() -> Iterator[KusciaEmulator]:
    with KusciaEmulator() as emulator:
        yield emulator


def party(node: EmulatedNode, emu: KusciaEmulator, peers: list[dict[str, str]] | None = None) -> PartyConfig:
    values: dict[str, object] = {
        "domainId": node.domain_id, "protocol": node.protocol, "kubeContext": emu.context,
        "kubeconfig": emu.kubeconfig_path, "capacity": json.dumps({"cpu": "1", "memory": "1Gi", "storage": "1Gi"}),
    }  # fmt: skip
    if peers:
        values["peers"] = json.dumps(peers)
    return parse_party_config(values)


def deploy_objects(emu: KusciaEmulator, node: EmulatedNode, dsn: str, *, pod_state: str = "ready") -> None:
    ns, name = node.namespace, node.service
    emu.put_object(
        "apps/v1",
        "Deployment",
        ns,
        name,
        {"metadata": {"name": name}, "status": {"availableReplicas": 0 if pod_state != "ready" else 1}},
    )
    container: dict[str, Any] = {"name": "kuscia", "restartCount": 0, "state": {"running": {}}}
    conditions = [{"type": "Ready", "status": "True" if pod_state == "ready" else "False"}]
    if pod_state == "crashloop":
        container = {"name": "kuscia", "restartCount": 7, "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                     "lastState": {"terminated": {"reason": "Error", "exitCode": 1}}}  # fmt: skip
    emu.put_object("v1", "Pod", ns, f"{name}-abc", {"metadata": {"name": f"{name}-abc", "labels": {"app": name}},
                                                  "status": {"conditions": conditions, "containerStatuses": [container]}})  # fmt: skip
    kuscia_yaml = yaml.safe_dump(
        {
            "domainID": node.domain_id,
            "domainKeyData": pki.domain_key_data(node.key_pem),
            "datastoreEndpoint": dsn,
        }
    )
    emu.put_object("v1", "Secret", ns, f"{name}-config", {"metadata": {"name": f"{name}-config"},
                                                         "data": {"kuscia.yaml": base64.b64encode(kuscia_yaml.encode()).decode()}})  # fmt: skip


def kine_dsn(server: MariaDB, name: str) -> str:
    from kuscia_components.database import provisioning_statements

    with server.connect() as conn, conn.cursor() as cursor:
        for sql, args in provisioning_statements(name, name, "pw-" + name):
            cursor.execute(sql, args or None)
    with server.connect(name, "pw-" + name, name) as conn, conn.cursor() as cursor:
        cursor.execute(KINE_DDL)
        cursor.execute("INSERT INTO kine (name) VALUES ('/registry/x')")
    return datastore_endpoint(build_dsn(name, "pw-" + name, server.host, server.port, name))


def statuses(results: list[verify.CheckResult]) -> dict[str, str]:
    return {r.name: r.status for r in results}


def test_emulated_verify_healthy_node_with_ready_routes(emu: KusciaEmulator, mariadb: MariaDB) -> None:
    alice, bob = emu.add_node("alice"), emu.add_node("bob", protocol="NOTLS")
    deploy_objects(emu, alice, kine_dsn(mariadb, "vk_alice"))
    provider = PartnerLinkProvider()
    provider.create(link_props(alice, bob, emu, timeout_seconds=0.3))
    provider.create(link_props(bob, alice, emu))
    cfg = party(alice, emu, [{"domainId": "bob", "stack": "bob"}])
    results, rows = verify.run_verify(cfg)
    found = statuses(results)
    assert found["deployment"] == found["pod"] == found["KusciaAPI"] == found["gateway"] == "PASS"
    assert found["kine table"] == found["kine privileges"] == "PASS" and found["routes"] == "PASS"
    assert [(r.name, r.ready) for r in rows] == [("alice-bob", "True"), ("bob-alice", "True")]
    assert [r for r in emu.requests if r.node == "alice" and r.headers.get("Token") == alice.token]


def test_emulated_verify_reports_routes_not_ready_with_diagnosis(emu: KusciaEmulator) -> None:
    alice, bob = emu.add_node("alice"), emu.add_node("bob")
    deploy_objects(
        emu,
        alice,
        datastore_endpoint(build_dsn("u", "p", "kuscia-mysql.autonomy-alice.svc.cluster.local", 3306, "d")),
    )
    PartnerLinkProvider().create(link_props(alice, bob, emu, timeout_seconds=0.3))
    cfg = party(alice, emu, [{"domainId": "bob", "stack": "bob"}])
    results, rows = verify.run_verify(cfg)
    assert statuses(results)["routes"] == "FAIL" and statuses(results)["database"] == "SKIP"
    table = verify.cdr_table(rows)
    assert "alice-bob   alice    bob" in table and "False" in table
    # bob-alice is the destination-side route alice's partner Domain created (HOST empty): it stays
    # False until bob's handshake to alice succeeds, which needs bob to register alice.
    assert [(r.name, r.host, r.ready) for r in rows][1] == ("bob-alice", "", "False")
    assert "diagnosis: bob has not completed the handshake" in table


def test_emulated_verify_crashloop_and_missing_secret(emu: KusciaEmulator) -> None:
    alice = emu.add_node("alice")
    deploy_objects(emu, alice, "mysql://u:p@tcp(h:1)/d", pod_state="crashloop")
    emu.objects = {k: v for k, v in emu.objects.items() if not k.endswith("-config")}
    results = {r.name: r for r in verify.run_verify(party(alice, emu))[0]}
    assert results["pod"].status == "FAIL" and "CrashLoopBackOff" in results["pod"].detail
    assert "--previous" in results["pod"].fix and "7 restarts" in results["pod"].detail
    assert results["node config"].status == "FAIL" and "cannot read Secret" in results["node config"].detail
    assert results["deployment"].status == "FAIL"


def test_emulated_verify_unreachable_api_server(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "dead",
        "clusters": [{"name": "c", "cluster": {"server": "http://127.0.0.1:9"}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": "dead", "context": {"cluster": "c", "user": "u"}}],
    }))  # fmt: skip
    cfg = parse_party_config(
        {"domainId": "alice", "runtime": "runp", "kubeconfig": str(kubeconfig), "kubeContext": "dead"}
    )
    results = verify.run_verify(cfg)[0]
    assert (
        results[-1].name == "API server"
        and results[-1].status == "FAIL"
        and "unreachable" in results[-1].detail
    )
    missing = parse_party_config(
        {"domainId": "alice", "runtime": "runp", "kubeconfig": str(kubeconfig), "kubeContext": "nope"}
    )
    assert verify.run_verify(missing)[0][0].status == "FAIL"


def test_emulated_preflight_namespace_and_permissions(emu: KusciaEmulator) -> None:
    alice = emu.add_node("alice")
    cfg = party(alice, emu)
    found = statuses(verify.run_preflight(cfg))
    assert found["namespace"] == "PASS" and found["permissions"] == "PASS"
    emu.put_object(
        "v1", "Namespace", None, "autonomy-alice", {"metadata": {"name": "autonomy-alice", "labels": {}}}
    )
    emu.deny("create", "networkpolicies")
    results = {r.name: r for r in verify.run_preflight(cfg)}
    assert results["namespace"].status == "WARN"
    assert (
        results["permissions"].status == "FAIL" and "create networkpolicies" in results["permissions"].detail
    )


def test_cdr_table_renders_ready_not_ready_and_missing() -> None:
    rows = [
        verify.RouteRow("alice-bob", "alice", "bob", "kuscia-autonomy-bob.autonomy-bob.svc.cluster.local", "Token", "True"),
        verify.RouteRow("bob-alice", "bob", "alice", "", "Token", "False", "LastUpdateAt=x, Message=TokenNotGenerate, Reason:DestinationIsNotAuthrized", "bob has not registered alice"),
        verify.RouteRow("alice-carol", "alice", "carol", "", "", "missing", "", "no route alice-carol on this node"),
    ]  # fmt: skip
    lines = verify.cdr_table(rows).splitlines()
    assert lines[0].split() == ["NAME", "SOURCE", "DESTINATION", "HOST", "AUTHENTICATION", "READY"]
    assert lines[1].split() == [
        "alice-bob",
        "alice",
        "bob",
        "kuscia-autonomy-bob.autonomy-bob.svc.cluster.local",
        "Token",
        "True",
    ]
    assert lines[2].split()[-1] == "False" and lines[3].startswith("    reason: LastUpdateAt")
    assert "diagnosis: bob has not registered alice" in lines[4]
    assert lines[5].split()[-1] == "missing"


def test_cli_bad_config_exit_2_and_json_output(tmp_path: Path, emu: KusciaEmulator) -> None:
    bad = tmp_path / "Pulumi.bad.yaml"
    bad.write_text("config:\n  kuscia:domainId: BAD\n")
    for command in ("verify", "preflight"):
        done = subprocess.run([sys.executable, "-m", "kuscia_components", command, "--config", str(bad)],
                              cwd=ROOT, capture_output=True, text=True)  # fmt: skip
        assert done.returncode == 2 and "kuscia:domainId" in done.stderr and "Traceback" not in done.stderr
    alice = emu.add_node("alice")
    stack = tmp_path / "Pulumi.alice.yaml"
    stack.write_text(yaml.safe_dump({"config": {"kuscia:domainId": "alice", "kuscia:runtime": "runp",
                                                "kuscia:kubeconfig": emu.kubeconfig_path, "kuscia:kubeContext": emu.context}}))  # fmt: skip
    done = subprocess.run([sys.executable, "-m", "kuscia_components", "verify", "--config", str(stack), "--json"],
                          cwd=ROOT, capture_output=True, text=True)  # fmt: skip
    report = json.loads(done.stdout)
    assert done.returncode == 1 and report["ok"] is False  # nothing deployed: Deployment missing
    assert {c["name"]: c["status"] for c in report["checks"]}["deployment"] == "FAIL"
    assert alice.token not in done.stdout
