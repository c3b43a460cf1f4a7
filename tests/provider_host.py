"""Drive a dynamic provider through Pulumi's REAL provider host (`python -m pulumi.dynamic`).

There is no Pulumi CLI here, so this harness plays the engine's part, following the engine's own
code (tests/PROVIDER_HOST.md cites the files): it starts the host as its own process with the
engine's address as the only argument, reads the port from the first stdout line, negotiates with
`Configure`, and marshals props the way the engine does for a provider that answered
`acceptSecrets: false` (as this host does): secrets go over the wire as plain values, unknowns are
kept only where the engine keeps them (Check and Diff at preview), and after Create/Update/Read the
engine marks outputs secret again (inputs that were secret, then `additional_secret_outputs`).

The host never dials the engine back (its `main()` reads no argument), so what a provider says
reaches the user as the host's stderr lines, which the engine turns into diagnostics. The harness
records them (`diagnostics`), and any `Log` call on the fake engine (`engine_logs`).
"""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from concurrent import futures
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import grpc
from google.protobuf import empty_pb2, json_format, struct_pb2
from pulumi.dynamic import ResourceProvider
from pulumi.dynamic.dynamic import serialize_provider
from pulumi.runtime import rpc
from pulumi.runtime._serialization import _serialize
from pulumi.runtime.proto import engine_pb2_grpc, provider_pb2, provider_pb2_grpc

ROOT = Path(__file__).resolve().parent.parent
PROVIDER_KEY = "__provider"
SECRET_SIG = rpc._special_secret_sig  # "1b47061264138c4ac30d75fd1eb44270"
SIG_KEY = rpc._special_sig_key  # "4dabf18193072939515e22adb298388d"
UNKNOWN = rpc.UNKNOWN  # "04da6b54-80e4-46f7-96ec-b56ff0331ba9", the engine's unknown string
START_TIMEOUT = 20.0  # importing pulumi + grpc in a fresh interpreter, on a busy 2-core machine
CALL_TIMEOUT = 30.0
# The host's gRPC server: `futures.ThreadPoolExecutor(max_workers=4)` in pulumi/dynamic/__main__.py.
HOST_WORKERS = 4


def peering_api() -> SimpleNamespace:
    """The PartnerLink pieces these tests use, from one place: a later move changes only this."""
    from kuscia_components.peering import provider, resource

    return SimpleNamespace(
        PartnerLink=resource.PartnerLink,
        PartnerLinkProvider=provider.PartnerLinkProvider,
        SECRET_OUTPUTS=resource.SECRET_OUTPUTS,
    )


@dataclass(frozen=True)
class Secret:
    """A secret value in plain props (the engine's `resource.MakeSecret`)."""

    value: Any


@dataclass(frozen=True)
class Diagnostic:
    """One line the host wrote, as the engine's `runtrace` turns it into a diagnostic."""

    at: float  # time.monotonic() when the harness read it
    stream: str  # "stdout" or "stderr"
    text: str


@dataclass
class Outcome:
    """A Create/Update/Read answer: what the host sent, and what the engine would store."""

    id: str
    wire: dict[str, Any]  # as the host returned it (Secret only where the wire says so)
    state: dict[str, Any]  # after the engine re-marks secrets


@dataclass
class CheckOutcome:
    inputs: dict[str, Any]
    failures: list[tuple[str, str]] = field(default_factory=list)


class _FakeEngine(engine_pb2_grpc.EngineServicer):
    """The engine's gRPC service, enough to record a `Log` call should a host ever make one."""

    def __init__(self) -> None:
        self.logs: list[Any] = []

    def Log(self, request: Any, context: Any) -> empty_pb2.Empty:  # the gRPC method name
        self.logs.append(request)
        return empty_pb2.Empty()


def provider_value(provider: ResourceProvider) -> Secret:
    """`__provider` exactly as `pulumi.dynamic.Resource.__init__` registers it: the SDK's own
    dill+base64 serialization, run with serialization enabled, and secret (the SDK default,
    `serialize_as_secret_always`)."""
    serialized, _contains_secrets = _serialize(True, serialize_provider, provider)
    return Secret(serialized)


