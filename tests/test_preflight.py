"""preflight: the Kubernetes side against the EMULATED API server (test names say `emulated`), the
database side with ADMIN credentials against a REAL MariaDB. Where the check says the admin may
(or may not) create the database, the user and the grant, the test then tries it for real."""

from __future__ import annotations

import io
import json
import os
import re
import socket
import stat
from pathlib import Path
from typing import Any

import pymysql
import pytest
import yaml

from kuscia_components.checks.database import admin_database_checks
from kuscia_components.checks.preflight import PASSWORD_ENV, admin_password_source, run_preflight
from kuscia_components.checks.report import Report
from kuscia_components.cli.checks import preflight_parser, run_command
from kuscia_components.config import PartyConfig, parse_party_config
from kuscia_components.node.database import provisioning_statements
from tests.emulator import KusciaEmulator
from tests.helpers import check, dead_kubeconfig, domain_row, provision, statuses
from tests.mariadb import ADMIN_PASSWORD, ADMIN_USER, MariaDB


def party(emu: KusciaEmulator, **values: Any) -> PartyConfig:
    base: dict[str, Any] = {
        "domainId": "alice",
        "kubeContext": emu.context,
        "kubeconfig": emu.kubeconfig_path,
        "capacity": {"cpu": "1", "memory": "1Gi", "storage": "1Gi"},
    }
    return parse_party_config({**base, **values}, secret_keys={"databaseAdminPassword"})


def namespace(emu: KusciaEmulator, labels: dict[str, str], **status: str) -> None:
    emu.put_object(
        "v1",
        "Namespace",
        None,
        "autonomy-alice",
        {"metadata": {"name": "autonomy-alice", "labels": labels}, "status": status},
    )


# -- Kubernetes ------------------------------------------------------------------------------------


def test_emulated_fresh_cluster_passes(emu: KusciaEmulator) -> None:
    report = run_preflight(party(emu))
    found = statuses(report)
    assert report.ok and found["namespace"] == "PASS" and "creates it" in check(report, "namespace").detail
    kinds = [
        c.name
        for c in report.checks
        if c.name.startswith("access ") and "/" not in c.name and "runk" not in c.name
    ]
    assert kinds == [
        "access namespaces",
        "access serviceaccounts",
        "access secrets",
        "access services",
        "access deployments.apps",
        "access pods",
        "access replicasets.apps",
        "access networkpolicies.networking.k8s.io",
        "access roles.rbac.authorization.k8s.io",
        "access rolebindings.rbac.authorization.k8s.io",
        "access statefulsets.apps",
    ]
    assert (
        found["access runk Role"] == found["access pods/portforward"] == found["access pods/exec"] == "PASS"
    )
    assert "access services/proxy" not in found  # the default transport is portForward
    assert found["database"] == "SKIP"  # in-cluster MySQL: nothing exists before `up`
    reviews = [
        r.body["spec"]["resourceAttributes"]
        for r in emu.requests
        if r.path.endswith("selfsubjectaccessreviews")
    ]
    assert {
        "verb": "create",
        "group": "",
        "resource": "namespaces",
    } in reviews  # cluster-scoped: no namespace
    assert {
        "verb": "create",
        "group": "",
        "resource": "pods",
        "subresource": "portforward",
        "namespace": "autonomy-alice",
    } in reviews


def test_emulated_only_the_kinds_this_config_creates_are_asked(emu: KusciaEmulator) -> None:
    cfg = party(
        emu,
        runtime="runp",
        networkPolicy={"enabled": False},
        database={"mode": "external", "endpoint": "db.example.com:3306", "adminUser": "root"},
        databaseAdminPassword="x-admin-pw",
    )
    names = {c.name for c in run_preflight(cfg, admin_password=lambda: None).checks}
    assert not {n for n in names if "networkpolicies" in n or "roles" in n or "statefulsets" in n}
    assert "access runk Role" in names


@pytest.mark.parametrize(
    ("labels", "status", "words"),
    [
        (
            {"kuscia.secretflow/domain-id": "alice", "app.kubernetes.io/managed-by": "pulumi"},
            "PASS",
            "(ours)",
        ),
        (
            {"kuscia.secretflow/domain-id": "bob", "app.kubernetes.io/managed-by": "pulumi"},
            "FAIL",
            "belongs to domain bob",
        ),
        ({}, "FAIL", "not created by this program"),
    ],
)
def test_emulated_namespace_free_or_ours(
    emu: KusciaEmulator, labels: dict[str, str], status: str, words: str
) -> None:
    namespace(emu, labels)
    result = check(run_preflight(party(emu)), "namespace")
    assert result.status == status and words in result.detail
    if not labels:
        assert "pulumi import kubernetes:core/v1:Namespace" in result.fix


