"""verify/preflight database checks against a REAL MariaDB server, each fault built for real."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from dataclasses import replace

import pytest

from kuscia_components.config import DatabaseSettings, PartyConfig
from kuscia_components.database import provisioning_statements
from kuscia_components.dsn import build_dsn, datastore_endpoint
from kuscia_components.verify import admin_checks, database_checks
from tests.mariadb import ADMIN_PASSWORD, ADMIN_USER, KINE_DDL, MariaDB


def provision(server: MariaDB, name: str, *, rows: int = 3, table: bool = True) -> str:
    password = f"pw-{name}"
    with server.connect() as conn, conn.cursor() as cursor:
        for sql, args in provisioning_statements(name, name, password):
            cursor.execute(sql, args or None)
    if table:
        with server.connect(name, password, name) as conn, conn.cursor() as cursor:
            cursor.execute(KINE_DDL)
            for i in range(rows):
                cursor.execute("INSERT INTO kine (name, value) VALUES (%s, %s)", (f"/registry/{i}", b"v"))
    return datastore_endpoint(build_dsn(name, password, server.host, server.port, name))


def by_name(results: list) -> dict[str, object]:
    return {r.name: r for r in results}


def test_healthy_kine_database_passes(mariadb: MariaDB) -> None:
    results = by_name(database_checks(provision(mariadb, "v_healthy")))
    assert results["database connection"].status == "PASS"
    assert results["kine table"].status == "PASS" and results["kine table"].extra["rows"] == 3
    assert results["kine privileges"].status == "PASS"
    assert results["database version"].status == "WARN" and "MariaDB" in results["database version"].detail


def test_revoked_privilege_fails_with_the_grant_to_run(mariadb: MariaDB) -> None:
    dsn = provision(mariadb, "v_revoked")
    mariadb.execute("REVOKE DELETE ON `v_revoked`.* FROM 'v_revoked'@'%'")
    result = by_name(database_checks(dsn))["kine privileges"]
    assert result.status == "FAIL" and "DELETE" in result.detail and "GRANT" in result.fix


def test_dropped_table_fails(mariadb: MariaDB) -> None:
    dsn = provision(mariadb, "v_dropped")
    mariadb.execute("DROP TABLE `v_dropped`.`kine`")
    result = by_name(database_checks(dsn))["kine table"]
    assert result.status == "FAIL" and "no table `kine`" in result.detail and "pod log" in result.fix


def test_empty_table_fails(mariadb: MariaDB) -> None:
    result = by_name(database_checks(provision(mariadb, "v_empty", rows=0)))["kine table"]
    assert result.status == "FAIL" and "empty" in result.detail


def test_wrong_password_fails(mariadb: MariaDB) -> None:
    provision(mariadb, "v_wrongpw")
    dsn = datastore_endpoint(
        build_dsn("v_wrongpw", "not-the-password", mariadb.host, mariadb.port, "v_wrongpw")
    )
    results = database_checks(dsn)
    assert len(results) == 1 and results[0].status == "FAIL" and "was refused" in results[0].detail
    assert "not-the-password" not in results[0].line()


def test_missing_database_fails(mariadb: MariaDB) -> None:
    provision(mariadb, "v_missing", table=False)
    mariadb.execute("DROP DATABASE `v_missing`")
    results = database_checks(
        datastore_endpoint(build_dsn("v_missing", "pw-v_missing", mariadb.host, mariadb.port, "v_missing"))
    )
    assert results[0].status == "FAIL"
    assert "does not exist" in results[0].detail or "may not use" in results[0].detail


def test_tls_required_user_fails_with_tls_named_as_a_cause(mariadb: MariaDB) -> None:
    dsn = provision(mariadb, "v_tls")
    mariadb.execute("ALTER USER 'v_tls'@'%' REQUIRE SSL")
    result = database_checks(dsn)[0]
    assert result.status == "FAIL" and "TLS" in result.detail


def test_closed_port_fails_as_unreachable(mariadb: MariaDB) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = database_checks(datastore_endpoint(build_dsn("u", "p", "127.0.0.1", port, "db")))[0]
    assert result.status == "FAIL" and "cannot reach" in result.detail


@pytest.fixture
def http_server() -> Iterator[int]:
    """A port that speaks HTTP, not MySQL."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(5)
    stop = threading.Event()

    def serve() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            with conn:
                conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join()
    server.close()


