"""`preflight/verify --watch --timeout T` ends by T in all: a round against an API server that
does not answer lasts its request timeout, so a round started near the deadline must have its
requests cut at what is left, and no round may start at or past it. A fake clock plays time: each
round advances it by the request timeout it was given (what an unanswering server costs)."""

from __future__ import annotations

import argparse
import io
from pathlib import Path
from typing import Any

import pytest
import yaml

from kuscia_components.checks.report import Report, failed
from kuscia_components.cli.checks import preflight_parser, run_command, verify_parser


class _Unanswered:
    """A runner whose every round times out: it costs the round's request timeout."""

    def __init__(self) -> None:
        self.now = 0.0
        self.rounds: list[tuple[float, float]] = []  # (start, request timeout)

    def runner(self, cfg: Any, args: argparse.Namespace, redactor: Any) -> Report:
        self.rounds.append((self.now, args.request_timeout))
        self.now += args.request_timeout
        return Report("preflight", "", cfg.domain_id, [failed("API server", "timed out", "check it")])

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def watch(tmp_path: Path, parser: Any, *options: str) -> tuple[int, _Unanswered, str]:
    stack = tmp_path / "Pulumi.alice.yaml"
    stack.write_text(yaml.safe_dump({"config": {"kuscia:domainId": "alice", "kuscia:runtime": "runp"}}))
    fake = _Unanswered()
    err = io.StringIO()
    code = run_command(
        ["--config", str(stack), "--watch", *options],
        parser=parser(),
        runner=fake.runner,
        out=io.StringIO(),
        err=err,
        clock=lambda: fake.now,
        sleep=fake.sleep,
    )
    return code, fake, err.getvalue()


@pytest.mark.parametrize("parser", [preflight_parser, verify_parser])
@pytest.mark.parametrize(
    ("options", "rounds"),
    [
        # The reported case: one 5 s round, then the pause reaches the deadline: no second round.
        (["--timeout", "10"], [(0.0, 5.0)]),
        # A second round fits after the pause, with its requests cut at the 2 s left.
        (["--timeout", "12"], [(0.0, 5.0), (10.0, 2.0)]),
        # A timeout shorter than one request: the first round's requests are cut at it.
        (["--timeout", "3"], [(0.0, 3.0)]),
        (
            ["--timeout", "20", "--interval", "1", "--request-timeout", "4"],
            [(0, 4), (5, 4), (10, 4), (15, 4)],
        ),
    ],
)
def test_the_watch_ends_by_its_timeout(
    tmp_path: Path, parser: Any, options: list[str], rounds: list[tuple[float, float]]
) -> None:
    code, fake, err = watch(tmp_path, parser, *options)
    timeout = float(options[1])
    assert code == 1 and fake.rounds == rounds
    assert fake.now <= timeout  # the whole watch, the last round's requests included
    assert err.count("checking again") == len(rounds) - 1  # said only when a round follows


def test_without_watch_the_timeout_does_not_cut_requests(tmp_path: Path) -> None:
    stack = tmp_path / "Pulumi.alice.yaml"
    stack.write_text(yaml.safe_dump({"config": {"kuscia:domainId": "alice", "kuscia:runtime": "runp"}}))
    fake = _Unanswered()
    argv = ["--config", str(stack), "--timeout", "1", "--request-timeout", "5"]
    code = run_command(
        argv, parser=preflight_parser(), runner=fake.runner, out=io.StringIO(), err=io.StringIO()
    )
    assert code == 1 and fake.rounds == [(0.0, 5.0)]
