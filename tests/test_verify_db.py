"""verify's database checks against a REAL MariaDB server, each fault built for real.

The node's DSN is made the way the program makes it (provisioning_statements + build_dsn); the
kine table comes from tests/mariadb.py's DDL, written from NOTES §5's column list. Only two
servers here are fakes, and their tests say so: a port that speaks HTTP, and one that stays
silent (the point is that they are not MySQL).
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from kuscia_components.checks.database import node_database_checks, parse_grants
from kuscia_components.checks.report import CheckResult, Report, render_report
from kuscia_components.core.dsn import KINE_PRIVILEGES, build_dsn, datastore_endpoint
from kuscia_components.core.redact import Redactor
from tests.helpers import domain_row, provision, self_signed_cert
from tests.mariadb import (
    ADMIN_PASSWORD,
    ADMIN_USER,
    MariaDB,
    free_port,
    start_mariadb,
    stop_mariadb,
)

NAMES = [
    "database server",
    "database login",
    "database version",
    "database settings",
    "database exists",
    "kine table",
    "kine rows",
    "kine privileges",
]


def by_name(results: list[CheckResult]) -> dict[str, CheckResult]:
    return {r.name: r for r in results}


def printed(results: list[CheckResult], *secrets: str) -> str:
    """What the CLI would print (human and JSON), with the run's redactor."""
    redactor = Redactor()
    redactor.add(*secrets)
    report = Report("verify", "alice", "alice", results)
    return redactor.scrub(render_report(report)) + redactor.scrub(
        json.dumps(redactor.scrub_tree(report.to_dict()))
    )


def test_healthy_kine_database_passes(mariadb: MariaDB) -> None:
    dsn, _ = provision(
        mariadb, "v_healthy", rows=[domain_row("alice"), domain_row("bob", "partner"), ("/registry/x", b"v")]
    )
    results = by_name(node_database_checks(dsn, "alice"))
    assert list(results) == NAMES
    for name in (
        "database server",
        "database login",
        "database exists",
        "kine table",
        "kine rows",
        "kine privileges",
    ):
        assert results[name].status == "PASS", results[name]
    assert results["kine rows"].data["rows"] == 3 and "own Domain alice" in results["kine rows"].detail
    # The session server is MariaDB with its default optimizer switches: both are honest warnings.
    assert results["database version"].status == "WARN" and "MariaDB" in results["database version"].detail
    assert (
        results["database settings"].status == "WARN"
        and "derived_merge=off" in results["database settings"].fix
    )


def test_privilege_probes_write_nothing(mariadb: MariaDB) -> None:
    dsn, _ = provision(mariadb, "v_probe")
    before = mariadb.execute("SELECT COUNT(*), MAX(id) FROM v_probe.kine")
    assert by_name(node_database_checks(dsn, "alice"))["kine privileges"].status == "PASS"
    assert mariadb.execute("SELECT COUNT(*), MAX(id) FROM v_probe.kine") == before


def test_revoked_privileges_are_named_exactly(mariadb: MariaDB) -> None:
    dsn, _ = provision(mariadb, "v_revoked")
    mariadb.execute("REVOKE INSERT, DELETE ON `v_revoked`.* FROM 'v_revoked'@'%'")
    result = by_name(node_database_checks(dsn, "alice"))["kine privileges"]
    assert result.status == "FAIL" and result.data["missing"] == ["INSERT", "DELETE"]
    assert (
        "GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, INDEX ON `v_revoked`.* TO 'v_revoked'@'%'"
        in result.fix
    )


def test_dropped_table_fails_and_privileges_fall_back_to_grants(mariadb: MariaDB) -> None:
    dsn, _ = provision(mariadb, "v_dropped")
    mariadb.execute("DROP TABLE `v_dropped`.`kine`")
    results = by_name(node_database_checks(dsn, "alice"))
    assert results["kine table"].status == "FAIL" and "no table `kine`" in results["kine table"].detail
    assert results["kine rows"].status == "SKIP"
    # kine could still create its table: the user holds CREATE and INDEX (read from SHOW GRANTS).
    assert results["kine privileges"].status == "PASS" and "SHOW GRANTS" in results["kine privileges"].detail
    mariadb.execute("REVOKE CREATE, INDEX ON `v_dropped`.* FROM 'v_dropped'@'%'")
    again = by_name(node_database_checks(dsn, "alice"))["kine privileges"]
    assert again.status == "FAIL" and again.data["missing"] == ["CREATE", "INDEX"]


