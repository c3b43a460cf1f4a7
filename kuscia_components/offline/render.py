"""Offline plan: run the party program without a cluster and write what it would deploy.

The program runs under `OfflineMocks`: our local providers (identity, passwords) really run, so
the key and certificate are real; everything that needs a cluster or a partner is shown as a
placeholder. Every secret value is replaced by a visible placeholder unless the caller asks for
secrets explicitly (the one policy of core.redact: whole values, their lines, their base64).
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from kuscia_components.config import PartyConfig
from kuscia_components.core.redact import Redactor
from kuscia_components.offline.manifest import conventional_order, exact_types
from kuscia_components.offline.mocks import OfflineMocks, RecordedResource, run_offline, unwrap_secrets
from kuscia_components.offline.outdir import claim, write_owned

Dumper: type[yaml.SafeDumper] = getattr(yaml, "CSafeDumper", yaml.SafeDumper)

REDACTED = "<redacted secret; --show-secrets reveals it>"
PEER_CERT_PLACEHOLDER = "<certificate of {peer}: read from stack {stack} at deploy>"
KUBERNETES_PREFIX = "kubernetes:"
# The order `kubectl apply -f DIR` needs: what others refer to comes first.
KIND_RANK = {
    kind: rank
    for rank, kind in enumerate(
        [
            *("Namespace", "ServiceAccount", "Role", "RoleBinding", "NetworkPolicy"),
            *("Secret", "Service", "StatefulSet", "Deployment"),
        ]
    )
}


@dataclass
class RenderedObject:
    kind: str
    name: str
    namespace: str
    filename: str


@dataclass
class RenderResult:
    out_dir: Path
    objects: list[RenderedObject] = field(default_factory=list)
    other_resources: list[tuple[str, str]] = field(default_factory=list)  # (type, name)
    secrets_shown: bool = False
    warnings: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)  # every file written, all.yaml included

    def summary_table(self) -> str:
        rows = [("KIND", "NAME", "NAMESPACE", "FILE")]
        rows += [(o.kind, o.name, o.namespace or "-", o.filename) for o in self.objects]
        widths = [max(len(r[i]) for r in rows) for i in range(4)]
        lines = ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in rows]
        if self.other_resources:
            lines.append("")
            lines.append("Also planned (not Kubernetes objects):")
            lines += [f"  {typ}  {name}" for typ, name in self.other_resources]
        return "\n".join(lines)


def plan(cfg: PartyConfig, *, stack: str, project: str = "kuscia-p2p") -> OfflineMocks:
    """Run the party program offline; return the mocks holding every recorded resource."""
    from kuscia_components.program import party_program

    mocks = OfflineMocks(stack_outputs=_placeholder_peer_outputs(cfg), execute_dynamic=_offline_safe)
    with quiet_gc():
        run_offline(lambda: party_program(cfg), mocks, project=project, stack=stack)
    return mocks


@contextmanager
def quiet_gc() -> Iterator[None]:
    """The program allocates many small objects and frees little (typing, pulumi_kubernetes
    classes, Outputs): keep the cyclic GC from rescanning them all, then restore it."""
    thresholds = gc.get_threshold()
    gc.freeze()  # what is alive now (the imports) is never collected anyway
    gc.set_threshold(100_000, 50, 100)
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()


def render(
    cfg: PartyConfig,
    out_dir: Path,
    *,
    stack: str,
    show_secrets: bool = False,
) -> RenderResult:
    """Write every Kubernetes object as YAML, plus kuscia.yaml, into `out_dir` (which render owns:
    see offline/outdir.py); raises OutputDirError before planning when it cannot write there."""
    previous = claim(out_dir)
    mocks = plan(cfg, stack=stack)
    redact = Redactor([] if show_secrets else mocks.secret_values(), mask=REDACTED)
    result = RenderResult(out_dir=out_dir, secrets_shown=show_secrets, warnings=unread_stack_warnings(cfg))
    files: dict[str, str] = {}
    manifests = [
        kubernetes_manifest(res, show_secrets=show_secrets)
        for res in mocks.resources
        if res.type.startswith(KUBERNETES_PREFIX) and not res.type.startswith("pulumi:providers:")
    ]
    for manifest in sorted(manifests, key=apply_order):
        text = redact(dump_yaml(manifest))
        kind = str(manifest.get("kind"))
        meta = manifest.get("metadata", {})
        name, namespace = str(meta.get("name", "")), str(meta.get("namespace", ""))
        filename = f"{KIND_RANK.get(kind, 99):02d}-{kind.lower()}-{name}.yaml"
        if filename in files:  # the same kind and name in two namespaces
            filename = f"{KIND_RANK.get(kind, 99):02d}-{kind.lower()}-{namespace}-{name}.yaml"
        files[filename] = text
        result.objects.append(RenderedObject(kind, name, namespace, filename))
    files["all.yaml"] = "---\n".join(files.values())

    config_secret = next(
        (r for r in mocks.resources if r.type == "kubernetes:core/v1:Secret" and r.name.endswith("-config")),
        None,
    )
    if config_secret is not None:
        kuscia_yaml = unwrap_secrets(config_secret.inputs.get("stringData", {})).get("kuscia.yaml", "")
        files["kuscia.yaml"] = redact(kuscia_yaml)
        result.objects.append(
            RenderedObject("kuscia.yaml", "(node config, inside the Secret)", cfg.namespace, "kuscia.yaml")
        )
    result.files = write_owned(out_dir, files, previous)
    result.other_resources = [
        (r.type, r.name) for r in mocks.resources if not r.type.startswith(KUBERNETES_PREFIX)
    ]
    return result


def apply_order(manifest: dict[str, Any]) -> tuple[int, str, str]:
    """Namespace first, workloads last (kubectl apply -f DIR goes by file name)."""
    meta = manifest.get("metadata", {})
    kind = str(manifest.get("kind"))
    return KIND_RANK.get(kind, 99), str(meta.get("namespace", "")), str(meta.get("name", ""))


def dump_yaml(manifest: dict[str, Any]) -> str:
    text: str = yaml.dump(manifest, Dumper=Dumper, sort_keys=False)
    return text


def kubernetes_manifest(res: RecordedResource, *, show_secrets: bool) -> dict[str, Any]:
    """The object as it would be sent to the API server; Secret payloads redacted by default."""
    inputs = unwrap_secrets(res.inputs)
    manifest = {"apiVersion": inputs.pop("apiVersion", None), "kind": inputs.pop("kind", None), **inputs}
    if manifest["kind"] == "Secret" and not show_secrets:
        for key in ("data", "stringData"):
            if isinstance(manifest.get(key), dict):
                manifest[key] = {k: REDACTED for k in manifest[key]}
    return conventional_order(exact_types({k: v for k, v in manifest.items() if v is not None}))


def _offline_safe(provider: Any) -> bool:
    """Only providers that compute locally run offline; peering needs a live cluster."""
    return bool(getattr(provider, "offline_safe", False))


def unread_stack_warnings(cfg: PartyConfig) -> list[str]:
    """Offline there is no backend, so partner stacks are not read (`pulumi up` fails on one
    that does not exist): say so, and render with a placeholder bundle."""
    return [
        f"partner stack {peer.stack!r} ({peer.domain_id}) was not read: offline has no Pulumi backend, "
        f"so its peeringBundle is a placeholder. `pulumi up` needs that stack to exist "
        f"(`pulumi stack init {peer.stack}`)."
        for peer in cfg.peers
        if peer.stack is not None
    ]


def _placeholder_peer_outputs(cfg: PartyConfig) -> dict[str, dict[str, Any]]:
    outputs: dict[str, dict[str, Any]] = {}
    for peer in cfg.peers:
        if peer.stack is not None:
            outputs[peer.stack] = {
                "peeringBundle": {
                    "domainId": peer.domain_id,
                    "cert": PEER_CERT_PLACEHOLDER.format(peer=peer.domain_id, stack=peer.stack),
                    "endpoint": f"<public endpoint of {peer.domain_id}: read from stack {peer.stack} at deploy>",
                    "protocol": f"<protocol of {peer.domain_id}: read from stack {peer.stack} at deploy>",
                }
            }
    return outputs
