"""The datastore DSN: built by one function, parsed back by the REAL go-sql-driver (Debian's
golang-github-go-sql-driver-mysql-dev, the driver Kuscia and kine use), and our Python port of
its parser checked against it on the same inputs."""

from __future__ import annotations

import json
import random
import subprocess
from pathlib import Path
from typing import Any

import pytest

from kuscia_components.core import dsn
from tests.gobuild import build_go_program

HOSTILE_PASSWORDS = [
    "p@ss",
    "a:b:c",
    "sl/ash",
    "q?uery",
    "hash#tag",
    "per%cent%2F",
    "single'quote",
    'double"quote',
    "back\\slash",
    "with space",
    " leading and trailing ",
    "@:/?#%'\"\\ all",
    "ends-with-@",
    "(paren)",
    "tcp(h:1)/x?y",
    "a&b=c",
    "plus+sign",
    "u:p@tcp(evil:1)/other?x=1",
    "~`!$^*[]{}|;<>,.",
]
GO_SOURCE = Path(__file__).parent / "go_dsn" / "main.go"


@pytest.fixture(scope="session")
def go_parser(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tests/go_dsn built against Debian's go-sql-driver (the driver Kuscia and kine use)."""
    return build_go_program(
        GO_SOURCE,
        tmp_path_factory.mktemp("go"),
        library="github.com/go-sql-driver/mysql",
        debian_package="golang-github-go-sql-driver-mysql-dev",
    )


def go_parse(binary: Path, dsns: list[str]) -> list[dict[str, Any]]:
    assert all("\n" not in d for d in dsns)
    result = subprocess.run(
        [str(binary)], input="\n".join(dsns) + "\n", capture_output=True, text=True, check=True, timeout=60
    )
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(lines) == len(dsns)
    return lines


def test_dsn_shape_matches_kuscia_docs() -> None:
    built = dsn.build_dsn("kuscia", "pw", "mysql.example.com", 3306, "kuscia_alice")
    assert (
        built == "kuscia:pw@tcp(mysql.example.com:3306)/kuscia_alice?charset=utf8mb4&parseTime=True&loc=Local"
    )
    assert dsn.datastore_endpoint(built) == "mysql://" + built


def test_real_go_sql_driver_reads_hostile_passwords_back(go_parser: Path) -> None:
    built = [
        dsn.datastore_endpoint(dsn.build_dsn("kuscia", pw, "db.ns.svc", 3306, "kine"))
        for pw in HOSTILE_PASSWORDS
    ]
    for password, parsed in zip(HOSTILE_PASSWORDS, go_parse(go_parser, built), strict=True):
        assert parsed.get("error") is None, parsed
        assert (parsed["user"], parsed["password"]) == ("kuscia", password)
        assert (parsed["net"], parsed["addr"], parsed["database"]) == ("tcp", "db.ns.svc:3306", "kine")
        assert parsed["params"]["charset"] == "utf8mb4" and parsed["parseTime"] and parsed["loc"] == "Local"
        # older kine re-formats the DSN and parses it again: the password must survive that too
        assert parsed["reparsed"]["password"] == password and parsed["reparsed"]["addr"] == "db.ns.svc:3306"


def test_every_printable_ascii_password_round_trips_through_the_real_driver(go_parser: Path) -> None:
    """Seeded random passwords over the whole accepted alphabet (space to '~')."""
    rng = random.Random(20260425)
    alphabet = [chr(c) for c in range(0x20, 0x7F)]
    passwords = ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 40))) for _ in range(400)]
    passwords.append("".join(alphabet))
    built = [dsn.build_dsn("kuscia_alice", pw, "10.0.0.7", 3307, "kuscia_alice") for pw in passwords]
    for password, parsed in zip(passwords, go_parse(go_parser, built), strict=True):
        assert (parsed.get("error"), parsed["password"], parsed["user"]) == (None, password, "kuscia_alice")
        assert (parsed["addr"], parsed["database"]) == ("10.0.0.7:3307", "kuscia_alice")


PARSER_SAMPLES = [
    "u:p@tcp(h:1)/db",
    "u@tcp(h)/db",
    "/db",
    "",
    "u:p@/db?x=1",
    "u:p@tcp([::1]:3306)/db",
    "u:p@tcp(::1)/db",
    "u:p@tcp([::1])/db",
    "u:p@tcp(h:1:2)/db",
    "u:p@unix(/tmp/s.sock)/db",
    "u:p@unix/db",
    "u:p@udp/db",
    "a@b:p@c@tcp(h:1)/d",
    "u:p@tcp(h:1)/db?a&b=1&c=%41+x&d=",
    "u:p@tcp(h:1)/db?x=%zz",
    "u:p@tcp(h:1)",
    "u:p@tcp(h:3306/db",
    "u:p@tcp(h:1)x)/db",
    "u:p@tcp(h:1)/db?x=a)b/c",
    "@/db",
    ":@/db",
    "user:pass/word@tcp(h)/db",
    "user:p/a@tcp(h)/db?q=1",
    "u:p@tcp(h:1)/a/b",
    "u:p@tcp(h:1)/db?charset=utf8mb4&parseTime=True&loc=Local",
    "noslash@tcp(h:1)",
]


