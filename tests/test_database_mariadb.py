"""The node database's MySQL semantics against a REAL MariaDB server (tests/mariadb.py starts it).

External mode: the database, user and grant are made with the very SQL text pulumi-mysql runs
(`provider_statements`), kine's user logs in with the credentials parsed back from the DSN,
does what kine does on first start and in operation, and is refused everything else.
In-cluster mode: mysqld is started with the StatefulSet's arguments and the pod's probe
commands are run with the real `mysql` client.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pymysql
import pytest

from kuscia_components.core.dsn import (
    KINE_PRIVILEGES,
    build_dsn,
    datastore_endpoint,
    generate_password,
    parse_dsn,
)
from kuscia_components.core.mysql import PROVIDER_VERSION_QUERY
from kuscia_components.node.database import (
    ALIVE_COMMAND,
    COLLATION,
    MYSQLD_ARGS,
    READY_COMMAND,
    provider_statements,
)
from tests.mariadb import KINE_DDL, MariaDB, start_mariadb, stop_mariadb

HOSTILE_PASSWORDS = ["p@ss:w/o?r#d%'\"\\ x", "tcp(h:1)/x?y", "'; DROP USER root; --", " spaced out "]
DENIED = 1142  # command denied on a table
DB_DENIED = 1044  # access denied to a database

# kine's first start, written from what its MySQL driver does (NOTES §5 columns): create the
# bare table, then each index separately (a duplicate index, 1061, is tolerated).
KINE_TABLE = """CREATE TABLE IF NOT EXISTS kine (id BIGINT UNSIGNED AUTO_INCREMENT,
  name VARCHAR(630) CHARACTER SET ascii, created INTEGER, deleted INTEGER, create_revision BIGINT UNSIGNED,
  prev_revision BIGINT UNSIGNED, lease INTEGER, value MEDIUMBLOB, old_value MEDIUMBLOB, PRIMARY KEY (id))"""
KINE_INDEXES = [
    "CREATE INDEX kine_name_index ON kine (name)",
    "CREATE INDEX kine_name_id_index ON kine (name, id)",
    "CREATE INDEX kine_id_deleted_index ON kine (id, deleted)",
    "CREATE INDEX kine_prev_revision_index ON kine (prev_revision)",
    "CREATE UNIQUE INDEX kine_name_prev_revision_uindex ON kine (name, prev_revision)",
]
INSERT = (
    "INSERT INTO kine (name, created, deleted, create_revision, prev_revision, lease, value, old_value)"
    " VALUES (%s, %s, %s, %s, %s, 0, %s, %s)"
)


def provision(
    server: MariaDB, name: str, password: str, privileges: tuple[str, ...] = KINE_PRIVILEGES
) -> str:
    """What `pulumi up` does in external mode, statement for statement; returns the endpoint."""
    with server.admin_connection() as conn, conn.cursor() as cursor:
        for sql in provider_statements(name, name, password, privileges=privileges):
            cursor.execute(sql)
    return datastore_endpoint(build_dsn(name, password, server.host, server.port, name))


def login(server: MariaDB, endpoint: str) -> pymysql.connections.Connection:
    """Log in the way kine does: with what the DSN says, parsed back."""
    parsed = parse_dsn(endpoint)
    return pymysql.connect(
        host=parsed.host,
        port=parsed.port,
        user=parsed.user,
        password=parsed.password,
        database=parsed.database,
        autocommit=True,
        connect_timeout=5,
    )


def kine_first_start(cursor: pymysql.cursors.Cursor, name: str) -> None:
    cursor.execute("SELECT 1 FROM information_schema.SCHEMATA WHERE schema_name = %s", (name,))
    assert cursor.fetchall() == ((1,),), "kine's user sees its database, so kine skips creating it"
    cursor.execute(f"CREATE DATABASE IF NOT EXISTS `{name}`")  # older kine always runs it
    cursor.execute(
        "SELECT 1 FROM information_schema.TABLES WHERE table_schema = DATABASE() AND table_name = 'kine'"
    )
    assert cursor.fetchall() == ()
    cursor.execute(KINE_TABLE)
    for statement in KINE_INDEXES:
        cursor.execute(statement)


def error_code(call: object) -> int:
    assert callable(call)
    with pytest.raises(pymysql.err.MySQLError) as err:
        call()
    return int(err.value.args[0])


def test_provider_sql_lets_kine_create_its_table_and_work(mariadb: MariaDB) -> None:
    endpoint = provision(mariadb, "kuscia_work", generate_password())
    with login(mariadb, endpoint) as conn, conn.cursor() as cursor:
        kine_first_start(cursor, "kuscia_work")
        cursor.execute(INSERT, ("/registry/a", 1, 0, 0, 0, b"v1", b""))
        first = cursor.lastrowid
        cursor.execute(INSERT, ("/registry/a", 0, 0, first, first, b"v2", b"v1"))
        cursor.execute(INSERT, ("/registry/b", 1, 0, 0, 0, b"w", b""))
        assert error_code(lambda: cursor.execute(INSERT, ("/registry/b", 1, 0, 0, 0, b"dup", b""))) == 1062
        cursor.execute(
            "SELECT name, value FROM kine WHERE name >= %s AND name < %s ORDER BY id",
            ("/registry/", "/registry0"),
        )
        assert cursor.fetchall() == (("/registry/a", b"v1"), ("/registry/a", b"v2"), ("/registry/b", b"w"))
        cursor.execute("UPDATE kine SET deleted = 1 WHERE name = %s", ("/registry/b",))
        # compaction: a DELETE joined to a derived table (the query derived_merge=off is about)
        cursor.execute(
            "DELETE kv FROM kine AS kv INNER JOIN (SELECT kp.prev_revision AS id FROM kine AS kp "
            "WHERE kp.prev_revision != 0 AND kp.id <= %s UNION SELECT kd.id AS id FROM kine AS kd "
            "WHERE kd.deleted != 0 AND kd.id <= %s) AS ks ON kv.id = ks.id",
            (100, 100),
        )
        cursor.execute("SELECT name, value FROM kine")
        assert cursor.fetchall() == (("/registry/a", b"v2"),)
        cursor.execute(
            "SELECT SUM(data_length + index_length) FROM information_schema.TABLES "
            "WHERE table_schema = DATABASE() AND table_name = 'kine'"
        )
        assert cursor.fetchone()[0] > 0  # kine's size metric is readable


def test_kine_ddl_from_the_notes_creates_the_table_and_its_indexes(mariadb: MariaDB) -> None:
    endpoint = provision(mariadb, "kuscia_ddl", generate_password())
    with login(mariadb, endpoint) as conn, conn.cursor() as cursor:
        cursor.execute(KINE_DDL)
        cursor.execute(
            "SELECT DISTINCT index_name FROM information_schema.STATISTICS WHERE table_name = 'kine'"
            " AND table_schema = DATABASE()"
        )
        expected = {re.search(r"INDEX (\w+) ON", s)[1] for s in KINE_INDEXES}  # type: ignore[index]
        assert {row[0] for row in cursor.fetchall()} == {"PRIMARY", *expected}


@pytest.mark.parametrize(("missing", "refused"), [("CREATE", DB_DENIED), ("INDEX", DENIED)])
def test_each_ddl_privilege_is_needed_for_kines_first_start(
    mariadb: MariaDB, missing: str, refused: int
) -> None:
    """Why KINE_PRIVILEGES holds CREATE and INDEX: without either, kine cannot start (without
    CREATE even older kine's CREATE DATABASE IF NOT EXISTS on the existing database fails)."""
    name = f"kuscia_no_{missing.lower()}"
    endpoint = provision(
        mariadb, name, generate_password(), tuple(p for p in KINE_PRIVILEGES if p != missing)
    )
    with login(mariadb, endpoint) as conn, conn.cursor() as cursor:
        assert error_code(lambda: kine_first_start(cursor, name)) == refused


def test_the_user_holds_exactly_the_kine_privileges(mariadb: MariaDB) -> None:
    provision(mariadb, "kuscia_exact", generate_password())
    grants = [g[0] for g in mariadb.execute("SHOW GRANTS FOR 'kuscia_exact'@'%'")]
    on_db = [g for g in grants if " ON `kuscia_exact`.* " in g]
    assert len(on_db) == 1
    granted = {p.strip() for p in on_db[0].split("GRANT ", 1)[1].split(" ON ", 1)[0].split(",")}
    assert granted == set(KINE_PRIVILEGES)
    assert [g for g in grants if " ON *.* " in g] == [g for g in grants if g.startswith("GRANT USAGE ON *.*")]
    assert mariadb.execute("SHOW CREATE DATABASE kuscia_exact")[0][1].endswith(
        f"DEFAULT CHARACTER SET utf8mb4 COLLATE {COLLATION} */"
    )


def test_privileges_not_granted_are_refused(mariadb: MariaDB) -> None:
    endpoint = provision(mariadb, "kuscia_refuse", generate_password())
    mariadb.execute("CREATE DATABASE IF NOT EXISTS other_db")
    mariadb.execute("CREATE TABLE IF NOT EXISTS other_db.t (id INT)")
    with login(mariadb, endpoint) as conn, conn.cursor() as cursor:
        cursor.execute(KINE_DDL)
        assert error_code(lambda: cursor.execute("DROP TABLE kine")) == DENIED
        # kine's only ALTER is an opt-in schema migration (KINE_SCHEMA_MIGRATION), never set by Kuscia
        assert error_code(lambda: cursor.execute("ALTER TABLE kine MODIFY COLUMN lease BIGINT")) == DENIED
        assert error_code(lambda: cursor.execute("SELECT 1 FROM other_db.t")) == DENIED
        assert error_code(lambda: cursor.execute("CREATE DATABASE sneaky")) == DB_DENIED
        assert error_code(lambda: cursor.execute("DROP DATABASE kuscia_refuse")) == DB_DENIED
        assert error_code(lambda: cursor.execute("CREATE USER 'x'@'%' IDENTIFIED BY 'y'")) == 1227


def test_wrong_password_is_refused(mariadb: MariaDB) -> None:
    endpoint = provision(mariadb, "kuscia_wrongpw", generate_password())
    wrong = datastore_endpoint(
        build_dsn("kuscia_wrongpw", "not-it", mariadb.host, mariadb.port, "kuscia_wrongpw")
    )
    assert parse_dsn(wrong).host == parse_dsn(endpoint).host
    assert error_code(lambda: login(mariadb, wrong)) == 1045


@pytest.mark.parametrize("password", HOSTILE_PASSWORDS)
def test_hostile_passwords_log_in_through_the_parsed_dsn(mariadb: MariaDB, password: str) -> None:
    """A DSN carries any printable password. The user is created with a bound parameter here
    (test set-up, NOT the provider's SQL, which cannot carry such a password: next test)."""
    name = f"kuscia_h{HOSTILE_PASSWORDS.index(password)}"
    mariadb.execute(f"CREATE DATABASE `{name}`")
    mariadb.execute("CREATE USER %s@'%%' IDENTIFIED BY %s", (name, password))
    mariadb.execute(f"GRANT {', '.join(KINE_PRIVILEGES)} ON `{name}`.* TO %s@'%%'", (name,))
    endpoint = datastore_endpoint(build_dsn(name, password, mariadb.host, mariadb.port, name))
    with login(mariadb, endpoint) as conn, conn.cursor() as cursor:
        cursor.execute("SELECT CURRENT_USER(), DATABASE()")
        assert cursor.fetchone() == (f"{name}@%", name)


def test_provider_sql_does_not_escape_passwords_so_only_generated_ones_are_safe(mariadb: MariaDB) -> None:
    """Characterises pulumi-mysql's CREATE USER: a quote breaks the statement, a backslash
    silently changes the password. Hence generated passwords are letters and digits."""
    assert error_code(lambda: provision(mariadb, "kuscia_quote", "it's-secret")) == 1064
    provision(mariadb, "kuscia_bslash", "ab\\cd-secret")
    wrong = datastore_endpoint(
        build_dsn("kuscia_bslash", "ab\\cd-secret", mariadb.host, mariadb.port, "kuscia_bslash")
    )
    assert error_code(lambda: login(mariadb, wrong)) == 1045
    stored = datastore_endpoint(
        build_dsn("kuscia_bslash", "abcd-secret", mariadb.host, mariadb.port, "kuscia_bslash")
    )
    login(mariadb, stored).close()


def test_mariadb_does_not_answer_the_version_query_pulumi_mysql_needs(mariadb: MariaDB) -> None:
    """Characterises a limit of external mode: pulumi-mysql 3.3.3 reads @@innodb_version before
    CREATE USER and GRANT; MariaDB 10.10+ has no such variable (MySQL 5.7/8 does)."""
    version = mariadb.execute("SELECT VERSION()")[0][0]
    assert "MariaDB" in version
    assert error_code(lambda: mariadb.execute(PROVIDER_VERSION_QUERY)) == 1193  # unknown system variable


# -- in-cluster: the StatefulSet's server arguments and probes --------------------------------


@pytest.fixture(scope="module")
def statefulset_server() -> Iterator[tuple[MariaDB, dict[str, str]]]:
    """mysqld with MYSQLD_ARGS, set up as the mysql image's first boot does from its env
    (EMULATED: the image's entrypoint is not run, its effect is made by hand)."""
    if os.environ.get("KUSCIA_SKIP_MARIADB") == "1":
        pytest.skip("KUSCIA_SKIP_MARIADB=1")
    if shutil.which("mysql") is None:
        pytest.fail("the mysql client is missing: apt-get install mariadb-client-core (.ci/run does)")
    env = {
        "MYSQL_ROOT_PASSWORD": generate_password(),
        "MYSQL_DATABASE": "kuscia_alice",
        "MYSQL_USER": "kuscia_alice",
        "MYSQL_PASSWORD": generate_password(),
    }
    with tempfile.TemporaryDirectory(prefix="kuscia-sts-") as tmp:
        server = start_mariadb(Path(tmp), MYSQLD_ARGS)
        try:
            # the image has root@localhost and root@'%' with the root password, no other root
            for (host,) in server.execute(
                "SELECT host FROM mysql.user WHERE user = 'root' AND host <> 'localhost'"
            ):
                server.execute("DROP USER 'root'@%s", (host,))
            server.execute("ALTER USER 'root'@'localhost' IDENTIFIED BY %s", (env["MYSQL_ROOT_PASSWORD"],))
            server.execute("CREATE USER 'root'@'%%' IDENTIFIED BY %s", (env["MYSQL_ROOT_PASSWORD"],))
            server.execute("GRANT ALL ON *.* TO 'root'@'%' WITH GRANT OPTION")
            server.execute(f"CREATE DATABASE `{env['MYSQL_DATABASE']}`")
            server.execute("CREATE USER %s@'%%' IDENTIFIED BY %s", (env["MYSQL_USER"], env["MYSQL_PASSWORD"]))
            server.execute(f"GRANT ALL ON `{env['MYSQL_DATABASE']}`.* TO %s@'%%'", (env["MYSQL_USER"],))
            yield server, {**env, "MYSQL_TCP_PORT": str(server.port)}
        finally:
            stop_mariadb(server)


def test_mysqld_accepts_the_statefulset_arguments(statefulset_server: tuple[MariaDB, dict[str, str]]) -> None:
    server, _ = statefulset_server
    ((switches, charset, collation, connections),) = server.execute(
        "SELECT @@optimizer_switch, @@character_set_server, @@collation_server, @@max_connections"
    )
    assert "derived_merge=off" in switches.split(",")
    assert (charset, collation, connections) == ("utf8mb4", COLLATION, 1000)


def run_probe(command: str, env: dict[str, str]) -> int:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MYSQL")}
    return subprocess.run(
        ["sh", "-c", command], env={**clean, **env}, capture_output=True, timeout=30
    ).returncode


@pytest.mark.parametrize(
    ("command", "change", "ready"),
    [
        (READY_COMMAND, {}, True),
        (READY_COMMAND, {"MYSQL_PASSWORD": "wrong"}, False),
        (READY_COMMAND, {"MYSQL_DATABASE": "not_created_yet"}, False),
        (READY_COMMAND, {"MYSQL_USER": "not_created_yet"}, False),
        (ALIVE_COMMAND, {}, True),
        (ALIVE_COMMAND, {"MYSQL_ROOT_PASSWORD": "wrong"}, False),
        (READY_COMMAND, {"MYSQL_TCP_PORT": "1"}, False),  # nothing listening: server not up
    ],
    ids=["ready", "wrong-password", "no-database", "no-user", "alive", "alive-wrong-root", "down"],
)
def test_probe_commands_with_the_real_mysql_client(
    statefulset_server: tuple[MariaDB, dict[str, str]], command: str, change: dict[str, str], ready: bool
) -> None:
    _, env = statefulset_server
    assert (run_probe(command, {**env, **change}) == 0) is ready
