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
import re
import socket
import ssl
import struct
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any

from kuscia_components.checks.report import (
    CheckResult,
    Step,
    failed,
    first_line,
    passed,
    run_steps,
    skipped,
    warned,
)
from kuscia_components.core.dsn import DsnError, parse_dsn
from kuscia_components.core.hostport import HostPortError, join_host_port, parse_host_port
from kuscia_components.core.mysql import KINE_PRIVILEGES, PROVIDER_VERSION_QUERY

MIN_MYSQL = (8, 0, 23)
KINE_DML = ("SELECT", "INSERT", "UPDATE", "DELETE")
KINE_DDL = tuple(p for p in KINE_PRIVILEGES if p not in KINE_DML)  # CREATE, INDEX
DOMAIN_KEY_PREFIX = "/registry/kuscia.secretflow/domains/"  # the apiserver's key for a Domain
CLIENT_SSL = 0x0800
GREETING_MAX = 4096

# MySQL/MariaDB error codes we explain
ER_UNKNOWN_SYSTEM_VARIABLE = 1193
ER_CON_COUNT = 1040
ER_DBACCESS_DENIED = 1044
ER_ACCESS_DENIED = 1045
ER_BAD_DB = 1049
ER_HOST_IS_BLOCKED = 1129
ER_HOST_NOT_PRIVILEGED = 1130
ER_TABLEACCESS_DENIED = 1142
ER_NO_SUCH_TABLE = 1146
ER_SECURE_TRANSPORT_REQUIRED = 3159

TLS_FIX = (
    "the datastore DSN this program writes has no tls= parameter, so kine connects without TLS: allow "
    "plain connections for this user (ALTER USER '{user}'@'%' REQUIRE NONE; require_secure_transport=OFF)"
)


@dataclass(frozen=True)
class DbTarget:
    """Where and as whom to connect; `who` words the messages ("the admin user ...")."""

    host: str
    port: int
    user: str
    password: str = field(repr=False)
    database: str = ""
    who: str = "the node's database user"
    timeout: float = 5.0

    @property
    def address(self) -> str:
        return join_host_port(self.host, self.port)

    @classmethod
    def from_dsn(cls, dsn: str, *, address: str | None = None, timeout: float = 5.0) -> DbTarget:
        """From kuscia.yaml's datastoreEndpoint; `address` (host:port) overrides where to dial,
        e.g. the local end of a `kubectl port-forward`. Raises DsnError, or HostPortError for `address`."""
        parsed = parse_dsn(dsn)
        if parsed.net != "tcp":
            raise DsnError(
                f"the DSN uses network {parsed.net!r}; only tcp(host:port) can be checked from here"
            )
        host, port = parsed.host, parsed.port
        if address:
            dial = parse_host_port(address, setting="--db-address", example="127.0.0.1:3306")
            host, port = dial.host, dial.port
        return cls(host, port, parsed.user, parsed.password, parsed.database, timeout=timeout)


@dataclass(frozen=True)
class Greeting:
    version: str
    capabilities: int

    @property
    def offers_tls(self) -> bool:
        return bool(self.capabilities & CLIENT_SSL)


class Unreachable(Exception):
    """No TCP connection (or nothing MySQL-shaped on it); the message is user-facing."""

    def __init__(self, message: str, fix: str) -> None:
        super().__init__(message)
        self.fix = fix


def read_greeting(host: str, port: int, timeout: float) -> Greeting:
    """Connect and read the server's first packet; raises Unreachable with the reason."""
    where = f"{host}:{port}"
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except socket.gaierror:
        raise Unreachable(
            f"the host name {host!r} does not resolve",
            "check database.endpoint / the DSN host; a cluster-internal name only resolves inside the cluster",
        ) from None
    except ConnectionRefusedError:
        raise Unreachable(
            f"nothing listens on {where} (connection refused): the server is stopped or the port is wrong",
            "start the database server, or fix the port (MySQL's default is 3306)",
        ) from None
    except TimeoutError:
        raise Unreachable(
            f"no answer from {where} within {timeout:g} s: a firewall drops the packets or the host is wrong",
            "check the address and that firewalls/security groups admit this machine (and the cluster) on that port",
        ) from None
    except OSError as err:
        raise Unreachable(
            f"cannot connect to {where}: {err.strerror or first_line(err)}",
            "check the address and the network",
        ) from None
    with sock:
        try:
            data = _read_packet(sock)
        except TimeoutError:
            data = b""
            silent = True
        else:
            silent = False
    not_mysql = "point database.endpoint at the MySQL port (usually 3306), not another service"
    if not data:
        what = f"sent nothing within {timeout:g} s" if silent else "closed the connection without a word"
        raise Unreachable(
            f"{where} is not a MySQL server: it {what} (a MySQL server greets first)", not_mysql
        )
    payload = data[4:]
    if data[3] == 0 and payload[:1] == b"\xff" and len(payload) >= 3:
        code = struct.unpack("<H", payload[1:3])[0]
        message = payload[3:].decode("utf-8", "replace").lstrip("#")
        raise Unreachable(
            f"{where} refused the connection: MySQL error {code}: {message}", _refusal_fix(code)
        )
    if data[3] != 0 or payload[:1] != b"\x0a" or b"\x00" not in payload[1:]:
        shown = data[:40].decode("ascii", "replace")
        shown = "".join(c if c.isprintable() else "." for c in shown)
        raise Unreachable(f"{where} is not a MySQL server: it answered {shown!r}", not_mysql)
    version, _, rest = payload[1:].partition(b"\x00")
    capabilities = struct.unpack("<H", rest[13:15])[0] if len(rest) >= 15 else 0
    return Greeting(version.decode("ascii", "replace"), capabilities)


