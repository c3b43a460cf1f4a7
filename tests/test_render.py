"""`render` output one can diff and apply: stable, exact types, a clean directory, honest summary."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from kuscia_components.config import PartyConfig, parse_party_config
from kuscia_components.offline import k8s_integers
from kuscia_components.offline.outdir import MARKER
from kuscia_components.offline.render import _placeholder_peer_outputs, render
from kuscia_components.offline.stackfile import find_stack_file, load_stack_file
from tests import k8s_schema

ROOT = Path(__file__).resolve().parent.parent
EXTERNAL_DB = {"mode": "external", "endpoint": "mysql.example.com:3306", "adminUser": "root"}
VARIANTS: dict[str, dict[str, Any]] = {
    "in-cluster": {},
    "external-db": {"database": EXTERNAL_DB, "databaseAdminPassword": "admin-s3cret-pw"},
    "nodeport": {"service": {"type": "NodePort", "nodePort": 31080}},
    "loadbalancer": {"service": {"type": "LoadBalancer", "annotations": {"a/b": "c"}}},
}


def party(stack: str = "alice", **changes: Any) -> PartyConfig:
    stack_file = load_stack_file(find_stack_file(stack, ROOT))
    values = dict(stack_file.values)
    values.update({k: v if isinstance(v, str) else json.dumps(v) for k, v in changes.items()})
    secrets = set(stack_file.secret_keys) | ({"databaseAdminPassword"} & set(changes))
    return parse_party_config(values, frozenset(secrets))


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kuscia_components", *args], cwd=ROOT, capture_output=True, text=True
    )


def masked(text: str) -> str:
    """Key material and what derives from it (the config checksum): long hex and base64 runs."""
    return re.sub(r"[A-Za-z0-9+/=]{40,}", "<key material>", text)


# -- deterministic -------------------------------------------------------------------------------


def test_two_renders_of_one_stack_give_the_same_files_and_bytes(tmp_path: Path) -> None:
    for stack in ("alice", "bob"):
        first = render(party(stack), tmp_path / f"{stack}-1", stack=stack)
        second = render(party(stack), tmp_path / f"{stack}-2", stack=stack)
        assert first.files == second.files
        for name in first.files:
            a = (tmp_path / f"{stack}-1" / name).read_text()
            b = (tmp_path / f"{stack}-2" / name).read_text()
            assert masked(a) == masked(b), name


def test_fields_come_in_conventional_order_and_files_in_apply_order(tmp_path: Path) -> None:
    result = render(party(), tmp_path, stack="alice")
    for doc in yaml.safe_load_all((tmp_path / "all.yaml").read_text()):
        assert list(doc)[:3] == ["apiVersion", "kind", "metadata"]
        assert next(iter(doc["metadata"])) == "name"
    names = [o.filename for o in result.objects if o.filename.endswith(".yaml") and o.kind != "kuscia.yaml"]
    assert names == sorted(names)
    assert names[0].startswith("00-namespace-") and names[-1].startswith("08-deployment-")


# -- exact types, decided by the Kubernetes schema ---------------------------------------------


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_every_field_of_every_rendered_object_has_the_schema_type(tmp_path: Path, variant: str) -> None:
    render(party(**VARIANTS[variant]), tmp_path, stack="alice")
    files = [p for p in tmp_path.glob("*.yaml") if p.name != "kuscia.yaml"]
    docs = [doc for p in files for doc in yaml.safe_load_all(p.read_text())]
    assert len(docs) == 2 * (len(files) - 1) and docs  # every file once, and all.yaml again
    for doc in docs:
        assert k8s_schema.object_type_errors(doc) == []
    text = (tmp_path / "all.yaml").read_text()
    assert "port: 1080\n" in text and ".0\n" not in text


def test_the_schema_check_catches_a_float_and_a_string_turned_int() -> None:
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"}}
    floats = {**service, "spec": {"ports": [{"port": 1080.0, "targetPort": 1080.0}]}}
    assert len(k8s_schema.object_type_errors(floats)) == 2
    assert k8s_schema.object_type_errors({**service, "metadata": {"name": 5}}) == [
        "Service.metadata.name: string holds 5"
    ]


def test_only_schema_integers_become_ints() -> None:
    from kuscia_components.offline.manifest import exact_types

    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "d", "labels": {"x": "1.0"}},
        "spec": {
            "replicas": 1.0,
            "strategy": {"rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 0.0}},
            "template": {
                "spec": {
                    "containers": [
                        {
                            "name": "c",
                            "resources": {"limits": {"cpu": 2.0}},
                            "ports": [{"containerPort": 80.0}],
                        }
                    ],
                    "volumes": [{"name": "v", "secret": {"defaultMode": 256.0, "optional": False}}],
                }
            },
        },
    }
    got = exact_types(deployment)
    spec = got["spec"]["template"]["spec"]
    assert type(got["spec"]["replicas"]) is int and got["spec"]["strategy"]["rollingUpdate"] == {
        "maxSurge": "25%",
        "maxUnavailable": 0,
    }
    assert type(spec["containers"][0]["resources"]["limits"]["cpu"]) is float  # a quantity stays
    assert type(spec["containers"][0]["ports"][0]["containerPort"]) is int
    assert spec["volumes"][0]["secret"] == {"defaultMode": 256, "optional": False}
    assert got["metadata"]["labels"] == {"x": "1.0"}


def test_the_integer_table_is_the_one_the_schema_gives() -> None:
    """Regenerate with `python -m tests.k8s_schema > kuscia_components/offline/k8s_integers.py`."""
    assert k8s_integers.KINDS == k8s_schema.KINDS
    assert k8s_schema.table() == k8s_integers.FIELDS


# -- a clean directory ---------------------------------------------------------------------------


def test_rerendering_removes_files_of_objects_no_longer_planned(tmp_path: Path) -> None:
    out = tmp_path / "alice"
    render(party(), out, stack="alice")
    assert list(out.glob("*-statefulset-*.yaml")) and (out / MARKER).is_file()
    result = render(party(**VARIANTS["external-db"]), out, stack="alice")
    assert not list(out.glob("*-statefulset-*.yaml"))
    assert sorted(p.name for p in out.iterdir()) == sorted([*result.files, MARKER])
    assert "StatefulSet" not in (out / "all.yaml").read_text()


def test_render_refuses_a_non_empty_directory_it_does_not_own(tmp_path: Path) -> None:
    (tmp_path / "mine.txt").write_text("keep me")
    done = cli("render", "--stack", "alice", "--out", str(tmp_path))
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert f"--out {tmp_path} is not empty and was not written by render" in done.stderr
    assert "name a new or empty directory" in done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine.txt"]


@pytest.mark.parametrize("where", ["file", "under-a-file"])
def test_a_bad_out_exits_2_with_the_reason(tmp_path: Path, where: str) -> None:
    (tmp_path / "f").write_text("")
    out = tmp_path / "f" if where == "file" else tmp_path / "f" / "sub"
    done = cli("render", "--stack", "alice", "--out", str(out))
    assert done.returncode == 2 and "Traceback" not in done.stderr
    reason = (
        "is a file, not a directory" if where == "file" else "cannot create the directory (Not a directory)"
    )
    assert f"--out {out}" in done.stderr and reason in done.stderr


def test_an_unwritable_directory_exits_2(tmp_path: Path) -> None:
    import os

    out = tmp_path / "ro"
    out.mkdir(mode=0o500)
    if os.access(out, os.W_OK):
        pytest.skip("running as root: permissions do not stop writes")
    done = cli("render", "--stack", "alice", "--out", str(out))
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert f"--out {out}: cannot write there (Permission denied)" in done.stderr


# -- the summary, placeholders, another program's stack ----------------------------------------


def test_the_summary_counts_every_file_written(tmp_path: Path) -> None:
    out = tmp_path / "bob"
    done = cli("render", "--stack", "bob", "--out", str(out))
    assert done.returncode == 0, done.stderr
    written = [p for p in out.iterdir() if p.name != MARKER]
    assert f"Wrote {len(written)} files to {out}/" in done.stdout


def test_every_partner_placeholder_is_filled_in() -> None:
    bundle = _placeholder_peer_outputs(party())["bob"]["peeringBundle"]
    assert bundle["protocol"] == "<protocol of bob: read from stack bob at deploy>"
    assert not [value for value in bundle.values() if "{" in value]


@pytest.mark.parametrize("command", ["check", "render"])
def test_a_stack_of_another_config_namespace_is_named_as_such(tmp_path: Path, command: str) -> None:
    extra = ["--out", str(tmp_path / "out")] if command == "render" else []
    done = cli(command, "--stack", "dev", "--project-dir", "examples/one-cluster", *extra)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "has no kuscia: settings (it uses kuscia-one-cluster:)" in done.stderr
    assert "is required" not in done.stderr
