"""The one declaration of each setting: what is derived from it stays in step with it."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import fields

import pytest

from kuscia_components.config import NESTED, SECRET_SETTINGS, SETTINGS, PartyConfig, gateway_scheme
from kuscia_components.config.docs import DOC_PATH, groups, main, render_doc
from kuscia_components.config.schema import settings_of, walk
from kuscia_components.config.specgen import SHAPES_PATH, render_shapes
from kuscia_components.network.spec import PartySpec


def test_the_settings_tables_of_the_docs_are_generated_from_the_declarations() -> None:
    doc = DOC_PATH.read_text(encoding="utf-8")
    assert render_doc(doc) == doc, (
        "docs/configuration.md is stale: run python -m kuscia_components.config.docs"
    )
    for group in groups():
        assert f"<!-- BEGIN generated settings: {group} -->" in doc


def test_the_automation_api_shape_is_generated_from_the_declarations() -> None:
    assert SHAPES_PATH.read_text(encoding="utf-8") == render_shapes(), (
        "config/shapes.py is stale: run python -m kuscia_components.config.docs"
    )
    assert main(["--check"]) == 0


def test_party_spec_fields_carry_the_keys_and_secrets_of_the_settings() -> None:
    by_key = {f.metadata["key"]: f for f in fields(PartySpec) if f.metadata.get("key")}
    assert set(by_key) == set(SETTINGS)
    assert {k for k, f in by_key.items() if f.metadata.get("secret")} == SECRET_SETTINGS & set(SETTINGS)
    assert all(not f.repr for k, f in by_key.items() if k in SECRET_SETTINGS)


def test_every_setting_is_documented_and_has_an_example() -> None:
    doc = DOC_PATH.read_text(encoding="utf-8")
    for path, s in walk(PartyConfig):
        assert s.example, path
        top = path.split(".")[0].split("[")[0]
        assert f"`{path}`" in doc or f"`{top}`" in doc or f"`{path}." in doc, path  # itself, parent or keys
    assert all(s.group for s in settings_of(PartyConfig))
    assert NESTED["peers[]"] == ("domainId", "stack", "endpoint", "cert", "protocol")


@pytest.mark.parametrize(("protocol", "scheme"), [("NOTLS", "http"), ("TLS", "https"), ("MTLS", "https")])
def test_gateway_scheme_follows_the_protocol(protocol: str, scheme: str) -> None:
    assert gateway_scheme(protocol) == scheme


def test_importing_config_imports_neither_pulumi_nor_cryptography() -> None:
    code = (
        "import sys, kuscia_components.config; print(sorted({'pulumi', 'cryptography'} & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
