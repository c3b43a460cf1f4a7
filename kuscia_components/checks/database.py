"""MySQL checks for kine's database, before `up` (admin credentials) and after it (the node's DSN).

Users meet database problems as misleading k3s errors (NOTES §9.2: kuscia#216, #721, #509), so
each failure here is named by what really happened, in the order a connection meets them:

1. TCP and the server greeting, read by hand: a MySQL server speaks first (protocol 10), so a
   port that is closed, filtered, silent or speaking HTTP is told apart before any login.
2. The login as Kuscia makes it: go-sql-driver without `tls=` uses no TLS, so neither do we. A
   refused login is retried once over TLS when the server offers it; if that one succeeds, the
   server requires TLS for this user (`REQUIRE SSL`, `require_secure_transport`), which the DSN
   this program writes cannot do (MariaDB answers both with a plain 1045, MySQL with 3159).
3. Version, the database, the `kine` table and its rows, and the privileges.

Privileges are checked two ways, and why: SHOW GRANTS text does not expand roles, database
wildcards (`_`, `%`) or partial revokes, so for kine's run-time privileges we ask the server
itself with statements that touch no row (`... WHERE 1=0`) inside a transaction that is rolled
back: the server checks privileges before it looks at rows, so each statement fails exactly when
kine's would. That cannot work for CREATE/INDEX (no statement creates nothing) nor for the
admin's CREATE USER / GRANT OPTION, which are read from SHOW GRANTS (roles expanded when the
server lets us read them); a result from grants text says so.
"""

from __future__ import annotations

import json
import socket
from dataclasses import dataclass
from typing import Any

from kuscia_components.checks.database_server import (
    check_login,
    check_provider_compatible,
    check_server,
    check_settings,
    check_version,
)
from kuscia_components.checks.grants import Grants, _db_matches, has, parse_grants
from kuscia_components.checks.mysql_session import (
    ER_BAD_DB,
    ER_DBACCESS_DENIED,
    ER_NO_SUCH_TABLE,
    ER_TABLEACCESS_DENIED,
    DbSession,
    DbTarget,
    error_code,
    unexplained,
)
from kuscia_components.checks.report import (
    CheckResult,
    Step,
    failed,
    passed,
    run_steps,
    skipped,
    warned,
)
from kuscia_components.core.dsn import DsnError
from kuscia_components.core.hostport import HostPortError
from kuscia_components.core.mysql import KINE_PRIVILEGES

KINE_DML = ("SELECT", "INSERT", "UPDATE", "DELETE")
KINE_DDL = tuple(p for p in KINE_PRIVILEGES if p not in KINE_DML)  # CREATE, INDEX
DOMAIN_KEY_PREFIX = "/registry/kuscia.secretflow/domains/"  # the apiserver's key for a Domain
# -- checks: the node's database -------------------------------------------------------------------


def check_database(s: DbSession, name: str = "database exists") -> CheckResult:
    """Kuscia pings the DSN including the database before it starts k3s: it must exist."""
    import pymysql

    t = s.target
    try:
        s.conn.select_db(t.database)
    except pymysql.err.MySQLError as err:
        code = error_code(err)
        if code == ER_BAD_DB:
            return failed(
                name,
                f"database {t.database!r} does not exist on {t.address}",
                "Kuscia needs it before it starts: `pulumi up` creates it in external mode (`pulumi refresh` first "
                f"if it was dropped), or CREATE DATABASE `{t.database}` CHARACTER SET utf8mb4",
            )
        if code == ER_DBACCESS_DENIED:
            return failed(
                name,
                f"{t.who} {t.user!r} may not use database {t.database!r} (it is missing, or nothing is granted on it)",
                f"GRANT {', '.join(KINE_PRIVILEGES)} ON `{t.database}`.* TO '{t.user}'@'%' (after creating it, if "
                "missing); `pulumi up` does both in external mode",
            )
        return unexplained(name, f"cannot use database {t.database!r}", err)
    return passed(name, f"{t.database} on {t.address}")


