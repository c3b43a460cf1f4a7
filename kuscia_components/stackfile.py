"""Read a Pulumi stack file (Pulumi.<stack>.yaml) the way the Pulumi CLI hands it to a program.

The CLI passes every top-level config value as a string, and objects and lists as JSON; doing
the same here means `render`, `check` and `verify` see exactly what `pulumi up` would see.
Values written `secure: v1:...` are encrypted: they are present but unknown offline.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .config import CONFIG_NAMESPACE, ENCRYPTED


class StackFileError(ValueError):
    """A stack file that is missing or cannot be read; the message says how to fix it."""


@dataclass(frozen=True)
class StackFile:
    path: Path
    values: dict[str, str]  # kuscia: keys without the prefix, as the CLI passes them
    secret_keys: frozenset[str]  # kuscia: keys (without prefix) written as secrets
    encrypted_keys: frozenset[str]  # secret keys whose value cannot be decrypted offline
    other_config: dict[str, Any] = field(default_factory=dict)  # other namespaces, verbatim

    @property
    def warnings(self) -> list[str]:
        return [
            f"{CONFIG_NAMESPACE}:{key} is encrypted in {self.path.name}; offline commands treat it as present "
            "but unknown (Pulumi decrypts it at deploy)"
            for key in sorted(self.encrypted_keys)
        ]


def find_stack_file(stack: str, project_dir: Path) -> Path:
    """Pulumi.<stack>.yaml (or .yml) next to Pulumi.yaml."""
    for suffix in ("yaml", "yml"):
        candidate = Path(project_dir) / f"Pulumi.{stack}.{suffix}"
        if candidate.is_file():
            return candidate
    available = sorted(p.name for p in Path(project_dir).glob("Pulumi.*.y*ml"))
    hint = f" Stack files here: {', '.join(available)}." if available else ""
    raise StackFileError(
        f"no stack file for stack {stack!r} in {Path(project_dir).resolve()} (expected Pulumi.{stack}.yaml).{hint} "
        "Create one with `pulumi stack init` and `pulumi config set`, or pass --config PATH."
    )


def load_stack_file(path: Path) -> StackFile:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise StackFileError(f"stack file {path} does not exist") from None
    except OSError as err:
        raise StackFileError(f"cannot read stack file {path}: {err.strerror}") from None
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise StackFileError(
            f"stack file {path} is not valid YAML{where}: {getattr(err, 'problem', err)}"
        ) from None
    if document is None:
        document = {}
    if not isinstance(document, dict):
        raise StackFileError(f"stack file {path} must be a YAML mapping with a 'config:' section")
    config = document.get("config") or {}
    if not isinstance(config, dict):
        raise StackFileError(
            f"'config:' in {path} must be a mapping of settings like 'kuscia:domainId: alice'"
        )
    return stack_config_from_mapping(config, path)


def stack_config_from_mapping(config: Mapping[str, Any], path: Path = Path("<config>")) -> StackFile:
    prefix = f"{CONFIG_NAMESPACE}:"
    values: dict[str, str] = {}
    secrets: set[str] = set()
    encrypted: set[str] = set()
    other: dict[str, Any] = {}
    for full_key, raw in config.items():
        if not isinstance(full_key, str) or not full_key.startswith(prefix):
            other[str(full_key)] = raw
            continue
        key = full_key[len(prefix) :]
        if _is_secure(raw) or _contains_secure(raw):
            secrets.add(key)
            encrypted.add(key)
            values[key] = ENCRYPTED
        else:
            values[key] = as_cli_value(raw)
    return StackFile(path, values, frozenset(secrets), frozenset(encrypted), other)


def as_cli_value(value: Any) -> str:
    """What the Pulumi CLI passes a program: scalars as strings, objects and lists as JSON."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return json.dumps(value)
    return str(value)


def _is_secure(value: Any) -> bool:
    return isinstance(value, dict) and set(value) == {"secure"}


def _contains_secure(value: Any) -> bool:
    if _is_secure(value):
        return True
    if isinstance(value, dict):
        return any(_contains_secure(v) for v in value.values())
    if isinstance(value, list):
        return any(_contains_secure(v) for v in value)
    return False
