"""Read a Pulumi stack file (Pulumi.<stack>.yaml) exactly as the Pulumi CLI hands it to a program.

The CLI decodes stack files with Go's yaml.v2. Each config value first tries to decode as a
plain string, so a top-level scalar reaches the program as its YAML text (`yes` stays "yes",
`1e3` stays "1e3"); anything else is re-encoded as JSON with yaml.v2's YAML 1.1 reading of the
scalars inside (`yes`/`y`/`on` are true, `1e3` is the number 1000, `010` is 8). PyYAML reads
YAML differently, so this module resolves scalars the way yaml.v2 does and encodes numbers the
way Go's encoding/json does: `render`, `check` and `verify` then see the very strings that
`pulumi up` would see (tests/test_stackfile.py compares against yaml.v2 itself).

A value written `secure: v1:...` is encrypted and cannot be read offline: it is reported, kept
as "present but unknown" (config.ENCRYPTED), and its key is listed as secret, as Pulumi does for
an object holding an encrypted value anywhere inside.
"""

from __future__ import annotations

import base64
import binascii
import difflib
import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml

from kuscia_components.config import CONFIG_NAMESPACE, ENCRYPTED, SETTINGS, limits, yaml_limits

_STACK_NAME = re.compile(r"[A-Za-z0-9_.-]{1,100}")


class StackFileError(ValueError):
    """A stack file that is missing or cannot be read; the message says how to fix it."""


@dataclass(frozen=True)
class StackFile:
    """The `kuscia:` config of one stack file, in the shape Pulumi gives a program."""

    path: Path
    values: dict[str, str]  # kuscia: keys without the prefix -> the string the program receives
    # Secret top-level keys (without prefix), plus the dotted paths of encrypted values nested in
    # objects (e.g. "database.adminPassword"), which lets offline checks be exact about them.
    secret_keys: frozenset[str]
    encrypted_keys: frozenset[str]  # top-level keys whose value is (partly) unreadable offline
    other_config: dict[str, Any] = field(default_factory=dict)  # other namespaces, decoded
    warnings: tuple[str, ...] = ()  # encrypted values, duplicate keys, keys that look like ours


def find_stack_file(stack_name: str, project_dir: Path) -> Path:
    """Pulumi.<stack>.yaml (or .yml) of a stack, where Pulumi looks for it: next to Pulumi.yaml,
    or in the project's `stackConfigDir`. `org/project/stack` names use the last part, as Pulumi does."""
    parts = stack_name.split("/")
    short = parts[-1]
    if len(parts) > 3 or not all(_STACK_NAME.fullmatch(p) and p.strip(".") for p in parts):
        raise StackFileError(
            f"{stack_name!r} is not a stack name: letters, digits, '-', '_' or '.', optionally as "
            "org/project/stack, e.g. alice"
        )
    folder = _stack_config_dir(Path(project_dir))
    for suffix in ("yaml", "yml"):
        candidate = folder / f"Pulumi.{short}.{suffix}"
        if candidate.is_file():
            return candidate
    available = sorted(p.name for p in folder.glob("Pulumi.*.y*ml")) if folder.is_dir() else []
    hint = f" Stack files there: {', '.join(available)}." if available else ""
    raise StackFileError(
        f"no stack file for stack {short!r} in {folder.resolve()} (expected Pulumi.{short}.yaml).{hint} "
        f"Create one with `pulumi stack init {short}` and `pulumi config set kuscia:domainId {short}`, "
        "or pass --config PATH."
    )


def _stack_config_dir(project_dir: Path) -> Path:
    """Pulumi.yaml's `stackConfigDir` (relative to the project), or the project folder itself."""
    try:
        project = yaml_limits.safe_load(limits.read_text(project_dir / "Pulumi.yaml", limits.PROJECT_FILE))
    except limits.InputLimitError as err:
        raise StackFileError(str(err)) from None
    except yaml_limits.YamlLimitError as err:
        raise StackFileError(f"project file {project_dir / 'Pulumi.yaml'} {err}") from None
    except (OSError, yaml.YAMLError, RecursionError):
        return project_dir
    folder = project.get("stackConfigDir") if isinstance(project, dict) else None
    return project_dir / folder if isinstance(folder, str) and folder.strip() else project_dir