def _read_packet(sock: socket.socket) -> bytes:
    """Header and payload of the first packet, or what arrived before the peer stopped."""
    data = b""
    while len(data) < 4:
        chunk = sock.recv(4 - len(data))
        if not chunk:
            return data
        data += chunk
    length = int.from_bytes(data[:3], "little")
    if length > GREETING_MAX or data[3] != 0:  # not a greeting: keep a little more to show
        sock.settimeout(0.2)
        with suppress(OSError):
            data += sock.recv(60)
        return data
    while len(data) < 4 + length:
        chunk = sock.recv(4 + length - len(data))
        if not chunk:
            break
        data += chunk
    return data


def _refusal_fix(code: int) -> str:
    return {
        ER_CON_COUNT: "the server is at max_connections: raise it (Kuscia's tuning guide) or close idle clients",
        ER_HOST_NOT_PRIVILEGED: "no account may log in from this machine's address: create the user for host '%' (or this address)",
        ER_HOST_IS_BLOCKED: "the server blocked this host after connection errors: run FLUSH HOSTS (or mysqladmin flush-hosts)",
    }.get(code, ERROR_REFERENCE)


# -- the session -----------------------------------------------------------------------------------


class DbSession:
    """One target, probed step by step; each check reads what the earlier ones found."""

    def __init__(self, target: DbTarget) -> None:
        self.target = target
        self.greeting: Greeting | None = None
        self.conn: Any = None

    def __repr__(self) -> str:
        return f"DbSession({self.target.user}@{self.target.address})"

    def __enter__(self) -> DbSession:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.conn is not None:
            with suppress(Exception):
                self.conn.close()
            self.conn = None

    def connect(self, *, tls: bool) -> Any:
        import pymysql

        t = self.target
        options: dict[str, Any] = {"ssl_disabled": True}
        if tls:
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            options = {"ssl": context}
        return pymysql.connect(
            host=t.host,
            port=t.port,
            user=t.user,
            password=t.password,
            connect_timeout=t.timeout,
            read_timeout=t.timeout,
            write_timeout=t.timeout,
            autocommit=True,
            charset="utf8mb4",
            **options,
        )

    def rows(self, sql: str, args: Any = None) -> list[tuple[Any, ...]]:
        with self.conn.cursor() as cursor:
            cursor.execute(sql, args)
            return list(cursor.fetchall())

    def value(self, sql: str, args: Any = None) -> Any:
        found = self.rows(sql, args)
        return found[0][0] if found else None

    @contextmanager
    def rolled_back(self) -> Iterator[None]:
        """A transaction that never commits (for the zero-row privilege probes)."""
        self.conn.begin()
        try:
            yield
        finally:
            self.conn.rollback()


ERROR_REFERENCE = "look the code up in the MySQL error reference"


def unexplained(name: str, doing: str, err: BaseException, fix: str = ERROR_REFERENCE) -> CheckResult:
    """A MySQL error this module has no better words for: its code and the server's text."""
    return failed(name, f"{doing}: MySQL error {error_code(err)}: {error_text(err)}", fix)


def error_code(err: BaseException) -> int | None:
    args: tuple[Any, ...] = tuple(getattr(err, "args", ()))
    return args[0] if args and isinstance(args[0], int) else None


def error_text(err: BaseException) -> str:
    args: tuple[Any, ...] = tuple(getattr(err, "args", ()))
    return str(args[1]) if len(args) > 1 else first_line(err)


# -- checks: connection --------------------------------------------------------------------------


def check_server(s: DbSession, name: str = "database server") -> CheckResult:
    """TCP plus the greeting: reachable, and really a MySQL server."""
    try:
        s.greeting = read_greeting(s.target.host, s.target.port, s.target.timeout)
    except Unreachable as err:
        return failed(name, str(err), err.fix)
    tls = "offers TLS" if s.greeting.offers_tls else "no TLS"
    return passed(
        name, f"{s.target.address} speaks MySQL ({s.greeting.version}, {tls})", version=s.greeting.version
    )


