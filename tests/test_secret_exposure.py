"""No secret value sits in a non-secret position of anything the engine stores, or in any stack
output (a partner's StackReference copies the whole output map into its own state).

Both stacks run under the offline mocks in four variants: as committed, with a kubeconfig file
(bearer token, client key), with an external database and its admin password, and with the
domain key supplied. Every registered input and state, and every output, is searched for each
secret value: the key (PEM and base64), database passwords, the token, the kubeconfig's
credentials, the KusciaAPI MTLS client key.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pulumi
import pytest
from pulumi.runtime import rpc

from kuscia_components.config import PartyConfig, parse_party_config
from kuscia_components.core import pki
from kuscia_components.offline.mocks import OfflineMocks, install, unwrap_secrets
from kuscia_components.offline.stackfile import find_stack_file, load_stack_file
from kuscia_components.program import party_program
from tests.helpers import CLUSTER_IP, ROOT, peer_outputs

ADMIN_PASSWORD = "Adm1n-ßecret-pw"
BEARER = "kubeconfig-bearer-token-0123456789abcdef"
CLIENT_KEY = base64.b64encode(b"-----BEGIN EC PRIVATE KEY-----\nkubeconfig-client-key\n").decode()
KUBECONFIG = f"""apiVersion: v1
kind: Config
clusters: [{{name: c, cluster: {{server: "https://127.0.0.1:6443"}}}}]
users: [{{name: u, user: {{token: {BEARER}, client-key-data: {CLIENT_KEY}}}}}]
contexts: [{{name: ctx, context: {{cluster: c, user: u}}}}]
current-context: ctx
"""
SUPPLIED_KEY = pki.generate_domain_key()


def variant_config(stack: str, variant: str, tmp: Path) -> PartyConfig:
    stack_file = load_stack_file(find_stack_file(stack, ROOT))
    values = dict(stack_file.values)
    secrets = set(stack_file.secret_keys)
    if variant == "kubeconfig":
        path = tmp / "kubeconfig"
        path.write_text(KUBECONFIG)
        values["kubeconfig"] = str(path)
    elif variant == "external-db":
        values["database"] = json.dumps(
            {"mode": "external", "endpoint": "db.example:3306", "adminUser": "root"}
        )
        values["databaseAdminPassword"] = ADMIN_PASSWORD
        secrets.add("databaseAdminPassword")
    elif variant == "own-key":
        values["domainKeyData"] = pki.domain_key_data(SUPPLIED_KEY)
        secrets.add("domainKeyData")
    return parse_party_config(values, secrets)


def run_recording(stack: str, cfg: PartyConfig) -> tuple[OfflineMocks, dict[str, tuple[Any, bool]]]:
    """The program under mocks; every output with whether it reached the stack as a secret."""
    from kuscia_components.offline.mocks import _fresh_runtime

    mocks = OfflineMocks(
        cluster_ip=CLUSTER_IP,
        stack_outputs=peer_outputs(stack),
        execute_dynamic=lambda p: bool(getattr(p, "offline_safe", False)),
    )
    _fresh_runtime()
    install(mocks, stack=stack)
    outputs: dict[str, tuple[Any, bool]] = {}

    def program() -> pulumi.Output[Any]:
        party_program(cfg)
        exported = pulumi.runtime.settings.get_root_resource().outputs  # type: ignore[union-attr]
        keys = list(exported)
        pairs = [
            pulumi.Output.all(exported[k], pulumi.Output.from_input(exported[k]).is_secret()) for k in keys
        ]
        return pulumi.Output.all(*pairs).apply(
            lambda values: outputs.update({k: (v[0], v[1]) for k, v in zip(keys, values, strict=True)})
        )

    pulumi.runtime.test(program)()
    return mocks, outputs


def plain_strings(value: Any) -> list[str]:
    """Every string (keys too) outside an RPC secret; the pickled provider decoded to text."""
    if rpc.is_rpc_secret(value):
        return []
    if isinstance(value, dict):
        found: list[str] = []
        for key, item in value.items():
            found.append(str(key))
            if key == "__provider" and isinstance(item, str):
                found.append(base64.b64decode(item).decode("latin-1"))
            else:
                found.extend(plain_strings(item))
        return found
    if isinstance(value, list):
        return [s for item in value for s in plain_strings(item)]
    return [str(value)] if value is not None else []


def secret_values(mocks: OfflineMocks, cfg: PartyConfig) -> dict[str, str]:
    identity = mocks.one("pulumi-python:dynamic/kuscia:DomainIdentity", f"{cfg.domain_id}-identity")
    state = identity.plain_state
    key = state["private_key_pem"]
    found = {
        "key PEM": key,
        "key PEM body": "".join(key.splitlines()[1:-1])[:64],
        "key base64": state["domain_key_data"],
        "token": state["kusciaapi_token"],
        "KusciaAPI client key": state["kusciaapi_client_key_pem"],
        "KusciaAPI client key body": "".join(state["kusciaapi_client_key_pem"].splitlines()[1:-1])[:64],
        "kubeconfig bearer token": BEARER,
        "kubeconfig client key": CLIENT_KEY,
        "admin password": ADMIN_PASSWORD,
    }
    for res in mocks.resources:
        if "GeneratedPassword" in res.type:
            found[f"password {res.name}"] = res.plain_state["result"]
    return found


VARIANTS = ("committed", "kubeconfig", "external-db", "own-key")


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("stack", ["alice", "bob"])
def test_no_secret_in_a_plain_position_or_any_output(stack: str, variant: str, tmp_path: Path) -> None:
    cfg = variant_config(stack, variant, tmp_path)
    mocks, outputs = run_recording(stack, cfg)
    secrets = secret_values(mocks, cfg)
    if variant == "own-key":
        assert secrets["key base64"] == pki.domain_key_data(SUPPLIED_KEY)

    leaks = []
    for res in mocks.resources:
        for where, value in (("input", res.inputs), ("state", res.state)):
            text = "\n".join(plain_strings(value))
            leaks += [f"{res.type} {res.name} {where}: {n}" for n, s in secrets.items() if s in text]
    # Secret or not, every output is copied by a partner's StackReference.
    text = json.dumps({k: v for k, (v, _secret) in outputs.items()}, ensure_ascii=False)
    leaks += [f"stack output: {n}" for n, s in secrets.items() if s in text]
    assert leaks == []
    assert not any(is_secret for _v, is_secret in outputs.values()), "no output needs to be secret"

    if variant == "kubeconfig":
        provider = mocks.one("pulumi:providers:kubernetes", "kubernetes")
        assert provider.is_secret("kubeconfig") or rpc.is_rpc_secret(provider.inputs["kubeconfig"])
        assert BEARER in unwrap_secrets(provider.inputs)["kubeconfig"]
    if variant == "external-db":
        assert any(
            ADMIN_PASSWORD in json.dumps(unwrap_secrets(r.inputs), ensure_ascii=False)
            for r in mocks.resources
        )


def test_the_token_is_not_a_stack_output(tmp_path: Path) -> None:
    _mocks, outputs = run_recording("alice", variant_config("alice", "committed", tmp_path))
    assert "kusciaapiToken" not in outputs
