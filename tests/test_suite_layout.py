"""The suite's own shape: test modules share code through tests/helpers.py and tests/conftest.py,
never by importing each other (that re-runs a module's setup and couples unrelated tests)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests import helpers
from tests.helpers import parse_source

TESTS = Path(__file__).resolve().parent


def _is_test_module(dotted: str) -> bool:
    parts = dotted.split(".")
    if parts[0] == "tests":
        parts = parts[1:]
    return bool(parts) and parts[0].startswith("test_")


def imported_test_modules(source: str) -> list[str]:
    """Every test module that `source` imports: `tests.test_x`, `test_x`, `.test_x`, `from tests import test_x`."""
    found: list[str] = []
    for node in ast.walk(parse_source(source)):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names if _is_test_module(alias.name)]
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if _is_test_module(module):
                found.append(("." * node.level) + module)
            elif module in ("", "tests"):
                found += [alias.name for alias in node.names if alias.name.startswith("test_")]
    return found


def test_no_test_module_imports_another_test_module() -> None:
    offenders = {
        str(path.relative_to(TESTS)): imported
        for path in sorted(TESTS.rglob("*.py"))
        if (imported := imported_test_modules(path.read_text(encoding="utf-8")))
    }
    assert offenders == {}, f"move the shared helpers into tests/helpers.py: {offenders}"


def test_the_import_check_sees_every_spelling() -> None:
    source = "\n".join(
        [
            "import tests.test_a",
            "from tests.test_b import x",
            "from tests import test_c",
            "from .test_d import y",
            "from . import test_e",
            "import test_f",
            "from tests.helpers import check",
            "from tests.emulator import KusciaEmulator",
            "def f():\n    from tests.test_g import z",
        ]
    )
    assert imported_test_modules(source) == [
        "tests.test_a",
        "tests.test_b",
        "test_c",
        ".test_d",
        "test_e",
        "test_f",
        "tests.test_g",
    ]


def test_parse_source_survives_the_ast_state_bug(monkeypatch: pytest.MonkeyPatch) -> None:
    """CPython 3.11.7 raises SystemError from every ast.parse once its AST recursion counter is off;
    the helper then parses in a fresh interpreter (seen in this suite: a test_cli AST walk failed
    after tests/test_program.py had run)."""

    def broken(*_args: object, **_kwargs: object) -> None:
        raise SystemError("AST constructor recursion depth mismatch (before=1, after=0)")

    monkeypatch.setattr(helpers.ast, "parse", broken)
    tree = parse_source("import tests.test_x\n")
    assert [a.name for a in tree.body[0].names] == ["tests.test_x"]  # type: ignore[attr-defined]
