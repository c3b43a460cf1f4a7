"""Our dynamic providers through Pulumi's REAL provider host (`python -m pulumi.dynamic`).

The host process, its gRPC server, dill and the SDK's (de)serialization are real; the engine's side
is tests/provider_host.py, written from the engine's code. PartnerLink tests run against the
EMULATED Kubernetes API server and Kuscia nodes (tests/emulator), so they carry `emulated` in
their names.
"""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
import pytest
from pulumi.runtime.proto import provider_pb2

from kuscia_components.core import pki
from kuscia_components.node import identity, passwords
from tests.emulator import KusciaEmulator
from tests.helpers import link_props
from tests.provider_host import (
    HOST_WORKERS,
    PROVIDER_KEY,
    UNKNOWN,
    ProviderHost,
    Secret,
    peering_api,
    plain,
    provider_value,
)

link = peering_api()
IDENTITY_TYPE = "pulumi-python:dynamic/kuscia:DomainIdentity"
PASSWORD_TYPE = "pulumi-python:dynamic/kuscia:GeneratedPassword"
LINK_TYPE = "pulumi-python:dynamic/kuscia:PartnerLink"


@pytest.fixture(scope="module")
def identity_host() -> Iterator[ProviderHost]:
    with ProviderHost(
        identity.DomainIdentityProvider(), type_token=IDENTITY_TYPE, secret_outputs=identity.SECRET_OUTPUTS
    ) as host:
        yield host


@pytest.fixture(scope="module")
def password_host() -> Iterator[ProviderHost]:
    with ProviderHost(
        passwords.GeneratedPasswordProvider(), type_token=PASSWORD_TYPE, secret_outputs=["result"]
    ) as host:
        yield host


def _leaks(host: ProviderHost, *values: str) -> list[str]:
    """Every place outside secret state where one of `values` shows up."""
    provider_bytes = base64.b64decode(plain(host.provider)).decode("latin-1")
    places = {"host stderr/stdout": host.stderr_text(), "__provider pickle": provider_bytes}
    places["engine Log"] = "\n".join(str(r) for r in host.engine.logs)
    return [where for where, text in places.items() for v in values if v and v in text]


# -- the host as the engine sees it ------------------------------------------------------------------


def test_host_negotiates_like_the_engine_expects(identity_host: ProviderHost) -> None:
    """The host refuses secrets and previews: the engine strips secret markers before every call,
    re-marks outputs itself, and never calls Create during a preview."""
    assert identity_host.port > 0 and identity_host.alive
    assert identity_host.accept_secrets is False and identity_host.supports_preview is False
    assert identity_host.plugin_info.version == "0.1.0"


# -- DomainIdentity -----------------------------------------------------------------------------------


def test_domain_identity_lifecycle_through_the_real_host(identity_host: ProviderHost) -> None:
    host = identity_host
    checked = host.check({"domain_id": "alice"})
    assert checked.failures == [] and checked.inputs["domain_id"] == "alice"
    created = host.create(checked.inputs, name="alice-identity")
    assert created.id == "domain-identity-alice"
    key = plain(created.state["private_key_pem"])
    assert key.startswith("-----BEGIN RSA PRIVATE KEY-----")
    # The host answers plain values (it refused secrets); the engine's state marks them secret.
    assert not any(isinstance(v, Secret) for v in created.wire.values())
    for name in identity.SECRET_OUTPUTS:
        if name in created.state:
            assert isinstance(created.state[name], Secret), name
    for name in ("cert_pem", "cert_b64", "public_key_sha256", "domain_id"):
        assert not isinstance(created.state[name], Secret), name
    assert isinstance(created.state[PROVIDER_KEY], Secret)
    assert pki.public_key_sha256(created.state["cert_pem"]) == created.state["public_key_sha256"]

    same = host.diff(created.id, created.state, checked.inputs)
    assert same.changes == provider_pb2.DiffResponse.DIFF_NONE and list(same.replaces) == []

    other_key = pki.generate_domain_key()
    rekey = host.diff(created.id, created.state, {"domain_id": "alice", "supplied_key": Secret(other_key)})
    assert rekey.changes == provider_pb2.DiffResponse.DIFF_SOME and list(rekey.replaces) == ["supplied_key"]
    # Supplying the key already in state is no new key: an in-place update keeps the cert.
    keep = {"domain_id": "alice", "supplied_key": Secret(key)}
    kept = host.diff(created.id, created.state, keep)
    assert kept.changes == provider_pb2.DiffResponse.DIFF_SOME and list(kept.replaces) == []
    updated = host.update(created.id, created.state, keep, old_inputs=checked.inputs)
    assert updated.state["cert_pem"] == created.state["cert_pem"]
    assert isinstance(updated.state["supplied_key"], Secret)  # secret input, secret output

    read = host.read(created.id, created.state, checked.inputs)
    assert read.id == created.id and plain(read.state) == plain(created.state)
    assert isinstance(read.state["private_key_pem"], Secret)
    host.delete(created.id, created.state, checked.inputs)
    assert _leaks(host, key, plain(created.state["kusciaapi_token"]), other_key) == []
    assert host.alive


