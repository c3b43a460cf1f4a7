"""The layers of the package point one way (docs/architecture.md draws them).

Each top-level subpackage may import only the layers below it; a test-time check, so a new import
that would make a cycle or reach upward fails here with the offending module named.
"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.helpers import parse_source

PACKAGE = Path(__file__).resolve().parent.parent / "kuscia_components"
# Lowest first. `program` is the Pulumi program (the composition root of one party); `offline`
# runs it under mocks, `checks` and `network` use everything below, `cli` is the top.
LAYERS = ("core", "config", "kube", "node", "peering", "program", "offline", "checks", "network", "cli")


def _layer(path: Path) -> str:
    parts = path.relative_to(PACKAGE).parts
    return parts[0] if len(parts) > 1 else parts[0].removesuffix(".py")


def _imported_layers(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(parse_source(path)):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] == "kuscia_components" and len(parts) > 1:
                found.add(parts[1])
    return found


def test_every_module_belongs_to_a_layer() -> None:
    layers = {_layer(p) for p in PACKAGE.rglob("*.py")} - {"__init__", "__main__"}
    assert layers == set(LAYERS)


def test_imports_point_only_downwards() -> None:
    upward = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        own = _layer(path)
        if own in ("__init__", "__main__"):
            continue
        rank = LAYERS.index(own)
        bad = sorted(d for d in _imported_layers(path) if d in LAYERS and LAYERS.index(d) > rank)
        if bad:
            upward[str(path.relative_to(PACKAGE))] = bad
    assert upward == {}


def test_the_check_sees_an_upward_import(tmp_path: Path) -> None:
    """Guard for the walker itself: a core module importing the CLI is caught."""
    probe = tmp_path / "probe.py"
    probe.write_text("def f():\n    from kuscia_components.cli.main import main\n")
    assert _imported_layers(probe) == {"cli"}
