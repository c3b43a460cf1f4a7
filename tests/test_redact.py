"""The one redaction policy (core/redact.py), and every output path through it: render, preflight,
verify, network and logs, each with a PEM key printed line by line, a password and a token."""

from __future__ import annotations

import argparse
import base64
import io
import json
import logging
from pathlib import Path
from typing import Any

import pytest
import yaml

from kuscia_components.checks.report import Report, failed, passed
from kuscia_components.cli.checks import preflight_parser, run_command, verify_parser
from kuscia_components.cli.main import main
from kuscia_components.cli.network import network_main
from kuscia_components.config import PartyConfig
from kuscia_components.core.redact import MASK, Redactor, redact
from tests.inmemory_runner import InMemoryStackRunner

PASSWORD = "s3cret-Passw0rd-42"
TOKEN = "tok_0123456789abcdefABCDEF"


def pem_lines(pem: str) -> list[str]:
    return [line.strip() for line in pem.splitlines() if line.strip()]


def assert_no_fragment(text: str, pem: str, *others: str) -> None:
    """No line of the PEM, no base64 of it, and none of `others` is in `text`."""
    for line in pem_lines(pem):
        assert line not in text, line
    assert base64.b64encode(pem.encode()).decode() not in text
    for secret in others:
        assert secret not in text
        assert base64.b64encode(secret.encode()).decode() not in text


# -- the policy -----------------------------------------------------------------------------------------


def test_a_pem_printed_line_by_line_is_masked_on_every_line(rsa_key_pem: str) -> None:
    text = "key follows:\n" + "\n".join(f"  {line}" for line in rsa_key_pem.splitlines()) + "\nend"
    scrubbed = redact(text, [rsa_key_pem])
    assert_no_fragment(scrubbed, rsa_key_pem)
    assert scrubbed.startswith("key follows:\n") and scrubbed.endswith("\nend")


def test_a_short_last_line_of_a_multi_line_secret_is_masked_next_to_its_masked_neighbour() -> None:
    secret = "A" * 64 + "\n" + "B" * 64 + "\nQ9\n"
    scrubbed = redact("secret:\n" + "\n".join(f"  {line}" for line in secret.splitlines()), [secret])
    assert scrubbed == f"secret:\n  {MASK}\n  {MASK}\n  {MASK}"
    assert redact("the code Q9 alone", [secret]) == "the code Q9 alone"  # not next to a mask: a word


def test_the_pem_inside_a_base64_value_and_the_base64_of_a_value_are_masked(rsa_key_pem: str) -> None:
    key_data = base64.b64encode(rsa_key_pem.encode()).decode()  # Kuscia's domainKeyData
    redactor = Redactor([key_data, PASSWORD])
    assert_no_fragment(redactor.scrub(rsa_key_pem), rsa_key_pem)  # the decoded PEM
    assert_no_fragment(redactor.scrub(f"data: {key_data}"), rsa_key_pem)
    encoded = base64.b64encode(PASSWORD.encode()).decode()  # a Kubernetes Secret's data
    assert redactor.scrub(f"adminPassword: {encoded}") == f"adminPassword: {MASK}"


def test_a_pem_in_json_is_masked(rsa_key_pem: str) -> None:
    scrubbed = Redactor([rsa_key_pem]).scrub(json.dumps({"detail": rsa_key_pem}))
    assert_no_fragment(scrubbed, rsa_key_pem)
    assert json.loads(scrubbed)["detail"].count(MASK) >= 1


def test_overlapping_secrets_leave_no_fragment_between_masks() -> None:
    assert redact("xx abcdefgh yy", ["abcdef", "defgh"]) == f"xx {MASK} yy"
    assert redact("abcdTOKENxyz", ["abcd", "TOKENxyz"]) == MASK


def test_a_value_holding_another_secret_keeps_its_readable_parts() -> None:
    dsn = f"mysql://kuscia_alice:{PASSWORD}@tcp(db:3306)/kuscia_alice"
    scrubbed = redact(f"DSN {dsn}", [dsn, PASSWORD])
    assert scrubbed == f"DSN mysql://kuscia_alice:{MASK}@tcp(db:3306)/kuscia_alice"
    assert redact(dsn, [dsn]) == MASK  # alone, it is masked whole


def test_short_values_do_not_shred_text_and_the_redactor_never_shows_values() -> None:
    redactor = Redactor(["abc", "", None, PASSWORD])
    assert redactor.scrub("abc abc") == "abc abc"
    assert PASSWORD not in repr(redactor) and repr(redactor) == "Redactor(1 secrets)"
    assert redactor.scrub_tree({"a": [PASSWORD, 3], "b": (f"x{PASSWORD}",)}) == {
        "a": [MASK, 3],
        "b": ["x****"],
    }
    assert Redactor([PASSWORD], mask="<hidden>").scrub(PASSWORD) == "<hidden>"


# -- every output path ---------------------------------------------------------------------------------