def test_emulated_terminating_namespace_fails(emu: KusciaEmulator) -> None:
    namespace(emu, {"kuscia.secretflow/domain-id": "alice"}, phase="Terminating")
    assert "being deleted" in check(run_preflight(party(emu)), "namespace").detail


def test_emulated_denied_verbs_are_named_per_kind(emu: KusciaEmulator) -> None:
    emu.deny("create", "networkpolicies")
    emu.deny("patch", "deployments")
    emu.deny("delete", "deployments")
    report = run_preflight(party(emu))
    assert not report.ok
    deployments = check(report, "access deployments.apps")
    assert deployments.status == "FAIL" and deployments.detail == "denied: patch, delete in autonomy-alice"
    assert "kubectl auth can-i patch deployments.apps -n autonomy-alice" in deployments.fix
    assert check(report, "access networkpolicies.networking.k8s.io").detail.startswith("denied: create")
    assert check(report, "access secrets").status == "PASS"


def test_emulated_runk_role_needs_what_it_grants_or_escalate(emu: KusciaEmulator) -> None:
    assert "may escalate" in check(run_preflight(party(emu)), "access runk Role").detail
    emu.deny("escalate", "roles")
    assert (
        check(run_preflight(party(emu)), "access runk Role").status == "PASS"
    )  # holds every right it grants
    emu.deny("delete", "pods")  # the runk Role grants delete (it no longer grants deletecollection)
    result = check(run_preflight(party(emu)), "access runk Role")
    assert (
        result.status == "FAIL"
        and "pods: delete" in result.detail
        and "refuses to create it" in result.detail
    )
    assert check(run_preflight(party(emu, runtime="runp")), "access runk Role").status == "SKIP"


def test_emulated_service_proxy_denied(emu: KusciaEmulator) -> None:
    emu.deny("get", "services")  # the emulator denies by verb and resource, subresources included
    report = run_preflight(party(emu, kusciaApiTransport="serviceProxy"))
    result = check(report, "access services/proxy")
    assert result.status == "FAIL" and result.detail.startswith("denied: get on services/proxy")
    assert "access pods/portforward" not in statuses(report)


def test_emulated_portforward_denied_fails_and_exec_denied_only_warns(emu: KusciaEmulator) -> None:
    emu.deny("create", "pods/portforward")
    emu.deny("create", "pods/exec")
    report = run_preflight(party(emu))
    forward, execute = check(report, "access pods/portforward"), check(report, "access pods/exec")
    assert forward.status == "FAIL" and forward.detail.startswith("denied: create on pods/portforward")
    assert "kusciaApiTransport serviceProxy" in forward.fix
    assert execute.status == "WARN" and "curl" in execute.detail
    asked = {
        (
            r.body["spec"]["resourceAttributes"]["verb"],
            r.body["spec"]["resourceAttributes"].get("subresource"),
        )
        for r in emu.requests
        if r.path.endswith("selfsubjectaccessreviews")
    }
    assert {("create", "portforward"), ("get", "portforward"), ("create", "exec"), ("list", None)} <= asked


def test_emulated_unreachable_api_server_skips_the_rest(tmp_path: Path) -> None:
    cfg = parse_party_config(
        {"domainId": "alice", "runtime": "runp", "kubeconfig": str(dead_kubeconfig(tmp_path))}
    )
    report = run_preflight(cfg)
    assert check(report, "API server").status == "FAIL"
    assert {statuses(report)[n] for n in ("namespace", "access", "access runk Role", "access KusciaAPI")} == {
        "SKIP"
    }


# -- the database, with the admin credentials (REAL MariaDB) ------------------------------------------


def admin_checks(
    server: MariaDB,
    *,
    user: str = ADMIN_USER,
    password: str = ADMIN_PASSWORD,
    database: str,
    kine_user: str | None = None,
    domain_id: str = "alice",
) -> dict[str, Any]:
    results = admin_database_checks(
        server.host,
        server.port,
        user,
        password,
        database=database,
        user=kine_user or database,
        domain_id=domain_id,
    )
    return {r.name: r for r in results}


