"""verify's Kubernetes-side checks against the EMULATED API server and Kuscia nodes (tests/emulator).

Every test name says `emulated`: the API server and Kuscia are emulated; the Deployment, Pod and
Secret objects are put into the emulator as a real API server would return them (built from the
same manifests the program deploys); the HTTP, the kubeconfig handling, the service proxy paths,
the KusciaAPI token derived from the Secret's key and the database (a REAL MariaDB) are real.
"""

from __future__ import annotations

import dataclasses
import io
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from kuscia_components.checks.report import Report
from kuscia_components.checks.verify import run_verify
from kuscia_components.cli.checks import run_command, verify_main, verify_parser
from kuscia_components.config import PartyConfig, parse_party_config
from kuscia_components.core import pki
from kuscia_components.core.dsn import build_dsn, datastore_endpoint
from kuscia_components.peering.provider import PartnerLinkProvider
from tests.emulator import EmulatedNode, KusciaEmulator
from tests.helpers import check, dead_kubeconfig, deploy, link_props, provision, statuses
from tests.mariadb import MariaDB

ROOT = Path(__file__).resolve().parent.parent
UNREACHABLE_DSN = datastore_endpoint(build_dsn("kuscia", "Unused-pw-123", "127.0.0.1", 9, "kuscia_alice"))


def party(
    node: EmulatedNode, emu: KusciaEmulator, peers: list[dict[str, str]] | None = None, **extra: object
) -> PartyConfig:
    values: dict[str, object] = {
        "domainId": node.domain_id,
        "protocol": node.protocol,
        "kubeContext": emu.context,
        "kubeconfig": emu.kubeconfig_path,
        "capacity": {"cpu": "1", "memory": "1Gi", "storage": "1Gi"},
        **extra,
    }
    if peers:
        values["peers"] = peers
    return parse_party_config(values)


def peer_both_ways(emu: KusciaEmulator, a: EmulatedNode, b: EmulatedNode) -> None:
    provider = PartnerLinkProvider()
    provider.create(link_props(a, b, emu, timeout_seconds=0.3))
    provider.create(link_props(b, a, emu))


def test_emulated_healthy_tls_node_passes_end_to_end(emu: KusciaEmulator, mariadb: MariaDB) -> None:
    alice, bob = emu.add_node("alice"), emu.add_node("bob", protocol="NOTLS")
    cfg = party(alice, emu, [{"domainId": "bob", "stack": "bob"}])
    dsn, password = provision(mariadb, "vk_alice")
    deploy(emu, alice, cfg, dsn)
    peer_both_ways(emu, alice, bob)
    report = run_verify(cfg)
    found = statuses(report)
    for name in (
        "kube context",
        "API server",
        "deployment",
        "pod",
        "pod restarts",
        "node config",
        "KusciaAPI",
        "gateway",
        "database login",
        "kine rows",
        "kine privileges",
        "peering bob",
    ):
        assert found[name] == "PASS", check(report, name)
    assert report.ok
    assert [(r.name, r.host, r.authentication, r.ready) for r in report.routes] == [
        ("alice-bob", "kuscia-autonomy-bob.autonomy-bob.svc.cluster.local", "Token", "True"),
        ("bob-alice", "", "Token", "True"),
    ]
    assert "Kuscia v1.1.0b0" in check(report, "gateway").detail
    # The token came from the key in alice's Secret, and went only in the Token header.
    forwarded = [r for r in emu.requests if r.node == "alice" and r.via == "portforward"]
    assert any(r.headers.get("Token") == alice.token and r.path == "/healthZ" for r in forwarded)
    assert any(r.port == "1080" and r.path == "/" and r.method == "GET" for r in forwarded)
    assert not [r for r in emu.requests if "/proxy/" in r.path]  # the default transport: port-forward
    assert password not in json.dumps(report.to_dict())  # no check repeats the DSN, even before redaction