def check_login(s: DbSession, name: str = "database login") -> CheckResult:
    """Log in without TLS, as kine does; on refusal, find out whether TLS is the reason."""
    import pymysql

    t = s.target
    try:
        s.conn = s.connect(tls=False)
    except pymysql.err.MySQLError as err:
        code = error_code(err)
        if code == ER_SECURE_TRANSPORT_REQUIRED or (
            code == ER_ACCESS_DENIED
            and s.greeting is not None
            and s.greeting.offers_tls
            and _tls_login_works(s)
        ):
            return failed(
                name,
                f"{t.address} requires TLS for {t.who} {t.user!r}: the same login succeeds over TLS, not without",
                TLS_FIX.format(user=t.user),
            )
        detail, fix = _login_failure(err, t)
        return failed(name, detail, fix)
    return passed(name, f"{t.who} {t.user!r} logged in to {t.address} (no TLS, like kine)")


def _tls_login_works(s: DbSession) -> bool:
    try:
        s.connect(tls=True).close()
    except Exception:
        return False
    return True


def _login_failure(err: BaseException, t: DbTarget) -> tuple[str, str]:
    code, text = error_code(err), error_text(err)
    if code == ER_ACCESS_DENIED:
        return (
            f"{t.address} refused {t.who} {t.user!r}: wrong password, or no such user for this client address "
            f"(server says: {text})",
            "check the user and password; the user must exist for host '%' (or the address the server names)",
        )
    if code in (ER_HOST_NOT_PRIVILEGED, ER_HOST_IS_BLOCKED, ER_CON_COUNT):
        return f"{t.address} refused the connection: {text}", _refusal_fix(code)
    return f"{t.address}: login failed with MySQL error {code}: {text}", ERROR_REFERENCE


def check_version(s: DbSession, name: str = "database version") -> CheckResult:
    """Kuscia documents MySQL >= 8.0.23 (deploy_check.md); anything else works at your risk."""
    version = str(s.value("SELECT VERSION()"))
    numbers = tuple(int(n) for n in re.findall(r"\d+", version.split("-")[0])[:3])
    if "mariadb" in version.lower():
        return warned(
            name,
            f"MariaDB {version}: Kuscia documents MySQL >= 8.0.23 only",
            "kine runs on MariaDB, but Kuscia does not test it: use MySQL 8.0.23+ for production",
            version=version,
        )
    if numbers < MIN_MYSQL:
        return warned(
            name,
            f"MySQL {version} is older than 8.0.23, the version Kuscia documents",
            "upgrade to MySQL 8.0.23 or later",
            version=version,
        )
    return passed(name, f"MySQL {version}", version=version)


def check_provider_compatible(s: DbSession, name: str = "database provider") -> CheckResult:
    """External mode creates the user and grant through pulumi-mysql, whose provider reads
    @@GLOBAL.innodb_version first; MariaDB 10.10+ no longer answers it, so `up` would fail."""
    try:
        s.value(PROVIDER_VERSION_QUERY)
    except Exception as err:
        if error_code(err) != ER_UNKNOWN_SYSTEM_VARIABLE:
            raise
        return failed(
            name,
            "the server does not answer @@GLOBAL.innodb_version (MariaDB 10.10 and later), which pulumi-mysql "
            "reads before it creates the user and the grant: `pulumi up` in external mode would fail",
            "use MySQL 8.0.23+ (what Kuscia documents) for database.mode external, or database.mode in-cluster",
        )
    return passed(name, "pulumi-mysql can manage users and grants on this server")


def check_settings(s: DbSession, name: str = "database settings") -> CheckResult:
    """Kuscia's MySQL tuning guide turns derived_merge off (NOTES §5)."""
    switches = str(s.value("SELECT @@optimizer_switch") or "")
    if "derived_merge=on" in switches:
        return warned(
            name,
            "optimizer_switch has derived_merge=on",
            "SET GLOBAL optimizer_switch='derived_merge=off' (and in the server config), as Kuscia's MySQL tuning "
            "guide advises",
        )
    return passed(name, "derived_merge=off")


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


# -- SHOW GRANTS, parsed -----------------------------------------------------------------------------

_IDENT = r"`(?:[^`]|``)*`|\*|[\w$]+"
_GRANT = re.compile(
    rf"^(?P<verb>GRANT|REVOKE) (?P<privs>.+?) ON (?:(?:TABLE|FUNCTION|PROCEDURE|PACKAGE(?: BODY)?) )?"
    rf"(?P<db>{_IDENT})\.(?P<table>{_IDENT}) (?:TO|FROM) (?P<rest>.*)$",
    re.S,
)
_ROLE_GRANT = re.compile(r"^GRANT (?P<roles>`[^`]+`(?:@`[^`]*`)?(?:, ?`[^`]+`(?:@`[^`]*`)?)*) TO ")
_ALL = "ALL PRIVILEGES"
_NOT_IN_ALL = {"GRANT OPTION", "PROXY"}


