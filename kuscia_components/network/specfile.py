"""`network.yaml`: reading a network spec file into a `NetworkSpec`, with every problem at once
(secrets from the environment or files, defaults merged into each party, paths resolved)."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kuscia_components.config import (
    SECRET_SETTINGS,
    Problem,
    limits,
    yaml_limits,
)

__all__ = ["SpecFile", "load_network_spec"]

from kuscia_components.network.spec import (
    DEFAULT_NETWORK_NAME,
    NetworkSpec,
    NetworkSpecError,
    PartySpec,
    Topology,
    _shown,
    size_problems,
)

_SPEC_KEYS = ("name", "backend", "secretsProvider", "workDir", "topology", "defaults", "parties")
_SECRET_SOURCES = ("fromEnv", "fromFile")


# -- network.yaml ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class SpecFile:
    """A loaded `network.yaml`: the network and where its Pulumi state lives."""

    network: NetworkSpec
    path: Path
    backend: str | None = None
    secrets_provider: str | None = None
    work_dir: Path | None = None


def load_network_spec(path: Path) -> SpecFile:
    """Read and validate `network.yaml` (see the sample in the repo root); raises NetworkSpecError
    listing every problem. Secrets are referenced (`{fromEnv: VAR}`, `{fromFile: path}`), never
    written in the file."""
    import yaml

    path = Path(path)
    source = str(path)
    try:
        document = yaml_limits.safe_load_plain(limits.read_text(path, limits.NETWORK_SPEC))
    except FileNotFoundError:
        raise NetworkSpecError(
            [Problem("--spec", "must name an existing file", "network.yaml", source)], source
        ) from None
    except limits.InputLimitError as err:
        raise NetworkSpecError(
            [Problem("--spec", f"must be a network spec: it {err.reason}", "network.yaml")], source
        ) from None
    except yaml_limits.YamlLimitError as err:
        raise NetworkSpecError(
            [Problem("(file)", str(err), "parties: [{domainId: alice}, {domainId: bob}]")], source
        ) from None
    except RecursionError:
        raise NetworkSpecError(
            [Problem("(file)", "is nested too deeply to read", "parties: [{domainId: alice}]")], source
        ) from None
    except OSError as err:
        raise NetworkSpecError(
            [
                Problem(
                    "--spec",
                    f"must be a readable file ({err.strerror or type(err).__name__})",
                    "network.yaml",
                )
            ],
            source,
        ) from None
    except yaml.YAMLError as err:
        where = getattr(err, "problem_mark", None)
        line = f" at line {where.line + 1}" if where is not None else ""
        raise NetworkSpecError(
            [
                Problem(
                    "(file)",
                    f"is not valid YAML{line}: {getattr(err, 'problem', err)}",
                    "parties: [{domainId: alice}, {domainId: bob}]",
                )
            ],
            source,
        ) from None
    if not isinstance(document, Mapping):
        raise NetworkSpecError(
            [
                Problem(
                    "(file)",
                    "must be a mapping with a parties: list",
                    "parties: [{domainId: alice}, {domainId: bob}]",
                    _shown(document),
                )
            ],
            source,
        )
    problems: list[Problem] = []
    for key in document:
        if key not in _SPEC_KEYS:
            problems.append(
                Problem(
                    str(key),
                    f"is not a network.yaml key{_did_you_mean(str(key), _SPEC_KEYS)}",
                    "topology: mesh",
                )
            )
    base = path.parent
    defaults = document.get("defaults") or {}
    if not isinstance(defaults, Mapping):
        problems.append(
            Problem(
                "defaults",
                "must be a mapping of settings for every party",
                "defaults: {protocol: TLS}",
                _shown(defaults),
            )
        )
        defaults = {}
    raw_parties, raw_topology = document.get("parties"), document.get("topology", "mesh")
    size = size_problems(
        len(raw_parties) if isinstance(raw_parties, list) else 0,
        len(raw_topology) if isinstance(raw_topology, list) else 0,
    )
    if size:  # before any party is read: thousands of them cost seconds and gigabytes for nothing
        raise NetworkSpecError(problems + size, source)
    parties = _parties(raw_parties, defaults, base, problems)
    topology = _topology(raw_topology, problems)
    name = document.get("name", DEFAULT_NETWORK_NAME)
    texts = {k: document.get(k) for k in ("backend", "secretsProvider", "workDir")}
    for key, value in texts.items():
        if value is not None and not isinstance(value, str):
            problems.append(Problem(key, "must be a string", _SETTING_EXAMPLES[key], _shown(value)))
    network = NetworkSpec(tuple(parties), topology, name if isinstance(name, str) else str(name))
    said = {p.setting.split(".")[0].split("[")[0] for p in problems}  # "parties" already explained
    problems += [p for p in network.problems() if not (p.setting == "parties" and "parties" in said)]
    if problems:
        raise NetworkSpecError(problems, source)
    work_dir = texts["workDir"]
    return SpecFile(
        network,
        path,
        backend=_backend_relative_to(texts["backend"], base),
        secrets_provider=texts["secretsProvider"],
        work_dir=(base / work_dir) if isinstance(work_dir, str) else None,
    )


_SETTING_EXAMPLES = {
    "backend": "file://./.kuscia-network/state",
    "secretsProvider": "passphrase",
    "workDir": ".kuscia-network",
}


def _parties(
    raw: object, defaults: Mapping[str, object], base: Path, problems: list[Problem]
) -> list[PartySpec]:
    example = "parties: [{domainId: alice}, {domainId: bob}]"
    if raw is None or raw == []:
        return []  # NetworkSpec.problems() says a party is needed
    if not isinstance(raw, list):
        problems.append(Problem("parties", "must be a list of parties", example, _shown(raw)))
        return []
    parties = []
    for index, item in enumerate(raw):
        where = f"parties[{index}]"
        if not isinstance(item, Mapping) or not isinstance(item.get("domainId"), str):
            problems.append(
                Problem(
                    f"{where}.domainId",
                    "is required: each party is a mapping with its domain ID and its settings",
                    "- domainId: alice",
                    _shown(item),
                )
            )
            continue
        merged = _deep_merge(defaults, item)
        stack = merged.pop("stack", None)
        if stack is not None and not isinstance(stack, str):
            problems.append(Problem(f"{where}.stack", "must be a string", "alice", _shown(stack)))
            stack = None
        settings = {}
        for key, value in merged.items():
            env = f"{item['domainId']}_{_env_word(str(key))}".upper().replace("-", "_")
            settings[str(key)] = _secret_value(f"{where}.{key}", str(key), value, base, env, problems)
        parties.append(PartySpec.from_settings(settings, stack=stack))
    return parties


def _secret_value(
    where: str, key: str, value: object, base: Path, env: str, problems: list[Problem]
) -> object:
    """Secret settings come from the environment or a file, never from the spec's text."""
    if key not in SECRET_SETTINGS:
        return value
    example = f"{key}: {{fromEnv: {env}}}"
    if not isinstance(value, Mapping) or len(value) != 1 or next(iter(value)) not in _SECRET_SOURCES:
        problems.append(
            Problem(
                where,
                "is a secret: reference it as {fromEnv: VAR} or {fromFile: path} "
                "instead of writing it in the spec",
                example,
            )
        )
        return None
    kind, ref = next(iter(value.items()))
    if not isinstance(ref, str) or not ref:
        problems.append(Problem(f"{where}.{kind}", "must name an environment variable or a file", example))
        return None
    if kind == "fromEnv":
        if ref not in os.environ:
            problems.append(
                Problem(
                    f"{where}.fromEnv",
                    f"names ${ref}, which is not set in the environment",
                    f"export {ref}=...",
                )
            )
            return None
        return os.environ[ref]
    try:
        return limits.read_text(base / ref, limits.SECRET_FILE)
    except limits.InputLimitError as err:
        problems.append(
            Problem(
                f"{where}.fromFile",
                f"must name a small text file: it {err.reason}",
                "keys/alice.pem",
                ref[:200],
            )
        )
    except OSError as err:
        reason = err.strerror or type(err).__name__
        problems.append(
            Problem(f"{where}.fromFile", f"must name a readable file ({reason})", "keys/alice.pem", ref[:200])
        )
    return None


