"""Read a Pulumi stack file (Pulumi.<stack>.yaml) exactly as the Pulumi CLI hands it to a program.

The CLI (since v3.50, pulumi/pulumi 56666840) reads stack files with Go's yaml.v3, in
workspace.LoadProjectStackBytes: the file is decoded into `any`, config keys without a
namespace get the project's name (`domainId:` becomes `kuscia-p2p:domainId`), the result is
encoded to YAML again and decoded a second time, each config value into `any` and from there
into a string (config.Value): a string as it is, other scalars and objects as encoding/json
text. So `yes` and `on` reach the program as "yes" and "on" (yaml.v3 has only true/false as
booleans), `1e3` as "1000", `010` as "8", `2001-12-14` as "2001-12-14 00:00:00 +0000 UTC",
`-0.0` as "0"; `.inf` anywhere, and a key written twice, make the CLI refuse the file. At deploy
every object is decoded once more (numbers as int64, else float64) before the program gets it.
offline/goyaml.py restates yaml.v3 and encoding/json; tests/test_stackfile.py compares every
value with tests/go_pulumi_config, which runs that path over yaml.v3 itself.

A value written `secure: v1:...` is encrypted and cannot be read offline: it is reported, kept
as "present but unknown" (config.ENCRYPTED), and its key is listed as secret, as Pulumi does for
an object holding an encrypted value anywhere inside.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from kuscia_components.config import CONFIG_NAMESPACE, ENCRYPTED, SETTINGS, limits, yaml_limits
from kuscia_components.offline import goyaml

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


def load_stack_file(path: Path, project: str | None = None) -> StackFile:
    """Read one stack file; StackFileError for a missing file, bad YAML or no `config:` mapping.
    `project` is Pulumi.yaml's name (namespace of keys written without one); by default the
    nearest Pulumi.yaml above the file gives it."""
    path = Path(path)
    try:
        text = limits.read_text(path, limits.STACK_FILE)
    except FileNotFoundError:
        raise StackFileError(f"stack file {path} does not exist") from None
    except limits.InputLimitError as err:
        raise StackFileError(str(err)) from None
    except OSError as err:
        raise StackFileError(f"cannot read stack file {path}: {err.strerror}") from None
    if project is None:
        project = _project_name(path.parent)
    root_node = _compose(text, path)
    try:
        root = goyaml.Decoder(root_node).decode(root_node) if root_node is not None else None
    except goyaml.GoYamlError as err:
        setting = _setting_at(root_node, str(err))
        raise StackFileError(f"stack file {path}{setting}: {err} (the Pulumi CLI refuses it too)") from None
    except RecursionError:
        raise StackFileError(f"stack file {path} is nested too deeply to read") from None
    if root is None:
        raise StackFileError(f"stack file {path} is empty: it needs a 'config:' section with kuscia:domainId")
    if not isinstance(root, goyaml.GoMap):
        raise StackFileError(f"stack file {path} must be a YAML mapping with a 'config:' section")
    if root.general:
        bad = next(k for k in root if not isinstance(k, str))
        raise StackFileError(
            f"stack file {path} has the top-level key {_clipped(goyaml.fmt_key(bad))}; Pulumi expects only "
            "string keys there (config:, secretsprovider:, ...)"
        )
    for name in ("secretsprovider", "encryptedkey", "encryptionsalt"):
        if isinstance(root.get(name), list | dict):
            raise StackFileError(f"'{name}:' in {path} must be a string, as Pulumi writes it")
    config = root.get("config")
    if config is None:
        esc = (
            " (values imported from ESC environments are not readable offline)"
            if "environment" in root
            else ""
        )
        raise StackFileError(
            f"stack file {path} has no 'config:' section{esc}; add one, e.g. "
            "`pulumi config set kuscia:domainId alice`"
        )
    if not isinstance(config, goyaml.GoMap):
        shown = (
            "a list" if isinstance(config, list) else f"the scalar {_clipped(goyaml.encoded_text(config))}"
        )
        raise StackFileError(
            f"'config:' in {path} must be a mapping of settings like 'kuscia:domainId: alice', not {shown}"
        )
    lines = _config_key_lines(root_node)
    return _read_config(config, path, project, lines, esc_environments="environment" in root)


def _project_name(folder: Path) -> str | None:
    """`name` of the nearest Pulumi.yaml at or above `folder`, where the CLI finds its project."""
    for candidate in [folder, *folder.resolve().parents][:8]:
        for suffix in ("yaml", "yml"):
            project_file = candidate / f"Pulumi.{suffix}"
            if not project_file.is_file():
                continue
            try:
                project = yaml_limits.safe_load(limits.read_text(project_file, limits.PROJECT_FILE))
            except (OSError, ValueError, yaml.YAMLError, RecursionError):
                return None
            name = project.get("name") if isinstance(project, dict) else None
            return name if isinstance(name, str) and name else None
    return None


def _setting_at(root: yaml.Node | None, message: str) -> str:
    """The config key an error at a line inside a config value belongs to, as " (in <key>)"."""
    line = re.match(r"line ([0-9]+):", message)
    if line is None:
        return ""
    before = [(at, key) for key, at in _config_key_lines(root).items() if at <= int(line[1])]
    return f" (in {_clipped(max(before)[1])[1:-1]})" if before else ""


def _config_key_lines(root: yaml.Node | None) -> dict[str, int]:
    """Line of each key written in the config mapping, for messages."""
    if not isinstance(root, yaml.MappingNode):
        return {}
    for key, value in root.value:
        if isinstance(key, yaml.ScalarNode) and key.value == "config" and isinstance(value, yaml.MappingNode):
            return {k.value: k.start_mark.line + 1 for k, _ in value.value if isinstance(k, yaml.ScalarNode)}
    return {}


# ---------------------------------------------------------------------------------------------
# The config section, value by value
# ---------------------------------------------------------------------------------------------


def _read_config(
    config: goyaml.GoMap, path: Path, project: str | None, lines: dict[str, int], *, esc_environments: bool
) -> StackFile:
    prefix = f"{CONFIG_NAMESPACE}:"
    written: dict[str, str] = {}  # key as the CLI encodes it again -> key as written
    for key in config:
        if not isinstance(key, str):
            continue
        full = f"{project}:{key}" if project and not config.general and ":" not in key else key
        if full in written:
            raise StackFileError(
                f"{full} is set twice in {path.name} (as {written[full]!r} and {key!r}); Pulumi keeps either "
                "one at random: remove one"
            )
        written[full] = key
    entries: dict[str, tuple[str, list[str]]] = {}
    origin: dict[str, str] = {}
    for key, value in config.items():
        if key == ("null", None):
            continue  # the CLI's second decode skips a null key without a word
        written_key = key if isinstance(key, str) else goyaml.encoded_text(goyaml.key_value(key))
        full = (
            f"{project}:{key}" if project and not config.general and ":" not in written_key else written_key
        )
        where = f" (line {lines[written_key]})" if written_key in lines else ""
        parsed = _config_key(full, written_key, path, where)
        if parsed in origin:
            raise StackFileError(
                f"{parsed} is set twice in {path.name} (as {origin[parsed]!r} and {written_key!r}); Pulumi keeps "
                "either one at random: remove one"
            )
        origin[parsed] = written_key
        try:
            entries[parsed] = _config_value(goyaml.round_trip(value))
        except goyaml.GoYamlError as err:
            hint = "; quote it" if "unsupported value" in str(err) else ""
            raise StackFileError(
                f"{parsed} in {path}{where}: {err}{hint} (the Pulumi CLI refuses it too)"
            ) from None
    values: dict[str, str] = {}
    secrets: set[str] = set()
    other: dict[str, Any] = {}
    warnings: list[str] = []
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


def _config_key(text: str, written: str, path: Path, where: str) -> str:
    """Pulumi's config.ParseKey: `namespace:name`, or the legacy `namespace:config:name`."""
    parts = text.split(":")
    if len(parts) == 3 and parts[1] == "config" and parts[0] and parts[2]:
        return f"{parts[0]}:{parts[2]}"
    if len(parts) != 2:
        hint = _did_you_mean_setting(text.rsplit(":", 1)[-1])
        raise StackFileError(
            f"config key {_clipped(written)}{where} in {path} is not of the form <namespace>:<name> "
            f"(Pulumi refuses it){hint}"
        )
    return text