def test_empty_kine_table_fails(mariadb: MariaDB) -> None:
    dsn, _ = provision(mariadb, "v_empty", rows=[])
    result = by_name(node_database_checks(dsn, "alice"))["kine rows"]
    assert result.status == "FAIL" and "is empty" in result.detail and "30 s" in result.fix


def test_kine_data_of_another_domain_fails(mariadb: MariaDB) -> None:
    dsn, _ = provision(mariadb, "v_other", rows=[domain_row("carol"), domain_row("alice", "partner")])
    result = by_name(node_database_checks(dsn, "alice"))["kine rows"]
    # carol's own Domain; alice is only carol's partner there.
    assert result.status == "FAIL" and "domain carol, not alice" in result.detail


def test_kine_data_with_a_second_own_domain_fails(mariadb: MariaDB) -> None:
    dsn, _ = provision(mariadb, "v_two", rows=[domain_row("alice"), domain_row("carol")])
    result = by_name(node_database_checks(dsn, "alice"))["kine rows"]
    assert result.status == "FAIL" and "2 own Domains (alice, carol)" in result.detail, result.detail


def test_deleted_domain_row_no_longer_counts(mariadb: MariaDB) -> None:
    key, value = domain_row("alice")
    dsn, _ = provision(mariadb, "v_deleted", rows=[(key, value)])
    mariadb.execute("INSERT INTO v_deleted.kine (name, deleted, value) VALUES (%s, 1, %s)", (key, value))
    result = by_name(node_database_checks(dsn, "alice"))["kine rows"]
    assert result.status == "WARN" and "no Domain alice yet" in result.detail


def test_wrong_password_fails_and_is_never_printed(mariadb: MariaDB) -> None:
    provision(mariadb, "v_wrongpw")
    wrong = "Wr0ng:p@ss/word?"
    dsn = datastore_endpoint(build_dsn("v_wrongpw", wrong, mariadb.host, mariadb.port, "v_wrongpw"))
    results = by_name(node_database_checks(dsn, "alice"))
    login = results["database login"]
    assert login.status == "FAIL" and "refused the node's database user 'v_wrongpw'" in login.detail
    assert "Access denied" in login.detail  # the server's own words, which name the client address
    assert {results[n].status for n in NAMES[2:]} == {"SKIP"}
    assert wrong not in printed(list(results.values()), wrong)


def test_missing_database_fails(mariadb: MariaDB) -> None:
    dsn, _ = provision(mariadb, "v_missing", table=False)
    mariadb.execute("DROP DATABASE `v_missing`")
    results = by_name(node_database_checks(dsn, "alice"))
    assert results["database login"].status == "PASS"
    assert (
        results["database exists"].status == "FAIL" and "does not exist" in results["database exists"].detail
    )
    assert results["kine table"].status == results["kine privileges"].status == "SKIP"


def test_database_without_grants_fails_as_not_usable(mariadb: MariaDB) -> None:
    dsn, _ = provision(mariadb, "v_nogrant", table=False)
    mariadb.execute("REVOKE ALL PRIVILEGES ON `v_nogrant`.* FROM 'v_nogrant'@'%'")
    result = by_name(node_database_checks(dsn, "alice"))["database exists"]
    assert (
        result.status == "FAIL"
        and "may not use database 'v_nogrant'" in result.detail
        and "GRANT" in result.fix
    )