def to_wire(value: Any, *, keep_secrets: bool, keep_unknowns: bool) -> Any:
    """One value as the engine's MarshalPropertyValue sends it; `_DROP` where it skips it."""
    if isinstance(value, Secret):
        inner = to_wire(value.value, keep_secrets=keep_secrets, keep_unknowns=keep_unknowns)
        return {SIG_KEY: SECRET_SIG, "value": inner} if keep_secrets and inner is not _DROP else inner
    if isinstance(value, str) and value == UNKNOWN:
        return UNKNOWN if keep_unknowns else _DROP
    if isinstance(value, Mapping):
        out = {
            k: to_wire(v, keep_secrets=keep_secrets, keep_unknowns=keep_unknowns) for k, v in value.items()
        }
        return {k: v for k, v in out.items() if v is not _DROP}
    if isinstance(value, (list, tuple)):
        items = [to_wire(v, keep_secrets=keep_secrets, keep_unknowns=keep_unknowns) for v in value]
        return [v for v in items if v is not _DROP]
    return value


_DROP = object()


def to_struct(props: Mapping[str, Any], *, keep_secrets: bool, keep_unknowns: bool) -> struct_pb2.Struct:
    struct = struct_pb2.Struct()
    struct.update(to_wire(dict(props), keep_secrets=keep_secrets, keep_unknowns=keep_unknowns))
    return struct


def from_wire(value: Any) -> Any:
    """What the host sent, with the secret signature read back as `Secret`."""
    if isinstance(value, dict):
        if value.get(SIG_KEY) == SECRET_SIG:
            return Secret(from_wire(value.get("value")))
        return {k: from_wire(v) for k, v in value.items()}
    if isinstance(value, list):
        return [from_wire(v) for v in value]
    return value


def from_struct(struct: struct_pb2.Struct) -> dict[str, Any]:
    decoded: dict[str, Any] = from_wire(json_format.MessageToDict(struct))
    return decoded