def test_domain_identity_bad_key_is_a_check_failure_without_key_material(identity_host: ProviderHost) -> None:
    checked = identity_host.check(
        {"domain_id": "alice", "supplied_key": Secret("not a key, secret-ish text")}
    )
    assert [prop for prop, _ in checked.failures] == ["supplied_key"]
    assert "secret-ish" not in repr(checked.failures)


# At preview the host hands a provider `pulumi.output.Unknown()` objects, not the UNKNOWN string
# (rpc.deserialize_property with keep_unknowns=True); these failed until the providers normalised
# them (core/preview.py).


def test_domain_identity_unknown_domain_id_at_preview_is_no_failure(identity_host: ProviderHost) -> None:
    checked = identity_host.check({"domain_id": UNKNOWN}, preview=True)
    assert checked.failures == []


def test_domain_identity_unknown_supplied_key_at_preview_does_not_crash(identity_host: ProviderHost) -> None:
    state = identity_host.create({"domain_id": "alice"}).state
    unknown_key = {"domain_id": "alice", "supplied_key": Secret(UNKNOWN)}
    assert identity_host.check(unknown_key, preview=True).failures == []
    diff = identity_host.diff("domain-identity-alice", state, unknown_key, preview=True)
    assert list(diff.replaces) == ["supplied_key"]


def test_domain_identity_unknown_domain_id_diff_at_preview_is_a_replace(identity_host: ProviderHost) -> None:
    state = identity_host.create({"domain_id": "alice"}).state
    diff = identity_host.diff("domain-identity-alice", state, {"domain_id": UNKNOWN}, preview=True)
    assert diff.changes == provider_pb2.DiffResponse.DIFF_SOME and list(diff.replaces) == ["domain_id"]
    assert identity_host.alive


# -- GeneratedPassword --------------------------------------------------------------------------------


def test_generated_password_lifecycle_through_the_real_host(password_host: ProviderHost) -> None:
    host = password_host
    inputs = {"purpose": "db", "length": 24, "keepers": {"host": "db-1"}, "result": None}
    checked = host.check(inputs)
    assert checked.failures == [] and checked.inputs["length"] == 24  # a float on the wire
    created = host.create(checked.inputs, name="db-password")
    secret = created.state["result"]
    assert created.id == "password-db" and isinstance(secret, Secret)
    assert len(secret.value) == 24 and secret.value.isalnum()
    assert not isinstance(created.wire["result"], Secret)  # the engine re-marks it

    same = host.diff(created.id, created.state, checked.inputs)
    assert same.changes == provider_pb2.DiffResponse.DIFF_NONE
    relabel = host.diff(created.id, created.state, {**checked.inputs, "purpose": "other"})
    assert relabel.changes == provider_pb2.DiffResponse.DIFF_NONE  # a label only
    new_keepers = host.diff(created.id, created.state, {**checked.inputs, "keepers": {"host": "db-2"}})
    assert list(new_keepers.replaces) == ["keepers"]

    read = host.read(created.id, created.state, checked.inputs)
    assert read.state["result"] == secret
    host.delete(created.id, created.state, checked.inputs)
    assert _leaks(host, secret.value) == []