def test_emulated_routes_not_ready_show_reason_and_diagnosis(emu: KusciaEmulator) -> None:
    alice, bob = emu.add_node("alice"), emu.add_node("bob")
    cfg = party(alice, emu, [{"domainId": "bob", "stack": "bob"}])
    deploy(emu, alice, cfg, UNREACHABLE_DSN)
    PartnerLinkProvider().create(
        link_props(alice, bob, emu, timeout_seconds=0.3)
    )  # bob never registers alice
    emu.engine.run_once()  # let a handshake round write both routes' conditions before reading them
    report = run_verify(cfg)
    peering = check(report, "peering bob")
    assert peering.status == "FAIL" and peering.detail.startswith(
        "alice-bob is not Ready: bob has not completed"
    )
    assert "pulumi up -s bob" in peering.fix
    assert (
        "curl -kvvv https://kuscia-autonomy-bob.autonomy-bob.svc.cluster.local:1080" in peering.fix
    )  # what the route dials, with the scheme its isTLS gives
    probe = check(report, "in-pod probe bob")  # the emulated image has no curl unless installed
    assert probe.status == "WARN" and "none of curl, openssl, bash is in the image" in probe.detail
    rows = {r.name: r for r in report.routes}
    assert rows["alice-bob"].ready == "False"
    # The destination-side route has no condition until bob ever handshakes: READY is empty,
    # as `kubectl get cdr` shows it (NOTES §2.2).
    assert rows["bob-alice"].ready in ("", "False")
    assert "DestinationIsNotAuthrized" in rows["alice-bob"].reason
    assert rows["bob-alice"].diagnosis.startswith("bob has not completed its handshake to alice")
    assert check(report, "database server").status == "FAIL"  # port 9: nothing listens


def test_emulated_missing_routes_are_rendered_missing(emu: KusciaEmulator) -> None:
    alice = emu.add_node("alice", protocol="NOTLS")
    cfg = party(alice, emu, [{"domainId": "carol", "stack": "carol"}])
    deploy(emu, alice, cfg, UNREACHABLE_DSN)
    report = run_verify(cfg)
    assert [(r.name, r.ready) for r in report.routes] == [
        ("alice-carol", "<missing>"),
        ("carol-alice", "<missing>"),
    ]
    peering = check(report, "peering carol")
    assert (
        peering.status == "FAIL"
        and "alice-carol is missing" in peering.detail
        and "creates it" in peering.fix
    )


def test_emulated_crashloop_pod_points_at_the_database(emu: KusciaEmulator) -> None:
    alice = emu.add_node("alice")
    cfg = party(alice, emu)
    deploy(emu, alice, cfg, UNREACHABLE_DSN, pod="crashloop")
    report = run_verify(cfg)
    pod = check(report, "pod")
    assert pod.status == "FAIL" and "CrashLoopBackOff after 7 restarts" in pod.detail
    assert "last exit: Error (exit code 1)" in pod.detail and "--previous" in pod.fix
    assert check(report, "pod restarts").status == "WARN"
    assert (
        check(report, "deployment").status == "FAIL" and "0/1 available" in check(report, "deployment").detail
    )
    # KusciaAPI and the gateway need a Ready pod; the database checks do not, and name the cause.
    assert statuses(report)["KusciaAPI"] == statuses(report)["gateway"] == "SKIP"
    assert (
        check(report, "database server").status == "FAIL"
        and "nothing listens" in check(report, "database server").detail
    )
    assert check(report, "peering").status == "SKIP"


@pytest.mark.parametrize(
    ("state", "name", "status", "words"),
    [
        ("oom-restarted", "pod restarts", "WARN", "OOMKilled (exit code 137)"),
        ("image", "pod", "FAIL", "cannot pull its image (ImagePullBackOff: manifest unknown)"),
    ],
)
def test_emulated_pod_states_are_explained(
    emu: KusciaEmulator, state: str, name: str, status: str, words: str
) -> None:
    alice = emu.add_node("alice")
    cfg = party(alice, emu)
    deploy(emu, alice, cfg, UNREACHABLE_DSN, pod=state)
    result = check(run_verify(cfg), name)
    assert result.status == status and words in result.detail
    if state == "oom-restarted":
        assert "resources.limits.memory" in result.fix