@dataclass(frozen=True)
class GrantRule:
    database: str  # "*" for *.*, else the pattern as written (wildcards `_` and `%`)
    table: str  # "*" for db.*
    privileges: frozenset[str]
    grant_option: bool
    revoke: bool = False


@dataclass
class Grants:
    rules: list[GrantRule] = field(default_factory=list)
    roles: list[str] = field(default_factory=list)

    @property
    def global_privileges(self) -> set[str]:
        held, _ = self._collect(lambda rule: rule.database == "*")
        return held

    def on_database(self, database: str) -> tuple[set[str], bool]:
        """Privileges that apply to every table of `database` (global or database-level), and
        whether they may be granted on."""
        return self._collect(lambda rule: rule.database == "*" or _db_matches(rule.database, database))

    def covering(self, pattern: str) -> tuple[set[str], bool]:
        """What may be granted `ON pattern.*`. The target of a GRANT is itself a pattern (an
        unescaped `_` matches any character), and the server lets a grantor grant only within a
        pattern of its own that covers it: `kuscia\\_%` does not cover `kuscia_alice` (observed
        on MariaDB 10.11, tests/test_preflight.py)."""
        return self._collect(lambda rule: rule.database == "*" or _db_covers(rule.database, pattern))

    def _collect(self, applies: Any) -> tuple[set[str], bool]:
        held: set[str] = set()
        option = False
        for rule in self.rules:
            if rule.table != "*" or not applies(rule) or rule.revoke:
                continue
            held |= rule.privileges
            option = option or rule.grant_option
        for rule in self.rules:
            if rule.revoke and rule.table == "*" and applies(rule) and rule.database != "*":
                held -= rule.privileges  # MySQL partial revokes
        return held, option


def parse_grants(lines: Iterable[str]) -> Grants:
    """SHOW GRANTS lines (MySQL 5.7/8, MariaDB) -> rules and role memberships."""
    grants = Grants()
    for line in lines:
        text = line.strip()
        role = _ROLE_GRANT.match(text)
        if role and " ON " not in text.split(" TO ", 1)[0]:
            grants.roles.extend(r.strip() for r in role["roles"].split(","))
            continue
        match = _GRANT.match(text)
        if not match:
            continue
        privileges = {
            p for p in _split_privileges(match["privs"]) if "(" not in p
        }  # column grants are partial
        if "ALL" in privileges:
            privileges = (privileges - {"ALL"}) | {_ALL}
        grants.rules.append(
            GrantRule(
                database=_unquote(match["db"]),
                table=_unquote(match["table"]),
                privileges=frozenset(privileges),
                grant_option="WITH GRANT OPTION" in match["rest"].upper() or "GRANT OPTION" in privileges,
                revoke=match["verb"] == "REVOKE",
            )
        )
    return grants


def has(held: set[str], privilege: str) -> bool:
    return privilege in held or (_ALL in held and privilege not in _NOT_IN_ALL)


def _split_privileges(text: str) -> list[str]:
    parts, depth, current = [], 0, ""
    for char in text:
        depth += (char == "(") - (char == ")")
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return [" ".join(p.split()).upper() for p in parts if p.strip()]


def _unquote(identifier: str) -> str:
    if identifier.startswith("`") and identifier.endswith("`"):
        return identifier[1:-1].replace("``", "`")
    return identifier


_ONE, _ANY = "\x01", "\x02"  # a target pattern's `_` and `%`, as tokens


def _pattern_regex(pattern: str, one: str) -> str:
    """MySQL database-level grant patterns: `_` any one character, `%` any run, `\\` escapes."""
    regex, escaped = "", False
    for char in pattern:
        if escaped:
            regex += re.escape(char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == "_":
            regex += one
        elif char == "%":
            regex += ".*"
        else:
            regex += re.escape(char)
    return regex


def _db_matches(pattern: str, name: str) -> bool:
    """Does the grant pattern apply to the database called `name`?"""
    return re.fullmatch(_pattern_regex(pattern, "."), name, re.S) is not None


def _db_covers(pattern: str, target: str) -> bool:
    """Is every name the `target` pattern matches also matched by `pattern`? The target's
    wildcards become tokens that only wildcards of `pattern` can match."""
    tokens, escaped = "", False
    for char in target:
        if escaped:
            tokens += char
            escaped = False
        elif char == "\\":
            escaped = True
        else:
            tokens += {"_": _ONE, "%": _ANY}.get(char, char)
    return re.fullmatch(_pattern_regex(pattern, f"[^{_ANY}]"), tokens, re.S) is not None


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