def contains_secret(value: Any) -> bool:
    if isinstance(value, Secret):
        return True
    if isinstance(value, Mapping):
        return any(contains_secret(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(contains_secret(v) for v in value)
    return False


def annotate_secrets(outs: dict[str, Any], ins: Mapping[str, Any]) -> dict[str, Any]:
    """The engine's annotateSecrets: an output whose input was (or held) a secret is secret;
    objects on both sides are walked key by key."""
    result = dict(outs)
    for key, in_value in ins.items():
        if key not in result:
            continue
        out_value = result[key]
        if isinstance(out_value, Mapping) and isinstance(in_value, Mapping):
            result[key] = annotate_secrets(dict(out_value), in_value)
        elif not isinstance(out_value, Secret) and contains_secret(in_value):
            result[key] = Secret(out_value)
    return result


def plain(value: Any) -> Any:
    """Secrets unwrapped: what a provider's code sees."""
    if isinstance(value, Secret):
        return plain(value.value)
    if isinstance(value, Mapping):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


class ProviderHost:
    """One `python -m pulumi.dynamic` process serving `provider`, as the engine runs it.

    Use as a context manager: the process is killed at exit whatever happened. Props are plain
    dicts; mark secrets with `Secret(...)` and unknowns with `UNKNOWN`. `__provider` is added.
    """

    def __init__(
        self,
        provider: ResourceProvider,
        *,
        type_token: str,
        secret_outputs: tuple[str, ...] | list[str] = (),
        call_timeout: float = CALL_TIMEOUT,
    ) -> None:
        self.provider = provider_value(provider)
        self.type_token = type_token  # e.g. "pulumi-python:dynamic/kuscia:DomainIdentity"
        self.secret_outputs = tuple(secret_outputs)
        self.call_timeout = call_timeout
        self.diagnostics: list[Diagnostic] = []
        self.engine = _FakeEngine()
        self.accept_secrets = True  # until Configure says otherwise, as in the engine
        self.port = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._server: grpc.Server | None = None
        self._channel: grpc.Channel | None = None
        self._readers: list[threading.Thread] = []
        self._lock = threading.Lock()

    # -- lifecycle ---------------------------------------------------------------------------------

    def __enter__(self) -> ProviderHost:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def start(self) -> None:
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        engine_pb2_grpc.add_EngineServicer_to_server(self.engine, self._server)
        engine_port = self._server.add_insecure_port("127.0.0.1:0")
        self._server.start()
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
        # The engine runs pulumi-resource-pulumi-python, i.e. `python -u -m pulumi.dynamic $@`, with
        # the engine address as the plugin's argument, in the program's directory.
        self._proc = subprocess.Popen(
            [sys.executable, "-u", "-m", "pulumi.dynamic", f"127.0.0.1:{engine_port}"],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self.port = self._read_port()
        self._follow(self._proc.stdout, "stdout")
        self._follow(self._proc.stderr, "stderr")
        self._channel = grpc.insecure_channel(f"127.0.0.1:{self.port}")
        grpc.channel_ready_future(self._channel).result(timeout=START_TIMEOUT)
        self.stub = provider_pb2_grpc.ResourceProviderStub(self._channel)
        self._configure()

    def _read_port(self) -> int:
        """The first stdout line is the port (the engine's parsePort); anything else is an error
        that shows what the host printed to stderr."""
        assert self._proc is not None and self._proc.stdout is not None
        lines: queue.Queue[bytes] = queue.Queue()
        stdout = self._proc.stdout
        reader = threading.Thread(target=lambda: lines.put(stdout.readline()), daemon=True)
        reader.start()
        try:
            line = lines.get(timeout=START_TIMEOUT)
        except queue.Empty:
            raise RuntimeError(f"provider host printed no port within {START_TIMEOUT:.0f} s") from None
        try:
            port = int(line.decode().strip())
        except ValueError:
            self._proc.kill()
            err = self._proc.stderr.read().decode(errors="replace") if self._proc.stderr else ""
            raise RuntimeError(
                f"provider host wrote {line!r} instead of a port; stderr: {err[-2000:]}"
            ) from None
        if not 0 < port < 65536:
            raise RuntimeError(f"provider host wrote an invalid port {port}")
        return port

    def _follow(self, stream: Any, name: str) -> None:
        def run() -> None:
            for raw in iter(stream.readline, b""):
                text = raw.decode(errors="replace").rstrip("\n")
                if text.strip():
                    with self._lock:
                        self.diagnostics.append(Diagnostic(time.monotonic(), name, text))

        thread = threading.Thread(target=run, name=f"provider-host-{name}", daemon=True)
        thread.start()
        self._readers.append(thread)

    def _configure(self) -> None:
        """As the engine does for the default `pulumi-python` provider: Handshake (this host does
        not implement it, and the engine carries on), then Configure with no config."""
        try:
            self.stub.Handshake(
                provider_pb2.ProviderHandshakeRequest(engine_address=""), timeout=self.call_timeout
            )
        except grpc.RpcError as err:
            if err.code() != grpc.StatusCode.UNIMPLEMENTED:
                raise
        self.plugin_info = self.stub.GetPluginInfo(empty_pb2.Empty(), timeout=self.call_timeout)
        answer = self.stub.Configure(
            provider_pb2.ConfigureRequest(
                type="pulumi:providers:pulumi-python",
                acceptSecrets=True,
                acceptResources=True,
                sends_old_inputs=True,
                sends_old_inputs_to_delete=True,
                args=struct_pb2.Struct(),
            ),
            timeout=self.call_timeout,
        )
        self.accept_secrets = answer.acceptSecrets
        self.supports_preview = answer.supportsPreview

    def close(self) -> None:
        if self._channel is not None:
            self._channel.close()
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
        if self._proc is not None:
            self._proc.wait(timeout=10)
            for stream in (self._proc.stdout, self._proc.stderr):
                if stream is not None:
                    stream.close()
        for thread in self._readers:
            thread.join(timeout=5)
        if self._server is not None:
            self._server.stop(grace=None)

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def stderr_text(self) -> str:
        with self._lock:
            return "\n".join(d.text for d in self.diagnostics)

    # -- marshalling -------------------------------------------------------------------------------

    def _props(
        self, props: Mapping[str, Any] | None, *, unknowns: bool, provider: bool = True
    ) -> struct_pb2.Struct:
        full = dict(props or {})
        if provider and props is not None:
            full.setdefault(PROVIDER_KEY, self.provider)
        return to_struct(full, keep_secrets=self.accept_secrets, keep_unknowns=unknowns)

    def _stored(self, wire: dict[str, Any], inputs: Mapping[str, Any]) -> dict[str, Any]:
        """What the engine keeps: secretness copied from the inputs, then the program's
        additional_secret_outputs (source_eval.go) applied."""
        state = annotate_secrets(wire, {**inputs, PROVIDER_KEY: self.provider})
        for key in self.secret_outputs:
            if key in state and state[key] is not None and not isinstance(state[key], Secret):
                state[key] = Secret(state[key])
        return state

    def urn(self, name: str) -> str:
        return f"urn:pulumi:test::kuscia::{self.type_token}::{name}"

    # -- the calls ---------------------------------------------------------------------------------

    def check(
        self,
        news: Mapping[str, Any],
        olds: Mapping[str, Any] | None = None,
        *,
        name: str = "r",
        preview: bool = False,
    ) -> CheckOutcome:
        answer = self.stub.Check(
            provider_pb2.CheckRequest(
                urn=self.urn(name),
                name=name,
                type=self.type_token,
                olds=self._props(olds or {}, unknowns=preview, provider=olds is not None),
                news=self._props(news, unknowns=preview),
            ),
            timeout=self.call_timeout,
        )
        inputs = annotate_secrets(from_struct(answer.inputs), {**news, PROVIDER_KEY: self.provider})
        return CheckOutcome(inputs, [(f.property, f.reason) for f in answer.failures])

    def diff(
        self,
        id_: str,
        olds: Mapping[str, Any],
        news: Mapping[str, Any],
        *,
        old_inputs: Mapping[str, Any] | None = None,
        name: str = "r",
        preview: bool = False,
    ) -> provider_pb2.DiffResponse:
        return self.stub.Diff(
            provider_pb2.DiffRequest(
                id=id_,
                urn=self.urn(name),
                name=name,
                type=self.type_token,
                olds=self._props(olds, unknowns=preview),
                news=self._props(news, unknowns=preview),
                old_inputs=self._props(old_inputs if old_inputs is not None else olds, unknowns=preview),
            ),
            timeout=self.call_timeout,
        )

    def create(self, inputs: Mapping[str, Any], *, name: str = "r", timeout: float | None = None) -> Outcome:
        """Not at preview: this host does not answer `supportsPreview`, so the engine never calls
        Create during a preview (provider_plugin.go returns the inputs as state instead)."""
        answer = self.stub.Create(
            provider_pb2.CreateRequest(
                urn=self.urn(name),
                name=name,
                type=self.type_token,
                properties=self._props(inputs, unknowns=False),
                timeout=timeout or self.call_timeout,
            ),
            timeout=timeout or self.call_timeout,
        )
        wire = from_struct(answer.properties)
        return Outcome(answer.id, wire, self._stored(wire, inputs))

    def read(
        self, id_: str, state: Mapping[str, Any], inputs: Mapping[str, Any], *, name: str = "r"
    ) -> Outcome:
        answer = self.stub.Read(
            provider_pb2.ReadRequest(
                id=id_,
                urn=self.urn(name),
                name=name,
                type=self.type_token,
                properties=self._props(state, unknowns=False),
                inputs=self._props(inputs, unknowns=False),
            ),
            timeout=self.call_timeout,
        )
        wire = from_struct(answer.properties)
        return Outcome(answer.id, wire, self._stored(wire, state))

    def update(
        self,
        id_: str,
        olds: Mapping[str, Any],
        news: Mapping[str, Any],
        *,
        old_inputs: Mapping[str, Any] | None = None,
        name: str = "r",
    ) -> Outcome:
        answer = self.stub.Update(
            provider_pb2.UpdateRequest(
                id=id_,
                urn=self.urn(name),
                name=name,
                type=self.type_token,
                olds=self._props(olds, unknowns=False),
                news=self._props(news, unknowns=False),
                old_inputs=self._props(old_inputs if old_inputs is not None else olds, unknowns=False),
                timeout=self.call_timeout,
            ),
            timeout=self.call_timeout,
        )
        wire = from_struct(answer.properties)
        return Outcome(id_, wire, self._stored(wire, news))

    def delete(
        self, id_: str, state: Mapping[str, Any], inputs: Mapping[str, Any] | None = None, *, name: str = "r"
    ) -> None:
        self.stub.Delete(
            provider_pb2.DeleteRequest(
                id=id_,
                urn=self.urn(name),
                name=name,
                type=self.type_token,
                properties=self._props(state, unknowns=False),
                old_inputs=self._props(inputs if inputs is not None else state, unknowns=False),
                timeout=self.call_timeout,
            ),
            timeout=self.call_timeout,
        )

    def plugin_info_latency(self) -> float:
        """Seconds a GetPluginInfo takes now: how long any call waits for a free host worker."""
        started = time.monotonic()
        self.stub.GetPluginInfo(empty_pb2.Empty(), timeout=self.call_timeout)
        return time.monotonic() - started


__all__ = [
    "HOST_WORKERS",
    "PROVIDER_KEY",
    "SECRET_SIG",
    "UNKNOWN",
    "CheckOutcome",
    "Diagnostic",
    "Outcome",
    "ProviderHost",
    "Secret",
    "peering_api",
    "plain",
    "provider_value",
]
