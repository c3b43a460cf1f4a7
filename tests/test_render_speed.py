"""What keeps `render` fast without changing its output (timings themselves: bench/render.py).

- the domain key is generated in a background thread started before pulumi loads (OpenSSL's RSA
  generation runs without the GIL), and a prepared key is handed out exactly once;
- the render process skips the cyclic-GC passes of interpreter shutdown (gc.freeze at exit).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from kuscia_components.core import pki
from tests.helpers import ROOT


@pytest.fixture(autouse=True)
def _no_leftover_prepared_key() -> Any:
    yield
    pki._PREPARED.clear()


def _fail(*_args: Any, **_kwargs: Any) -> Any:
    raise AssertionError("a key was generated on the calling thread")


def test_a_prepared_key_is_handed_out_once(monkeypatch: pytest.MonkeyPatch) -> None:
    from cryptography.hazmat.primitives.asymmetric import rsa

    pki.prepare_domain_key()
    pki._PREPARED[pki.MIN_RSA_BITS].result(timeout=60)  # generated in the background
    monkeypatch.setattr(rsa, "generate_private_key", _fail)
    first = pki.generate_domain_key()  # the prepared one: nothing generated here
    assert pki.load_domain_key(first) == first
    with pytest.raises(AssertionError, match="calling thread"):
        pki.generate_domain_key()  # the next key is a fresh one, never the prepared key again


def test_preparing_twice_prepares_one_key(monkeypatch: pytest.MonkeyPatch) -> None:
    pki.prepare_domain_key()
    future = pki._PREPARED[pki.MIN_RSA_BITS]
    pki.prepare_domain_key()
    assert pki._PREPARED[pki.MIN_RSA_BITS] is future


def test_a_failed_preparation_is_raised_to_whoever_takes_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    from cryptography.hazmat.primitives.asymmetric import rsa

    def broken(**_kwargs: Any) -> Any:
        raise ValueError("no entropy today")

    monkeypatch.setattr(rsa, "generate_private_key", broken)
    pki.prepare_domain_key()
    with pytest.raises(ValueError, match="no entropy today"):
        pki.generate_domain_key()


PROBE = textwrap.dedent(
    """
    import atexit, gc, json, sys
    from kuscia_components.core import pki
    from kuscia_components.cli.main import main

    seen = []
    prepare = pki.prepare_domain_key
    def recording(*args, **kwargs):
        seen.append("pulumi" in sys.modules)
        prepare(*args, **kwargs)
    pki.prepare_domain_key = recording
    code = main(sys.argv[1:])
    atexit._run_exitfuncs()  # what interpreter shutdown runs first
    print(json.dumps({"code": code, "prepared_with_pulumi_loaded": seen, "frozen": gc.get_freeze_count()}))
    """
)


def _probe(tmp_path: Path, *args: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, "render", *args, "--out", str(tmp_path / "out")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0 and done.stdout, done.stderr
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_render_starts_the_key_before_pulumi_loads_and_skips_the_exit_gc(tmp_path: Path) -> None:
    result = _probe(tmp_path, "--stack", "alice")
    assert result["code"] == 0
    assert result["prepared_with_pulumi_loaded"] == [False]
    assert result["frozen"] > 10_000  # the heap was moved out of the final collections' reach


def test_render_of_an_encrypted_key_still_prepares_one(tmp_path: Path) -> None:
    """Offline the supplied key cannot be decrypted, so the program generates one: prepare it."""
    stack_file = tmp_path / "Pulumi.carol.yaml"
    config = {
        "kuscia:domainId": "carol",
        "kuscia:capacity": {"cpu": "4", "memory": "4Gi", "storage": "100Gi"},
        "kuscia:domainKeyData": {"secure": "v1:AAAA"},
    }
    stack_file.write_text(json.dumps({"config": config}), encoding="utf-8")
    result = _probe(tmp_path, "--config", str(stack_file))
    assert (result["code"], result["prepared_with_pulumi_loaded"]) == (0, [False])


def test_render_of_a_readable_supplied_key_prepares_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kuscia_components.cli import render as cli_render
    from kuscia_components.cli.main import main
    from kuscia_components.config import parse_party_config

    key = pki.domain_key_data(pki.generate_domain_key())
    values = {"domainId": "carol", "capacity": json.dumps({"cpu": "4", "memory": "4Gi", "storage": "1Gi"})}
    cfg = parse_party_config({**values, "domainKeyData": key}, frozenset({"domainKeyData"}))
    monkeypatch.setattr(cli_render, "load_party", lambda _args: ("carol", cfg, []))
    monkeypatch.setattr(pki, "prepare_domain_key", _fail)
    assert main(["render", "--stack", "carol", "--out", str(tmp_path / "out")]) == 0
    assert key not in (tmp_path / "out" / "all.yaml").read_text()  # still redacted, still rendered