def check_kine_table(s: DbSession, name: str = "kine table") -> CheckResult:
    import pymysql

    t = s.target
    try:
        s.rows("SELECT 1 FROM `kine` LIMIT 0")
    except pymysql.err.MySQLError as err:
        code = error_code(err)
        if code == ER_NO_SUCH_TABLE:
            return failed(
                name,
                f"no table `kine` in {t.database}: k3s never got far enough to create it",
                "read the pod log (kubectl logs --previous) for the datastore error; the checks above and below "
                "usually name it (privileges, wrong database)",
            )
        if code == ER_TABLEACCESS_DENIED:
            return failed(
                name,
                f"{t.user!r} may not read `kine` in {t.database} (SELECT denied), so kine cannot either",
                _grant_fix(t),
            )
        return unexplained(name, "cannot read `kine`", err)
    return passed(name, f"`kine` exists in {t.database}")


@dataclass(frozen=True)
class KineContents:
    rows: int
    own_domains: tuple[str, ...]  # Domains with role "" (a node's own), newest state
    partner_domains: tuple[str, ...]


def kine_contents(s: DbSession, table: str = "`kine`") -> KineContents:
    """Row count and which Kuscia Domains the k3s data holds. Custom resources are stored as
    JSON under /registry/<group>/<plural>/<name>; kine appends a row per revision (deleted=1
    marks a deletion), so the newest row of each name is its state."""
    rows = int(s.value(f"SELECT COUNT(*) FROM {table}") or 0)
    latest: dict[str, tuple[Any, Any]] = {}
    for key, value, deleted in s.rows(
        f"SELECT name, value, deleted FROM {table} WHERE name LIKE %s ORDER BY id", (DOMAIN_KEY_PREFIX + "%",)
    ):
        latest[str(key)] = (value, deleted)
    own: list[str] = []
    partners: list[str] = []
    for key, (value, deleted) in sorted(latest.items()):
        if deleted:
            continue
        try:
            spec = json.loads(value or b"{}").get("spec") or {}
        except (ValueError, AttributeError):
            continue
        (partners if spec.get("role") == "partner" else own).append(key[len(DOMAIN_KEY_PREFIX) :])
    return KineContents(rows, tuple(own), tuple(partners))


def _several_nodes(found: KineContents) -> str | None:
    """Why data with more than one own Domain (role "") is no single node's, else None."""
    if len(found.own_domains) < 2:
        return None
    return f"holds {len(found.own_domains)} own Domains ({', '.join(found.own_domains)}): k3s data of several nodes"


def check_kine_rows(s: DbSession, domain_id: str, name: str = "kine rows") -> CheckResult:
    """The seed's success test ("a kine table with rows"), plus: is it this domain's data?"""
    found = kine_contents(s)
    t = s.target
    if found.rows == 0:
        return failed(
            name,
            f"`kine` in {t.database} is empty: k3s created the table but stored nothing",
            "k3s must start within 30 s or Kuscia exits: read the pod log (kubectl logs --previous)",
        )
    if several := _several_nodes(found):
        fix = f"one database per domain: give {domain_id} a database of its own (kuscia:database.name)"
        return failed(name, f"`kine` in {t.database} {several}", fix, rows=found.rows)
    if domain_id in found.own_domains:
        return passed(
            name, f"{found.rows} rows; they hold the node's own Domain {domain_id}", rows=found.rows
        )
    if found.own_domains:
        other = ", ".join(found.own_domains)
        return failed(
            name,
            f"`kine` in {t.database} holds the k3s data of domain {other}, not {domain_id}",
            "one database per domain: k3s data is encrypted with a token derived from the domain ID, so give "
            f"{domain_id} its own kuscia:database.name",
            rows=found.rows,
        )
    return warned(
        name,
        f"{found.rows} rows, but no Domain {domain_id} yet (Kuscia creates it once k3s is up)",
        "wait for the pod to become Ready; if it does not, read the pod log (kubectl logs --previous)",
        rows=found.rows,
    )


