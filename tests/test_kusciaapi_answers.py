"""A KusciaAPI answer of the wrong shape or size is a typed error naming the node and the call.

Kuscia's answers are `{status: {code, message, details}, data}` with `data` the call's response
message (proto/api/v1alpha1/kusciaapi/{domain,domain_route,health}.proto, written by protojson;
common.proto's Status has an int32 code). Anything else that answers with success raises
UnexpectedAnswer; never AttributeError, TypeError, ValueError or RecursionError. Answers above
4 MiB are not read. The unit tests script the transport; the `emulated` ones inject the answer
into tests/emulator's node, behind a real HTTP API server.
"""

from __future__ import annotations

import json
import tracemalloc
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from kuscia_components.peering.client import (
    ANSWER_LIMIT_BYTES,
    DomainNotFound,
    KusciaApiClient,
    KusciaApiError,
    NodeTarget,
    RawResponse,
    RetryPolicy,
    UnexpectedAnswer,
)
from tests.emulator import KusciaEmulator
from tests.helpers import ScriptedTransport, target_of

TARGET = NodeTarget("autonomy-alice", "kuscia-autonomy-alice", "alice", "TLS", token="tok-secret-123")
NODE = "alice (autonomy-alice/kuscia-autonomy-alice)"
Call = Callable[[KusciaApiClient], object]
CALLS: dict[str, tuple[str, Call]] = {
    "health": ("/healthZ", lambda c: c.health()),
    "query_domain": ("/api/v1/domain/query", lambda c: c.query_domain("bob")),
    "query_route": ("/api/v1/route/query", lambda c: c.query_route("alice", "bob")),
    "route_status": ("/api/v1/route/status/batchQuery", lambda c: c.route_status([("alice", "bob")])),
    "create_partner_domain": ("/api/v1/domain/create", lambda c: c.create_partner_domain("bob", "Y2VydA==")),
}


def Answer(body: bytes, status: int = 200) -> ScriptedTransport:
    """A transport that answers every request with one body."""
    return ScriptedTransport(RawResponse(status, body, {"Content-Type": "application/json"}))


def answered(data: object = None, *, status: object = None) -> bytes:
    document: dict[str, Any] = {"status": {"code": 0, "message": "success"} if status is None else status}
    if data is not None:
        document["data"] = data
    return json.dumps(document).encode()


def client(transport: ScriptedTransport) -> KusciaApiClient:
    return KusciaApiClient(TARGET, transport=transport, sleep=lambda _s: None)


ENVELOPES = {  # wrong for every call
    "a list": b"[1, 2]",
    "a string": b'"ok"',
    "not JSON": b"<html>welcome to nginx</html>",
    "not UTF-8": b"\xff\xfe{",
    "nested past the parser": b"[" * 200_000 + b"]" * 200_000,
    "status a string": answered(status="ok"),
    "code a string": answered(status={"code": "eleven"}),
    "code a boolean": answered(status={"code": True}),
    "message a number": answered(status={"code": 0, "message": 5}),
}
DATA = {  # wrong for one call
    ("health", "data a list"): [True],
    ("health", "ready a string"): {"ready": "yes"},
    ("query_domain", "data a string"): "bob",
    ("query_domain", "cert a number"): {"domain_id": "bob", "cert": 12},
    ("query_domain", "role an object"): {"domain_id": "bob", "role": {"x": 1}},
    ("query_route", "endpoint a list"): {"name": "alice-bob", "endpoint": ["h"]},
    ("query_route", "host a number"): {"endpoint": {"host": 10}},
    ("query_route", "ports an object"): {"endpoint": {"host": "h", "ports": {"port": 1080}}},
    ("query_route", "a port a string"): {"endpoint": {"host": "h", "ports": ["1080"]}},
    ("query_route", "port not a number"): {"endpoint": {"host": "h", "ports": [{"port": "ten"}]}},
    ("query_route", "isTLS a string"): {"endpoint": {"host": "h", "ports": [{"port": 1, "isTLS": "true"}]}},
    ("query_route", "status a list"): {"endpoint": {"host": "h"}, "status": ["Succeeded"]},
    ("route_status", "routes an object"): {"routes": {"alice-bob": "Succeeded"}},
    ("route_status", "a route a number"): {"routes": [7]},
    ("route_status", "status a string"): {"routes": [{"name": "alice-bob", "status": "Succeeded"}]},
    ("route_status", "reason a number"): {"routes": [{"name": "alice-bob", "status": {"reason": 3}}]},
    ("route_status", "name a list"): {"routes": [{"name": ["alice-bob"]}]},
}


@pytest.mark.parametrize("call", sorted(CALLS))
@pytest.mark.parametrize("shape", sorted(ENVELOPES))
def test_an_envelope_of_the_wrong_shape_is_an_unexpected_answer(call: str, shape: str) -> None:
    path, do = CALLS[call]
    with pytest.raises(UnexpectedAnswer) as err:
        do(client(Answer(ENVELOPES[shape])))
    assert NODE in str(err.value) and path in str(err.value)
    assert "tok-secret-123" not in str(err.value)