def test_render_files_stdout_and_logs_show_no_secret(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    from kuscia_components.offline import render as render_module

    captured: dict[str, Any] = {}
    original = render_module.plan

    def spying_plan(*args: Any, **kwargs: Any) -> Any:
        captured["mocks"] = original(*args, **kwargs)
        return captured["mocks"]

    monkeypatch.setattr(render_module, "plan", spying_plan)
    stack = tmp_path / "Pulumi.alice.yaml"
    stack.write_text(yaml.safe_dump({"config": {"kuscia:domainId": "alice", "kuscia:runtime": "runp"}}))
    caplog.set_level(logging.DEBUG)
    assert main(["render", "--config", str(stack), "--out", str(tmp_path / "out")]) == 0
    out, err = capsys.readouterr()
    haystack = out + err + caplog.text + "".join(p.read_text() for p in (tmp_path / "out").iterdir())
    secrets = [s for s in captured["mocks"].secret_values() if len(s) >= 8]
    pem = next(s for s in secrets if s.startswith("-----BEGIN"))
    assert_no_fragment(haystack, pem, *secrets)


class _Secrets:
    def __init__(self, pem: str) -> None:
        self.pem = pem

    def runner(self, cfg: PartyConfig, args: argparse.Namespace, redactor: Redactor) -> Report:
        """A run that meets the secrets (as run_verify meets the node's key and token) and whose
        check details repeat them, the PEM line by line."""
        redactor.add(self.pem, PASSWORD, TOKEN)
        report = Report("verify", cfg.domain_id, cfg.domain_id)
        report.checks = [
            passed("node config", "key:\n" + "\n".join(self.pem.splitlines()), key=self.pem),
            failed("database", f"login with {PASSWORD} refused", f"try {PASSWORD}", dsn=f"u:{PASSWORD}@h"),
            failed("KusciaAPI", f"token {TOKEN} refused", "roll the pod", token=TOKEN),
        ]
        return report


@pytest.mark.parametrize("parser", [preflight_parser, verify_parser])
@pytest.mark.parametrize("as_json", [False, True])
def test_preflight_and_verify_output_shows_no_secret(
    tmp_path: Path, rsa_key_pem: str, parser: Any, as_json: bool
) -> None:
    stack = tmp_path / "Pulumi.alice.yaml"
    stack.write_text(yaml.safe_dump({"config": {"kuscia:domainId": "alice", "kuscia:runtime": "runp"}}))
    out, err = io.StringIO(), io.StringIO()
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    argv = ["--config", str(stack), "--watch", "--timeout", "2", "--interval", "1"]
    code = run_command(
        [*argv, *(["--json"] if as_json else [])],
        parser=parser(),
        runner=_Secrets(rsa_key_pem).runner,
        out=out,
        err=err,
        clock=lambda: now[0],
        sleep=sleep,
    )
    assert code == 1 and "database" in out.getvalue()
    assert_no_fragment(out.getvalue() + err.getvalue(), rsa_key_pem, PASSWORD, TOKEN)


def test_network_reports_progress_errors_and_logs_show_no_secret(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    rsa_key_pem: str,
) -> None:
    monkeypatch.setenv("ALICE_KEY", rsa_key_pem)
    monkeypatch.setenv("ALICE_DB_PASSWORD", PASSWORD)
    spec = tmp_path / "network.yaml"
    spec.write_text(
        "name: leak-test\n"
        "defaults:\n  capacity: {cpu: '1', memory: 1Gi, storage: 1Gi}\n"
        "parties:\n"
        "  - domainId: alice\n"
        "    domainKeyData: {fromEnv: ALICE_KEY}\n"
        "    database: {mode: external, endpoint: 'db.example:3306', adminUser: root}\n"
        "    databaseAdminPassword: {fromEnv: ALICE_DB_PASSWORD}\n"
        "  - domainId: bob\n"
    )

    class Leaky(InMemoryStackRunner):
        """A Pulumi whose errors and output repeat the secrets it was given."""

        def up(self, stack: str, **kwargs: Any) -> dict[str, Any]:
            on_output = kwargs.get("on_output")
            if on_output is not None:
                for line in rsa_key_pem.splitlines():
                    on_output(f"  + domainKeyData: {line}\n")
            if stack == "alice":
                raise RuntimeError(f"error: login root:{PASSWORD} failed; key\n{rsa_key_pem}")
            return super().up(stack, **kwargs)

    caplog.set_level(logging.DEBUG)
    runner = Leaky()
    for args in (["up", "--pulumi-output"], ["up", "--json"], ["status"], ["status", "--json"]):
        network_main([*args, "--spec", str(spec)], runner_factory=lambda s: runner)
        out, err = capsys.readouterr()
        assert_no_fragment(out + err, rsa_key_pem, PASSWORD)
        assert "token-of-" not in out + err
    assert_no_fragment(caplog.text, rsa_key_pem, PASSWORD)
