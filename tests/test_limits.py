"""Bounded input: the file reader's refusals and the alias rule compared with yaml.v3 itself.

yaml.v3's rule is in decode.go (gopkg.in/yaml.v3, Debian's golang-gopkg-yaml.v3-dev):
`allowedAliasRatio` and the check at the top of `decoder.unmarshal`, counted while the Pulumi
CLI decodes the whole stack file into `any` (workspace.LoadProjectStackBytes; merge keys decode
the mapping's own keys again, decoder.merge). tests/go_pulumi_config decodes a stack file with
yaml.v3 the way the CLI does; every document below gets the same verdict from
kuscia_components.config.yaml_limits as from it.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import subprocess
from pathlib import Path

import pytest

from kuscia_components.config import limits, yaml_limits
from kuscia_components.core import pki
from kuscia_components.offline import goyaml
from tests.gobuild import build_go_program
from tests.hostile.generate import fake_rsa_pem

GO_SOURCE = Path(__file__).parent / "go_pulumi_config" / "main.go"


@pytest.fixture(scope="module")
def go_yaml_v3(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_go_program(
        GO_SOURCE,
        tmp_path_factory.mktemp("go"),
        library="gopkg.in/yaml.v3",
        debian_package="golang-gopkg-yaml.v3-dev",
    )


def _ours(text: str) -> str:
    try:
        node, loader = yaml_limits.compose(text, goyaml.V3Loader)
        assert node is not None
        yaml_limits.check_aliasing(node, getattr(loader, "anchor_names", {}), goyaml.key_identity)
    except yaml_limits.YamlLimitError as err:
        return "alias" if "excessive aliasing" in str(err) else "other"
    return "ok"


def _go(binary: Path, text: str) -> str:
    out = json.loads(
        subprocess.run([str(binary), "X", "p"], input=text.encode(), capture_output=True, check=True).stdout
    )
    error = out.get("error", "")
    return "alias" if "excessive aliasing" in error else ("ok" if not error else "other")


def _random_stack(rng: random.Random) -> str:
    """Nested lists and mappings with anchors, aliases and merge keys of earlier anchors."""
    anchors: list[str] = []
    maps: list[str] = []
    numbers = itertools.count(1)

    def value(depth: int) -> str:
        roll = rng.random()
        if anchors and roll < 0.35:
            return "*" + rng.choice(anchors)
        if depth > 3 or roll < 0.5:
            return rng.choice(["v", "1", "~", "yes", '"s"'])
        name = f"a{next(numbers)}"
        if rng.random() < 0.5:
            body = "[" + ", ".join(value(depth + 1) for _ in range(rng.randint(1, 12))) + "]"
        else:
            items = [f"k{j}: {value(depth + 1)}" for j in range(rng.randint(1, 8))]
            if maps and rng.random() < 0.3:
                items.append(f"<<: *{rng.choice(maps)}")
            elif maps and rng.random() < 0.2:
                items.append(f"<<: [*{rng.choice(maps)}, *{rng.choice(maps)}]")
            body = "{" + ", ".join(items) + "}"
        anchors.append(name)
        if body.startswith("{"):
            maps.append(name)
        return f"&{name} {body}"

    return "config:\n" + "\n".join(f"  kuscia:s{i}: {value(0)}" for i in range(rng.randint(1, 6))) + "\n"


def _near_threshold() -> list[str]:
    """yaml.v3 counts >100 aliased and >1000 decode steps before the 99% ratio applies."""
    docs = []
    for plain in (0, 3, 8, 20, 60):
        for size in (90, 200, 480, 500, 520, 1000):
            head = "".join(f"  kuscia:p{i}: v\n" for i in range(plain))
            docs.append(
                f"config:\n{head}  kuscia:a: &l [{', '.join(['q'] * 5)}]\n  kuscia:b: [{', '.join(['*l'] * (size // 6))}]\n"
            )
            docs.append(
                f"x: &m {{{', '.join(f'k{j}: q' for j in range(size // 2))}}}\nconfig:\n{head}  kuscia:c: {{<<: [*m, *m]}}\n"
            )
    return docs


def test_alias_verdicts_match_yaml_v3(go_yaml_v3: Path) -> None:
    rng = random.Random(10)
    docs = [_random_stack(rng) for _ in range(300)] + _near_threshold()
    verdicts = [(_ours(doc), _go(go_yaml_v3, doc)) for doc in docs]
    # "other" from yaml.v3 (e.g. a merge of a non-map) is for our own decoder to report
    differ = [
        (doc[:300], v) for doc, v in zip(docs, verdicts, strict=True) if v[0] != v[1] and v != ("ok", "other")
    ]
    assert differ == []
    assert sum(v == ("alias", "alias") for v in verdicts) > 50  # both verdicts are exercised
    assert sum(v == ("ok", "ok") for v in verdicts) > 50


def test_the_ratio_is_yaml_v3s() -> None:
    assert yaml_limits.allowed_alias_ratio(400_000) == 0.99
    assert yaml_limits.allowed_alias_ratio(4_000_000) == 0.10
    assert yaml_limits.allowed_alias_ratio(2_200_000) == pytest.approx(0.545)


def test_an_alias_of_a_long_string_counts_its_text() -> None:
    text = "config:\n  kuscia:x: &s " + "y" * 100_000 + "\n  kuscia:y: [" + ", ".join(["*s"] * 50) + "]\n"
    with pytest.raises(yaml_limits.YamlLimitError, match="MiB of text"):
        yaml_limits.safe_load(text)
    assert len(yaml_limits.safe_load(text.replace(", *s" * 49, ""))["config"]["kuscia:y"]) == 1


def test_files_that_are_not_regular_text_are_refused(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    big = tmp_path / "big"
    big.write_bytes(b"a" * (64 * 1024 + 1))
    exact = tmp_path / "exact"
    exact.write_bytes(b"a" * (64 * 1024))
    latin = tmp_path / "latin"
    latin.write_bytes("j\xf6rg".encode("latin-1"))
    cases = {
        "/dev/zero": "character device",
        str(fifo): "named pipe",
        str(tmp_path): "directory",
        str(big): "larger than 64 KiB",
        str(latin): "byte 0xf6 at offset 1",
    }
    for path, reason in cases.items():
        with pytest.raises(limits.InputLimitError) as err:
            limits.read_text(path, limits.KEY_FILE)
        assert reason in str(err.value) and "key file" in str(err.value) and "Example:" in str(err.value)
    assert limits.read_text(exact, limits.KEY_FILE) == "a" * 64 * 1024
    with pytest.raises(FileNotFoundError):
        limits.read_text(tmp_path / "missing", limits.KEY_FILE)


def test_an_rsa_16384_key_is_refused_by_its_size_before_it_is_checked() -> None:
    with pytest.raises(pki.KeyFormatError, match="16384 bits, more than 8192"):
        pki.load_domain_key(fake_rsa_pem(16384))
    # the same made-up numbers at an accepted size reach OpenSSL's check, which refuses them
    with pytest.raises(pki.KeyFormatError, match="inconsistent"):
        pki.load_domain_key(fake_rsa_pem(2048))


def test_a_second_pem_block_is_refused_not_ignored(rsa_key_pem: str) -> None:
    with pytest.raises(pki.KeyFormatError, match="2 PEM blocks"):
        pki.load_domain_key(rsa_key_pem + rsa_key_pem)
    cert = pki.build_domain_cert(rsa_key_pem, "bob")
    with pytest.raises(pki.CertFormatError, match="2 PEM blocks"):
        pki.load_certificate(cert + cert)


def test_a_partner_certificate_must_carry_its_domain_id(rsa_key_pem: str) -> None:
    cert = pki.cert_b64(pki.build_domain_cert(rsa_key_pem, "carol"))
    assert pki.cert_domain_problem(cert, "carol") is None
    problem = pki.cert_domain_problem(cert, "bob")
    assert problem is not None and "'carol'" in problem and "'bob'" in problem


def test_plain_load_keeps_json_values_and_merges() -> None:
    """network.yaml is loaded with safe_load_plain: JSON values and merge keys as safe_load gives them."""
    text = "a: &x {k: 1, j: 2.5}\nb: {<<: *x, k: 3}\nc: [null, true, '2001-12-14', -1e3]\n"
    assert yaml_limits.safe_load_plain(text) == yaml_limits.safe_load(text)
    with pytest.raises(yaml_limits.YamlLimitError, match="line 3: !!set makes a set"):
        yaml_limits.safe_load_plain("a: 1\nb: 2\nc: !!set {x}\n")
