"""The reader of raw values: typed getters that record a `Problem` instead of raising.

Each getter takes the setting's full key, the raw value and an example, and returns the typed
value or None after recording why not, so one pass finds every problem of a config. Values come
in the shape Pulumi hands a program: every top-level value a string, objects and lists as JSON
text. A secret's value (or any value of a key set as a secret) is never shown in a problem.
"""

from __future__ import annotations

import difflib
import ipaddress
import json
import re
import urllib.parse
from collections.abc import Collection, Mapping
from fractions import Fraction
from typing import Any

from kuscia_components.config.constants import CONFIG_NAMESPACE, ENCRYPTED, gateway_scheme
from kuscia_components.config.errors import Problem
from kuscia_components.config.quantity import QuantityError, parse_quantity

DNS_NAME = re.compile(
    r"(?=.{1,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*"
)
MISSING: Any = object()  # a setting that is not there at all (JSON null is a value)
_UNSHOWN: Any = object()


class Reader:
    """The raw `kuscia:` values of one config and the problems found in them so far."""

    def __init__(
        self,
        values: Mapping[str, object],
        secret_keys: Collection[str],
        encrypted: Collection[str],
        *,
        settings: tuple[str, ...],
        nested: Mapping[str, tuple[str, ...]],
        secret_settings: Collection[str],
    ) -> None:
        prefix = f"{CONFIG_NAMESPACE}:"
        self.raw = {str(k).removeprefix(prefix): v for k, v in values.items()}
        self.secret = {str(k).removeprefix(prefix) for k in secret_keys}
        self.encrypted = {str(k).removeprefix(prefix) for k in encrypted}
        self.settings, self.nested, self.secret_settings = settings, nested, secret_settings
        self.problems: list[Problem] = []
        self.unknown_offline: set[str] = set()

    # -- reporting ---------------------------------------------------------------------------

    def problem(self, key: str, rule: str, example: str, got: object = _UNSHOWN) -> None:
        top = re.split(r"[.\[]", key, maxsplit=1)[0]
        hidden = key in self.secret_settings or top in self.secret or top in self.encrypted
        shown = None if got is _UNSHOWN or hidden else _short(got)
        self.problems.append(Problem(f"{CONFIG_NAMESPACE}:{clip(key)}", rule, example, shown))

    def unknown_keys(self, where: str, given: Mapping[Any, object], known: tuple[str, ...]) -> None:
        """Every key not in `known` is a problem, with the nearest known one as a suggestion."""
        for raw_key in given:
            key = str(raw_key)
            if key in known:
                continue
            full = f"{where}.{key}" if where else key
            if not where and re.match(r"[A-Za-z]+[.\[]", key):
                head = re.split(r"[.\[]", key, maxsplit=1)[0]
                if head in self.settings:
                    self.problem(
                        full,
                        f"is a top-level key named '{key}': `pulumi config set` without --path stores "
                        "a dotted name as one key. Remove it and set the nested value with --path",
                        f"pulumi config rm 'kuscia:{key}' && pulumi config set --path 'kuscia:{key}' VALUE",
                    )
                    continue
            match = _did_you_mean(key, known)
            if match is None and not where:
                match = next(
                    (
                        f"{p}.{k}"
                        for p, keys in self.nested.items()
                        if "[" not in p and "." not in p
                        for k in keys
                        if k.lower() == key.lower()
                    ),
                    None,
                )
            hint = f" (did you mean '{match}'?)" if match else f"; known settings here: {', '.join(known)}"
            example = f"kuscia:{where + '.' if where else ''}{match or known[0]}"
            self.problem(full, f"is not a setting{hint}", example)

    # -- typed getters: each returns None after recording a problem --------------------------

    def readable(self, key: str, value: object, example: str) -> bool:
        """False for a missing value, or an encrypted one that only Pulumi can read."""
        if value is MISSING:
            return False
        if value == ENCRYPTED:
            self.problem(
                key,
                "is encrypted, so offline commands cannot read it (pulumi up can). Only domainKeyData and "
                "the database admin password need to be secrets; set this one in plain text",
                example,
            )
            return False
        return True

    def text(self, key: str, value: object, example: str, *, secret: bool = False) -> str | None:
        if not self.readable(key, value, example):
            return None
        shown = _UNSHOWN if secret else value
        if isinstance(value, bool) and is_nested(key):
            self.problem(
                key, "must be a string; quote it (YAML reads yes/no/on/off/y/n as true/false)", example, shown
            )
            return None
        if not isinstance(value, str):
            self.problem(key, f"must be a string, not {type_name(value)}", example, shown)
            return None
        if not is_nested(key) and value.strip()[:1] in ("{", "[") and _json_container(value):
            self.problem(key, f"must be a string, not {type_name(json.loads(value))}", example, shown)
            return None
        if not value.strip():
            self.problem(key, "must not be empty (remove the setting to use its default)", example)
            return None
        return value if secret else value.strip()

    def integer(self, key: str, value: object, example: str, low: int, high: int) -> int | None:
        if not self.readable(key, value, example):
            return None
        number: int | None = None
        if isinstance(value, int) and not isinstance(value, bool):
            number = value
        elif isinstance(value, str) and not is_nested(key) and re.fullmatch(r"\s*[0-9]{1,10}\s*", value):
            number = int(value)
        elif isinstance(value, str) and is_nested(key) and re.fullmatch(r"[0-9]{1,10}", value.strip()):
            self.problem(key, "must be a number, not a string (remove the quotes)", example, value)
            return None
        if number is None:
            self.problem(key, f"must be a whole number from {low} to {high}", example, value)
            return None
        if not low <= number <= high:
            self.problem(key, f"must be from {low} to {high}", example, value)
            return None
        return number

    def boolean(self, key: str, value: object, example: str) -> bool | None:
        if not self.readable(key, value, example):
            return None
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and not is_nested(key) and value.strip().lower() in ("true", "false"):
            return value.strip().lower() == "true"
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            self.problem(key, "must be true or false without quotes", example, value)
        else:
            self.problem(key, "must be true or false", example, value)
        return None

    def choice(self, key: str, value: object, allowed: tuple[str, ...], example: str) -> str | None:
        """One of `allowed`, matched in any case, returned in the canonical spelling."""
        text = self.text(key, value, example)
        if text is None:
            return None
        by_upper = {a.upper(): a for a in allowed}
        canonical = by_upper.get(text.upper())
        if canonical is None:
            close = difflib.get_close_matches(text.upper(), by_upper, n=1, cutoff=0.5)
            hint = f" (did you mean {by_upper[close[0]]}?)" if close else ""
            self.problem(key, f"must be one of {', '.join(allowed)}{hint}", example, text)
        return canonical

    def quantity(
        self, key: str, value: object, example: str, *, zero_ok: bool = False
    ) -> tuple[str, Fraction] | None:
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 2**63:
            self.problem(
                key, "must be at most 2^63-1, the largest quantity Kubernetes represents", example, value
            )
            return None
        if isinstance(value, int | float) and not isinstance(value, bool):
            value = _number_text(value)
        text = self.text(key, value, example)
        if text is None:
            return None
        try:
            amount = parse_quantity(text)
        except QuantityError as err:
            self.problem(key, str(err), example, text)
            return None
        if amount < 0 or (amount == 0 and not zero_ok):
            self.problem(key, f"must be {'zero or more' if zero_ok else 'more than zero'}", example, text)
            return None
        return text, amount

    def obj(self, key: str, value: object, example: str) -> dict[Any, Any] | None:
        found: dict[Any, Any] | None = self.structured(key, value, dict, example)
        return found

    def array(self, key: str, value: object, example: str) -> list[Any] | None:
        found: list[Any] | None = self.structured(key, value, list, example)
        return found

    def structured(self, key: str, value: object, kind: type, example: str) -> Any:
        """An object or list; at the top level Pulumi passes them as JSON text."""
        if value == ENCRYPTED and key in self.encrypted:
            self.problem(
                key,
                "is encrypted as a whole, so offline commands cannot read it (pulumi up can). "
                "Keep it in plain text and make only the secret inside a secret "
                "(kuscia:databaseAdminPassword, kuscia:domainKeyData)",
                example,
            )
            return None
        if not self.readable(key, value, example):
            return None
        if isinstance(value, str) and not is_nested(key):
            if not value.strip():
                self.problem(key, "must not be empty (remove the setting to use its default)", example)
                return None
            try:
                value = json.loads(value)
            except (ValueError, RecursionError):
                self.problem(key, f"must be {type_name(kind())} (YAML or JSON)", example, value)
                return None
        if not isinstance(value, kind):
            self.problem(key, f"must be {type_name(kind())}, not {type_name(value)}", example, value)
            return None
        return value

    def hostname(self, key: str, host: str, example: str) -> bool:
        if valid_host(host):
            return True
        self.problem(key, "must be a host name or an IP address", example, host)
        return False

    def url(self, key: str, text: str, protocol: str, example: str) -> bool:
        """An http(s) URL with a host, optional port and path prefix, scheme matching protocol."""
        want = gateway_scheme(protocol)
        try:
            parsed: urllib.parse.SplitResult | None = urllib.parse.urlsplit(text)
        except ValueError:  # e.g. an unclosed [IPv6 bracket
            parsed = None
        try:
            port_ok = parsed is None or parsed.port is None or parsed.port > 0
        except ValueError:  # not a number, or above 65535
            port_ok = False
        if parsed is None or parsed.scheme.lower() not in ("http", "https") or not parsed.hostname:
            self.problem(
                key, "must be an http:// or https:// URL with a host, e.g. https://host:port", example, text
            )
            return False
        if any(c.isspace() for c in text):
            self.problem(key, "must not contain spaces", example, text)
            return False
        if not port_ok:
            self.problem(key, "has an invalid port (1-65535)", example, text)
            return False
        if parsed.username is not None or "?" in text or "#" in text:
            self.problem(
                key,
                "must not carry user info, a query or a fragment (only host, port and path)",
                example,
                text,
            )
            return False
        if not self.hostname(key, parsed.hostname, example):
            return False
        if parsed.scheme.lower() != want:
            self.problem(
                key,
                f"must use {want}:// because the protocol is {protocol} (Kuscia's gateway then speaks "
                f"{'plain HTTP' if want == 'http' else 'HTTPS'})",
                example,
                text,
            )
            return False
        return True

    def problems_about(self, key: str) -> bool:
        prefix = f"{CONFIG_NAMESPACE}:{key}"
        return any(
            p.setting == prefix or p.setting.startswith((f"{prefix}.", f"{prefix}[")) for p in self.problems
        )