def load_stack_file(path: Path) -> StackFile:
    """Read one stack file; StackFileError for a missing file, bad YAML or no `config:` mapping."""
    path = Path(path)
    try:
        text = limits.read_text(path, limits.STACK_FILE)
    except FileNotFoundError:
        raise StackFileError(f"stack file {path} does not exist") from None
    except limits.InputLimitError as err:
        raise StackFileError(str(err)) from None
    except OSError as err:
        raise StackFileError(f"cannot read stack file {path}: {err.strerror}") from None
    root = _compose(text, path)
    if root is None or (isinstance(root, yaml.ScalarNode) and root.tag == _NULL):
        raise StackFileError(f"stack file {path} is empty: it needs a 'config:' section with kuscia:domainId")
    if not isinstance(root, yaml.MappingNode):
        raise StackFileError(f"stack file {path} must be a YAML mapping with a 'config:' section")
    _flatten(root, path)
    sections = {_plain_key(k): v for k, v in root.value}
    config = sections.get("config")
    if config is None or (isinstance(config, yaml.ScalarNode) and config.tag == _NULL):
        esc = (
            " (values imported from ESC environments are not readable offline)"
            if "environment" in sections
            else ""
        )
        raise StackFileError(
            f"stack file {path} has no 'config:' section{esc}; add one, e.g. "
            "`pulumi config set kuscia:domainId alice`"
        )
    if not isinstance(config, yaml.MappingNode):
        raise StackFileError(
            f"'config:' in {path} must be a mapping of settings like 'kuscia:domainId: alice', "
            f"not {_node_kind(config)}"
        )
    return _read_config(config, path, esc_environments="environment" in sections)


# ---------------------------------------------------------------------------------------------
# The config section, value by value
# ---------------------------------------------------------------------------------------------


def _read_config(config: yaml.MappingNode, path: Path, *, esc_environments: bool) -> StackFile:
    prefix = f"{CONFIG_NAMESPACE}:"
    entries: dict[str, tuple[str, list[str]]] = {}  # last one wins, as in Pulumi
    lines: dict[str, int] = {}
    warnings: list[str] = []
    loader = _flatten(config, path)
    for key_node, value_node in config.value:
        full_key = _config_key(key_node, path)
        line = key_node.start_mark.line + 1
        if full_key in lines:
            warnings.append(
                f"{full_key} is set twice in {path.name} (lines {lines[full_key]} and {line}); "
                "the last one wins, as in Pulumi: remove one"
            )
        lines[full_key] = line
        try:
            entries[full_key] = _config_value(value_node, loader)
        except (_NotJson, yaml.YAMLError) as err:
            raise StackFileError(f"{full_key} in {path} (line {line}): {err}") from None
        except RecursionError:
            raise StackFileError(f"{full_key} in {path} (line {line}) refers to itself") from None
    values: dict[str, str] = {}
    secrets: set[str] = set()
    other: dict[str, Any] = {}
    for full_key, (value, secure_paths) in entries.items():
        if not full_key.startswith(prefix):
            other[full_key] = value
            warnings.extend(_looks_like_ours(full_key))
            continue
        key = full_key[len(prefix) :]
        values[key] = value
        if secure_paths:
            secrets.add(key)
            secrets.update(f"{key}{p}" for p in secure_paths if p)
    encrypted = {key for key in secrets if key in values}
    warnings.extend(_encrypted_warnings(encrypted, secrets, path))
    warnings.extend(_provider_settings(other, values))
    if esc_environments:
        warnings.append(f"{path.name} imports ESC environments: offline commands cannot see their values")
    return StackFile(path, values, frozenset(secrets), frozenset(encrypted), other, tuple(warnings))


