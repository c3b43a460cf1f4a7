"""The datastore DSN Kuscia hands to k3s/kine: a go-sql-driver DSN, not a URL (NOTES §1.8).

    mysql://user:password@tcp(host:port)/database?charset=utf8mb4&parseTime=True&loc=Local

go-sql-driver's ParseDSN splits at the LAST '/' (database), then the LAST '@' before it
(credentials), then the FIRST ':' before that (user:password). Nothing in the credentials is
unescaped. So:

- the password is written raw, never URL-encoded: every printable ASCII character round-trips,
  `@ : / ? # % ' " \\` and spaces included (tests feed our DSNs to the real driver);
- the user must not contain ':' (the first ':' ends the user);
- the database name must not contain '/', '?' or '%' (the driver path-unescapes it since v1.8);
  we keep it to the config rule `[A-Za-z0-9_]{1,64}`;
- the host must not contain '(' ')' '/' '@' or spaces; an IPv6 address is written in brackets.

`parse_dsn` is a port of the algorithm (go-sql-driver/mysql dsn.go: ParseDSN, parseDSNParams,
normalize; Go's net.SplitHostPort/JoinHostPort are in core/hostport.py), written from reading
it; `verify` and the tests use it. Rejected values raise `DsnError` naming the setting, the rule and an example,
never showing a password.
"""

from __future__ import annotations

import re
import secrets
import string
from dataclasses import dataclass, field

from kuscia_components.core import hostport
from kuscia_components.core.hostport import HostPortError, join_host_port, split_host_port
from kuscia_components.core.mysql import DEFAULT_PORT
from kuscia_components.core.mysql import KINE_PRIVILEGES as KINE_PRIVILEGES  # re-exported

DSN_PARAMS = "charset=utf8mb4&parseTime=True&loc=Local"
SCHEME = "mysql://"
# Letters and digits: nothing to escape in a DSN, YAML, a shell, or the SQL text pulumi-mysql
# interpolates passwords into without escaping (see database.provider_statements).
PASSWORD_ALPHABET = string.ascii_letters + string.digits
MIN_PASSWORD_LENGTH = 16
MAX_PASSWORD_LENGTH = 128

USER_SETTING = "kuscia:database.user"
NAME_SETTING = "kuscia:database.name"
HOST_SETTING = "kuscia:database.host"
PORT_SETTING = "kuscia:database.port"
PASSWORD_SETTING = "the database user's password"

_DATABASE_NAME = re.compile(r"[A-Za-z0-9_]{1,64}")
_HOST_FORBIDDEN = frozenset("()/@?#[]")


class DsnError(ValueError):
    """A value that cannot be carried in a go-sql-driver DSN, or a DSN that does not parse."""


@dataclass(frozen=True)
class ParsedDsn:
    """What go-sql-driver understands from a DSN (after its normalize step)."""

    user: str
    password: str = field(repr=False)
    net: str = "tcp"
    addr: str = "127.0.0.1:3306"
    database: str = ""
    params: dict[str, str] = field(default_factory=dict)

    @property
    def host(self) -> str:
        """The host of a tcp address (brackets of an IPv6 literal removed)."""
        return self._split()[0]

    @property
    def port(self) -> int:
        text = self._split()[1]
        if not text.isdigit() or not 0 < int(text) < 65536:
            raise DsnError(
                f"the DSN's address {self.addr!r} has no port 1-65535 (example: db.example.com:3306)"
            )
        return int(text)

    def _split(self) -> tuple[str, str]:
        try:
            return split_host_port(self.addr)
        except HostPortError as err:
            raise DsnError(f"the DSN's {err} (example: db.example.com:3306)") from None


def build_dsn(user: str, password: str, host: str, port: int, database: str) -> str:
    """user:pass@tcp(host:port)/db?charset=utf8mb4&parseTime=True&loc=Local (no scheme)."""
    check_user(user)
    check_password(password)
    check_host(host)
    check_port(port)
    check_database_name(database)
    return f"{user}:{password}@tcp({join_host_port(host, port)})/{database}?{DSN_PARAMS}"


def datastore_endpoint(dsn: str) -> str:
    """kuscia.yaml's datastoreEndpoint: the DSN behind a `mysql://` scheme."""
    return SCHEME + dsn


def _reject(setting: str, rule: str, example: str, got: str | None = None) -> DsnError:
    shown = f" (got {got})" if got is not None else ""
    return DsnError(f"{setting}: {rule}{shown}. Example: {example}")


def check_user(user: str, setting: str = USER_SETTING) -> None:
    if not user:
        raise _reject(setting, "must not be empty", "kuscia_alice")
    if ":" in user:
        raise _reject(
            setting,
            "must not contain ':' (go-sql-driver ends the user name at the first ':')",
            "kuscia_alice",
            repr(user),
        )
    if not _printable_ascii(user):
        raise _reject(setting, "must be printable ASCII", "kuscia_alice", repr(user))


def check_password(password: str, setting: str = PASSWORD_SETTING) -> None:
    """Printable ASCII, space to '~', round-trips; the value itself is never shown."""
    if not password:
        raise _reject(setting, "must not be empty", "a generated 32-character password")
    if not _printable_ascii(password):
        raise _reject(
            setting,
            "must hold printable ASCII only (space to '~'): control characters break kuscia.yaml, and "
            "MySQL hashes other characters in whatever character set the connection that set it used",
            "Xk3v9QpL2mZt7RwY4nBc8HdJ6fGs1aEu",
        )