def test_emulated_missing_secret_fails_and_skips_what_needs_it(emu: KusciaEmulator) -> None:
    alice = emu.add_node("alice")
    cfg = party(alice, emu)
    deploy(emu, alice, cfg, UNREACHABLE_DSN, secret=False)
    report = run_verify(cfg)
    node = check(report, "node config")
    assert node.status == "FAIL" and "no Secret autonomy-alice/kuscia-autonomy-alice-config" in node.detail
    assert statuses(report)["KusciaAPI"] == statuses(report)["database"] == "SKIP"
    assert statuses(report)["gateway"] == "PASS"  # the gateway needs no token


def test_emulated_portforward_key_from_an_outdated_secret_fails_the_server_certificate(
    emu: KusciaEmulator,
) -> None:
    alice = emu.add_node("alice")
    cfg = party(alice, emu)
    deploy(emu, alice, cfg, UNREACHABLE_DSN, key_pem=pki.generate_domain_key())  # not the key alice runs with
    result = check(run_verify(cfg), "KusciaAPI")
    # The CA derived from the Secret's key did not sign the pod's kusciaapi-server.crt: refused
    # before any request, so the token never leaves this machine.
    assert result.status == "FAIL" and "does not chain to alice's CA" in result.detail
    assert "rollout restart" in result.fix
    assert not [r for r in emu.requests if r.via == "portforward" and r.port == "8082"]


def test_emulated_token_from_an_outdated_secret_is_refused(emu: KusciaEmulator) -> None:
    alice = emu.add_node("alice")
    cfg = party(alice, emu, kusciaApiTransport="serviceProxy")  # the proxy does not check the certificate
    deploy(emu, alice, cfg, UNREACHABLE_DSN, key_pem=pki.generate_domain_key())  # not the key alice runs with
    result = check(run_verify(cfg), "KusciaAPI")
    assert (
        result.status == "FAIL" and "refused the token" in result.detail and "rollout restart" in result.fix
    )


@pytest.mark.parametrize(
    ("transport", "kusciaapi_says", "gateway_says"),
    [("serviceProxy", "no endpoints", "no ready endpoint"), ("portForward", "connection refused", "refused")],
)
def test_emulated_node_down_fails_kusciaapi_and_gateway(
    emu: KusciaEmulator, transport: str, kusciaapi_says: str, gateway_says: str
) -> None:
    alice = emu.add_node("alice", protocol="NOTLS")
    cfg = dataclasses.replace(party(alice, emu), kusciaapi_transport=transport)
    deploy(emu, alice, cfg, UNREACHABLE_DSN)  # the pod as the test puts it stays Ready: it listens on nothing
    alice.restart(downtime=30)
    report = run_verify(cfg, timeout=2)
    kusciaapi, gateway = check(report, "KusciaAPI"), check(report, "gateway")
    assert kusciaapi.status == "FAIL" and kusciaapi_says in kusciaapi.detail
    assert gateway.status == "FAIL" and gateway_says in gateway.detail


def test_emulated_nothing_deployed_fails_at_the_deployment(emu: KusciaEmulator) -> None:
    alice = emu.add_node("alice", pod=False)
    report = run_verify(party(alice, emu))
    assert check(report, "deployment").status == "FAIL" and "pulumi up" in check(report, "deployment").fix
    assert check(report, "pod").status == "FAIL" and check(report, "node config").status == "FAIL"