def test_generated_password_unknown_inputs_at_preview(password_host: ProviderHost) -> None:
    inputs = {"purpose": "db", "length": 24, "keepers": {"host": UNKNOWN}, "result": None}
    checked = password_host.check(inputs, preview=True)
    assert checked.failures == [] and checked.inputs["keepers"] == {"host": UNKNOWN}
    state = password_host.create({**inputs, "keepers": {"host": "db-1"}}).state
    for news in (inputs, {**inputs, "keepers": {"host": "db-1"}, "length": UNKNOWN}):
        diff = password_host.diff("password-db", state, news, preview=True)
        assert diff.changes == provider_pb2.DiffResponse.DIFF_SOME and len(diff.replaces) == 1
    assert password_host.alive


# -- PartnerLink against EMULATED nodes ---------------------------------------------------------------


def link_inputs(me: Any, other: Any, emu: KusciaEmulator, **changes: Any) -> dict[str, Any]:
    """PartnerLink inputs as the program registers them (helpers.link_props), with the token
    secret and the output slots the engine sends back empty."""
    props: dict[str, Any] = {
        **link_props(me, other, emu),
        "token": Secret(me.token),
        "partner_node": None,
        "route_name": None,
        "status": None,
        "reason": None,
        "diagnosis": None,
        "checked_at": None,
    }
    props.update(changes)
    return props


def register_in_process(me: Any, other: Any, emu: KusciaEmulator) -> None:
    """The partner's own `pulumi up`: its side of the link, without waiting for ours."""
    link.PartnerLinkProvider().create(plain(link_inputs(me, other, emu, timeout_seconds=0.3)))


@pytest.fixture
def link_host() -> Iterator[ProviderHost]:
    with ProviderHost(
        link.PartnerLinkProvider(), type_token=LINK_TYPE, secret_outputs=link.SECRET_OUTPUTS
    ) as host:
        yield host


def test_emulated_partner_link_ready_through_the_real_host(
    emu: KusciaEmulator, link_host: ProviderHost
) -> None:
    alice, bob = emu.add_node("alice"), emu.add_node("bob", protocol="NOTLS")
    register_in_process(bob, alice, emu)
    inputs = link_inputs(alice, bob, emu)
    checked = link_host.check(inputs)
    assert checked.failures == []
    created = link_host.create(checked.inputs, name="alice-bob")
    assert created.id == "alice-bob:all" and created.state["status"] == "Ready"
    assert isinstance(created.state["token"], Secret) and not isinstance(created.wire["token"], Secret)
    assert alice.routes()["alice-bob"]["status"] == "Succeeded"
    assert "alice: route alice-bob" in link_host.stderr_text()  # progress reaches the engine's diagnostics

    assert (
        link_host.diff(created.id, created.state, checked.inputs).changes
        == provider_pb2.DiffResponse.DIFF_NONE
    )
    read = link_host.read(created.id, created.state, checked.inputs)
    assert read.state["status"] == "Ready" and isinstance(read.state["token"], Secret)
    link_host.delete(created.id, created.state, checked.inputs)
    assert "alice-bob" not in alice.routes()
    assert _leaks(link_host, alice.token, emu.bearer_token) == []


