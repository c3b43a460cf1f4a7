"""External database mode against a REAL MariaDB server (tests/mariadb.py starts it)."""

from __future__ import annotations

import pymysql
import pytest

from kuscia_components.database import provisioning_statements
from kuscia_components.dsn import KINE_PRIVILEGES, build_dsn, datastore_endpoint, generate_password, parse_dsn
from tests.mariadb import KINE_DDL, MariaDB

HOSTILE = "p@ss:w/o?r#d%'\"\\ x"


def provision(server: MariaDB, name: str, user: str, password: str) -> None:
    with server.connect() as conn, conn.cursor() as cursor:
        for sql, args in provisioning_statements(name, user, password):
            cursor.execute(sql, args or None)


@pytest.mark.parametrize("password", [generate_password(), HOSTILE], ids=["generated", "hostile"])
def test_provisioned_user_logs_in_with_the_dsn_and_runs_kine(mariadb: MariaDB, password: str) -> None:
    suffix = "gen" if password != HOSTILE else "hostile"
    name, user = f"kuscia_{suffix}", f"kuscia_{suffix}"
    provision(mariadb, name, user, password)
    endpoint = datastore_endpoint(build_dsn(user, password, mariadb.host, mariadb.port, name))
    parsed = parse_dsn(endpoint)
    with mariadb.connect(parsed.user, parsed.password, parsed.database) as conn, conn.cursor() as cursor:
        cursor.execute(KINE_DDL)
        cursor.execute(
            "INSERT INTO kine (name, created, deleted, create_revision, prev_revision, lease, value, old_value)"
            " VALUES (%s, 1, 0, 0, 0, 0, %s, %s)",
            ("/registry/test", b"v", b""),
        )
        cursor.execute("UPDATE kine SET deleted = 0 WHERE name = %s", ("/registry/test",))
        cursor.execute("SELECT name, value FROM kine")
        assert cursor.fetchall() == (("/registry/test", b"v"),)
        cursor.execute("DELETE FROM kine WHERE name = %s", ("/registry/test",))


def test_the_user_holds_exactly_the_kine_privileges(mariadb: MariaDB) -> None:
    provision(mariadb, "kuscia_exact", "kuscia_exact", "pw-exact-123")
    grants = mariadb.execute("SHOW GRANTS FOR 'kuscia_exact'@'%'")
    on_db = [g[0] for g in grants if "`kuscia_exact`.*" in g[0]]
    assert len(on_db) == 1
    granted = {p.strip() for p in on_db[0].split("GRANT ", 1)[1].split(" ON ", 1)[0].split(",")}
    assert granted == set(KINE_PRIVILEGES)
    assert all("ON *.*" not in g[0] or "USAGE" in g[0] for g in grants)


def test_privileges_not_granted_are_refused(mariadb: MariaDB) -> None:
    provision(mariadb, "kuscia_refuse", "kuscia_refuse", "pw-refuse-123")
    mariadb.execute("CREATE DATABASE IF NOT EXISTS other_db")
    with mariadb.connect("kuscia_refuse", "pw-refuse-123", "kuscia_refuse") as conn, conn.cursor() as cursor:
        cursor.execute(KINE_DDL)
        with pytest.raises(pymysql.err.OperationalError) as drop:
            cursor.execute("DROP TABLE kine")
        assert drop.value.args[0] == 1142  # command denied
        with pytest.raises(pymysql.err.OperationalError) as other:
            cursor.execute("SELECT 1 FROM other_db.t")
        assert other.value.args[0] in (1142, 1044)
        with pytest.raises(pymysql.err.OperationalError):
            cursor.execute("CREATE DATABASE sneaky")


def test_wrong_password_is_refused(mariadb: MariaDB) -> None:
    provision(mariadb, "kuscia_wrongpw", "kuscia_wrongpw", "right-password")
    with pytest.raises(pymysql.err.OperationalError) as err:
        mariadb.connect("kuscia_wrongpw", "wrong-password", "kuscia_wrongpw")
    assert err.value.args[0] == 1045