def test_emulated_unreachable_api_server_and_missing_context(tmp_path: Path) -> None:
    kubeconfig = dead_kubeconfig(tmp_path)
    cfg = parse_party_config({"domainId": "alice", "runtime": "runp", "kubeconfig": str(kubeconfig)})
    report = run_verify(cfg)
    api = check(report, "API server")
    assert api.status == "FAIL" and "does not answer" in api.detail
    assert {c.status for c in report.checks if c.name not in ("kube context", "API server")} == {"SKIP"}
    other = parse_party_config(
        {"domainId": "alice", "runtime": "runp", "kubeconfig": str(kubeconfig), "kubeContext": "nope"}
    )
    context = run_verify(other).checks[0]
    assert (
        context.status == "FAIL" and "context 'nope' is not in" in context.detail and "dead" in context.detail
    )
    missing = parse_party_config(
        {"domainId": "alice", "runtime": "runp", "kubeconfig": str(tmp_path / "none")}
    )
    assert "no usable kubeconfig" in run_verify(missing).checks[0].detail


# -- the command ---------------------------------------------------------------------------------------


def stack_file(tmp_path: Path, emu: KusciaEmulator, node: EmulatedNode, **extra: object) -> Path:
    path = tmp_path / f"Pulumi.{node.domain_id}.yaml"
    config = {
        "kuscia:domainId": node.domain_id,
        "kuscia:protocol": node.protocol,
        "kuscia:runtime": "runp",
        "kuscia:kubeconfig": emu.kubeconfig_path,
        "kuscia:kubeContext": emu.context,
        **{f"kuscia:{k}": v for k, v in extra.items()},
    }
    path.write_text(yaml.safe_dump({"config": config}))
    return path


def run_cli(argv: list[str], **kwargs: Any) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = run_command(argv, parser=verify_parser(), runner=_runner, out=out, err=err, **kwargs)
    return code, out.getvalue(), err.getvalue()


def _runner(cfg: PartyConfig, args: Any, redactor: Any) -> Report:
    return run_verify(cfg, timeout=args.request_timeout, db_address=args.db_address, redactor=redactor)


def test_emulated_cli_json_and_lines_never_print_secrets(
    emu: KusciaEmulator, mariadb: MariaDB, tmp_path: Path
) -> None:
    alice = emu.add_node("alice")
    path = stack_file(tmp_path, emu, alice)
    cfg = parse_party_config({"domainId": "alice", "runtime": "runp"})
    dsn, password = provision(mariadb, "vk_cli")
    deploy(emu, alice, cfg, dsn)
    code, out, _ = run_cli(["--config", str(path), "--json"])
    report = json.loads(out)
    assert code == 0 and report["ok"] is True and report["counts"]["FAIL"] == 0
    assert {c["name"]: c["status"] for c in report["checks"]}["kine rows"] == "PASS"
    code, lines, _ = run_cli(["--config", str(path)])
    assert code == 0 and lines.splitlines()[-1].startswith("verify alice: OK (")
    for secret in (password, alice.token, pki.domain_key_data(alice.key_pem)):
        assert secret not in out and secret not in lines


def test_emulated_cli_lines_are_aligned_with_a_fix_under_each_failure(
    emu: KusciaEmulator, tmp_path: Path
) -> None:
    alice = emu.add_node("alice")
    code, out, _ = run_cli(["--config", str(stack_file(tmp_path, emu, alice))])
    lines = out.splitlines()
    assert code == 1 and lines[-1].startswith("verify alice: FAILED (")
    failing = [i for i, line in enumerate(lines) if line.startswith("FAIL")]
    assert failing and all(lines[i + 1].lstrip().startswith("fix: ") for i in failing)
    starts = {
        re.match(r"^(?:PASS|FAIL|WARN|SKIP)  .+?  (?=\S)", line).end()  # type: ignore[union-attr]
        for line in lines
        if line[:4] in ("PASS", "FAIL", "WARN", "SKIP")
    }
    assert len(starts) == 1  # every detail starts in the same column
    assert lines[failing[0] + 1].index("fix: ") == starts.pop()