def test_emulated_mtls_partner_link_ready_through_the_real_host(
    emu: KusciaEmulator, link_host: ProviderHost
) -> None:
    """MTLS through the host: the client key arrives as a secret, leaves as one, never in the clear."""
    from kuscia_components.core import kusciaapi_certs

    alice, bob = emu.add_node("alice", protocol="MTLS"), emu.add_node("bob", protocol="NOTLS")
    register_in_process(bob, alice, emu)
    client_cert, client_key = kusciaapi_certs.build_client_cert(alice.key_pem, "alice")
    inputs = link_inputs(
        alice,
        bob,
        emu,
        kusciaapi_ca_pem=pki.build_domain_cert(alice.key_pem, "alice"),
        kusciaapi_client_cert_pem=client_cert,
        kusciaapi_client_key_pem=Secret(client_key),
    )
    checked = link_host.check(inputs)
    assert checked.failures == []
    created = link_host.create(checked.inputs, name="alice-bob")
    assert created.state["status"] == "Ready" and alice.routes()["alice-bob"]["status"] == "Succeeded"
    assert isinstance(created.state["kusciaapi_client_key_pem"], Secret)
    read = link_host.read(created.id, created.state, checked.inputs)  # refresh over MTLS too
    assert read.state["status"] == "Ready" and isinstance(read.state["kusciaapi_client_key_pem"], Secret)
    assert _leaks(link_host, client_key, "".join(client_key.splitlines()[1:3]), alice.token) == []
    missing = link_host.check(link_inputs(alice, bob, emu, kusciaapi_transport="serviceProxy"))
    assert [prop for prop, _ in missing.failures] == ["kusciaapi_transport"]


def unknown_bundle(alice: Any, bob: Any, emu: KusciaEmulator) -> dict[str, Any]:
    """A preview where the partner's bundle comes from outputs not known yet (a replaced
    identity, a StackReference of a stack being updated)."""
    return link_inputs(alice, bob, emu, partner_cert=UNKNOWN, partner_endpoint=UNKNOWN, token=Secret(UNKNOWN))


def test_emulated_partner_link_unknown_bundle_check_at_preview(
    emu: KusciaEmulator, link_host: ProviderHost
) -> None:
    alice, bob = emu.add_node("alice"), emu.add_node("bob")
    checked = link_host.check(unknown_bundle(alice, bob, emu), preview=True)
    assert checked.failures == [] and checked.inputs["partner_cert"] == UNKNOWN
    assert checked.inputs["token"] == Secret(UNKNOWN)  # unknown, and still secret in the engine


def test_emulated_partner_link_unknown_bundle_diff_at_preview(
    emu: KusciaEmulator, link_host: ProviderHost
) -> None:
    alice, bob = emu.add_node("alice"), emu.add_node("bob")
    state = link_host.create(link_inputs(alice, bob, emu, timeout_seconds=0.3)).state
    diff = link_host.diff("alice-bob:all", state, unknown_bundle(alice, bob, emu), preview=True)
    assert diff.changes == provider_pb2.DiffResponse.DIFF_SOME and list(diff.replaces) == []


def test_emulated_partner_link_error_names_no_secret(emu: KusciaEmulator, link_host: ProviderHost) -> None:
    alice, bob = emu.add_node("alice"), emu.add_node("bob")
    with pytest.raises(grpc.RpcError) as failed:
        link_host.create(link_inputs(alice, bob, emu, timeout_seconds=1, require_ready=True))
    assert failed.value.code() == grpc.StatusCode.UNKNOWN
    assert "PeeringError" in failed.value.details() and "not Ready" in failed.value.details()
    assert alice.token not in failed.value.details() and emu.bearer_token not in failed.value.details()
    assert link_host.alive


# -- many links on one host: today's scheduling ------------------------------------------------------

LINKS = 8