def provisions_for_real(server: MariaDB, user: str, password: str, database: str) -> bool:
    """Run what `pulumi up` runs as this admin (database, user, grant); True when all of it worked."""
    try:
        with server.connect(user, password) as conn, conn.cursor() as cursor:
            for sql, args in provisioning_statements(database, database, "Kine-pw-123"):
                cursor.execute(sql, args or None)
    except pymysql.err.MySQLError:
        return False
    return True


def make_admin(server: MariaDB, name: str, *grants: str) -> None:
    server.execute(f"CREATE USER '{name}'@'%' IDENTIFIED BY 'Adm-pw-123'")
    for grant in grants:
        server.execute(grant.format(admin=f"'{name}'@'%'"))


def test_admin_with_every_right_and_free_names_passes(mariadb: MariaDB) -> None:
    results = admin_checks(mariadb, database="pf_free")
    for name in (
        "database server",
        "database admin login",
        "database admin privileges",
        "database name",
        "database user",
    ):
        assert results[name].status == "PASS", results[name]
    assert "creates it" in results["database name"].detail and "creates it" in results["database user"].detail
    assert provisions_for_real(mariadb, ADMIN_USER, ADMIN_PASSWORD, "pf_free")
    # After `up`, the same names are ours: the user holds grants only on its database.
    after = admin_checks(mariadb, database="pf_free")
    assert after["database user"].status == "PASS" and "ours" in after["database user"].detail
    assert (
        after["database name"].status == "WARN" and "pulumi import" in after["database name"].fix
    )  # empty database


def test_admin_without_rights_fails_and_really_cannot(mariadb: MariaDB) -> None:
    make_admin(mariadb, "pf_weak")
    result = admin_checks(mariadb, user="pf_weak", password="Adm-pw-123", database="pf_weak_db")[
        "database admin privileges"
    ]
    assert result.status == "FAIL"
    assert (
        result.data["missing"][:2] == ["CREATE on `pf_weak_db`.*", "CREATE USER"]
        and "GRANT OPTION" in result.detail
    )
    assert not provisions_for_real(mariadb, "pf_weak", "Adm-pw-123", "pf_weak_db")


@pytest.mark.parametrize(
    ("pattern", "database", "can"),
    [("pfw%", "pfw_alice", True), ("pfw%", "other_alice", False), ("pfe\\_%", "pfe_alice", False)],
    ids=["covering-pattern", "outside-pattern", "escaped-pattern"],
)
def test_admin_with_database_level_grants_is_judged_as_the_server_judges(
    mariadb: MariaDB, pattern: str, database: str, can: bool
) -> None:
    """`GRANT ... ON `pfe_alice`.*` is itself a pattern (its `_` matches any character), so an
    admin whose rights sit on the escaped pattern `pfe\\_%` may create that database, but not grant
    on it: the server refuses, and so must the check."""
    admin = f"pf_{abs(hash((pattern, database))) % 10**6}"
    make_admin(
        mariadb,
        admin,
        "GRANT CREATE USER ON *.* TO {admin}",
        f"GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, INDEX ON `{pattern}`.* TO {{admin}} WITH GRANT OPTION",
    )
    results = admin_checks(mariadb, user=admin, password="Adm-pw-123", database=database)
    assert (results["database admin privileges"].status == "PASS") is can
    assert provisions_for_real(mariadb, admin, "Adm-pw-123", database) is can
    if pattern.startswith("pfe"):
        assert "held on database pfe_alice itself" in results["database admin privileges"].detail
    assert results["database user"].status == "SKIP"  # this admin may not read mysql.user


def test_admin_without_grant_option_fails_and_really_cannot_grant(mariadb: MariaDB) -> None:
    make_admin(
        mariadb,
        "pf_nogo",
        "GRANT CREATE USER ON *.* TO {admin}",
        "GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, INDEX ON `pfn_alice`.* TO {admin}",
    )
    result = admin_checks(mariadb, user="pf_nogo", password="Adm-pw-123", database="pfn_alice")[
        "database admin privileges"
    ]
    assert result.status == "FAIL" and result.data["missing"] == ["GRANT OPTION on `pfn_alice`.*"]
    assert "WITH GRANT OPTION" in result.fix
    assert not provisions_for_real(mariadb, "pf_nogo", "Adm-pw-123", "pfn_alice")


