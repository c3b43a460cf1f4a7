"""core/hostport: Go's SplitHostPort for DSNs, and the strict parser for values people type."""

from __future__ import annotations

import pytest

from kuscia_components.core.hostport import (
    HostPort,
    HostPortError,
    check_port,
    join_host_port,
    parse_host_port,
    split_host_port,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("db.example.com:3306", ("db.example.com", "3306")),
        ("10.0.0.7:1", ("10.0.0.7", "1")),
        ("[fd00::7]:3307", ("fd00::7", "3307")),
        ("[::1]:abc", ("::1", "abc")),  # Go leaves the port text unchecked
        ("host:", ("host", "")),
        (":3306", ("", "3306")),
    ],
)
def test_split_is_gos_split_host_port(text: str, expected: tuple[str, str]) -> None:
    assert split_host_port(text) == expected


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("db.example.com", "missing port"),
        ("fd00::7", "too many colons"),
        ("[fd00::7", "missing ']'"),
        ("[fd00::7]", "missing port"),
        ("[fd00::7]x:1", "missing port"),
        ("[fd00::7]::1", "too many colons"),
        ("a[b:1", "unexpected '['"),
        ("ab]:1", "unexpected ']'"),
    ],
)
def test_split_rejects_what_go_rejects(text: str, reason: str) -> None:
    with pytest.raises(HostPortError) as raised:
        split_host_port(text)
    assert reason in str(raised.value)


def test_join_brackets_ipv6_only() -> None:
    assert join_host_port("fd00::7", 3306) == "[fd00::7]:3306"
    assert join_host_port("db", "3306") == "db:3306"
    assert str(HostPort("::1", 8082)) == "[::1]:8082"


@pytest.mark.parametrize(
    ("text", "default", "expected"),
    [
        ("db.example.com:3306", None, HostPort("db.example.com", 3306)),
        ("127.0.0.1:65535", None, HostPort("127.0.0.1", 65535)),
        ("[2001:db8::1]:3307", None, HostPort("2001:db8::1", 3307)),
        ("[fe80::1%eth0]:1", None, HostPort("fe80::1%eth0", 1)),
        ("db.example.com", 3306, HostPort("db.example.com", 3306)),
        ("[2001:db8::1]", 3306, HostPort("2001:db8::1", 3306)),
    ],
)
def test_parse_reads_hosts_ipv6_in_brackets_and_default_ports(
    text: str, default: int | None, expected: HostPort
) -> None:
    assert parse_host_port(text, default_port=default) == expected


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        ("db.example.com", "has no port"),
        ("db.example.com:0", "port number 1-65535"),
        ("db.example.com:65536", "port number 1-65535"),
        ("db.example.com:33o6", "port number 1-65535"),
        ("db.example.com:-1", "port number 1-65535"),
        ("db.example.com:", "port number 1-65535"),
        ("db.example.com:\u0663", "port number 1-65535"),  # an Arabic-Indic digit is not a port
        (":3306", "no host"),
        ("2001:db8::1", "IPv6 address goes in brackets ([2001:db8::1]:3306)"),
        ("[2001:db8::1", "without ']'"),
        ("[db.example.com]:3306", "not an IPv6 address"),
        ("[::1]3306", "right after ']'"),
        ("db example.com:3306", "host name or IP address"),
        ("user@db:3306", "host name or IP address"),
        ("db/x:3306", "host name or IP address"),
        ("", "must be host:port"),
    ],
)
def test_parse_rejects_with_setting_rule_and_example(text: str, rule: str) -> None:
    with pytest.raises(HostPortError) as raised:
        parse_host_port(text, setting="--db-address", example="127.0.0.1:3306")
    message = str(raised.value)
    assert message.startswith("--db-address: ") and rule in message
    assert message.endswith("Example: 127.0.0.1:3306")


def test_parse_never_tracebacks_on_a_value_of_the_wrong_type() -> None:
    for value in (None, 3306, ["db", 3306]):
        with pytest.raises(HostPortError, match="must be host:port"):
            parse_host_port(value, setting="kuscia:database.endpoint")


def test_check_port_takes_whole_numbers_only() -> None:
    assert check_port(1) == 1 and check_port(65535) == 65535
    for bad in (0, 65536, True, 3306.0, "3306"):
        with pytest.raises(HostPortError, match="port: must be a port number 1-65535"):
            check_port(bad)
