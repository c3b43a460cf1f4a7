"""The size bounds of a network (review #10 finding 2: a 59 KB `topology: mesh` spec of 3000
parties made `network plan --json` take 50 s and 8.2 GB): refused before any party is read,
naming the setting, the rule and an example; and the largest allowed mesh is planned and
reported without copying per link."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from kuscia_components.cli.network import network_main
from kuscia_components.config.shapes import CapacitySpec
from kuscia_components.network import report
from kuscia_components.network.planner import StackState
from kuscia_components.network.spec import MAX_PAIRS, MAX_PARTIES, NetworkSpec, PartySpec

CAPACITY: CapacitySpec = {"cpu": "1", "memory": "1Gi", "storage": "1Gi"}


def spec_file(tmp_path: Path, parties: int, defaults: str = "{runtime: runp}") -> Path:
    lines = ["name: big", "topology: mesh", f"defaults: {defaults}", "parties:"]
    lines += [f"- domainId: p{i}" for i in range(parties)]
    path = tmp_path / "network.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("parties", [MAX_PARTIES + 1, 3000])
def test_a_network_over_the_party_bound_is_refused_before_any_party_is_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], parties: int
) -> None:
    # Every party's key file is missing: reading any party would report that too.
    path = spec_file(tmp_path, parties, "{runtime: runp, domainKeyData: {fromFile: missing.pem}}")
    assert network_main(["plan", "--spec", str(path), "--json"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert "1 problem(s)" in err and "missing.pem" not in err and "Traceback" not in err
    assert f"parties: has {parties} parties, more than {MAX_PARTIES}" in err
    assert "N(N-1) links" in err and "Example: parties: [{domainId: alice}" in err


def test_the_api_checks_the_bounds_first_too() -> None:
    many = NetworkSpec(tuple(PartySpec(f"p{i}", capacity=CAPACITY) for i in range(MAX_PARTIES + 1)))
    assert [p.setting for p in many.problems()] == ["parties"]
    pairs = tuple(("a", "b") for _ in range(MAX_PAIRS + 1))
    listed = NetworkSpec((PartySpec("a", capacity=CAPACITY), PartySpec("b", capacity=CAPACITY)), pairs)
    (problem,) = listed.problems()
    assert problem.setting == "topology" and f"more than {MAX_PAIRS}" in problem.rule and problem.example


def test_the_largest_mesh_is_planned_in_full(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = spec_file(tmp_path, MAX_PARTIES)
    assert network_main(["plan", "--spec", str(path), "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert len(plan["parties"]) == MAX_PARTIES
    assert len(plan["links"]) == MAX_PARTIES * (MAX_PARTIES - 1)
    assert all(len(p["partners"]) == MAX_PARTIES - 1 for p in plan["parties"])
    assert network_main(["plan", "--spec", str(path)]) == 0
    assert f"{MAX_PARTIES} parties, {MAX_PARTIES * (MAX_PARTIES - 1)} links" in capsys.readouterr().out


def test_a_bad_pair_lists_a_few_parties_not_all(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = spec_file(tmp_path, 100)
    path.write_text(path.read_text().replace("topology: mesh", "topology: [[p0, nobody]]"), encoding="utf-8")
    assert network_main(["plan", "--spec", str(path)]) == 2
    err = capsys.readouterr().err
    assert "names 'nobody', which is not a party (parties: p0, p1," in err and "(100 in all)" in err
    assert "p99" not in err


def test_link_reports_read_each_partys_links_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Per link it copied the source's whole `links` output: N^3 for a mesh of N."""
    names = [f"p{i}" for i in range(20)]
    spec = NetworkSpec(tuple(PartySpec(n, capacity=CAPACITY) for n in names))
    states = {
        n: StackState(outputs={"links": {m: {"status": "Ready"} for m in names if m != n}}) for n in names
    }
    calls: list[Any] = []
    real = report.links_output

    def counted(state: StackState | None) -> Any:
        calls.append(state)
        return real(state)

    monkeypatch.setattr(report, "links_output", counted)
    links = report.link_reports(spec, states, {})
    assert len(links) == 20 * 19 and {link.status for link in links} == {"Ready"}
    assert len(calls) == 20
