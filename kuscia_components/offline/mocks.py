"""Run the Pulumi program without an engine or a cluster.

`OfflineMocks` stands in for the Pulumi engine and the providers, for `render` and for tests:
- dynamic resources (our own providers) really run their `create`, so keys, certificates and
  passwords are real;
- Kubernetes objects echo their inputs, and values only a cluster knows (a Service's ClusterIP)
  are filled with a clear placeholder or a value the caller chooses;
- `additionalSecretOutputs` are honoured the way the engine honours them, so secret-ness can be
  asserted and redacted;
- every resource is recorded with its type, name, parent and state.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import pulumi
from pulumi.runtime import rpc
from pulumi.runtime.mocks import MockCallArgs, MockMonitor, MockResourceArgs, Mocks, _resolve_callbacks
from pulumi.runtime.proto import resource_pb2
from pulumi.runtime.sync_await import _ensure_event_loop, _sync_await

CLUSTER_IP_PLACEHOLDER = "<ClusterIP: assigned by Kubernetes at deploy>"
DYNAMIC_TYPE_PREFIX = "pulumi-python:dynamic"
STACK_REFERENCE_TYPE = "pulumi:pulumi:StackReference"


class UnknownStack(Exception):
    """A StackReference to a stack the (mock) backend does not hold; the engine's own words."""

    def __init__(self, name: str) -> None:
        super().__init__(f"unknown stack {name!r}".replace("'", '"'))
        self.stack = name


@dataclass
class RecordedResource:
    """One registered resource as the engine would have seen it."""

    type: str
    name: str
    urn: str
    parent_urn: str
    id: str
    inputs: dict[str, Any]  # secret values are wrapped as RPC secrets (see `is_secret`)
    state: dict[str, Any]  # likewise
    dependencies: list[str] = field(default_factory=list)  # URNs it depends on
    custom_timeouts: dict[str, str] = field(default_factory=dict)  # create/update/delete, set ones

    @property
    def plain_state(self) -> dict[str, Any]:
        plain: dict[str, Any] = unwrap_secrets(self.state)
        return plain

    @property
    def plain_inputs(self) -> dict[str, Any]:
        plain: dict[str, Any] = unwrap_secrets(self.inputs)
        return plain

    def is_secret(self, key: str) -> bool:
        """True when the output `key` reaches the engine as a secret (or holds one)."""
        return contains_secret(self.state.get(key))


