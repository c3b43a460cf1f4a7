"""Writes `shapes.py`: the Automation API's typed shape of the settings, from `model.py`.

mypy needs the shape as code (TypedDicts and dataclass fields it can check), so it is generated
rather than built at import time; `tests/test_config_schema.py` fails when it is stale.
"""

from __future__ import annotations

from pathlib import Path

from kuscia_components.config.model import PartyConfig
from kuscia_components.config.schema import Kind, settings_of, snake

SHAPES_PATH = Path(__file__).with_name("shapes.py")

_HEADER = '''"""The Automation API's shape of the `kuscia:` settings (camelCase keys, as in a stack file).

GENERATED from kuscia_components/config/model.py by `python -m kuscia_components.config.docs`:
do not edit. `network.spec.PartySpec` extends `PartySettings`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, TypedDict

from kuscia_components.config.schema import spec_field
'''


def render_shapes() -> str:
    """The text of shapes.py."""
    blocks: list[str] = []
    seen: set[str] = set()
    _typed_dicts(PartyConfig, blocks, seen)
    lines = [
        "@dataclass(frozen=True)",
        "class PartySettings:",
        '    """Every `kuscia:` setting by its Python name; None means not set (the default applies)."""',
        "",
    ]
    for s in settings_of(PartyConfig):
        if not s.spec:
            continue
        py = _py(s.kind, top=True)
        if s.required:
            lines.append(f'    {snake(s.key)}: {py} = field(metadata={{"key": "{s.key}"}})')
        else:
            secret = ", secret=True" if s.secret else ""
            lines.append(f'    {snake(s.key)}: {py} | None = spec_field("{s.key}"{secret})')
    blocks.append("\n".join(lines) + "\n")
    return _HEADER + "".join(f"\n\n{block}" for block in blocks)


def _typed_dicts(cls: type, blocks: list[str], seen: set[str]) -> None:
    for s in settings_of(cls):
        section = (s.kind.item or s.kind).section
        if section is None or not s.spec:
            continue
        _typed_dicts(section, blocks, seen)
        name = (s.kind.item or s.kind).py
        if name in seen:
            continue
        seen.add(name)
        lines = [f"class {name}(TypedDict, total=False):"]
        doc = section.__doc__ or ""
        if doc and not doc.startswith(f"{section.__name__}("):  # not the dataclass signature
            lines += [f'    """{doc.strip()}"""', ""]
        lines += [f"    {k.key}: {_py(k.kind)}" for k in settings_of(section) if k.spec]
        blocks.append("\n".join(lines) + "\n")


def _py(kind: Kind, *, top: bool = False) -> str:
    if kind.item is not None and top:  # top-level lists are tuples: PartySpec is frozen
        return f"tuple[{kind.item.py}, ...]"
    return kind.py
