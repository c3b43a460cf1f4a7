"""Generates the settings tables of docs/configuration.md (and shapes.py) from `model.py`.

    python -m kuscia_components.config.docs           # rewrite both
    python -m kuscia_components.config.docs --check   # exit 1 if either is stale

Each table sits between `<!-- BEGIN generated settings: <group> -->` and
`<!-- END generated settings -->`; the prose around the tables is kept as written.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from kuscia_components.config.model import PartyConfig
from kuscia_components.config.schema import Setting, settings_of, walk
from kuscia_components.config.specgen import SHAPES_PATH, render_shapes

DOC_PATH = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"
_BLOCK = re.compile(
    r"(<!-- BEGIN generated settings: (?P<group>[^>]+?) -->\n)(?P<body>.*?)(<!-- END generated settings -->)",
    re.DOTALL,
)


def groups() -> list[str]:
    """The docs sections, in the order of their first setting."""
    return list(dict.fromkeys(s.group for s in settings_of(PartyConfig)))


def settings_table(group: str) -> str:
    """The markdown table of one group: a row per documented setting, nested ones by path."""
    tops = {s.key for s in settings_of(PartyConfig) if s.group == group}
    rows = ["| setting | type | default | rule | example |", "|---|---|---|---|---|"]
    for path, s in walk(PartyConfig):
        if s.rule and re.split(r"[.\[]", path, maxsplit=1)[0] in tops:
            rows.append(f"| `{path}` | {_type(s)} | {s.default_doc} | {s.rule} | {_example(s)} |")
    return "\n".join(rows) + "\n"


def render_doc(text: str) -> str:
    """`text` (the doc) with every generated table brought up to date."""
    return _BLOCK.sub(lambda m: m[1] + settings_table(m["group"]) + m[4], text)


def _type(s: Setting) -> str:
    return f"**secret** {s.type_text}" if s.secret else s.type_text


def _example(s: Setting) -> str:
    shown = s.doc_example or s.example
    return shown if shown.startswith("see ") or shown == "—" else f"`{shown}`"


def main(argv: list[str]) -> int:
    doc = DOC_PATH.read_text(encoding="utf-8")
    wanted = {DOC_PATH: render_doc(doc), SHAPES_PATH: render_shapes()}
    stale = [p for p, text in wanted.items() if p.read_text(encoding="utf-8") != text]
    if "--check" in argv:
        for path in stale:
            print(f"{path} is stale: run python -m kuscia_components.config.docs", file=sys.stderr)
        return 1 if stale else 0
    for path in stale:
        path.write_text(wanted[path], encoding="utf-8")
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