def _env_word(key: str) -> str:
    """domainKeyData -> DOMAIN_KEY_DATA (for example variable names in messages)."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", key.split(".")[-1]).upper()


def _topology(raw: object, problems: list[Problem]) -> Topology:
    if raw == "mesh":
        return "mesh"
    if isinstance(raw, list) and raw:
        return tuple(tuple(pair) if isinstance(pair, list) else pair for pair in raw)
    problems.append(
        Problem(
            "topology", "must be mesh or a list of [a, b] pairs", "[[alice, bob], [bob, carol]]", _shown(raw)
        )
    )
    return "mesh"


def _deep_merge(base: Mapping[str, object], override: Mapping[str, object]) -> dict[str, object]:
    """Party settings over the defaults; mappings merge key by key, anything else replaces."""
    merged = dict(base)
    for key, value in override.items():
        old = merged.get(key)
        if isinstance(old, Mapping) and isinstance(value, Mapping) and not _is_secret_ref(value):
            merged[key] = _deep_merge(old, value)
        else:
            merged[key] = value
    return merged


def _is_secret_ref(value: Mapping[Any, object]) -> bool:
    return len(value) == 1 and next(iter(value)) in _SECRET_SOURCES


def _backend_relative_to(url: str | None, base: Path) -> str | None:
    """`file://./state` in a spec means next to the spec file, wherever the command runs."""
    if url is None or not url.startswith("file://"):
        return url
    local = url[len("file://") :]
    if local.startswith("~"):
        return url
    return "file://" + str((base / local).resolve()) if local else url


def _did_you_mean(key: str, known: Sequence[str]) -> str:
    import difflib

    match = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    return f" (did you mean {match[0]!r}?)" if match else f"; known keys: {', '.join(known)}"