def _run_links(
    emu: KusciaEmulator, host: ProviderHost, *, timeout: float, register_after: float | None
) -> dict[str, Any]:
    """Send LINKS Create calls at once; partners register `register_after` seconds later (or
    never). Returns the wall time, each link's start/end and the host's peak concurrency."""
    alice = emu.add_node("alice")
    partners = [emu.add_node(f"p{i}", protocol="NOTLS") for i in range(LINKS)]
    stop = threading.Event()

    def partners_register() -> None:
        if register_after is None or stop.wait(register_after):
            return
        with ThreadPoolExecutor(LINKS) as pool:
            list(pool.map(lambda p: register_in_process(p, alice, emu), partners))

    registrar = threading.Thread(target=partners_register, daemon=True)
    started = time.monotonic()
    registrar.start()
    probe: list[float] = []

    def create(partner: Any) -> tuple[Any, float]:
        outcome = host.create(link_inputs(alice, partner, emu, timeout_seconds=timeout))
        return outcome, time.monotonic()

    with ThreadPoolExecutor(LINKS + 1) as pool:
        calls = {p.domain_id: pool.submit(create, p) for p in partners}
        time.sleep(0.3)  # the host's workers are busy now: how long does any other call wait?
        probe.append(host.plugin_info_latency())
        results = {pid: f.result(timeout=60) for pid, f in calls.items()}
    wall = time.monotonic() - started
    stop.set()
    registrar.join(timeout=30)
    starts = {}
    for pid in results:
        lines = [d.at for d in host.diagnostics if f"alice: partner Domain {pid} " in d.text]
        starts[pid] = min(lines) - started
    spans = {pid: (starts[pid], end - started) for pid, (_, end) in results.items()}
    peak = max(sum(1 for s, e in spans.values() if s <= t < e) for t, _ in spans.values())
    return {
        "wall": wall,
        "spans": spans,
        "peak": peak,
        "status": {pid: out.state["status"] for pid, (out, _) in results.items()},
        "probe": probe[0],
    }


def _report(title: str, run: dict[str, Any]) -> None:
    print(
        f"\n{title}: wall {run['wall']:.2f} s, peak {run['peak']} links in the host, "
        f"GetPluginInfo waited {run['probe']:.2f} s"
    )
    for pid, (start, end) in sorted(run["spans"].items(), key=lambda kv: kv[1]):
        print(f"  alice-{pid}: started {start:5.2f} s  done {end:5.2f} s  {run['status'][pid]}")