def test_a_port_that_speaks_something_else_fails_as_not_mysql(http_server: int) -> None:
    result = database_checks(datastore_endpoint(build_dsn("u", "p", "127.0.0.1", http_server, "db")))[0]
    assert result.status == "FAIL" and "did not answer like a MySQL server" in result.detail


def test_stopped_server_fails_as_unreachable(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from tests.mariadb import start_mariadb, stop_mariadb

    server = start_mariadb(tmp_path)
    dsn = datastore_endpoint(build_dsn(ADMIN_USER, ADMIN_PASSWORD, server.host, server.port, "mysql"))
    stop_mariadb(server)
    result = database_checks(dsn)[0]
    assert result.status == "FAIL" and "cannot reach" in result.detail


def test_cluster_internal_host_is_skipped_with_the_port_forward_hint() -> None:
    dsn = datastore_endpoint(build_dsn("u", "p", "kuscia-mysql.autonomy-alice.svc.cluster.local", 3306, "db"))
    result = database_checks(dsn)[0]
    assert result.status == "SKIP" and "port-forward" in result.detail


def test_db_address_override_reaches_the_database(mariadb: MariaDB) -> None:
    dsn = provision(mariadb, "v_override").replace(
        f"{mariadb.host}:{mariadb.port}", "kuscia-mysql.ns.svc.cluster.local:3306"
    )
    results = by_name(database_checks(dsn, address=f"{mariadb.host}:{mariadb.port}"))
    assert results["kine table"].status == "PASS"


# -- preflight: admin credentials ----------------------------------------------------------------


def external(
    server: MariaDB, *, user: str = ADMIN_USER, password: str = ADMIN_PASSWORD, name: str = "kuscia_new"
) -> PartyConfig:
    db = DatabaseSettings(
        mode="external",
        name=name,
        host=server.host,
        port=server.port,
        admin_user=user,
        admin_password=password,
    )
    return PartyConfig(domain_id="alice", namespace="autonomy-alice", database=db)


def test_preflight_admin_with_rights_and_a_free_name_passes(mariadb: MariaDB) -> None:
    results = by_name(admin_checks(external(mariadb)))
    assert results["database admin login"].status == "PASS"
    assert results["database admin privileges"].status == "PASS"
    assert results["database name"].status == "PASS" and "free" in results["database name"].detail


def test_preflight_existing_kine_database_warns_about_domain_reuse(mariadb: MariaDB) -> None:
    provision(mariadb, "v_reused")
    result = by_name(admin_checks(external(mariadb, name="v_reused")))["database name"]
    assert result.status == "WARN" and "domain alice" in result.fix


def test_preflight_admin_without_rights_fails(mariadb: MariaDB) -> None:
    mariadb.execute("CREATE USER IF NOT EXISTS 'weak'@'%' IDENTIFIED BY 'weak-pw'")
    result = by_name(admin_checks(external(mariadb, user="weak", password="weak-pw")))[
        "database admin privileges"
    ]
    assert result.status == "FAIL" and "CREATE USER" in result.detail


def test_preflight_wrong_admin_password_fails(mariadb: MariaDB) -> None:
    results = admin_checks(external(mariadb, password="nope"))
    assert results[0].status == "FAIL" and "admin user" in results[0].detail


def test_preflight_skips_in_cluster_database(mariadb: MariaDB) -> None:
    cfg = replace(external(mariadb), database=DatabaseSettings())
    assert admin_checks(cfg)[0].status == "SKIP"