def test_python_port_agrees_with_the_real_driver(go_parser: Path) -> None:
    samples = [dsn.build_dsn("u", pw, "h", 3306, "d") for pw in HOSTILE_PASSWORDS] + PARSER_SAMPLES
    for sample, real in zip(samples, go_parse(go_parser, samples), strict=True):
        if real.get("error"):
            with pytest.raises(dsn.DsnError):
                dsn.parse_dsn(sample)
            continue
        ours = dsn.parse_dsn(sample)
        assert (ours.user, ours.password, ours.net, ours.addr, ours.database) == (
            real["user"],
            real["password"],
            real["net"],
            real["addr"],
            real["database"],
        ), sample
        # v1.5 keeps charset among Params; parseTime and loc are typed fields in every version
        typed = ("parseTime", "loc")
        assert {k: v for k, v in ours.params.items() if k not in typed} == (real["params"] or {}), sample


def test_ipv6_hosts_are_bracketed_and_read_back() -> None:
    parsed = dsn.parse_dsn(dsn.build_dsn("u", "p", "fd00::7", 3307, "d"))
    assert parsed.addr == "[fd00::7]:3307" and parsed.host == "fd00::7" and parsed.port == 3307


def test_defaults_fill_in_like_the_driver() -> None:
    assert dsn.parse_dsn("u:p@tcp(db.example.com)/d").addr == "db.example.com:3306"
    bare = dsn.parse_dsn("/d")
    assert (bare.net, bare.host, bare.port, bare.user) == ("tcp", "127.0.0.1", 3306, "")


@pytest.mark.parametrize(
    ("kwargs", "setting", "example"),
    [
        ({"user": "ku:scia"}, "kuscia:database.user", "kuscia_alice"),
        ({"user": ""}, "kuscia:database.user", "kuscia_alice"),
        ({"user": "ku\tscia"}, "kuscia:database.user", "kuscia_alice"),
        ({"password": ""}, "password", "generated"),
        ({"password": "new\nline"}, "password", "Xk3v9Q"),
        ({"password": "caf\u00e9"}, "password", "Xk3v9Q"),
        ({"host": "db(1)"}, "kuscia:database.host", "mysql.example.com"),
        ({"host": "db host"}, "kuscia:database.host", "mysql.example.com"),
        ({"host": "db:3306"}, "kuscia:database.host", "mysql.example.com"),
        ({"host": ""}, "kuscia:database.host", "mysql.example.com"),
        ({"port": 0}, "kuscia:database.port", "3306"),
        ({"port": True}, "kuscia:database.port", "3306"),
        ({"database": "kine/x"}, "kuscia:database.name", "kuscia_alice"),
        ({"database": "a%2Fb"}, "kuscia:database.name", "kuscia_alice"),
        ({"database": ""}, "kuscia:database.name", "kuscia_alice"),
    ],
)
def test_values_that_cannot_round_trip_are_rejected_with_setting_rule_and_example(
    kwargs: dict[str, Any], setting: str, example: str
) -> None:
    args: dict[str, Any] = {
        "user": "kuscia",
        "password": "s3cret-Value",
        "host": "h",
        "port": 3306,
        "database": "d",
        **kwargs,
    }
    with pytest.raises(dsn.DsnError) as err:
        dsn.build_dsn(**args)
    message = str(err.value)
    assert setting in message and "Example: " in message and example in message
    if kwargs.get("password"):
        assert kwargs["password"] not in message


def test_parse_errors_carry_the_drivers_reason() -> None:
    with pytest.raises(dsn.DsnError, match="missing the slash"):
        dsn.parse_dsn("user:pw@tcp(h:3306)")
    with pytest.raises(dsn.DsnError, match="not terminated"):
        dsn.parse_dsn("u:p@tcp(h:3306/db")
    with pytest.raises(dsn.DsnError, match="escape a param value"):
        dsn.parse_dsn("u:p@tcp(h:1)/db?x=a)b/c")


def test_a_port_that_is_not_a_number_is_reported_not_crashed() -> None:
    parsed = dsn.parse_dsn("u:p@tcp(h:abc)/d")
    with pytest.raises(dsn.DsnError, match="no port 1-65535"):
        _ = parsed.port


def test_generated_passwords_are_long_random_and_trouble_free() -> None:
    passwords = {dsn.generate_password() for _ in range(200)}
    assert len(passwords) == 200
    assert all(len(p) == 32 and set(p) <= set(dsn.PASSWORD_ALPHABET) for p in passwords)
    used = set("".join(passwords))
    assert len(used) > 55, "the whole alphabet is in use, not a narrow slice of it"
    assert len(dsn.generate_password(64)) == 64


@pytest.mark.parametrize("length", [0, 8, 15, 129, True, "32"])
def test_unsafe_password_lengths_are_rejected(length: Any) -> None:
    with pytest.raises(dsn.DsnError, match="whole number 16-128"):
        dsn.generate_password(length)


def test_password_is_not_in_the_parsed_repr() -> None:
    assert "s3cr3t" not in repr(dsn.parse_dsn(dsn.build_dsn("u", "s3cr3t", "h", 1, "d")))