class _Ciphertext(str):
    """An encrypted value inside a config object (config.CiphertextSecret)."""


def _to_object(value: Any) -> Any:
    """config.unmarshalObject: map keys as %v text, time.Time by String(), {secure: <string>}
    alone in a map as a ciphertext."""
    if isinstance(value, goyaml.GoMap):
        items = {k if isinstance(k, str) else goyaml.fmt_key(k): v for k, v in value.items()}
        if len(items) == 1 and isinstance(items.get("secure"), str):
            return _Ciphertext(items["secure"])
        if len(items) == 1 and isinstance(items.get("secure"), goyaml.GoTime):
            raise goyaml.GoYamlError(
                "a map of just 'secure:' and a date reads as an encrypted value at deploy, where Pulumi "
                "fails to decrypt it; quote the date or add another key"
            )
        return {k: _to_object(v) for k, v in items.items()}
    if isinstance(value, list):
        return [_to_object(v) for v in value]
    if isinstance(value, goyaml.GoTime):
        return value.go_string()
    return value


def _config_value(value: Any) -> tuple[str, list[str]]:
    """(what the program receives, paths of encrypted values inside: "" for the value itself):
    object.MarshalString at load, then config.Map.Decrypt at deploy."""
    if value is None:
        return "", []  # a null value is an empty string (the CLI warns about it)
    obj = _to_object(value)
    if isinstance(obj, _Ciphertext):
        return ENCRYPTED, [""]
    if isinstance(obj, str):
        return str(obj), []
    if not isinstance(obj, dict | list):
        return goyaml.go_json(obj), []
    goyaml.go_json(_plain(obj))  # refused here already if it holds a NaN or an infinity
    return goyaml.go_json(_decrypted(obj)), list(_secure_paths(obj, ""))


