"""The datastore DSN: built by one function, parsed back by the real go-sql-driver (Debian's)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from kuscia_components import dsn
from tests.gobuild import build_go_program

HOSTILE_PASSWORDS = [
    "p@ss", "a:b:c", "sl/ash", "q?uery", "hash#tag", "per%cent%2F", "single'quote", 'double"quote',
    "back\\slash", "with space", "@:/?#%'\"\\ all", "ends-with-@", "(paren)", "tcp(h:1)/x?y",
]  # fmt: skip
GO_SOURCE = Path(__file__).parent / "go_dsn" / "main.go"


@pytest.fixture(scope="session")
def go_parser(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tests/go_dsn built against Debian's go-sql-driver (the driver Kuscia and kine use)."""
    return build_go_program(
        GO_SOURCE, tmp_path_factory.mktemp("go"), library="github.com/go-sql-driver/mysql",
        debian_package="golang-github-go-sql-driver-mysql-dev",
    )  # fmt: skip


def go_parse(binary: Path, dsns: list[str]) -> list[dict[str, str]]:
    result = subprocess.run(
        [str(binary)], input="\n".join(dsns) + "\n", capture_output=True, text=True, check=True
    )
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_dsn_shape_matches_kuscia_docs() -> None:
    built = dsn.build_dsn("kuscia", "pw", "mysql.example.com", 3306, "kuscia_alice")
    assert (
        built == "kuscia:pw@tcp(mysql.example.com:3306)/kuscia_alice?charset=utf8mb4&parseTime=True&loc=Local"
    )
    assert dsn.datastore_endpoint(built) == "mysql://" + built


def test_real_go_sql_driver_parses_hostile_passwords_back(go_parser: Path) -> None:
    built = [
        dsn.datastore_endpoint(dsn.build_dsn("kuscia", pw, "db.ns.svc", 3306, "kine"))
        for pw in HOSTILE_PASSWORDS
    ]
    for password, parsed in zip(HOSTILE_PASSWORDS, go_parse(go_parser, built), strict=True):
        assert parsed.get("error") is None, parsed
        assert (parsed["user"], parsed["password"]) == ("kuscia", password)
        assert (parsed["net"], parsed["addr"], parsed["database"]) == ("tcp", "db.ns.svc:3306", "kine")


def test_python_port_agrees_with_the_real_driver(go_parser: Path) -> None:
    samples = [dsn.build_dsn("u", pw, "h", 3306, "d") for pw in HOSTILE_PASSWORDS]
    samples += ["u:p@tcp(h:1)/db", "u@tcp(h)/db", "/db", "u:p@/db?x=1", "u:p@tcp([::1]:3306)/db"]
    for sample, real in zip(samples, go_parse(go_parser, samples), strict=True):
        ours = dsn.parse_dsn(sample)
        assert (ours.user, ours.password, ours.net, ours.addr, ours.database) == (
            real["user"], real["password"], real["net"], real["addr"], real["database"],
        ), sample  # fmt: skip


def test_ipv6_hosts_are_bracketed() -> None:
    parsed = dsn.parse_dsn(dsn.build_dsn("u", "p", "::1", 3307, "d"))
    assert parsed.addr == "[::1]:3307" and parsed.host == "::1" and parsed.port == 3307


@pytest.mark.parametrize(
    ("user", "password"), [("ku:scia", "pw"), ("", "pw"), ("kuscia", ""), ("kuscia", "new\nline")]
)
def test_values_that_cannot_round_trip_are_rejected(user: str, password: str) -> None:
    with pytest.raises(dsn.DsnError):
        dsn.build_dsn(user, password, "h", 3306, "d")


def test_parse_errors_mirror_the_driver() -> None:
    with pytest.raises(dsn.DsnError, match="missing the slash"):
        dsn.parse_dsn("user:pw@tcp(h:3306)")
    with pytest.raises(dsn.DsnError, match="not terminated"):
        dsn.parse_dsn("u:p@tcp(h:3306/db")


def test_generated_passwords_are_long_and_trouble_free() -> None:
    passwords = {dsn.generate_password() for _ in range(50)}
    assert len(passwords) == 50
    assert all(len(p) == 32 and p.isalnum() and p.isascii() for p in passwords)


def test_password_is_not_in_the_parsed_repr() -> None:
    assert "s3cr3t" not in repr(dsn.parse_dsn(dsn.build_dsn("u", "s3cr3t", "h", 1, "d")))