@dataclass
class OfflineMocks(Mocks):
    """Mocks that execute dynamic providers and echo everything else (see module docstring)."""

    cluster_ip: str = CLUSTER_IP_PLACEHOLDER
    cluster_ips: Mapping[str, str] = field(default_factory=dict)  # Service name -> its own ClusterIP
    # The stacks that exist, with their outputs; a reference to any other stack fails.
    stack_outputs: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    resources: list[RecordedResource] = field(default_factory=list)
    on_dynamic_create: Callable[[str, dict[str, Any]], None] | None = None
    # Which dynamic providers really run; the others only echo their inputs (a plan).
    execute_dynamic: Callable[[Any], bool] = field(default=lambda provider: True)

    def call(self, args: MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        return {}, None

    def new_resource(self, args: MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        if args.typ.startswith(DYNAMIC_TYPE_PREFIX):
            return self._create_dynamic(args)
        if args.typ == STACK_REFERENCE_TYPE:
            return self._read_stack(str(unwrap_secrets(args.inputs).get("name", args.name)))
        state = dict(args.inputs)
        if args.typ == "kubernetes:core/v1:Service":
            spec = dict(unwrap_secrets(state.get("spec") or {}))
            if spec.get("clusterIP") in (None, ""):
                spec["clusterIP"] = self.cluster_ips.get(_metadata_name(state) or "", self.cluster_ip)
            state["spec"] = spec
        resource_id = _metadata_name(state) or args.name
        return resource_id, state

    def _read_stack(self, name: str) -> tuple[str, dict[str, Any]]:
        """As the engine reads a StackReference: a stack that does not exist is an error
        (pulumi pkg/backend/backend.go GetStackOutputs: `unknown stack "bob"`; the diy backend
        returns no stack for a missing one), an existing stack without outputs yields {}."""
        if name not in self.stack_outputs:
            raise UnknownStack(name)
        outputs = dict(self.stack_outputs[name])
        return name, {"name": name, "outputs": outputs, "secretOutputNames": []}

    def _create_dynamic(self, args: MockResourceArgs) -> tuple[str, dict[str, Any]]:
        import dill

        inputs = unwrap_secrets(args.inputs)
        serialized = inputs.pop("__provider")
        provider = dill.loads(base64.b64decode(serialized))
        # The engine keeps an output secret when the input of the same name was secret
        # (pulumi sdk/go/common/resource/plugin/provider_plugin.go, annotateSecrets).
        secret_inputs = {k for k, v in args.inputs.items() if rpc.is_rpc_secret(v)} - {"__provider"}
        resource_id = args.name
        if not self.execute_dynamic(provider):
            outs = {**inputs}
        else:
            result = provider.create(inputs)
            resource_id, outs = str(result.id), dict(result.outs or {})
            if self.on_dynamic_create is not None:
                self.on_dynamic_create(args.name, outs)
        for key in secret_inputs & set(outs):
            outs[key] = _secret(outs[key])
        # Keep the serialized provider in state like the engine does, so tests can inspect it.
        outs["__provider"] = serialized
        return resource_id, outs

    # -- queries used by tests and render ---------------------------------------------------

    def of_type(self, typ: str) -> list[RecordedResource]:
        return [r for r in self.resources if r.type == typ]

    def one(self, typ: str, name: str | None = None) -> RecordedResource:
        found = [r for r in self.of_type(typ) if name is None or r.name == name]
        if len(found) != 1:
            names = [r.name for r in self.of_type(typ)]
            raise LookupError(f"expected one {typ} named {name!r}, found {names}")
        return found[0]

    def by_urn(self, urn: str) -> RecordedResource | None:
        return next((r for r in self.resources if r.urn == urn), None)

    def secret_values(self) -> list[str]:
        """Every secret string our own resources produced or received, longest first.

        Kubernetes Secrets are skipped: they mark every payload secret by container (a public
        certificate, a database name), not because each value is a secret by nature.
        """
        found: set[str] = set()
        for res in self.resources:
            if res.type.startswith("kubernetes:"):
                continue
            for value in (res.inputs, res.state):
                found.update(_secret_strings(value, inside_secret=False))
        found.discard("")
        return sorted(found, key=len, reverse=True)


class OfflineMonitor(MockMonitor):
    """A MockMonitor that records parents and applies `additionalSecretOutputs` like the engine."""

    mocks: OfflineMocks

    def __init__(self, mocks: OfflineMocks) -> None:
        super().__init__(mocks)

    def RegisterResource(self, request: Any) -> Any:
        """MockMonitor's registration, done once: the inputs are decoded and the state encoded a
        single time (calling the base class and then re-doing both cost ~1 ms per resource)."""
        urn = self.make_urn(request.parent, request.type, request.name)
        if request.type == "pulumi:pulumi:Stack":
            return resource_pb2.RegisterResourceResponse(urn=urn)
        _ensure_event_loop()  # deserializing resource references needs a loop on this thread
        inputs = rpc.deserialize_properties(request.object)
        resource_args = MockResourceArgs(
            typ=request.type,
            name=request.name,
            inputs=inputs,
            provider=request.provider,
            resource_id=request.importId,
            custom=request.custom or False,
            transforms=_resolve_callbacks(request.transforms),
        )
        new_id, state = self.mocks.new_resource(resource_args)
        resource_id, state = new_id or "", dict(state)
        for key in request.additionalSecretOutputs:  # what the engine does with this option
            if key in state and not rpc.is_rpc_secret(state[key]):
                state[key] = rpc.wrap_rpc_secret(state[key])
        self.resources[urn] = MockMonitor.ResourceRegistration(urn, resource_id, state)
        self.mocks.resources.append(
            RecordedResource(
                type=request.type,
                name=request.name,
                urn=urn,
                parent_urn=request.parent,
                id=resource_id,
                inputs=inputs,
                state=state,
                dependencies=list(request.dependencies),
                custom_timeouts={
                    key: value
                    for key in ("create", "update", "delete")
                    if (value := getattr(request.customTimeouts, key))
                },
            )
        )
        obj = _sync_await(rpc.serialize_properties(state, {}))
        return resource_pb2.RegisterResourceResponse(urn=urn, id=resource_id, object=obj)


def install(mocks: OfflineMocks, *, project: str = "kuscia-p2p", stack: str = "dev") -> OfflineMonitor:
    """Point the Pulumi runtime at `mocks` (call before creating resources)."""
    monitor = OfflineMonitor(mocks)
    pulumi.runtime.set_mocks(mocks, project=project, stack=stack, preview=False, monitor=monitor)
    return monitor


def run_offline(
    program: Callable[[], object],
    mocks: OfflineMocks,
    *,
    project: str = "kuscia-p2p",
    stack: str = "dev",
    config: Mapping[str, str] | None = None,
    secret_keys: list[str] | None = None,
) -> dict[str, Any]:
    """Run `program` to completion under `mocks`; return the stack outputs (secrets unwrapped).

    Raises whatever the program raised (for example a ConfigError) after the run settles.
    """
    if config is not None:
        pulumi.runtime.set_all_config(dict(config), secret_keys or [])
    _fresh_runtime()
    install(mocks, project=project, stack=stack)
    outputs: dict[str, Any] = {}

    def _program() -> pulumi.Output[Any]:
        program()
        stack_resource = pulumi.runtime.settings.get_root_resource()
        exported = getattr(stack_resource, "outputs", {}) if stack_resource else {}
        keys = list(exported)
        return pulumi.Output.all(*[exported[k] for k in keys]).apply(
            lambda values: outputs.update(zip(keys, values, strict=True))
        )

    pulumi.runtime.test(_program)()
    return outputs


def _fresh_runtime() -> None:
    """Each run gets a new root Stack: set_mocks reuses an existing one, so its exports (and a
    failure hidden in them) would otherwise leak from one run into the next."""
    from pulumi.runtime.settings import ROOT

    ROOT.set(None)


# -- RPC secret helpers -----------------------------------------------------------------------


def unwrap_secrets(value: Any) -> Any:
    """Strip RPC secret wrappers, recursively."""
    if rpc.is_rpc_secret(value):
        return unwrap_secrets(rpc.unwrap_rpc_secret(value))
    if isinstance(value, dict):
        return {k: unwrap_secrets(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unwrap_secrets(v) for v in value]
    return value


def contains_secret(value: Any) -> bool:
    if rpc.is_rpc_secret(value):
        return True
    if isinstance(value, dict):
        return any(contains_secret(v) for v in value.values())
    if isinstance(value, list):
        return any(contains_secret(v) for v in value)
    return False


def _secret_strings(value: Any, *, inside_secret: bool) -> Iterator[str]:
    if rpc.is_rpc_secret(value):
        yield from _secret_strings(rpc.unwrap_rpc_secret(value), inside_secret=True)
    elif isinstance(value, dict):
        for key, item in value.items():
            if key != "__provider":
                yield from _secret_strings(item, inside_secret=inside_secret)
    elif isinstance(value, list):
        for item in value:
            yield from _secret_strings(item, inside_secret=inside_secret)
    elif inside_secret and isinstance(value, str):
        yield value


def _metadata_name(state: Mapping[str, Any]) -> str | None:
    metadata = unwrap_secrets(state.get("metadata"))
    if isinstance(metadata, dict) and isinstance(metadata.get("name"), str):
        return str(metadata["name"])
    return None


def _secret(value: Any) -> dict[str, Any]:
    """A value wrapped as the RPC layer marks a secret (what `unwrap_secrets` strips)."""
    if rpc.is_rpc_secret(value):
        return dict(value)
    return {rpc._special_sig_key: rpc._special_secret_sig, "value": value}