def _plain(value: Any) -> Any:
    if isinstance(value, _Ciphertext):
        return {"secure": str(value)}
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _secure_paths(value: Any, where: str) -> Iterable[str]:
    if isinstance(value, _Ciphertext):
        yield where
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _secure_paths(item, f"{where}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _secure_paths(item, f"{where}[{index}]")


def _decrypted(value: Any) -> Any:
    """The object as the program receives it at deploy, each encrypted value as ENCRYPTED: the
    engine decodes every object again (numbers as int64, else float64) before encoding it for
    the program, so 2**64-1 arrives as 18446744073709552000."""
    if isinstance(value, _Ciphertext):
        return ENCRYPTED
    if isinstance(value, dict):
        return {k: _decrypted(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decrypted(v) for v in value]
    if isinstance(value, bool) or not isinstance(value, int | float):
        return value
    text = goyaml.go_json(value)
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
# Small helpers
# ---------------------------------------------------------------------------------------------


def _compose(text: str, path: Path) -> yaml.Node | None:
    """The first document's root node (yaml.v3 reads no further), refused before any expansion
    where yaml.v3 would refuse its aliasing."""
    loader = goyaml.V3Loader(text)
    try:
        loader.get_event()  # type: ignore[no-untyped-call]  # the stream start
        if loader.check_event(yaml.StreamEndEvent):
            return None
        version = getattr(loader.peek_event(), "version", None)  # type: ignore[no-untyped-call]
        if version is not None and tuple(version) != (1, 1):
            raise StackFileError(
                f"stack file {path} declares %YAML {'.'.join(map(str, version))}; yaml.v3, which the Pulumi "
                "CLI reads it with, accepts only %YAML 1.1 (or no %YAML line): remove it"
            )
        root: yaml.Node | None = loader.compose_document()
        if root is not None:
            yaml_limits.check_aliasing(root, getattr(loader, "anchor_names", {}), goyaml.key_identity)
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
    finally:
        loader.dispose()


def _clipped(text: str, limit: int = 60) -> str:
    """repr of a value quoted in a message, cut short: a 1 MB key must not make a 1 MB error."""
    return repr(text) if len(text) <= limit else f"{text[: limit - 3]!r}..."