def check_kine_privileges(s: DbSession, name: str = "kine privileges") -> CheckResult:
    """DML by zero-row probes (exact); CREATE/INDEX from grants, only needed without a table."""
    import pymysql

    t = s.target
    probes = {
        "SELECT": "SELECT id FROM `kine` WHERE 1=0",
        "INSERT": "INSERT INTO `kine` (name) SELECT 'kuscia-verify' FROM DUAL WHERE 1=0",
        "UPDATE": "UPDATE `kine` SET deleted = 0 WHERE 1=0",
        "DELETE": "DELETE FROM `kine` WHERE 1=0",
    }
    denied: list[str] = []
    try:
        with s.rolled_back():
            for privilege, sql in probes.items():
                try:
                    s.rows(sql)
                except pymysql.err.MySQLError as err:
                    if error_code(err) == ER_NO_SUCH_TABLE:
                        return _privileges_from_grants(s, name)
                    if error_code(err) != ER_TABLEACCESS_DENIED:
                        raise
                    denied.append(privilege)
    except pymysql.err.MySQLError as err:
        return unexplained(name, "cannot test privileges", err, _grant_fix(t))
    if denied:
        return failed(
            name,
            f"{t.user!r} lacks {', '.join(denied)} on `kine` in {t.database} (the server refused each one)",
            _grant_fix(t),
            missing=denied,
        )
    return passed(
        name, f"{', '.join(KINE_DML)} on `kine` in {t.database} (asked the server, nothing written)"
    )


def _privileges_from_grants(s: DbSession, name: str) -> CheckResult:
    t = s.target
    held, _ = parse_grants(_grant_lines(s)).on_database(t.database)
    missing = [p for p in KINE_PRIVILEGES if not has(held, p)]
    if missing:
        return failed(
            name,
            f"without a `kine` table, kine must create it, but {t.user!r} lacks {', '.join(missing)} on "
            f"{t.database} (from SHOW GRANTS)",
            _grant_fix(t),
            missing=missing,
        )
    return passed(name, f"{', '.join(KINE_PRIVILEGES)} on {t.database} (from SHOW GRANTS; no table to test)")


def _grant_fix(t: DbTarget) -> str:
    return (
        f"GRANT {', '.join(KINE_PRIVILEGES)} ON `{t.database}`.* TO '{t.user}'@'%' (`pulumi up` grants exactly "
        "these in external mode)"
    )


def _grant_lines(s: DbSession, who: str = "CURRENT_USER()", args: Any = None) -> list[str]:
    """SHOW GRANTS text (it can hold password hashes: never print it)."""
    return [str(row[0]) for row in s.rows(f"SHOW GRANTS FOR {who}", args)]


# -- checks: preflight with the admin credentials ----------------------------------------------------


def check_admin_privileges(
    s: DbSession, database: str, name: str = "database admin privileges"
) -> CheckResult:
    """What `pulumi up` runs as the admin: CREATE DATABASE, CREATE USER, GRANT <kine> ON db.*."""
    grants = parse_grants(_grant_lines(s))
    roles_unread = _merge_role_grants(s, grants)
    on_db, literal_option = grants.on_database(database)
    grantable, grant_option = grants.covering(database)  # GRANT ... ON `<database>`.* is a pattern
    missing = []
    if not has(on_db, "CREATE"):
        missing.append(f"CREATE on `{database}`.*")
    mysql_db, _ = grants.on_database("mysql")
    if not (has(grants.global_privileges, "CREATE USER") or has(mysql_db, "INSERT")):
        missing.append("CREATE USER")
    not_held = [p for p in KINE_PRIVILEGES if not has(grantable, p)]
    if not_held:
        missing.append(f"{', '.join(not_held)} on `{database}`.* (you can only grant what you hold)")
    if not grant_option:
        missing.append(f"GRANT OPTION on `{database}`.*")
    narrower = (
        (not_held or not grant_option) and literal_option and all(has(on_db, p) for p in KINE_PRIVILEGES)
    )
    hint = (
        f"; they are held on database {database} itself, but `GRANT ... ON `{database}`.*` treats '_' as a "
        "wildcard, and the pattern they are granted on does not cover that"
        if narrower
        else ""
    )
    t = s.target
    if not missing:
        return passed(
            name, f"{t.user!r} may create database {database}, the kine user and its grant (from SHOW GRANTS)"
        )
    fix = (
        f"GRANT CREATE USER ON *.* TO '{t.user}'@'%'; GRANT {', '.join(KINE_PRIVILEGES)} ON `{database}`.* TO "
        f"'{t.user}'@'%' WITH GRANT OPTION"
    )
    if roles_unread:
        return warned(
            name,
            f"SHOW GRANTS does not show {'; '.join(missing)} for {t.user!r}; it may come from roles "
            f"({', '.join(roles_unread)}) this check cannot read",
            f"make sure the roles are active by default, or {fix}",
        )
    return failed(
        name, f"{t.user!r} lacks {'; '.join(missing)} (from SHOW GRANTS){hint}", fix, missing=missing
    )