def is_nested(key: str) -> bool:
    return "." in key or "[" in key


def _json_container(text: str) -> bool:
    try:
        return isinstance(json.loads(text), dict | list)
    except (ValueError, RecursionError):
        return False


def valid_host(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return bool(DNS_NAME.fullmatch(host.lower().rstrip(".")))


def _did_you_mean(key: str, known: tuple[str, ...]) -> str | None:
    lowered = {k.lower().replace("-", "").replace("_", ""): k for k in known}
    exact = lowered.get(key.lower().replace("-", "").replace("_", ""))
    if exact:
        return exact
    return next(iter(difflib.get_close_matches(key, known, n=1, cutoff=0.6)), None)


def type_name(value: object) -> str:
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, dict):
        return "an object (a YAML mapping)"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "empty (null)"
    return "a string" if isinstance(value, str) else type(value).__name__


def _number_text(value: int | float) -> str:
    """A YAML/JSON number used as a quantity: 4 -> "4", 0.5 -> "0.5", 4.0 -> "4"."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e21:
        return str(int(value))
    return str(value)


def _short(value: object) -> str:
    """A short, one-line rendering of a rejected (non-secret) value."""
    if isinstance(value, dict | list) or value is None:
        return type_name(value)
    if isinstance(value, int) and abs(value) >= 10**30:
        return "a very large number"
    text = repr(value) if isinstance(value, str) else json.dumps(value)
    return clip(text)


def clip(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."
