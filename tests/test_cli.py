"""The command line as a whole: one `kuscia-p2p` (= `python -m kuscia_components`), --help with an
example for every command, exit codes, and the layering rule that library modules never import it."""

from __future__ import annotations

import ast
import importlib
import importlib.util
import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import kuscia_components
from kuscia_components.cli.main import build_parser, main
from tests.helpers import parse_source

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = Path(kuscia_components.__file__).resolve().parent
COMMANDS = [
    ["render"],
    ["check"],
    ["preflight"],
    ["verify"],
    ["network"],
    ["network", "plan"],
    ["network", "up"],
    ["network", "status"],
    ["network", "destroy"],
]


# -- one command line ---------------------------------------------------------------------------------


def test_the_console_script_is_the_same_main_as_python_m() -> None:
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    module, _, attribute = scripts["kuscia-p2p"].partition(":")
    assert getattr(importlib.import_module(module), attribute) is main
    dunder_main = parse_source(PACKAGE / "__main__.py")
    imported = [
        (node.module, alias.name)
        for node in ast.walk(dunder_main)
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
    ]
    assert (module, attribute) in imported


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_every_command_has_help_with_an_example(
    command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*command, "--help"]) == 0
    out = capsys.readouterr().out
    assert f"usage: kuscia-p2p {' '.join(command)}" in out
    examples = out.split("examples:\n", 1)[1]
    assert f"  kuscia-p2p {' '.join(command)} " in examples
    assert "python -m kuscia_components" in out


def test_the_top_level_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for command in ("render", "check", "preflight", "verify", "network"):
        assert f"    {command}" in out and f"kuscia-p2p {command} " in out
    assert main([]) == 2  # no command: the help, and bad input
    assert "usage: kuscia-p2p" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv",
    [
        ["bogus"],
        ["render", "--stack", "alice"],  # no --out
        ["check"],
        ["verify", "--stack", "alice", "--timeout", "soon"],
        ["network"],
        ["network", "launch"],
        ["network", "up", "--parallel", "many"],
    ],
    ids=" ".join,
)
def test_bad_arguments_exit_2_without_traceback(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    assert "Traceback" not in capsys.readouterr().err


def test_bad_input_through_the_real_entry_point_is_a_problem_list_not_a_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "Pulumi.bad.yaml"
    bad.write_text("config:\n  kuscia:domainId: BAD\n  kuscia:runtime: runp\n")
    for argv in (["check", "--config", str(bad)], ["render", "--config", str(bad), "--out", str(tmp_path)]):
        done = subprocess.run(
            [sys.executable, "-m", "kuscia_components", *argv], capture_output=True, text=True, cwd=ROOT
        )
        assert done.returncode == 2 and "kuscia:domainId" in done.stderr
        assert "Traceback" not in done.stderr


def test_check_says_ok_for_the_repo_stacks(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "--stack", "alice", "--project-dir", str(ROOT)]) == 0
    assert "alice: config OK (domain alice" in capsys.readouterr().out


def test_network_plan_json_is_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["network", "plan", "--spec", str(ROOT / "network.yaml"), "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["name"] == "demo" and plan["topology"] == "mesh"
    assert [p["domainId"] for p in plan["parties"]] == ["alice", "bob", "carol"]
    assert len(plan["links"]) == 6 and {"source": "carol", "destination": "alice"} in plan["links"]
    assert next(p for p in plan["parties"] if p["domainId"] == "carol")["partners"] == ["alice", "bob"]


def test_constants_the_cli_repeats_to_stay_light_match_the_library() -> None:
    from kuscia_components.checks.preflight import PASSWORD_ENV
    from kuscia_components.cli import checks, network
    from kuscia_components.network.planner import DEFAULT_READY_TIMEOUT_SECONDS

    assert checks.PASSWORD_ENV == PASSWORD_ENV
    assert network.DEFAULT_READY_TIMEOUT == DEFAULT_READY_TIMEOUT_SECONDS
    assert build_parser().prog == "kuscia-p2p"


# -- layering -----------------------------------------------------------------------------------------


def _imports(path: Path) -> set[str]:
    """Every module `path` imports, at any depth (lazy imports in functions count)."""
    found: set[str] = set()
    for node in ast.walk(parse_source(path)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def test_no_library_module_imports_the_cli() -> None:
    library = [
        path
        for path in PACKAGE.rglob("*.py")
        if "cli" not in path.relative_to(PACKAGE).parts and path.name != "__main__.py"
    ]
    assert len(library) > 20
    offenders = {
        str(path.relative_to(PACKAGE)): sorted(
            m for m in _imports(path) if m.startswith("kuscia_components.cli")
        )
        for path in library
    }
    assert {k: v for k, v in offenders.items() if v} == {}


@pytest.mark.parametrize(
    "module",
    [
        "kuscia_components.config",
        "kuscia_components.network.planner",
        "kuscia_components.network.spec",
        "kuscia_components.peering.bundle",
        "kuscia_components.core.status",
        "kuscia_components.core.redact",
        "kuscia_components.cli.main",
    ],
)
def test_light_modules_import_without_pulumi(module: str) -> None:
    code = f"import sys, {module}; print(sorted(m for m in sys.modules if m.split('.')[0] == 'pulumi'))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


# -- the docs name the commands as they are -----------------------------------------------------------


def _documented_command_lines() -> list[tuple[str, str]]:
    found = []
    for doc in ("README.md", "docs/verify.md", "docs/automation.md"):
        for line in (ROOT / doc).read_text().splitlines():
            line = line.removeprefix("$ ").strip()
            if line.startswith(("kuscia-p2p ", "python -m kuscia_components ")):
                found.append((doc, line.split("  #", 1)[0].strip()))
    return found


def test_every_documented_command_line_parses() -> None:
    import shlex

    lines = _documented_command_lines()
    assert len(lines) >= 15
    parser = build_parser()
    for doc, line in lines:
        argv = shlex.split(line)[1 if line.startswith("kuscia-p2p") else 3 :]
        args = parser.parse_args(argv)  # argparse exits (fails the test) on an unknown command or option
        assert callable(args.run), (doc, line)


def test_the_readme_first_set_up_command_is_unchanged() -> None:
    first = (
        "python3 -m venv .venv && .venv/bin/pip install -q -r requirements.txt && "
        ".venv/bin/python -m kuscia_components render --stack alice --out rendered/alice"
    )
    assert first in (ROOT / "README.md").read_text().splitlines()
