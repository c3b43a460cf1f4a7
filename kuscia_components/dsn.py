"""The datastore DSN Kuscia hands to k3s/kine: a go-sql-driver DSN, not a URL (NOTES §1.8).

    mysql://user:password@tcp(host:port)/database?charset=utf8mb4&parseTime=True&loc=Local

go-sql-driver's ParseDSN splits at the LAST '/' (database), then the LAST '@' before it
(credentials), then the FIRST ':' (user:password). Nothing is unescaped in the credentials. So a
password may hold any printable character, `@ : / ? # % ' " \\` and spaces included, and must
not be URL-encoded; a user name must not contain ':'. `parse_dsn` is a faithful port of that
algorithm (go-sql-driver/mysql dsn.go, v1.5+), used by tests and by `verify`.
"""

from __future__ import annotations

import secrets
import string
import urllib.parse
from dataclasses import dataclass, field

DSN_PARAMS = "charset=utf8mb4&parseTime=True&loc=Local"
SCHEME = "mysql://"
PASSWORD_ALPHABET = string.ascii_letters + string.digits
# What kine needs on its own database (NOTES §5): DML on the kine table, and CREATE/INDEX so it
# can create the table and its indexes on first start. Nothing server-wide, no DROP/ALTER.
KINE_PRIVILEGES: tuple[str, ...] = ("SELECT", "INSERT", "UPDATE", "DELETE", "CREATE", "INDEX")


class DsnError(ValueError):
    """A value that cannot be carried in a go-sql-driver DSN, or a DSN that does not parse."""


@dataclass(frozen=True)
class ParsedDsn:
    user: str
    password: str = field(repr=False)
    net: str
    addr: str
    database: str
    params: dict[str, str]

    @property
    def host(self) -> str:
        host, _, _ = self.addr.rpartition(":")
        return host.strip("[]") or self.addr

    @property
    def port(self) -> int:
        _, _, port = self.addr.rpartition(":")
        return int(port) if port.isdigit() else 3306


def build_dsn(user: str, password: str, host: str, port: int, database: str) -> str:
    """user:pass@tcp(host:port)/db?charset=utf8mb4&parseTime=True&loc=Local (no scheme)."""
    check_user(user)
    check_password(password)
    if not host or any(c in host for c in "()/@?") or any(c.isspace() for c in host):
        raise DsnError(
            f"database host {host!r} is not a host name or IP address (example: mysql.example.com)"
        )
    if not 0 < int(port) < 65536:
        raise DsnError(f"database port must be 1-65535, got {port}")
    if not database or any(c in database for c in "/?"):
        raise DsnError(f"database name {database!r} cannot be carried in a DSN (example: kuscia_alice)")
    addr_host = f"[{host}]" if ":" in host else host  # IPv6 literal
    return f"{user}:{password}@tcp({addr_host}:{int(port)})/{database}?{DSN_PARAMS}"


def datastore_endpoint(dsn: str) -> str:
    """kuscia.yaml's datastoreEndpoint: the DSN behind a `mysql://` scheme."""
    return SCHEME + dsn


def check_user(user: str) -> None:
    if not user or ":" in user or "@" in user or any(not c.isprintable() for c in user):
        raise DsnError(f"database user {user!r} must be non-empty without ':' or '@' (example: kuscia)")


def check_password(password: str) -> None:
    """Any printable character round-trips; control characters and empty passwords do not."""
    if not password:
        raise DsnError("database password must not be empty")
    if any(not c.isprintable() for c in password):
        raise DsnError(
            "database password must hold printable characters only (no newlines or control characters)"
        )


def generate_password(length: int = 32) -> str:
    """Letters and digits only: nothing to escape anywhere (DSN, YAML, shell, SQL)."""
    return "".join(secrets.choice(PASSWORD_ALPHABET) for _ in range(length))


def parse_dsn(dsn: str) -> ParsedDsn:
    """Port of go-sql-driver/mysql ParseDSN; accepts an optional `mysql://` prefix."""
    if dsn.startswith(SCHEME):
        dsn = dsn[len(SCHEME) :]
    user = password = net = addr = ""
    database = ""
    params: dict[str, str] = {}
    slash = dsn.rfind("/")
    if slash < 0:
        if dsn:
            raise DsnError("invalid DSN: missing the slash separating the database name")
        return ParsedDsn(user, password, net, addr, database, params)
    if slash > 0:
        at = dsn.rfind("@", 0, slash + 1)
        if at >= 0:
            colon = dsn.find(":", 0, at)
            if colon >= 0:
                password = dsn[colon + 1 : at]
                user = dsn[:colon]
            else:
                user = dsn[:at]
        start = at + 1
        paren = dsn.find("(", start, slash)
        if paren >= 0:
            if dsn[slash - 1] != ")":
                if ")" in dsn[paren + 1 : slash]:
                    raise DsnError("invalid DSN: did you forget to escape a param value?")
                raise DsnError("invalid DSN: network address not terminated (missing closing brace)")
            addr = dsn[paren + 1 : slash - 1]
            net = dsn[start:paren]
        else:
            net = dsn[start:slash]
    net, addr = _normalize_address(net, addr)
    query = dsn.find("?", slash + 1)
    end = query if query >= 0 else len(dsn)
    database = urllib.parse.unquote(dsn[slash + 1 : end])
    if query >= 0:
        for pair in dsn[query + 1 :].split("&"):
            key, _, value = pair.partition("=")
            params[key] = urllib.parse.unquote_plus(value)
    return ParsedDsn(user, password, net, addr, database, params)


def _normalize_address(net: str, addr: str) -> tuple[str, str]:
    """The driver's Config.normalize: default network tcp, address 127.0.0.1:3306, port 3306."""
    net = net or "tcp"
    if not addr and net == "tcp":
        addr = "127.0.0.1:3306"
    elif net == "tcp" and not _has_port(addr):
        addr = f"{addr}:3306"
    return net, addr


def _has_port(addr: str) -> bool:
    if addr.startswith("["):
        return "]:" in addr
    return ":" in addr