def _merge_role_grants(s: DbSession, grants: Grants) -> list[str]:
    """Add the privileges of granted roles; returns the roles that could not be read."""
    unread = []
    for role in grants.roles:
        try:
            grants.rules.extend(parse_grants(_grant_lines(s, role)).rules)
        except Exception:
            unread.append(role)
    return unread


def check_database_free_or_ours(
    s: DbSession, database: str, domain_id: str, name: str = "database name"
) -> CheckResult:
    """Free, or already holding this domain's k3s data. "Ours" is the best that can be known from
    the database: its `kine` table holds a Domain `<domainId>` of role "" (a node's own Domain).
    That is true for any earlier deployment of the same domain ID, by this stack or another;
    which stack created it is in Pulumi state, not in MySQL."""
    if s.value("SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = %s", (database,)) == 0:
        return passed(name, f"{database} does not exist yet: `pulumi up` creates it")
    tables = sorted(
        str(r[0])
        for r in s.rows(
            "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s", (database,)
        )
    )
    adopt = (
        f"if this stack did not create it, `pulumi up` fails with 'database exists': drop it, choose another "
        f"kuscia:database.name, or `pulumi import mysql:index/database:Database <resource name> {database}`"
    )
    if not tables:
        return warned(name, f"{database} already exists and is empty", adopt)
    if tables != ["kine"]:
        others = ", ".join(t for t in tables if t != "kine")
        return failed(
            name,
            f"{database} already exists and holds other tables ({others}): it is not a kine database",
            "choose another kuscia:database.name; one database per Kuscia domain, used by nothing else",
        )
    found = kine_contents(s, f"`{database}`.`kine`")
    if several := _several_nodes(found):
        fix = "choose another kuscia:database.name; one database per Kuscia domain, used by nothing else"
        return failed(name, f"{database} {several}", fix)
    if domain_id in found.own_domains:
        return passed(
            name,
            f"{database} holds the k3s data of domain {domain_id} ({found.rows} rows): an earlier deployment of "
            f"{domain_id}, reused as is",
        )
    if found.own_domains:
        return failed(
            name,
            f"{database} holds the k3s data of domain {', '.join(found.own_domains)}, not {domain_id}",
            "choose another kuscia:database.name: k3s data is encrypted with a token derived from the domain ID, "
            "so another domain cannot use it",
        )
    if found.rows:
        return warned(
            name,
            f"{database} has a kine table with {found.rows} rows but no Kuscia Domain: k3s data of an unknown node",
            "make sure no other k3s uses it; otherwise choose another kuscia:database.name",
        )
    return warned(name, f"{database} already exists with an empty kine table", adopt)