def test_emulated_many_links_partners_never_register_run_in_batches_of_four(
    emu: KusciaEmulator, link_host: ProviderHost
) -> None:
    timeout = 2.0
    run = _run_links(emu, link_host, timeout=timeout, register_after=None)
    _report(f"{LINKS} links, partners never register, timeout {timeout} s", run)
    assert set(run["status"].values()) == {"WaitingForPartner"}
    assert run["peak"] == HOST_WORKERS
    batches = -(-LINKS // HOST_WORKERS)
    assert run["wall"] >= batches * timeout  # every batch waits its full deadline
    late = sorted(start for start, _ in run["spans"].values())[HOST_WORKERS:]
    assert min(late) >= timeout  # the fifth link starts only when a worker is free
    assert run["probe"] >= timeout - 0.5  # even GetPluginInfo queues behind the waits


def test_emulated_many_links_partners_register_later(emu: KusciaEmulator, link_host: ProviderHost) -> None:
    delay = 1.5
    run = _run_links(emu, link_host, timeout=10.0, register_after=delay)
    _report(f"{LINKS} links, partners register {delay} s after creation", run)
    assert set(run["status"].values()) == {"Ready"}
    assert run["peak"] == HOST_WORKERS
    late = sorted(start for start, _ in run["spans"].values())[HOST_WORKERS:]
    assert min(late) >= delay  # queued links start only after the first batch is Ready
    assert run["wall"] < delay + 10.0


# -- LinkReadiness: one wait for all links, through the same host --------------------------------------

READINESS_SECRETS = ("token", "partner_node")  # what LinkReadiness passes as its secret input
STATUS_KEYS = ("route_name", "status", "reason", "diagnosis", "checked_at")


def readiness_inputs(links: list[dict[str, Any]]) -> dict[str, Any]:
    """LinkReadiness's inputs as `LinkReadiness.__init__` registers them: each link's own inputs
    without its status outputs, the secret ones apart in one secret list. The provider rides in
    the props, so the host that serves the links serves it too, as the engine's one
    pulumi-python host serves every dynamic resource of a stack."""
    from kuscia_components.peering.readiness import LinkReadinessProvider

    waits = [{k: v for k, v in plain(i).items() if k not in STATUS_KEYS} for i in links]
    return {
        PROVIDER_KEY: provider_value(LinkReadinessProvider()),
        "links": [{k: v for k, v in w.items() if k not in READINESS_SECRETS} for w in waits],
        "secrets": Secret([{k: w[k] for k in READINESS_SECRETS} for w in waits]),
        "routes": None,
        "statuses": None,
    }


def _host_lines(host: ProviderHost, *, until: str) -> list[str]:
    """The host's progress lines (stderr, `info: ` dropped) once one starts with `until`: the
    reader threads may still be behind the gRPC answer that followed the line."""
    deadline = time.monotonic() + 10
    while True:
        said = [d.text.removeprefix("info: ") for d in list(host.diagnostics)]
        if any(t.startswith(until) for t in said) or time.monotonic() > deadline:
            return said
        time.sleep(0.05)


def test_emulated_link_readiness_through_the_real_host_waits_for_every_link(
    emu: KusciaEmulator, link_host: ProviderHost
) -> None:
    alice = emu.add_node("alice")
    bob, carol = emu.add_node("bob", protocol="NOTLS"), emu.add_node("carol", protocol="NOTLS")
    links = [link_inputs(alice, p, emu, defer_wait=True, timeout_seconds=4) for p in (bob, carol)]
    made = [link_host.create(inputs, name=f"alice-link-{i}") for i, inputs in enumerate(links)]
    assert [m.state["status"] for m in made] == ["WaitingForPartner"] * 2  # registered and returned

    def polls() -> int:
        return sum(1 for r in list(emu.requests) if r.path.endswith("route/status/batchQuery"))

    before = polls()  # the links' own one look each

    def bob_registers_once_the_wait_polls() -> None:
        """bob's own `up` comes after the wait saw its route not Ready; carol never comes."""
        while polls() == before:
            time.sleep(0.02)
        register_in_process(bob, alice, emu)

    late = threading.Thread(target=bob_registers_once_the_wait_polls, daemon=True)
    late.start()
    ready = link_host.create(readiness_inputs(links), name="alice-links-ready")
    late.join(timeout=30)
    statuses = ready.state["statuses"]
    assert sorted(statuses) == ["alice-bob", "alice-carol"]
    assert statuses["alice-bob"]["status"] == "Ready"  # waited past the first poll, for bob
    carol_status = statuses["alice-carol"]
    assert carol_status["status"] == "WaitingForPartner"
    assert "DestinationIsNotAuthrized" in carol_status["reason"]  # Kuscia's spelling
    assert "carol" in carol_status["diagnosis"] and carol_status["diagnosis"] != carol_status["reason"]
    said = _host_lines(link_host, until="warning: alice-carol is not Ready after 4 s")
    bob_lines = [i for i, text in enumerate(said) if text.startswith("alice-bob: ")]
    assert (
        said[bob_lines[0]].startswith("alice-bob: not Ready after")
        and said[bob_lines[-1]] == "alice-bob: Ready"
    )
    assert any(t.startswith("warning: alice-carol is not Ready after 4 s") for t in said)
    assert sorted(ready.wire) == [PROVIDER_KEY, "routes", "statuses"]  # the links' secrets stay inputs
    assert alice.token not in str(ready.wire)
    assert _leaks(link_host, alice.token, emu.bearer_token) == []

    strict = [link_inputs(alice, carol, emu, defer_wait=True, timeout_seconds=2, require_ready=True)]
    with pytest.raises(grpc.RpcError) as failed:
        link_host.create(readiness_inputs(strict), name="alice-links-ready")
    assert "PeeringError" in failed.value.details()
    assert "route alice-carol not Ready after 2 s" in failed.value.details()
    assert carol_status["diagnosis"].split(":")[0] in failed.value.details()  # with the diagnosis
    assert alice.token not in failed.value.details() and link_host.alive