def test_admin_rights_through_a_default_role_are_read(mariadb: MariaDB) -> None:
    mariadb.execute("CREATE ROLE pf_role")
    mariadb.execute("GRANT CREATE USER ON *.* TO pf_role")
    mariadb.execute(
        "GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, INDEX ON `pfr_alice`.* TO pf_role WITH GRANT OPTION"
    )
    make_admin(mariadb, "pf_roled", "GRANT pf_role TO {admin}", "SET DEFAULT ROLE pf_role FOR {admin}")
    result = admin_checks(mariadb, user="pf_roled", password="Adm-pw-123", database="pfr_alice")[
        "database admin privileges"
    ]
    assert result.status == "PASS"
    assert provisions_for_real(mariadb, "pf_roled", "Adm-pw-123", "pfr_alice")


def test_database_name_that_holds_this_domains_kine_is_ours(mariadb: MariaDB) -> None:
    provision(mariadb, "pf_mine", rows=[domain_row("alice"), domain_row("bob", "partner")])
    result = admin_checks(mariadb, database="pf_mine")["database name"]
    assert result.status == "PASS" and "earlier deployment of alice" in result.detail


@pytest.mark.parametrize(
    ("rows", "extra_table", "status", "words"),
    [
        ([("carol", "")], False, "FAIL", "k3s data of domain carol, not alice"),
        ([("alice", ""), ("carol", "")], False, "FAIL", "2 own Domains (alice, carol): k3s data of several"),
        ([], False, "WARN", "empty kine table"),
        (None, True, "FAIL", "holds other tables (orders)"),
    ],
)
def test_database_name_that_is_not_ours(
    mariadb: MariaDB, rows: list[tuple[str, str]] | None, extra_table: bool, status: str, words: str
) -> None:
    name = f"pf_db_{status.lower()}_{len(rows or [])}_{int(extra_table)}"
    provision(mariadb, name, rows=[domain_row(d, r) for d, r in rows] if rows is not None else None)
    if extra_table:
        mariadb.execute(f"CREATE TABLE `{name}`.orders (id INT)")
    result = admin_checks(mariadb, database=name, kine_user=f"{name}_new")["database name"]
    assert result.status == status and words in result.detail


def test_kine_user_of_another_database_fails(mariadb: MariaDB) -> None:
    provision(mariadb, "pf_bobs", table=False)  # user pf_bobs with grants on pf_bobs
    result = admin_checks(mariadb, database="pf_alices", kine_user="pf_bobs")["database user"]
    assert (
        result.status == "FAIL"
        and "privileges on pf_bobs" in result.detail
        and "kuscia:database.user" in result.fix
    )


def test_wrong_admin_password_fails_and_skips_the_rest(mariadb: MariaDB) -> None:
    results = admin_checks(mariadb, password="Not-the-admin-pw", database="pf_x")
    assert (
        results["database admin login"].status == "FAIL"
        and "the admin user 'admin'" in results["database admin login"].detail
    )
    assert {
        results[n].status for n in ("database version", "database admin privileges", "database name")
    } == {"SKIP"}


# -- the command, and where the admin password comes from -----------------------------------------------


TEST_DB_NAME = "mysql.preflight.test"  # RFC 2606's .test: never a real name


@pytest.fixture
def resolve_test_name(mariadb: MariaDB, monkeypatch: pytest.MonkeyPatch) -> None:
    """TEST_DB_NAME resolves to the test server, as a DNS name of a real server would."""
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        return real(mariadb.host if host == TEST_DB_NAME else host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


def stack_file(tmp_path: Path, emu: KusciaEmulator, server: MariaDB, database: str) -> Path:
    path = tmp_path / "Pulumi.alice.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "config": {
                    "kuscia:domainId": "alice",
                    "kuscia:runtime": "runp",
                    "kuscia:kubeconfig": emu.kubeconfig_path,
                    "kuscia:kubeContext": emu.context,
                    "kuscia:database": {
                        "mode": "external",
                        # a loopback endpoint is refused (inside the pod it is the pod itself):
                        # the test server is named as a real one would be (see resolve_test_name)
                        "endpoint": f"{TEST_DB_NAME}:{server.port}",
                        "adminUser": ADMIN_USER,
                        "name": database,
                        "user": database,
                    },
                    "kuscia:databaseAdminPassword": {"secure": "v1:AAAAAAAAAAAAAAAA:BBBBBBBBBBBB"},
                }
            }
        )
    )
    return path


