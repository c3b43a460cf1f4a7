"""host:port: the one parser for every network address the project reads or writes.

Two readings of one grammar, because two kinds of callers need them:

- `split_host_port` is Go's net.SplitHostPort, exactly: go-sql-driver decides with it whether a
  DSN's address already has a port, so the DSN parser must reject and accept the same strings.
  The port comes back as text, unchecked, as Go returns it.
- `parse_host_port` reads a value a person typed (a setting, a command-line flag): a host name or
  IP address (IPv6 in brackets), a port 1-65535, optionally a default port when none is given.
  Every rejection names the setting, the rule and a good example.

`join_host_port` is Go's net.JoinHostPort: brackets around a host that contains ':'.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

MIN_PORT = 1
MAX_PORT = 65535
# Characters no host name or IP literal holds, and that would change the meaning of the text
# around an address (a DSN's tcp(...), a URL's user@ or /path).
_HOST_FORBIDDEN = frozenset("()/@?#[]\\")


class HostPortError(ValueError):
    """A value that is not a usable host:port; the message names the setting, rule and example."""


@dataclass(frozen=True)
class HostPort:
    host: str  # without brackets
    port: int

    def __str__(self) -> str:
        return join_host_port(self.host, self.port)


def split_host_port(hostport: str) -> tuple[str, str]:
    """Go's net.SplitHostPort: 'h:p' or '[v6]:p' -> (host, port text); HostPortError when malformed."""
    colon = hostport.rfind(":")
    if colon < 0:
        raise HostPortError(f"address {hostport!r}: missing port in address")
    start, end_of_host = 0, 0
    if hostport.startswith("["):
        close = hostport.find("]")
        if close < 0:
            raise HostPortError(f"address {hostport!r}: missing ']' in address")
        if close + 1 == len(hostport):
            raise HostPortError(f"address {hostport!r}: missing port in address")
        if close + 1 != colon:
            reason = "too many colons in address" if hostport[close + 1] == ":" else "missing port in address"
            raise HostPortError(f"address {hostport!r}: {reason}")
        host, start, end_of_host = hostport[1:close], 1, close + 1
    else:
        host = hostport[:colon]
        if ":" in host:
            raise HostPortError(f"address {hostport!r}: too many colons in address")
    if "[" in hostport[start:]:
        raise HostPortError(f"address {hostport!r}: unexpected '[' in address")
    if "]" in hostport[end_of_host:]:
        raise HostPortError(f"address {hostport!r}: unexpected ']' in address")
    return host, hostport[colon + 1 :]


def join_host_port(host: str, port: int | str) -> str:
    """Go's net.JoinHostPort: brackets around a host that contains ':' (IPv6)."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def parse_host_port(
    text: object,
    *,
    setting: str = "address",
    example: str = "db.example.com:3306",
    default_port: int | None = None,
) -> HostPort:
    """'host:port', '[v6]:port', or (with `default_port`) 'host' / '[v6]' -> HostPort.

    Raises HostPortError naming `setting`, the rule broken and `example`.
    """
    if not isinstance(text, str) or not text:
        raise _reject(setting, "must be host:port", example, text)
    if text.startswith("["):
        close = text.find("]")
        if close < 0:
            raise _reject(setting, "has '[' without ']' (an IPv6 address goes in brackets)", example, text)
        host, rest = text[1:close], text[close + 1 :]
        if not is_ipv6(host):
            raise _reject(setting, "holds something in brackets that is not an IPv6 address", example, text)
        if rest and not rest.startswith(":"):
            raise _reject(setting, "must have ':' and the port right after ']'", example, text)
        port_text = rest[1:] if rest else None
    elif text.count(":") > 1:
        hint = f" ([{text}]:{default_port or 3306})" if is_ipv6(text) else ""
        raise _reject(
            setting, f"has more than one ':'; an IPv6 address goes in brackets{hint}", example, text
        )
    else:
        host, colon, port_text_or_empty = text.partition(":")
        port_text = port_text_or_empty if colon else None
        _check_host(host, setting, example, text)
    if port_text is None:
        if default_port is None:
            raise _reject(setting, "has no port", example, text)
        return HostPort(host, check_port(default_port, setting=setting, example=example))
    if not port_text.isascii() or not port_text.isdigit():
        raise _reject(setting, f"must end in a port number {MIN_PORT}-{MAX_PORT}", example, text)
    return HostPort(host, check_port(int(port_text), setting=setting, example=example))


def check_port(port: object, *, setting: str = "port", example: str = "3306") -> int:
    """A whole number 1-65535 (not a bool); returns it."""
    if isinstance(port, bool) or not isinstance(port, int) or not MIN_PORT <= port <= MAX_PORT:
        raise _reject(setting, f"must be a port number {MIN_PORT}-{MAX_PORT}", example, port)
    return port


def _check_host(host: str, setting: str, example: str, text: str) -> None:
    if not host:
        raise _reject(setting, "has no host before ':'", example, text)
    bad = sorted({c for c in host if c in _HOST_FORBIDDEN or c.isspace() or not c.isprintable()})
    if bad:
        shown = ", ".join(repr(c) for c in bad)
        raise _reject(setting, f"must be a host name or IP address (contains {shown})", example, text)


def _reject(setting: str, rule: str, example: str, got: object) -> HostPortError:
    return HostPortError(f"{setting}: {rule} (got {got!r}). Example: {example}")


def is_ipv6(host: str) -> bool:
    """An IPv6 address as written inside brackets (a zone such as %eth0 allowed)."""
    try:
        ipaddress.IPv6Address(host)
    except ValueError:
        return False
    return True


def has_zone(text: str) -> bool:
    """A scoped IPv6 literal or range ('fe80::1%eth0', 'fe80::%eth0/64').

    Python's ipaddress accepts zones (3.9+); Go's net.ParseIP and net.ParseCIDR, which Kubernetes
    validation parses with (k8s.io/utils/net ParseIPSloppy/ParseCIDRSloppy), do not. No host name
    or IPv4 address contains '%', so any '%' is a zone (or a URL escape of one, RFC 6874's %25)."""
    return "%" in text


def is_loopback_host(host: str) -> bool:
    """A host that, dialled from inside a pod, is that pod itself: localhost (and *.localhost,
    RFC 6761 §6.3), 127.0.0.0/8, ::1, an IPv4-mapped loopback, or the unspecified 0.0.0.0 / ::
    (Linux connects those to the local host)."""
    name = host.lower().rstrip(".")
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(name.split("%", 1)[0])
    except ValueError:
        return False
    mapped = address.ipv4_mapped if isinstance(address, ipaddress.IPv6Address) else None
    return any(a.is_loopback or a.is_unspecified for a in (address, mapped) if a is not None)