def check_host(host: str, setting: str = HOST_SETTING) -> None:
    bad = sorted({c for c in host if c in _HOST_FORBIDDEN or not c.isprintable() or c.isspace()})
    if not host or bad:
        why = f"contains {', '.join(repr(c) for c in bad)}" if bad else "is empty"
        raise _reject(setting, f"must be a host name or IP address ({why})", "mysql.example.com", repr(host))
    if ":" in host and not hostport.is_ipv6(host):
        raise _reject(
            setting,
            "contains ':' but is not an IPv6 address; give the port separately",
            "mysql.example.com",
            repr(host),
        )


def check_port(port: int, setting: str = PORT_SETTING) -> None:
    try:
        hostport.check_port(port, setting=setting, example="3306")
    except HostPortError as err:
        raise DsnError(str(err)) from None


def check_database_name(name: str, setting: str = NAME_SETTING) -> None:
    if not _DATABASE_NAME.fullmatch(name):
        raise _reject(
            setting,
            "must match [A-Za-z0-9_]{1,64} ('/', '?' and '%' break the DSN; older kine breaks on '-')",
            "kuscia_alice",
            repr(name),
        )


def generate_password(length: int = 32) -> str:
    """A random password from PASSWORD_ALPHABET (about 5.95 bits per character)."""
    if (
        isinstance(length, bool)
        or not isinstance(length, int)
        or not (MIN_PASSWORD_LENGTH <= length <= MAX_PASSWORD_LENGTH)
    ):
        raise _reject(
            "password length",
            f"must be a whole number {MIN_PASSWORD_LENGTH}-{MAX_PASSWORD_LENGTH}",
            "32",
            repr(length),
        )
    return "".join(secrets.choice(PASSWORD_ALPHABET) for _ in range(length))


# ---------------------------------------------------------------------------------------------
# The parser: go-sql-driver's ParseDSN, step by step
# ---------------------------------------------------------------------------------------------


def parse_dsn(dsn: str) -> ParsedDsn:
    """Parse like go-sql-driver's ParseDSN (current releases); an optional `mysql://` is dropped,
    as Kuscia does before calling it. Raises DsnError with the driver's reason.

    One difference between driver versions: since v1.8 the database name is path-unescaped
    (`%2D` -> `-`); v1.5 (Debian's, used by the tests) keeps it raw. Our names have no '%'.
    """
    if dsn.startswith(SCHEME):
        dsn = dsn[len(SCHEME) :]
    user = password = net = addr = database = ""
    params: dict[str, str] = {}
    slash = dsn.rfind("/")
    if slash < 0:
        if dsn:
            raise DsnError("invalid DSN: missing the slash separating the database name")
    else:
        if slash > 0:
            at = dsn.rfind("@", 0, slash)  # the last '@' before the slash, or -1
            if at >= 0:
                colon = dsn.find(":", 0, at)  # the first ':' before it
                user, password = (dsn[:colon], dsn[colon + 1 : at]) if colon >= 0 else (dsn[:at], "")
            paren = dsn.find("(", at + 1, slash)
            if paren >= 0:
                if dsn[slash - 1] != ")":
                    if ")" in dsn[paren + 1 : slash]:
                        raise DsnError("invalid DSN: did you forget to escape a param value?")
                    raise DsnError("invalid DSN: network address not terminated (missing closing brace)")
                addr = dsn[paren + 1 : slash - 1]
                net = dsn[at + 1 : paren]
            else:
                net = dsn[at + 1 : slash]
        query = dsn.find("?", slash + 1)
        if query >= 0:
            params = _parse_params(dsn[query + 1 :])
        raw_name = dsn[slash + 1 : query if query >= 0 else len(dsn)]
        database = _unescape(raw_name, plus_is_space=False, what=f"invalid dbname {raw_name!r}")
    net, addr = _normalize(net, addr)
    return ParsedDsn(user, password, net, addr, database, params)


def _parse_params(text: str) -> dict[str, str]:
    """parseDSNParams: '&'-separated key=value; entries without '=' are ignored; values are
    query-unescaped (charset is kept raw by current releases, which is the same for ours)."""
    params: dict[str, str] = {}
    for pair in text.split("&"):
        key, sep, value = pair.partition("=")
        if not sep:
            continue
        params[key] = (
            value if key == "charset" else _unescape(value, plus_is_space=True, what="invalid URL escape")
        )
    return params


def _normalize(net: str, addr: str) -> tuple[str, str]:
    """Config.normalize: network defaults to tcp; tcp gets 127.0.0.1:3306 or a :3306 port."""
    net = net or "tcp"
    if not addr:
        defaults = {"tcp": f"127.0.0.1:{DEFAULT_PORT}", "unix": "/tmp/mysql.sock"}
        if net not in defaults:
            raise DsnError(f"default addr for network '{net}' unknown")
        addr = defaults[net]
    elif net == "tcp":
        try:
            split_host_port(addr)
        except HostPortError:
            addr = join_host_port(addr, DEFAULT_PORT)
    return net, addr


def _unescape(text: str, *, plus_is_space: bool, what: str) -> str:
    """Go's url.QueryUnescape (plus_is_space) / url.PathUnescape: strict %XX decoding."""
    out = bytearray()
    i = 0
    raw = text.encode()
    while i < len(raw):
        char = raw[i]
        if char == ord("%"):
            pair = raw[i + 1 : i + 3]
            if len(pair) < 2 or not all(c in b"0123456789abcdefABCDEF" for c in pair):
                raise DsnError(f"{what}: invalid URL escape {raw[i : i + 3].decode(errors='replace')!r}")
            out.append(int(pair, 16))
            i += 3
            continue
        out.append(ord(" ") if plus_is_space and char == ord("+") else char)
        i += 1
    return out.decode(errors="surrogateescape")


def _printable_ascii(text: str) -> bool:
    return all(" " <= c <= "~" for c in text)