def check_user_free_or_ours(
    s: DbSession, user: str, database: str, name: str = "database user"
) -> CheckResult:
    """The kine user `pulumi up` creates must not be another party's (the default name is shared)."""
    import pymysql

    try:
        count = s.value("SELECT COUNT(*) FROM mysql.user WHERE User = %s AND Host = '%%'", (user,))
    except pymysql.err.MySQLError:
        return skipped(name, f"the admin may not read mysql.user, so whether {user!r}@'%' exists is unknown")
    if not count:
        return passed(name, f"{user!r}@'%' does not exist yet: `pulumi up` creates it")
    grants = parse_grants(_grant_lines(s, "%s@'%%'", (user,)))
    elsewhere = sorted(
        {
            rule.database
            for rule in grants.rules
            if rule.privileges - {"USAGE"}
            and (rule.database == "*" or not _db_matches(rule.database, database))
        }
    )
    if elsewhere:
        shown = ", ".join("*.* (global)" if d == "*" else d for d in elsewhere)
        return failed(
            name,
            f"{user!r}@'%' already exists with privileges on {shown}: probably another party's kine user",
            f"set kuscia:database.user to a name of its own (e.g. kuscia_{database.removeprefix('kuscia_')}); "
            "`pulumi up` would fail to create it, or take it over",
        )
    return passed(name, f"{user!r}@'%' exists with privileges only on {database}: ours from an earlier `up`")


# -- the sequences -------------------------------------------------------------------------------


CLUSTER_SUFFIXES = (".svc", ".svc.cluster.local", ".cluster.local")


def node_database_checks(
    dsn: str,
    domain_id: str,
    *,
    address: str | None = None,
    timeout: float = 5.0,
    namespace: str = "<namespace>",
) -> list[CheckResult]:
    """verify: the node's own DSN end to end (server, login, version, database, kine, privileges)."""
    try:
        target = DbTarget.from_dsn(dsn, address=address, timeout=timeout)
    except DsnError as err:
        return [
            failed(
                "database DSN",
                f"the node's datastoreEndpoint does not parse: {err}",
                "run `pulumi up` to rewrite kuscia.yaml from the stack config",
            )
        ]
    except HostPortError as err:
        return [failed("database address", str(err), "give --db-address as host:port, e.g. 127.0.0.1:3306")]
    if address is None and target.host.endswith(CLUSTER_SUFFIXES) and not _resolves(target.host):
        service = target.host.split(".", 1)[0]
        return [
            skipped(
                "database",
                f"{target.host} is a cluster-internal name, not reachable from here",
                f"kubectl -n {namespace} port-forward svc/{service} {target.port}:{target.port}, then add "
                f"--db-address 127.0.0.1:{target.port}",
            )
        ]
    with DbSession(target) as s:
        return run_steps(
            [
                Step("database server", lambda: check_server(s)),
                Step("database login", lambda: check_login(s), ("database server",)),
                Step("database version", lambda: check_version(s), ("database login",)),
                Step("database settings", lambda: check_settings(s), ("database login",)),
                Step("database exists", lambda: check_database(s), ("database login",)),
                Step("kine table", lambda: check_kine_table(s), ("database exists",)),
                Step("kine rows", lambda: check_kine_rows(s, domain_id), ("kine table",)),
                Step("kine privileges", lambda: check_kine_privileges(s), ("database exists",)),
            ]
        )


def admin_database_checks(
    host: str,
    port: int,
    admin_user: str,
    admin_password: str,
    *,
    database: str,
    user: str,
    domain_id: str,
    timeout: float = 5.0,
) -> list[CheckResult]:
    """preflight, database.mode external: what `pulumi up` will do as the admin can be done."""
    target = DbTarget(host, port, admin_user, admin_password, who="the admin user", timeout=timeout)
    with DbSession(target) as s:
        return run_steps(
            [
                Step("database server", lambda: check_server(s)),
                Step(
                    "database admin login",
                    lambda: check_login(s, "database admin login"),
                    ("database server",),
                ),
                Step("database version", lambda: check_version(s), ("database admin login",)),
                Step("database provider", lambda: check_provider_compatible(s), ("database admin login",)),
                Step("database settings", lambda: check_settings(s), ("database admin login",)),
                Step(
                    "database admin privileges",
                    lambda: check_admin_privileges(s, database),
                    ("database admin login",),
                ),
                Step(
                    "database name",
                    lambda: check_database_free_or_ours(s, database, domain_id),
                    ("database admin login",),
                ),
                Step(
                    "database user",
                    lambda: check_user_free_or_ours(s, user, database),
                    ("database admin login",),
                ),
            ]
        )


def _resolves(host: str) -> bool:
    try:
        socket.getaddrinfo(host, None)
    except OSError:
        return False
    return True
