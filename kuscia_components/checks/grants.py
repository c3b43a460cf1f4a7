"""SHOW GRANTS text, parsed: which privileges a user holds on which database patterns
(wildcards `_` and `%`, partial revokes), for the checks that cannot ask the server itself."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

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
