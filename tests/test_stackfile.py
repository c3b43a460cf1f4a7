"""Stack files read offline exactly as the Pulumi CLI hands them to the program.

The CLI (v3.50 and later; our SDK pin is 3.272) decodes Pulumi.<stack>.yaml with Go's yaml.v3,
twice (sdk/go/common/workspace/loaders.go LoadProjectStackBytes), and turns each config value
into a string with config.Value/object (sdk/go/common/resource/config/value.go, object.go);
tests/go_pulumi_config restates that path over Debian's yaml.v3 and encoding/json, and the
tests below compare our reading with it value by value (exact strings, or both refusing).
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import subprocess
from pathlib import Path
from typing import Any

import pytest

from kuscia_components.config import ENCRYPTED, ConfigError, config_warnings, parse_party_config
from kuscia_components.offline.stackfile import StackFile, StackFileError, find_stack_file, load_stack_file
from tests.gobuild import build_go_program

ROOT = Path(__file__).resolve().parent.parent
GO_SOURCE = Path(__file__).parent / "go_pulumi_config" / "main.go"


def stack_file(tmp_path: Path, body: str, name: str = "Pulumi.x.yaml") -> StackFile:
    path = tmp_path / name
    path.write_text(body)
    return load_stack_file(path)


def config_yaml(**entries: str) -> str:
    """A stack file whose config holds `kuscia:<key>: <yaml text>` for each entry."""
    lines = ["config:"]
    for key, text in entries.items():
        lines.append(f"  kuscia:{key}: {text}")
    return "\n".join(lines) + "\n"


# -- the committed stacks ----------------------------------------------------------------------


@pytest.mark.parametrize(("stack", "partner"), [("alice", "bob"), ("bob", "alice")])
def test_committed_stack_files_parse_clean(stack: str, partner: str) -> None:
    sf = load_stack_file(find_stack_file(stack, ROOT))
    assert sf.secret_keys == frozenset() and sf.encrypted_keys == frozenset() and sf.warnings == ()
    assert "secure" not in sf.path.read_text()
    cfg = parse_party_config(sf.values, sf.secret_keys, encrypted_keys=sf.encrypted_keys)
    assert (cfg.domain_id, cfg.protocol, cfg.runtime, cfg.database.mode) == (
        stack,
        "TLS",
        "runk",
        "in-cluster",
    )
    assert [(p.domain_id, p.stack) for p in cfg.peers] == [(partner, partner)]
    assert cfg.capacity is not None
    assert (cfg.capacity.cpu, cfg.capacity.memory, cfg.capacity.storage, cfg.capacity.ephemeral_storage) == (
        "4",
        "4Gi",
        "100Gi",
        "200Gi",
    )
    assert [w for w in config_warnings(cfg) if "0.0.0.0/0" not in w] == []


# -- conversion like the CLI -------------------------------------------------------------------


def test_top_level_scalars_reach_the_program_as_yaml_v3_decodes_them(tmp_path: Path) -> None:
    sf = stack_file(
        tmp_path,
        config_yaml(
            a="yes",
            b="1e3",
            c="010",
            d="True",
            e="'quoted: yes'",
            f="",
            g="~",
            h="|\n    two\n    lines",
            i="2024-01-01",
            j="-0.0",
            k="on",
        ),
    )
    assert sf.values == {
        "a": "yes",  # yaml.v3 has only true/false as booleans
        "b": "1000",
        "c": "8",
        "d": "true",
        "e": "quoted: yes",
        "f": "",
        "g": "",
        "h": "two\nlines\n",
        "i": "2024-01-01 00:00:00 +0000 UTC",  # a time.Time, by its String()
        "j": "0",  # -0 once written out again, which reads back as the integer 0
        "k": "on",
    }


def test_objects_reach_the_program_as_go_json_with_yaml_1_2_scalars(tmp_path: Path) -> None:
    sf = stack_file(
        tmp_path, config_yaml(o="{x: yes, y: n, z: 1e3, w: 0x10, v: 010, u: 2024-01-01, t: 4.0, s: '4'}")
    )
    assert sf.values["o"] == (
        '{"s":"4","t":4,"u":"2024-01-01 00:00:00 +0000 UTC","v":8,"w":16,"x":"yes","y":"n","z":1000}'
    )


def test_yes_and_on_are_strings_not_booleans(go_pulumi_config: Path, tmp_path: Path) -> None:
    """yaml.v2 (and this reader, before) took `enabled: yes` as true; the CLI hands the program
    the string "yes", which a boolean setting refuses."""
    body = config_yaml(
        domainId="carol",
        capacity="{cpu: 4, memory: 4Gi, storage: 10Gi}",
        networkPolicy="{enabled: yes}",
        requirePeerReady="on",
    )
    sf = stack_file(tmp_path, body)
    go = _go_read(go_pulumi_config, body)
    assert sf.values["networkPolicy"] == go["kuscia:networkPolicy"]["program"] == '{"enabled":"yes"}'
    assert sf.values["requirePeerReady"] == go["kuscia:requirePeerReady"]["program"] == "on"
    with pytest.raises(ConfigError) as err:
        parse_party_config(sf.values, sf.secret_keys)
    assert "kuscia:networkPolicy.enabled" in str(err.value) and "true or false" in str(err.value)


def test_the_same_config_from_a_stack_file_and_from_pulumi_parses_the_same(tmp_path: Path) -> None:
    sf = stack_file(
        tmp_path,
        config_yaml(
            domainId="carol",
            protocol="notls",
            peeringTimeoutSeconds="600",
            requirePeerReady="true",
            capacity="{cpu: 4, memory: 4Gi, storage: 1e3}",
            service="{type: NodePort, nodePort: 31080, annotations: {example.com/lb: internal}}",
            trustedNetwork="true",  # NOTLS behind a NodePort needs it
            networkPolicy="{enabled: true, kusciaApiFrom: [172.18.0.2/32]}",
            peers="[{domainId: dave, stack: dave}]",
        ),
    )
    from_pulumi = {  # what `pulumi up` hands the program for those lines
        "domainId": "carol",
        "protocol": "notls",
        "peeringTimeoutSeconds": "600",
        "requirePeerReady": "true",
        "capacity": '{"cpu":4,"memory":"4Gi","storage":1000}',
        "service": '{"annotations":{"example.com/lb":"internal"},"nodePort":31080,"type":"NodePort"}',
        "trustedNetwork": "true",
        "networkPolicy": '{"enabled":true,"kusciaApiFrom":["172.18.0.2/32"]}',
        "peers": '[{"domainId":"dave","stack":"dave"}]',
    }
    assert sf.values == from_pulumi
    offline = parse_party_config(sf.values, sf.secret_keys)
    assert offline == parse_party_config(from_pulumi)
    assert offline.capacity is not None and offline.capacity.storage == "1000"
    assert offline.network_policy.enabled is True


@pytest.fixture(scope="session")
def go_pulumi_config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_go_program(
        GO_SOURCE,
        tmp_path_factory.mktemp("go"),
        library="gopkg.in/yaml.v3",
        debian_package="golang-gopkg-yaml.v3-dev",
    )


YAML_CORNERS = [
    "yes",
    "n",
    "1e3",
    "0x1F",
    "-0b11",
    "010",
    "09",
    "1_000",
    "+.5",
    ".5e3",
    "1.",
    "1:30",
    "2001-12-14t21:59:43.10-05:00",
    "~",
    "",
    "'quoted'",
    '"tab\\there"',
    "!!str 5",
    "|\n    block\n    text",
    ">\n    folded\n    text",
    "{secure: v1:AAAA}",
    "{x: yes, y: n, Y: N, on: Off, z: 1e3, w: 0x10, v: 010, u: 2024-01-01, t: 1_000, s: .5, r: 09, q: '1e3', p: 1e400}",
    "{o: ~, k: [1, 1.5, -0b11, 0o17, 1e21, 1e-7, 123456789.125, 1e20, -0.0, 0.1, 3.0, 5e-324]}",
    "{big: [100000000000000000000000, 18446744073709551615, 18446744073709551616, 9223372036854775808, -9223372036854775809]}",
    "{1: a, true: b, ~: c, 1.5: d, 1e6: e, 0.0001: f, 0.00001: g, y: h}",
    "{x: !!str 5, y: !!float 1, z: !!binary aGVsbG8=, w: !!int '7', v: !custom foo}",
    "{<<: {k: 1, j: 2}, k: 3}",
    '{html: \'<a href="x">&</a>\', ctl: "\\x01\\x1f", uni: \'é中\\u2028\', quote: \'a"b\\\\c\', nl: "a\\nb"}',
    "{p: {secure: v1:x}, q: [1, {secure: v1:y}], r: {secure: 5}, s: {secure: a, t: b}}",
    "[y, n, Y, N, yes, NO, on, OFF, true, False]",
    "{x: 1_0.5, y: 0_1, z: 08, w: 0x_1F, v: -0, u: '+', t: -, s: .e3, r: 1e, q: 1E+3, p: +1, o: 0.1e1}",
    "{x: 3.0, y: 1.5e300, z: 5e-324, w: 1.7976931348623157e308, v: 1e-6, u: 9.999e-7, t: 999999999999999999999.0}",
    "2001-12-14",
    "2001-12-14 21:59:43.10",
    "2001-12-14T21:59:43Z",
    "2001-12-14T21:59:43+00:00",
    "2001-02-29",
    "2001-12-14T21:59:43",
    "{d: 2001-12-14, 2001-12-14: k, s: !!timestamp 2001-01-01, q: '2001-12-14'}",
    "-0.0",
    "[-0.0, 1.0, 1e6, 123456.0, 1234567.0]",
    "{k: 3, <<: {k: 1, j: 2}}",
    "{<<: [{a: 1}, {a: 2, b: 2}], c: 3}",
    "{'<<': {a: 1}, b: 2}",
    "{a: <<}",
    "! 5",
    "!!float '3'",
    "{secure: !!binary djE6eA==}",
    "{big: 18446744073709551615, neg: -9223372036854775808}",
    # tags PyYAML builds non-JSON types from (review of #10, finding 4): yaml.v3 ignores a tag on
    # a collection, so a set is a map of nulls and omap/pairs lists of maps
    "!!set {a, b}",
    "[!!set {x}, !!timestamp 2001-12-14]",
    "!!omap [{a: 1}, {b: 2}]",
    "!!pairs [{a: 1}, {a: 2}]",
    "!!set {a: 1}",
    "!!omap {a: 1}",
    "{2001-12-14: x, !!binary aGk=: y}",
    "!!timestamp 2001-12-14T01:02:03Z",
    "{s: !!set {k}, b: !!binary aGk=, t: !!timestamp 2001-12-14}",
]


def test_values_match_what_yaml_v3_gives_the_pulumi_cli(go_pulumi_config: Path, tmp_path: Path) -> None:
    """Every corner of YAML as yaml.v3 reads it, compared string for string (an encrypted
    value stands as config.ENCRYPTED on both sides)."""
    body = config_yaml(**{f"v{i}": text for i, text in enumerate(YAML_CORNERS)})
    sf = stack_file(tmp_path, body)
    go = _go_read(go_pulumi_config, body)
    assert set(go) == {f"kuscia:v{i}" for i in range(len(YAML_CORNERS))}
    for full_key, seen in go.items():
        key = full_key.removeprefix("kuscia:")
        assert sf.values[key] == seen["program"], YAML_CORNERS[int(key[1:])]
        assert (key in sf.secret_keys) == (key in sf.encrypted_keys) == seen["secure"]


CLI_REFUSES = [
    ".inf",
    "{a: [.nan]}",
    "{a: 1, a: 2}",
    "{1.0: a, '1': b}",
    "{'<<': 5}",
    "{<<: [{a: 1}, 5]}",
    "{secure: 2020-01-02}",
    "!!int abc",
    "!!bool yes",
    "{a: !!binary '%%%'}",
]


@pytest.mark.parametrize("text", CLI_REFUSES)
def test_values_the_cli_refuses_are_refused(go_pulumi_config: Path, tmp_path: Path, text: str) -> None:
    body = config_yaml(domainId="alice", v=text)
    with pytest.raises(StackFileError) as err:
        stack_file(tmp_path, body)
    assert "the Pulumi CLI refuses it too" in str(err.value) or "already defined" in str(err.value)
    assert "error" in _go_run(go_pulumi_config, body)


def test_whole_files_the_cli_refuses_are_refused(go_pulumi_config: Path, tmp_path: Path) -> None:
    for body in (
        "%YAML 1.2\n---\nconfig:\n  kuscia:domainId: alice\n",
        "config:\n  kuscia:domainId: alice\n  kuscia:domainId: bob\n",
        "config:\n  kuscia:domainId: alice\n  a:b:c: x\n",
    ):
        with pytest.raises(StackFileError):
            stack_file(tmp_path, body)
        assert "error" in _go_run(go_pulumi_config, body), body
    # yaml.v3 reads the first document only; a broken second one goes unnoticed
    body = "config:\n  kuscia:domainId: alice\n---\n[\n"
    assert stack_file(tmp_path, body).values == {"domainId": "alice"}
    assert _go_read(go_pulumi_config, body)["kuscia:domainId"]["program"] == "alice"


def test_random_yaml_values_match_yaml_v3(go_pulumi_config: Path, tmp_path: Path) -> None:
    rng = random.Random(11)
    atoms = [
        "yes",
        "no",
        "y",
        "N",
        "on",
        "~",
        "null",
        "1e3",
        "1.5",
        "-2",
        "0x1f",
        "007",
        "1_0",
        ".5",
        "+1",
        "1e-9",
        "2020-01-02",
        "a b",
        "'q'",
        '"x\\ty"',
        "é",
        "<&>",
        "!!str 1",
        "1.0",
        "-0.0",
        "12345678901234567890",
        "{secure: v1:z}",
        "''",
        "''",
        "True",
        "0o17",
        "0b101",
        "1e400",
        "2020-1-2 3:4:5.5",
        "2020-01-02t10:00:00-05:30",
        "2020-01-02T10:00:00.1234567891Z",
        "123456.0",
        "!!float 3",
        "!!binary aGk=",
        "! 5",
    ]

    def value(depth: int) -> str:
        roll = rng.random()
        if depth > 2 or roll < 0.5:
            return rng.choice(atoms)
        if roll < 0.75:
            return "[" + ", ".join(value(depth + 1) for _ in range(rng.randrange(4))) + "]"
        keys = rng.sample(["a", "b", "1", "yes", "x y", "é", "~", "2020-01-02"], rng.randrange(4))
        return "{" + ", ".join(f"{k}: {value(depth + 1)}" for k in keys) + "}"

    entries = {f"r{i}": value(0) for i in range(300)}
    body = config_yaml(**entries)
    sf = stack_file(tmp_path, body)
    go = _go_read(go_pulumi_config, body)
    assert len(go) == len(entries)
    for full_key, seen in go.items():
        key = full_key.removeprefix("kuscia:")
        assert sf.values[key] == seen["program"], entries[key]


def _go_run(binary: Path, body: str, project: str = "") -> dict[str, Any]:
    env = {**os.environ, "TZ": "UTC"}  # Go names a zone offset after the local zone if it matches
    result = subprocess.run(
        [str(binary), ENCRYPTED, project], input=body, capture_output=True, text=True, check=True, env=env
    )
    decoded: dict[str, Any] = json.loads(result.stdout)
    return decoded


def _go_read(binary: Path, body: str, project: str = "") -> dict[str, Any]:
    decoded = _go_run(binary, body, project)
    assert "error" not in decoded, decoded
    config: dict[str, Any] = decoded["config"]
    return config


# -- secrets -------------------------------------------------------------------------------------


def test_encrypted_values_are_present_but_unknown_and_reported(tmp_path: Path) -> None:
    sf = stack_file(
        tmp_path,
        config_yaml(
            domainId="alice",
            capacity="{cpu: 4, memory: 4Gi, storage: 10Gi}",
            domainKeyData="{secure: v1:AAAAkey}",
            database="{mode: external, endpoint: 'db:3306', adminUser: root, adminPassword: {secure: v1:AAAApw}}",
        ),
    )
    assert sf.values["domainKeyData"] == ENCRYPTED
    assert json.loads(sf.values["database"])["adminPassword"] == ENCRYPTED
    assert sf.secret_keys == {"domainKeyData", "database", "database.adminPassword"}
    assert sf.encrypted_keys == {"domainKeyData", "database"}
    warnings = "\n".join(sf.warnings)
    assert "kuscia:domainKeyData is encrypted in Pulumi.x.yaml" in warnings and "stand-in key" in warnings
    assert "kuscia:database.adminPassword is encrypted" in warnings and "only used at deploy" in warnings
    assert "AAAA" not in warnings + repr(sf.values)
    cfg = parse_party_config(sf.values, sf.secret_keys, encrypted_keys=sf.encrypted_keys)
    assert cfg.domain_key_data is None and cfg.database.admin_password == ENCRYPTED
    assert cfg.encrypted_settings == {"domainKeyData", "database.adminPassword"}


def test_a_plain_password_beside_another_encrypted_value_is_still_refused(tmp_path: Path) -> None:
    sf = stack_file(
        tmp_path,
        config_yaml(
            domainId="alice",
            capacity="{cpu: 4, memory: 4Gi, storage: 10Gi}",
            database="{mode: external, endpoint: 'db:3306', adminUser: {secure: v1:u}, adminPassword: plain-pw}",
        ),
    )
    with pytest.raises(ConfigError) as err:
        parse_party_config(sf.values, sf.secret_keys, encrypted_keys=sf.encrypted_keys)
    found = {p.setting: p.rule for p in err.value.problems}
    assert "must be a secret" in found["kuscia:database.adminPassword"]
    assert "offline commands cannot read it" in found["kuscia:database.adminUser"]
    assert "plain-pw" not in str(err.value)


def test_a_whole_encrypted_object_is_a_clear_offline_problem(tmp_path: Path) -> None:
    sf = stack_file(tmp_path, config_yaml(domainId="alice", capacity="{secure: v1:AAAA}"))
    with pytest.raises(ConfigError) as err:
        parse_party_config(sf.values, sf.secret_keys, encrypted_keys=sf.encrypted_keys)
    assert "encrypted as a whole" in str(err.value) and "AAAA" not in str(err.value)


# -- keys and warnings -----------------------------------------------------------------------------


def test_duplicate_keys_are_refused_as_the_cli_refuses_them(tmp_path: Path) -> None:
    with pytest.raises(StackFileError) as err:
        stack_file(tmp_path, "config:\n  kuscia:domainId: {secure: v1:x}\n  kuscia:domainId: bob\n")
    assert 'line 3: mapping key "kuscia:domainId" already defined at line 2' in str(err.value)
    # the same setting in two spellings: the CLI keeps one of them at random
    for body in (
        "config:\n  kuscia:domainId: a\n  kuscia:config:domainId: b\n",
        "config:\n  domainId: a\n  kuscia-p2p:domainId: b\n",
    ):
        with pytest.raises(StackFileError, match=r"set twice.*at random"):
            load_stack_file(_write(tmp_path, body), project="kuscia-p2p")


def _write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "Pulumi.x.yaml"
    path.write_text(body)
    return path


def test_keys_without_a_namespace_get_the_project_name(go_pulumi_config: Path, tmp_path: Path) -> None:
    body = "config:\n  domainId: alice\n  kuscia:protocol: TLS\n"
    go = _go_read(go_pulumi_config, body, "kuscia-p2p")
    assert set(go) == {"kuscia-p2p:domainId", "kuscia:protocol"}
    (tmp_path / "Pulumi.yaml").write_text("name: kuscia-p2p\nruntime: python\n")
    (tmp_path / "stacks").mkdir()
    sf = load_stack_file(_write(tmp_path / "stacks", body))  # the project found above the file
    assert sf.values == {"protocol": "TLS"} and sf.other_config == {"kuscia-p2p:domainId": "alice"}
    assert any("did you mean kuscia:domainId" in w for w in sf.warnings)
    assert "error" in _go_run(go_pulumi_config, body)  # no project: the key is refused
    with pytest.raises(StackFileError, match="did you mean kuscia:domainId"):
        load_stack_file(_write(tmp_path, body), project="")


def test_legacy_config_key_form_is_read(tmp_path: Path) -> None:
    assert stack_file(tmp_path, "config:\n  kuscia:config:domainId: alice\n").values == {"domainId": "alice"}


@pytest.mark.parametrize(
    ("key", "fragment"),
    [
        ("domainId", "did you mean kuscia:domainId?"),
        ("a:b:c", "<namespace>:<name>"),
        ("[1]", "must be a scalar"),
    ],
)
def test_keys_pulumi_refuses_are_errors(tmp_path: Path, key: str, fragment: str) -> None:
    with pytest.raises(StackFileError) as err:
        stack_file(tmp_path, f"config:\n  {key}: x\n")
    assert fragment in str(err.value) and "line 2" in str(err.value)


def test_settings_in_another_namespace_and_provider_context_are_flagged(tmp_path: Path) -> None:
    sf = stack_file(
        tmp_path, "config:\n  kuscia-p2p:domainId: alice\n  kubernetes:context: kind-a\n  aws:region: x\n"
    )
    assert sf.values == {} and sf.other_config == {
        "kuscia-p2p:domainId": "alice",
        "kubernetes:context": "kind-a",
        "aws:region": "x",
    }
    warnings = "\n".join(sf.warnings)
    assert (
        "kuscia-p2p:domainId is not read by this program" in warnings
        and "did you mean kuscia:domainId" in warnings
    )
    assert "kubernetes:context is set but kuscia:kubeContext is not" in warnings
    assert "aws:region" not in warnings


def test_esc_environments_are_noted(tmp_path: Path) -> None:
    sf = stack_file(tmp_path, "environment:\n  - shared\nconfig:\n  kuscia:domainId: alice\n")
    assert any("ESC" in w for w in sf.warnings)
    with pytest.raises(StackFileError) as err:
        stack_file(tmp_path, "environment:\n  - shared\n")
    assert "no 'config:' section" in str(err.value) and "ESC" in str(err.value)


# -- files that cannot be read -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("config: [1, 2]\n", "must be a mapping of settings"),
        ("config:\n  a: [\n", "not valid YAML at line"),
        ("- 1\n", "must be a YAML mapping with a 'config:' section"),
        ("", "is empty"),
        ("secretsprovider: passphrase\n", "no 'config:' section"),
        ("config:\n", "no 'config:' section"),
        ("config:\n  kuscia:x: {a: .inf}\n", "unsupported value: +Inf; quote it"),
        ("config:\n  kuscia:x: {a: !!int abc}\n", "cannot decode !!str `abc` as a !!int"),
        ("config:\n  kuscia:x: &a {k: *a}\n", "kuscia:x"),
        ("config:\n  <<: kuscia\n", "map merge requires map"),
    ],
)
def test_malformed_stack_files_are_clear_errors(tmp_path: Path, text: str, fragment: str) -> None:
    with pytest.raises(StackFileError) as err:
        stack_file(tmp_path, text)
    assert fragment in str(err.value)


def test_unreadable_files_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(StackFileError, match="does not exist"):
        load_stack_file(tmp_path / "Pulumi.none.yaml")
    latin1 = tmp_path / "Pulumi.l1.yaml"
    latin1.write_bytes("config:\n  kuscia:domainId: caf\xe9\n".encode("latin-1"))
    with pytest.raises(StackFileError, match="not UTF-8"):
        load_stack_file(latin1)


def test_random_edits_give_a_stack_file_or_a_stack_file_error(tmp_path: Path) -> None:
    rng = random.Random(3)
    pieces = [
        "config:",
        "\n",
        "  ",
        "kuscia:",
        "domainId",
        ": ",
        "{",
        "}",
        "[",
        "]",
        "- ",
        "&a ",
        "*a",
        "!!int ",
        "secure",
        "'",
        '"',
        "#",
        "|",
        ">",
        "~",
        "1e3",
        "yes",
        ",",
        "<<: ",
        "\t",
        "%YAML 1.1\n",
        "---\n",
    ]
    seed_text = (ROOT / "Pulumi.alice.yaml").read_text()
    path = tmp_path / "Pulumi.fuzz.yaml"
    outcomes = {"read": 0, "refused": 0}
    for _ in range(1500):  # the committed stack file with 1-3 random insertions or deletions
        text = seed_text
        for _ in range(rng.randrange(1, 4)):
            at = rng.randrange(len(text) + 1)
            if rng.random() < 0.7:
                text = text[:at] + rng.choice(pieces) + text[at:]
            else:
                text = text[:at] + text[at + rng.randrange(1, 12) :]
        path.write_text(text)
        try:
            sf = load_stack_file(path)
            outcomes["read"] += 1
        except StackFileError:
            outcomes["refused"] += 1
            continue
        with contextlib.suppress(ConfigError):  # and the config in it parses or is refused cleanly
            parse_party_config(sf.values, sf.secret_keys, encrypted_keys=sf.encrypted_keys)
    assert outcomes["read"] > 10 and outcomes["refused"] > 10, outcomes


# -- finding the file ------------------------------------------------------------------------------


def test_find_stack_file_like_pulumi(tmp_path: Path) -> None:
    (tmp_path / "Pulumi.yaml").write_text("name: p\nruntime: python\n")
    (tmp_path / "Pulumi.alice.yml").write_text("config: {}\n")
    assert find_stack_file("alice", tmp_path).name == "Pulumi.alice.yml"
    assert find_stack_file("acme/p/alice", tmp_path).name == "Pulumi.alice.yml"
    (tmp_path / "Pulumi.yaml").write_text("name: p\nruntime: python\nstackConfigDir: stacks\n")
    (tmp_path / "stacks").mkdir()
    (tmp_path / "stacks" / "Pulumi.bob.yaml").write_text("config: {}\n")
    assert find_stack_file("bob", tmp_path) == tmp_path / "stacks" / "Pulumi.bob.yaml"


def test_missing_stack_file_lists_what_exists() -> None:
    with pytest.raises(StackFileError) as err:
        find_stack_file("carol", ROOT)
    assert "Pulumi.alice.yaml" in str(err.value) and "pulumi stack init carol" in str(err.value)
    with pytest.raises(StackFileError, match="not a stack name"):
        find_stack_file("../etc/passwd", ROOT)