def run_cli(argv: list[str], env: dict[str, str]) -> tuple[int, str, str]:
    """The preflight command as preflight_main runs it, with `env` as the environment."""
    out, err = io.StringIO(), io.StringIO()

    def runner(cfg: PartyConfig, args: Any, redactor: Any) -> Report:
        source = admin_password_source("alice", args.config.parent, env)
        return run_preflight(cfg, timeout=args.request_timeout, admin_password=source, redactor=redactor)

    return (
        run_command(argv, parser=preflight_parser(), runner=runner, out=out, err=err),
        out.getvalue(),
        err.getvalue(),
    )


def test_emulated_cli_takes_the_admin_password_from_the_environment(
    emu: KusciaEmulator, mariadb: MariaDB, tmp_path: Path, resolve_test_name: None
) -> None:
    path = stack_file(tmp_path, emu, mariadb, "pf_cli")
    code, out, _ = run_cli(["--config", str(path), "--json"], {"PATH": ""})
    database = next(c for c in json.loads(out)["checks"] if c["name"] == "database")
    assert code == 0 and database["status"] == "SKIP" and PASSWORD_ENV in database["fix"]
    code, out, _ = run_cli(["--config", str(path)], {PASSWORD_ENV: ADMIN_PASSWORD, "PATH": ""})
    assert re.search(r"^PASS +database admin privileges +\S", out, re.M)
    # The test server is MariaDB 10.11, where pulumi-mysql cannot create users: a real FAIL.
    assert code == 1 and re.search(r"^FAIL +database provider +the server does not answer", out, re.M)
    assert ADMIN_PASSWORD not in out
    code, out, _ = run_cli(["--config", str(path)], {PASSWORD_ENV: "Wrong-admin-pw", "PATH": ""})
    assert code == 1 and "FAIL  database admin login" in out and "Wrong-admin-pw" not in out


def test_admin_password_from_the_pulumi_cli(tmp_path: Path) -> None:
    """A stand-in `pulumi` on PATH (NOT the Pulumi CLI): it records its arguments and prints a value,
    so this tests how preflight asks, not Pulumi."""
    log = tmp_path / "calls"
    fake = tmp_path / "pulumi"
    fake.write_text(
        f'#!/bin/sh\necho "$@" >> {log}\ncase "$*" in *--path*) echo "S3cret pw: x";; *) exit 1;; esac\n'
    )
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    read = admin_password_source("alice", tmp_path, {"PATH": f"{tmp_path}{os.pathsep}/usr/bin:/bin"})
    assert read() == "S3cret pw: x" and read() == "S3cret pw: x"
    assert log.read_text().splitlines() == [
        "config get kuscia:databaseAdminPassword --stack alice",
        "config get --path kuscia:database.adminPassword --stack alice",
    ]  # asked once, both spellings, cached for --watch rounds
    assert admin_password_source("alice", tmp_path, {"PATH": ""})() is None


def test_external_mode_on_mariadb_fails_because_pulumi_mysql_cannot_manage_users(mariadb: MariaDB) -> None:
    """pulumi-mysql's provider reads @@GLOBAL.innodb_version before CREATE USER; MariaDB 10.10+
    answers error 1193, so `pulumi up` would fail: preflight says so before anything is created."""
    import pymysql

    with pytest.raises(pymysql.err.OperationalError) as err:
        mariadb.execute("SELECT @@GLOBAL.innodb_version")
    assert err.value.args[0] == 1193
    result = admin_checks(mariadb, database="pf_provider")["database provider"]
    assert result.status == "FAIL" and "MySQL 8.0.23+" in result.fix


def test_a_non_ascii_admin_password_is_sent_as_utf8(mariadb: MariaDB) -> None:
    """MySQL's clients and pulumi-mysql (Go) send UTF-8; PyMySQL alone would send latin-1."""
    password = "Adm-pässwörd-ü1-密码"
    mariadb.execute("CREATE USER 'pf_utf8'@'%%' IDENTIFIED BY %s", (password,))
    mariadb.execute("GRANT ALL ON *.* TO 'pf_utf8'@'%' WITH GRANT OPTION")
    result = admin_checks(mariadb, user="pf_utf8", password=password, database="pf_utf8_db")
    assert result["database admin login"].status == "PASS", result["database admin login"].detail
    wrong = admin_checks(mariadb, user="pf_utf8", password="Adm-passwort-u1", database="pf_utf8_db")
    assert wrong["database admin login"].status == "FAIL"