@pytest.mark.parametrize(("call", "shape"), sorted(DATA))
def test_data_of_the_wrong_shape_is_an_unexpected_answer(call: str, shape: str) -> None:
    path, do = CALLS[call]
    with pytest.raises(UnexpectedAnswer) as err:
        do(client(Answer(answered(DATA[call, shape]))))
    assert NODE in str(err.value) and path in str(err.value) and "data" in str(err.value)


def test_the_message_says_where_in_the_answer() -> None:
    body = answered({"routes": [{"name": "alice-bob", "status": {"status": "Succeeded"}}, {"status": []}]})
    with pytest.raises(UnexpectedAnswer, match=r"data\.routes\[1\]\.status is a list, not an object"):
        client(Answer(body)).route_status([("alice", "bob")])


def test_answers_of_kusciaapis_own_shapes_still_read() -> None:
    assert client(Answer(answered({"ready": True}))).health() is True
    assert client(Answer(answered())).health() is False  # protojson leaves out an empty message
    domain = {"domain_id": "bob", "role": "partner", "cert": "Y2VydA==", "node_statuses": [{"name": "n"}]}
    assert client(Answer(answered(domain))).query_domain("bob")["role"] == "partner"
    route = {
        "name": "alice-bob",
        "endpoint": {"host": "bob.example.com", "ports": [{"name": "http", "port": 1080, "isTLS": True}]},
        "token_config": {"rolling_update_period": "86400"},  # an int64: a string
        "status": {"status": "Succeeded"},
    }
    assert (
        client(Answer(answered(route))).query_route("alice", "bob")["endpoint"]["host"] == "bob.example.com"
    )
    batch = {"routes": [{"name": "alice-bob", "status": {"status": "Failed", "reason": "TokenNotGenerate"}}]}
    statuses = client(Answer(answered(batch))).route_status([("alice", "bob")])
    assert statuses == {"alice-bob": {"status": "Failed", "reason": "TokenNotGenerate"}}
    unnamed = {"routes": [{"source": "alice", "destination": "bob", "status": {"status": "Succeeded"}}]}
    assert client(Answer(answered(unnamed))).route_status([("alice", "bob")]) == {
        "alice-bob": {"status": "Succeeded"}
    }


def test_kuscia_codes_still_come_back_typed() -> None:
    body = answered(status={"code": 11305, "message": 'domains "bob" not found'})
    with pytest.raises(DomainNotFound):
        client(Answer(body)).query_domain("bob")


def test_every_request_bounds_the_answer_at_4_mib() -> None:
    transport = Answer(answered({"ready": True}))
    client(transport).health()
    assert [sent["max_bytes"] for sent in transport.sent] == [ANSWER_LIMIT_BYTES] == [4 * 1024 * 1024]


# -- against the emulated API server ---------------------------------------------------------------


@pytest.fixture(scope="module")
def emu() -> Iterator[KusciaEmulator]:
    with KusciaEmulator() as emulator:
        emulator.add_node("alice", protocol="TLS")
        yield emulator


FAST = RetryPolicy(
    attempts=3, base_seconds=0.01, cap_seconds=0.05, request_timeout_seconds=5, budget_seconds=10
)


def test_emulated_a_200_of_the_wrong_shape_names_the_node_and_the_call(emu: KusciaEmulator) -> None:
    node = emu.nodes["alice"]
    node.answer_next(answered({"routes": "alice-bob"}))
    with KusciaApiClient(target_of(emu, "alice"), retry=FAST) as alice:
        with pytest.raises(UnexpectedAnswer) as err:
            alice.route_status([("alice", "bob")])
        assert "alice (autonomy-alice/kuscia-autonomy-alice)" in str(err.value)
        assert "/api/v1/route/status/batchQuery" in str(err.value) and "data.routes is a string" in str(
            err.value
        )
        assert alice.health() is True  # the next answer is Kuscia's own again


def test_emulated_an_answer_above_4_mib_is_not_read(emu: KusciaEmulator) -> None:
    node = emu.nodes["alice"]
    huge = answered({"domain_id": "bob", "cert": "A" * (5 * 1024 * 1024)})
    node.answer_next(huge)
    tracemalloc.start()
    try:
        with (
            KusciaApiClient(target_of(emu, "alice"), retry=FAST) as alice,
            pytest.raises(UnexpectedAnswer, match="longer than 4194304 bytes") as err,
        ):
            alice.query_domain("bob")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert isinstance(err.value, KusciaApiError)
    assert peak < 64 * 1024 * 1024  # the answer was cut at the limit, never held whole
    assert "autonomy-alice" in str(err.value)