def test_require_ssl_without_server_tls_is_indistinguishable_from_a_wrong_password(mariadb: MariaDB) -> None:
    """The session server has no TLS: a REQUIRE SSL user can never log in, and MariaDB answers
    exactly as for a wrong password (1045), so the check can only say 'refused'."""
    dsn, _ = provision(mariadb, "v_sslnotls", table=False)
    mariadb.execute("ALTER USER 'v_sslnotls'@'%' REQUIRE SSL")
    results = by_name(node_database_checks(dsn, "alice"))
    assert "no TLS" in results["database server"].detail
    assert results["database login"].status == "FAIL" and "refused" in results["database login"].detail


def self_signed(tmp: Path) -> tuple[Path, Path]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cert = self_signed_cert(key, "localhost")
    key_path, cert_path = tmp / "server.key", tmp / "server.crt"
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key_path, cert_path


@pytest.fixture(scope="module")
def tls_mariadb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MariaDB]:
    """A second REAL MariaDB, started with a (test-only, throwaway) certificate so it offers TLS."""
    key, cert = self_signed(tmp_path_factory.mktemp("tls"))
    server = start_mariadb(tmp_path_factory.mktemp("tlsdata"), [f"--ssl-key={key}", f"--ssl-cert={cert}"])
    try:
        yield server
    finally:
        stop_mariadb(server)


def test_user_that_must_use_tls_fails_with_tls_named(tls_mariadb: MariaDB) -> None:
    dsn, _ = provision(tls_mariadb, "v_tls")
    assert by_name(node_database_checks(dsn, "alice"))["database login"].status == "PASS"
    tls_mariadb.execute("ALTER USER 'v_tls'@'%' REQUIRE SSL")
    results = by_name(node_database_checks(dsn, "alice"))
    assert "offers TLS" in results["database server"].detail
    login = results["database login"]
    assert login.status == "FAIL" and "requires TLS" in login.detail and "REQUIRE NONE" in login.fix


def test_server_that_requires_secure_transport_fails_with_tls_named(tls_mariadb: MariaDB) -> None:
    dsn, _ = provision(tls_mariadb, "v_rst")
    tls_mariadb.execute("SET GLOBAL require_secure_transport = ON")
    try:
        login = by_name(node_database_checks(dsn, "alice"))["database login"]
    finally:
        tls_mariadb.execute("SET GLOBAL require_secure_transport = OFF")
    assert login.status == "FAIL" and "requires TLS" in login.detail


def test_stopped_server_fails_as_nothing_listening(tmp_path: Path) -> None:
    server = start_mariadb(tmp_path)
    dsn = datastore_endpoint(build_dsn(ADMIN_USER, ADMIN_PASSWORD, server.host, server.port, "mysql"))
    assert by_name(node_database_checks(dsn, "alice"))["database login"].status == "PASS"
    stop_mariadb(server)
    results = node_database_checks(dsn, "alice")
    assert (
        results[0].status == "FAIL"
        and "nothing listens" in results[0].detail
        and "connection refused" in results[0].detail
    )
    assert {r.status for r in results[1:]} == {"SKIP"}


def test_closed_port_fails_as_nothing_listening() -> None:
    dsn = datastore_endpoint(build_dsn("u", "secret-pw", "127.0.0.1", free_port(), "db"))
    result = node_database_checks(dsn, "alice")[0]
    assert result.status == "FAIL" and "nothing listens" in result.detail