def test_emulated_watch_reruns_until_the_pod_is_ready(emu: KusciaEmulator, tmp_path: Path) -> None:
    alice = emu.add_node("alice", protocol="NOTLS")
    cfg = parse_party_config({"domainId": "alice", "runtime": "runp"})
    deploy(emu, alice, cfg, UNREACHABLE_DSN, pod="crashloop")
    now = [0.0]

    def sleep(seconds: float) -> None:  # the pod recovers while we wait
        now[0] += seconds
        deploy(emu, alice, cfg, UNREACHABLE_DSN)

    path = stack_file(tmp_path, emu, alice)
    argv = ["--config", str(path), "--watch", "--timeout", "5", "--interval", "2", "--json"]
    code, out, err = run_cli(argv, sleep=sleep, clock=lambda: now[0])
    checks = {c["name"]: c["status"] for c in json.loads(out)["checks"]}
    # The database (port 9) never comes up, so the watch gives up only at the deadline: the pod did.
    assert checks["pod"] == "PASS" and checks["database server"] == "FAIL" and code == 1
    progress = [line for line in err.splitlines() if line.startswith("verify:")]
    assert "FAIL deployment, pod, database server;" in progress[0]
    assert "FAIL database server;" in progress[1] and now[0] == 4  # rounds at 0, 2, 4: a pause reaches 6


def test_emulated_watch_stops_at_the_deadline(emu: KusciaEmulator, tmp_path: Path) -> None:
    alice = emu.add_node("alice")
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    path = stack_file(tmp_path, emu, alice)
    code, _, err = run_cli(
        ["--config", str(path), "--watch", "--timeout", "12", "--interval", "5"],
        clock=lambda: now[0],
        sleep=sleep,
    )
    progress = [line for line in err.splitlines() if line.startswith("verify:")]
    # Rounds at 0, 5 and 10; the pause after the third would pass the 12 s deadline, so it is the last.
    assert code == 1 and len(progress) == 2 and now[0] == 10


def test_cli_bad_config_and_bad_arguments_exit_2_without_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "Pulumi.bad.yaml"
    bad.write_text("config:\n  kuscia:domainId: BAD\n  kuscia:protocol: tls1\n  kuscia:runtime: runp\n")
    assert verify_main(["--config", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "2 problem(s)" in err and "kuscia:domainId" in err and "kuscia:protocol" in err
    assert verify_main(["--config", str(bad), "--json"]) == 2
    assert len(json.loads(capsys.readouterr().out)["errors"]) == 2
    assert verify_main(["--stack", "nope", "--project-dir", str(tmp_path)]) == 2
    assert "no stack file for stack 'nope'" in capsys.readouterr().err
    assert verify_main(["--config", str(bad), "--timeout", "-1"]) == 2
    assert verify_main(["--bogus"]) == 2


def test_emulated_a_check_that_breaks_is_a_fail_line(
    emu: KusciaEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    alice = emu.add_node("alice", protocol="NOTLS")
    cfg = parse_party_config({"domainId": "alice", "runtime": "runp"})
    deploy(emu, alice, cfg, UNREACHABLE_DSN)

    def bug(*_args: object, **_kwargs: object) -> None:
        raise KeyError("status")

    monkeypatch.setattr("kuscia_components.checks.verify.check_gateway", bug)
    code, out, err = run_cli(["--config", str(stack_file(tmp_path, emu, alice))])
    assert code == 1 and "FAIL  gateway" in out and "the check itself broke: KeyError: 'status'" in out
    assert "Traceback" not in out + err
    out_io, err_io = io.StringIO(), io.StringIO()

    def runner(*_args: object) -> Report:
        raise RuntimeError("orchestration bug")

    code = run_command(
        ["--config", str(stack_file(tmp_path, emu, alice))],
        parser=verify_parser(),
        runner=runner,
        out=out_io,
        err=err_io,
    )
    assert (
        code == 1
        and "FAIL  run  the check itself broke: RuntimeError: orchestration bug" in out_io.getvalue()
    )


def test_emulated_cli_through_python_m(emu: KusciaEmulator, tmp_path: Path) -> None:
    alice = emu.add_node("alice")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "kuscia_components",
            "verify",
            "--config",
            str(stack_file(tmp_path, emu, alice)),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1 and "FAIL  deployment" in done.stdout and "Traceback" not in done.stderr