def _config_key(node: yaml.Node, path: Path) -> str:
    """Pulumi's config.ParseKey: `namespace:name`, or the legacy `namespace:config:name`."""
    text = node.value if isinstance(node, yaml.ScalarNode) else None
    line = node.start_mark.line + 1
    if text is None:
        raise StackFileError(f"config key at line {line} of {path} must be a string like kuscia:domainId")
    parts = text.split(":")
    if len(parts) == 3 and parts[1] == "config" and parts[0] and parts[2]:
        return f"{parts[0]}:{parts[2]}"
    if len(parts) != 2:
        hint = _did_you_mean_setting(text.rsplit(":", 1)[-1])
        raise StackFileError(
            f"config key {_clipped(text)} at line {line} of {path} is not of the form <namespace>:<name> "
            f"(Pulumi refuses it){hint}"
        )
    return str(text)


def _config_value(node: yaml.Node, loader: _GoYamlLoader) -> tuple[str, list[str]]:
    """(what the program receives, paths of encrypted values inside: "" for the value itself)."""
    if isinstance(node, yaml.ScalarNode):
        if node.tag == _NULL:
            return "", []
        if node.tag == _BINARY:
            return _binary_text(node.value), []
        return node.value, []  # yaml.v2 decodes any scalar into a string as its text
    data = loader.construct_document(node)
    if _secure_text(data) is not None:
        return ENCRYPTED, [""]
    secure = list(_secure_paths(data, ""))
    if not secure:
        return _go_json(data), []
    return _go_json(_decrypted(data)), secure


def _secure_text(value: Any) -> str | None:
    """The ciphertext of `{secure: "v1:..."}` (exactly one key, a string), else None."""
    if isinstance(value, dict) and len(value) == 1 and isinstance(value.get("secure"), str):
        return str(value["secure"])
    return None