@pytest.fixture
def fake_port() -> Iterator[tuple[int, list[bytes]]]:
    """NOT MySQL: a TCP server that answers each connection with the bytes in the list (or nothing)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(5)
    server.settimeout(0.1)
    answer: list[bytes] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            with conn:
                if answer:
                    conn.sendall(answer[0])
                stop.wait(1.5)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1], answer
    stop.set()
    thread.join()
    server.close()


def test_a_port_that_speaks_http_fails_as_not_mysql(fake_port: tuple[int, list[bytes]]) -> None:
    port, answer = fake_port
    answer.append(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
    result = node_database_checks(
        datastore_endpoint(build_dsn("u", "pw12", "127.0.0.1", port, "db")), "alice"
    )[0]
    assert (
        result.status == "FAIL"
        and "is not a MySQL server: it answered 'HTTP/1.1 400 Bad Request" in result.detail
    )
    assert "3306" in result.fix


def test_a_silent_port_fails_as_not_mysql(fake_port: tuple[int, list[bytes]]) -> None:
    port, _ = fake_port
    dsn = datastore_endpoint(build_dsn("u", "pw12", "127.0.0.1", port, "db"))
    result = node_database_checks(dsn, "alice", timeout=0.5)[0]
    assert result.status == "FAIL" and "sent nothing within 0.5 s" in result.detail


def test_emulated_server_error_greeting_is_explained(fake_port: tuple[int, list[bytes]]) -> None:
    """A MySQL error packet instead of a greeting (written here by hand: 1040 Too many connections)."""
    port, answer = fake_port
    payload = b"\xff" + (1040).to_bytes(2, "little") + b"#08004Too many connections"
    answer.append(len(payload).to_bytes(3, "little") + b"\x00" + payload)
    result = node_database_checks(
        datastore_endpoint(build_dsn("u", "pw12", "127.0.0.1", port, "db")), "alice"
    )[0]
    assert result.status == "FAIL" and "MySQL error 1040" in result.detail and "max_connections" in result.fix


def test_unresolvable_host_fails_and_cluster_names_are_skipped_with_a_port_forward_hint() -> None:
    result = node_database_checks(
        datastore_endpoint(build_dsn("u", "pw12", "db.invalid", 3306, "db")), "alice"
    )[0]
    assert result.status == "FAIL" and "does not resolve" in result.detail
    internal = datastore_endpoint(
        build_dsn("u", "pw12", "kuscia-mysql.autonomy-alice.svc.cluster.local", 3306, "d")
    )
    skipped = node_database_checks(internal, "alice", namespace="autonomy-alice")
    assert [r.status for r in skipped] == ["SKIP"]
    assert (
        "port-forward svc/kuscia-mysql 3306:3306" in skipped[0].fix
        and "--db-address 127.0.0.1:3306" in skipped[0].fix
    )


def test_db_address_reaches_a_cluster_internal_database(mariadb: MariaDB) -> None:
    dsn, _ = provision(mariadb, "v_forward")
    internal = dsn.replace(
        f"{mariadb.host}:{mariadb.port}", "kuscia-mysql.autonomy-alice.svc.cluster.local:3306"
    )
    results = by_name(node_database_checks(internal, "alice", address=f"{mariadb.host}:{mariadb.port}"))
    assert results["kine rows"].status == "PASS" and results["kine privileges"].status == "PASS"


def test_dsn_that_does_not_parse_fails() -> None:
    result = node_database_checks("mysql://user:pw@tcp(host:3306/db", "alice")[0]
    assert result.name == "database DSN" and result.status == "FAIL" and "pulumi up" in result.fix


# -- SHOW GRANTS parsing (pure; MySQL 8 lines as MySQL prints them) ---------------------------------


def test_grants_parser_reads_database_wildcards_roles_and_partial_revokes() -> None:
    grants = parse_grants(
        [
            "GRANT USAGE ON *.* TO `u`@`%`",
            "GRANT CREATE USER ON *.* TO `u`@`%`",
            "GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, INDEX ON `kuscia\\_%`.* TO `u`@`%` WITH GRANT OPTION",
            "GRANT SELECT (`id`), UPDATE ON `other`.`t` TO `u`@`%`",
            "GRANT `dba`@`%`,`ops`@`%` TO `u`@`%`",
            "REVOKE DELETE ON `kuscia_bob`.* FROM `u`@`%`",
        ]
    )
    held, option = grants.on_database("kuscia_alice")
    assert held >= set(KINE_PRIVILEGES) and option
    assert "DELETE" not in grants.on_database("kuscia_bob")[0]  # partial revoke
    assert "SELECT" not in grants.on_database("kusciaXalice")[0]  # `\_` is a literal underscore
    assert "CREATE USER" in grants.global_privileges
    assert grants.roles == ["`dba`@`%`", "`ops`@`%`"]
