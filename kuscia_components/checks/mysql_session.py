"""The MySQL wire as Kuscia meets it: the server greeting read by hand, a PyMySQL session
logged in as kine would, and the error codes the checks explain."""

from __future__ import annotations

import socket
import ssl
import struct
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any

from kuscia_components.checks.report import (
    CheckResult,
    failed,
    first_line,
)
from kuscia_components.core.dsn import DsnError, parse_dsn
from kuscia_components.core.hostport import join_host_port, parse_host_port

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
            # bytes: PyMySQL encodes a str password as latin-1 (connections.py), while the MySQL
            # clients, Kuscia (Go) and pulumi-mysql send UTF-8; a non-ASCII password would fail.
            password=t.password.encode("utf-8"),
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