def _secure_paths(value: Any, where: str) -> Iterable[str]:
    if _secure_text(value) is not None:
        yield where
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _secure_paths(item, f"{where}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _secure_paths(item, f"{where}[{index}]")


def _decrypted(value: Any) -> Any:
    """The object as the program receives it at deploy, each encrypted value as ENCRYPTED: Pulumi
    decodes a secret object again (numbers as int64, else float64) before encoding it for the
    program, so -0.0 arrives as 0 and 2**64-1 as 18446744073709552000."""
    if _secure_text(value) is not None:
        return ENCRYPTED
    if isinstance(value, dict):
        return {k: _decrypted(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decrypted(v) for v in value]
    if isinstance(value, bool) or not isinstance(value, int | float):
        return value
    text = str(value) if isinstance(value, int) else _go_float(value, json_style=True)
    if re.fullmatch(r"-?[0-9]+", text) and -(2**63) <= int(text) < 2**63:
        return int(text)
    return float(text)


def _encrypted_warnings(encrypted: set[str], secrets: set[str], path: Path) -> list[str]:
    warnings = []
    for key in sorted(encrypted):
        nested = sorted(p for p in secrets if p.startswith((f"{key}.", f"{key}[")))
        shown = ", ".join(f"{CONFIG_NAMESPACE}:{p}" for p in nested) or f"{CONFIG_NAMESPACE}:{key}"
        if key == "domainKeyData":
            note = "the supplied key cannot be checked offline, and offline output shows a stand-in key"
        elif key == "databaseAdminPassword" or nested == ["database.adminPassword"]:
            note = "fine: it is only used at deploy"
        else:
            note = "offline commands cannot read it"
        warnings.append(f"{shown} is encrypted in {path.name} (Pulumi decrypts it at deploy); {note}")
    return warnings


def _provider_settings(other: Mapping[str, Any], values: Mapping[str, str]) -> list[str]:
    """The default Kubernetes provider reads kubernetes:context/kubeconfig, but peering reads
    kuscia:kubeContext/kubeconfig; setting only the former splits one stack across two clusters."""
    warnings = []
    for provider_key, ours in (
        ("kubernetes:context", "kubeContext"),
        ("kubernetes:kubeconfig", "kubeconfig"),
    ):
        if provider_key in other and ours not in values:
            warnings.append(
                f"{provider_key} is set but {CONFIG_NAMESPACE}:{ours} is not: the node would be deployed with "
                f"{provider_key} while peering uses your default kubeconfig context. Set "
                f"{CONFIG_NAMESPACE}:{ours} instead (it configures both)"
            )
    return warnings


def _looks_like_ours(full_key: str) -> list[str]:
    """A key in another namespace that names one of our settings is almost always a slip
    (e.g. `pulumi config set domainId alice` writes `<project>:domainId`)."""
    namespace, _, name = full_key.partition(":")
    if namespace in ("kubernetes", "pulumi") or name not in SETTINGS:
        return []
    return [
        f"{full_key} is not read by this program (it reads the kuscia: namespace); did you mean kuscia:{name}?"
    ]


def _did_you_mean_setting(name: str) -> str:
    match = difflib.get_close_matches(name, SETTINGS, n=1)
    return f"; did you mean kuscia:{match[0]}?" if match else ""


# ---------------------------------------------------------------------------------------------
# YAML the way Go's yaml.v2 reads it, JSON the way Go's encoding/json writes it
# ---------------------------------------------------------------------------------------------

_NULL = "tag:yaml.org,2002:null"
_BOOL = "tag:yaml.org,2002:bool"
_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_STR = "tag:yaml.org,2002:str"
_BINARY = "tag:yaml.org,2002:binary"
_MERGE = "tag:yaml.org,2002:merge"

_V2_WORDS: dict[str, tuple[str, Any]] = {
    **{w: (_BOOL, True) for w in ("y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON")},
    **{
        w: (_BOOL, False)
        for w in ("n", "N", "no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF")
    },
    **{w: (_NULL, None) for w in ("", "~", "null", "Null", "NULL")},
    **{w: (_FLOAT, math.nan) for w in (".nan", ".NaN", ".NAN")},
    **{w: (_FLOAT, math.inf) for w in (".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF")},
    **{w: (_FLOAT, -math.inf) for w in ("-.inf", "-.Inf", "-.INF")},
}
_YAML_STYLE_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")
_DOT_FLOAT = re.compile(r"\.[0-9]+([eE][-+]?[0-9]+)?")
_GO_INT = re.compile(
    r"(?P<sign>[-+]?)(?:0[xX](?P<hex>[0-9a-fA-F]+)|0[oO](?P<oct>[0-7]+)|0[bB](?P<bin>[01]+)"
    r"|(?P<legacy>0[0-7]*)|(?P<dec>[1-9][0-9]*))"
)


def go_v2_scalar(text: str) -> tuple[str, Any]:
    """(tag, value) of a plain YAML scalar as yaml.v2 resolves it (resolve.go)."""
    if text in _V2_WORDS:
        return _V2_WORDS[text]
    first = text[:1]
    if first == ".":
        if _DOT_FLOAT.fullmatch(text) and math.isfinite(number := float(text)):
            return _FLOAT, number
        return _STR, text
    if not first or first not in "+-0123456789":
        return _STR, text
    plain = text.replace("_", "")
    integer = _go_parse_int(plain)
    if integer is not None:
        return _INT, integer
    if _YAML_STYLE_FLOAT.fullmatch(plain) and math.isfinite(number := float(plain)):
        return _FLOAT, number
    return _STR, text


def _go_parse_int(plain: str) -> int | None:
    """strconv.ParseInt(s, 0, 64), then ParseUint(s, 0, 64) for the unsigned top half."""
    match = _GO_INT.fullmatch(plain)
    if match is None:
        return None
    digits, base = next(
        (match[g], b)
        for g, b in (("hex", 16), ("oct", 8), ("bin", 2), ("legacy", 8), ("dec", 10))
        if match[g] is not None
    )
    value = int(digits, base) if len(digits) <= 70 else 2**64
    if match["sign"] == "-":
        return -value if value <= 2**63 else None
    if value < 2**63 or (not match["sign"] and value < 2**64):
        return value
    return None


class _GoYamlLoader(yaml_limits.BoundedLoaderMixin, yaml.SafeLoader):
    """PyYAML composer and constructor, yaml.v2's scalar resolution, bounded node count."""

    def resolve(self, kind: type, value: Any, implicit: tuple[bool, bool]) -> str:
        if kind is yaml.ScalarNode and implicit[0]:
            return _MERGE if value == "<<" else go_v2_scalar(value)[0]
        return str(super().resolve(kind, value, implicit))  # type: ignore[no-untyped-call]  # PyYAML is unannotated

    def construct_go_scalar(self, node: yaml.ScalarNode) -> Any:
        tag, value = go_v2_scalar(node.value)
        if tag == node.tag:
            return value
        if node.tag == _FLOAT and tag == _INT:
            return float(value)
        raise yaml.constructor.ConstructorError(
            None,
            None,
            f"cannot decode {_clipped(node.value)} as {node.tag.rsplit(':', 1)[-1]}",
            node.start_mark,
        )

    def construct_go_binary(self, node: yaml.ScalarNode) -> str:
        return _binary_text(node.value)

    def construct_go_string(self, node: yaml.ScalarNode) -> str:
        return str(node.value)

    def construct_go_mapping(self, node: yaml.MappingNode) -> dict[str, Any]:
        self.flatten_mapping(node)
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = self.construct_object(key_node, deep=True)
            if isinstance(key, dict | list):
                raise yaml.constructor.ConstructorError(
                    None, None, "a mapping key must be a scalar", key_node.start_mark
                )
            result[_go_key(key)] = self.construct_object(value_node, deep=True)
        return result

    def construct_unknown(self, node: yaml.Node) -> Any:
        """yaml.v2 ignores tags it does not know and decodes the value by its kind."""
        if isinstance(node, yaml.ScalarNode):
            return str(node.value)
        if isinstance(node, yaml.SequenceNode):
            return [self.construct_object(child, deep=True) for child in node.value]
        return self.construct_go_mapping(node)  # type: ignore[arg-type]


for _tag in (_NULL, _BOOL, _INT, _FLOAT):
    _GoYamlLoader.add_constructor(_tag, _GoYamlLoader.construct_go_scalar)
_GoYamlLoader.add_constructor(_BINARY, _GoYamlLoader.construct_go_binary)
_GoYamlLoader.add_constructor("tag:yaml.org,2002:timestamp", _GoYamlLoader.construct_go_string)
_GoYamlLoader.add_constructor("tag:yaml.org,2002:map", _GoYamlLoader.construct_go_mapping)
_GoYamlLoader.add_constructor(None, _GoYamlLoader.construct_unknown)


def _binary_text(text: str) -> str:
    try:
        return base64.b64decode("".join(text.split()), validate=True).decode("utf-8", "replace")
    except (binascii.Error, ValueError):
        return text


def _go_key(key: Any) -> str:
    """fmt.Sprintf("%v", key): how Pulumi turns YAML mapping keys into JSON object keys."""
    if key is None:
        return "<nil>"
    if isinstance(key, bool):
        return "true" if key else "false"
    if isinstance(key, float):
        return _go_float(key, json_style=False)
    return str(key)


class _NotJson(ValueError):
    """A value Go's encoding/json refuses (NaN or infinity), so Pulumi cannot load the file."""


def _go_json(value: Any) -> str:
    """json.Marshal of a decoded config object: sorted keys, compact, Go's numbers and escapes."""
    if isinstance(value, dict):
        items = (f"{_go_json_string(k)}:{_go_json(value[k])}" for k in sorted(value))
        return "{" + ",".join(items) + "}"
    if isinstance(value, list):
        return "[" + ",".join(_go_json(v) for v in value) + "]"
    if isinstance(value, str):
        return _go_json_string(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise _NotJson(f"{value} is not a JSON number, so Pulumi cannot load this value; quote it")
        return _go_float(value, json_style=True)
    return json.dumps(value)  # int, bool, None


_GO_ESCAPES = {
    '"': '\\"',
    "\\": "\\\\",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "<": "\\u003c",
    ">": "\\u003e",
    "&": "\\u0026",
    "\u2028": "\\u2028",
    "\u2029": "\\u2029",
}


def _go_json_string(text: str) -> str:
    """encoding/json's string form: HTML-safe escapes, other control characters as \\u00XX."""
    out = (_GO_ESCAPES.get(c) or (f"\\u{ord(c):04x}" if ord(c) < 0x20 else c) for c in text)
    return '"' + "".join(out) + '"'


def _go_float(number: float, *, json_style: bool) -> str:
    """Go's shortest float formatting: encoding/json (`f`, or `e` outside [1e-6, 1e21)) when
    json_style, else fmt's %v (`g` with exponent from 1e6 or below 1e-4)."""
    if not math.isfinite(number):
        return "NaN" if math.isnan(number) else ("+Inf" if number > 0 else "-Inf")
    sign = "-" if math.copysign(1.0, number) < 0 else ""
    decimal = Decimal(repr(abs(number))).normalize()
    _, digit_tuple, exponent = decimal.as_tuple()
    digits = "".join(map(str, digit_tuple))
    point = len(digits) + int(exponent)  # value = 0.<digits> * 10**point
    if number == 0:
        return f"{sign}0"
    magnitude = point - 1
    if json_style:
        scientific = abs(number) < 1e-6 or abs(number) >= 1e21
    else:
        scientific = magnitude < -4 or magnitude >= 6  # strconv 'g' with shortest precision
    if scientific:
        mantissa = digits[0] + (f".{digits[1:]}" if len(digits) > 1 else "")
        exp_text = f"{'-' if magnitude < 0 else '+'}{abs(magnitude):02d}"
        if json_style and exp_text.startswith("-0"):
            exp_text = "-" + exp_text[2:]
        return f"{sign}{mantissa}e{exp_text}"
    if point <= 0:
        return f"{sign}0.{'0' * -point}{digits}"
    if point >= len(digits):
        return f"{sign}{digits}{'0' * (point - len(digits))}"
    return f"{sign}{digits[:point]}.{digits[point:]}"


# ---------------------------------------------------------------------------------------------
# Small helpers
# ---------------------------------------------------------------------------------------------


def _compose(text: str, path: Path) -> yaml.Node | None:
    """The root node, refused before any expansion where yaml.v2 would refuse its aliasing."""
    try:
        root, loader = yaml_limits.compose(text, _GoYamlLoader)
        if root is not None:
            yaml_limits.check_aliasing(root, yaml_limits.STACK, getattr(loader, "anchor_names", {}))
        return root
    except yaml_limits.YamlLimitError as err:
        raise StackFileError(f"stack file {path} {err}") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise StackFileError(
            f"stack file {path} is not valid YAML{where}: {getattr(err, 'problem', err)}"
        ) from None
    except RecursionError:
        raise StackFileError(f"stack file {path} is nested too deeply to read") from None


def _flatten(node: yaml.MappingNode, path: Path) -> _GoYamlLoader:
    """Apply `<<:` merge keys in place (as yaml.v2 does), returning a loader for the values."""
    loader = _GoYamlLoader("")
    try:
        loader.flatten_mapping(node)
    except yaml.YAMLError as err:
        raise StackFileError(f"stack file {path}: {getattr(err, 'problem', err)}") from None
    return loader


def _plain_key(node: yaml.Node) -> str:
    return str(node.value) if isinstance(node, yaml.ScalarNode) else ""


def _node_kind(node: yaml.Node) -> str:
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    return f"the scalar {_clipped(node.value)}" if isinstance(node, yaml.ScalarNode) else "that"


def _clipped(text: str, limit: int = 60) -> str:
    """repr of a value quoted in a message, cut short: a 1 MB key must not make a 1 MB error."""
    return repr(text) if len(text) <= limit else f"{text[: limit - 3]!r}..."
