"""The node's pod, and a websocket channel stream to it through the API server.

pods/portforward and pods/exec are websocket upgrades of a GET on the pod's subresource; the
API server relays them to the kubelet (pkg/registry/core/pod/rest/subresources.go:
UpgradeAwareHandler). Both speak the channel protocol of apimachinery's wsstream (conn.go): each
binary message starts with one byte naming its channel. The subprotocol is negotiated as the
official client does (`v4.channel.k8s.io`; exec also offers `v5.channel.k8s.io`). The websocket
itself is websocket-client's (the official client's own dependency), opened with the
kubeconfig's TLS options and token (`ApiServerTransport.upgrade_target`).

Bounded as a whole, not per read: websocket-client's timeouts bound each read, so an API server
that drips the upgrade's header lines, or a frame's bytes, would hold a stream forever. The
stream's `Deadline` (kube/deadline, the one the API-server transport uses) shuts the websocket's
socket down when the timeout given to `open_channels` passes, which wakes the blocked read;
a read whose own deadline comes first arms a timer of its own the same way. A frame, or a
fragmented message, announcing more than `open_channels`' `max_message` is refused when its
length is read, before websocket-client buffers its payload (which it would, whole and
unbounded). The server's subprotocol choice is checked here, to name that failure.
The TCP connect is one bounded call; a TLS handshake or an HTTP proxy's CONNECT answer happen
before websocket-client hands out its socket and are bounded per read only.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from kuscia_components.kube.deadline import Deadline
from kuscia_components.kube.errors import (
    AnswerTooLarge,
    ApiServerUnreachable,
    PodNotFound,
    PodNotReady,
    StreamClosed,
    StreamForbidden,
    api_error,
)
from kuscia_components.kube.transport import JSON_HEADERS, ApiServerTransport, Response

if TYPE_CHECKING:
    from websocket import WebSocket

V4_CHANNEL = "v4.channel.k8s.io"
V5_CHANNEL = "v5.channel.k8s.io"
_IMPORT_LOCK = threading.Lock()
_SLACK = 0.05  # s a read may outlast its own deadline when the stream's ends that soon after
FRAME_MARGIN = 64 * 1024  # bytes a message may carry beyond the answer cap (headers, TLS records)


def selector_of(labels: Mapping[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


def find_pod(api: ApiServerTransport, namespace: str, labels: Mapping[str, str], timeout: float) -> str:
    """The name of a Running pod whose Ready condition is True, carrying `labels`; the newest
    one when there are several (a rollout's new pod). PodNotFound / PodNotReady otherwise."""
    selector = selector_of(labels)
    path = f"/api/v1/namespaces/{namespace}/pods"
    response = api.request("GET", path, query=[("labelSelector", selector)], timeout=timeout)
    error = api_error(response, f"GET {path}?labelSelector={selector}")
    if error is not None:
        raise error
    document = response.json()
    items = document.get("items") if isinstance(document, dict) else None
    pods = [
        p
        for p in items or []
        if isinstance(p, dict) and not (p.get("metadata") or {}).get("deletionTimestamp")
    ]
    if not pods:
        raise PodNotFound(namespace, selector)
    ready = [p for p in pods if _is_ready(p)]
    if not ready:
        states = ", ".join(f"{_name(p)}: {_state(p)}" for p in pods[:3])
        raise PodNotReady(namespace, selector, states)
    ready.sort(key=lambda p: str((p.get("metadata") or {}).get("creationTimestamp") or ""), reverse=True)
    return _name(ready[0])


def _name(pod: dict[str, Any]) -> str:
    return str((pod.get("metadata") or {}).get("name") or "")


def _is_ready(pod: dict[str, Any]) -> bool:
    status = pod.get("status") or {}
    conditions = status.get("conditions") or []
    ready = any(
        c.get("type") == "Ready" and c.get("status") == "True" for c in conditions if isinstance(c, dict)
    )
    return status.get("phase") == "Running" and ready


def _state(pod: dict[str, Any]) -> str:
    status = pod.get("status") or {}
    return f"phase {status.get('phase') or '?'}" + ("" if status.get("phase") != "Running" else ", not Ready")


class ChannelSocket:
    """One open websocket of the channel protocol; `read` gives (channel, data) or None at the
    end. Every read waits at most until the caller's deadline, and the socket is shut down at
    the stream's deadline (`open_channels`' timeout) whatever a read is waiting for."""

    def __init__(self, ws: WebSocket, what: str, deadline: Deadline, subprotocol: str) -> None:
        self._ws = ws
        self.what = what
        self._deadline = deadline
        self._cut = False  # a read's own deadline shut the socket down: the stream is over
        self.subprotocol = subprotocol

    def send(self, channel: int, data: bytes) -> None:
        from websocket import WebSocketException

        try:
            self._ws.send_binary(bytes([channel]) + data)
        except (OSError, WebSocketException) as err:
            if self.expired:
                raise StreamClosed(self.what, "timed out waiting for the pod") from None
            raise StreamClosed(self.what, f"sending failed: {_first_line(err)}") from None

    @property
    def expired(self) -> bool:
        """The stream's deadline passed and its socket was shut down: nothing read is whole."""
        return self._cut or self._deadline.expired

    def read(self, deadline: float) -> tuple[int, bytes] | None:
        """The next data message, waiting until `deadline` (time.monotonic) at most, however
        slowly its bytes come: a per-recv socket timeout alone would let a frame whose bytes
        drip in hold the read until the stream's own deadline, or for ever without one."""
        guard = None
        if deadline < self._deadline.ends - _SLACK:  # the stream's timer would fire too late
            guard = Deadline(deadline - time.monotonic())
            guard.watch_attribute(self._ws, "sock")
            guard.start()
        try:
            return self._read(deadline, guard)
        finally:
            if guard is not None:
                guard.cancel()
                self._cut = self._cut or guard.expired

    def _read(self, deadline: float, guard: Deadline | None) -> tuple[int, bytes] | None:
        from websocket import (
            ABNF,
            WebSocketConnectionClosedException,
            WebSocketException,
            WebSocketTimeoutException,
        )

        def cut() -> bool:
            return self.expired or (guard is not None and guard.expired)

        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self.expired:
                raise StreamClosed(self.what, "timed out waiting for the pod")
            self._ws.settimeout(remaining)
            try:
                opcode, frame = self._ws.recv_data_frame(True)
            except _FrameTooLarge as err:
                self._ws.shutdown()  # type: ignore[no-untyped-call]
                raise AnswerTooLarge(f"{self.what}: a message of {err.length} bytes", err.cap) from None
            except (OSError, WebSocketException) as err:
                if cut() or isinstance(err, TimeoutError | WebSocketTimeoutException):
                    raise StreamClosed(self.what, "timed out waiting for the pod") from None
                if isinstance(err, WebSocketConnectionClosedException):
                    return None
                raise StreamClosed(self.what, _first_line(err)) from None
            if cut():  # the shutdown may end a read early as if the frame were whole
                raise StreamClosed(self.what, "timed out waiting for the pod")
            if opcode == ABNF.OPCODE_CLOSE:
                return None
            if opcode in (ABNF.OPCODE_BINARY, ABNF.OPCODE_TEXT) and frame.data:
                data = bytes(frame.data)
                return data[0], data[1:]

    def close(self) -> None:
        """Close the websocket; still under the deadline, as a peer may drip its close frame."""
        from websocket import WebSocketException

        try:
            self._ws.close(timeout=1.0)  # swallows what it meets, e.g. an oversized close frame
        except (OSError, WebSocketException):
            pass
        finally:
            self._ws.shutdown()  # type: ignore[no-untyped-call]
            self._deadline.cancel()


def open_channels(
    api: ApiServerTransport,
    path: str,
    query: Sequence[tuple[str, str]],
    protocols: Sequence[str],
    timeout: float,
    max_message: int,
) -> ChannelSocket:
    """Upgrade a GET of `path` to a websocket offering `protocols`. The API server's own
    refusal (403 RBAC, 404 pod, 400 bad request) raises its typed ApiError (403 as
    StreamForbidden); no answer at all raises ApiServerUnreachable; an upgrade to a
    subprotocol not offered raises StreamClosed. A message announcing more than `max_message`
    bytes is refused (AnswerTooLarge) before any of it is read."""
    ends = time.monotonic() + timeout  # the stream's deadline counts the work before the upgrade
    target = api.upgrade_target(path, query)  # imports the official client, under its lock
    with _IMPORT_LOCK:  # the provider host opens streams from several threads at once
        from websocket import WebSocket, WebSocketBadStatusException, WebSocketException

    what = f"{path} at {target.server}"
    # redirect_limit 0: websocket-client would follow up to 3 redirects and send our Authorization
    # header to wherever they point; an upgrade that redirects is refused instead.
    # The subprotocol offer is our own header, and the choice checked here: websocket-client
    # refuses an unoffered one only as "Invalid WebSocket Header", which names no cause.
    offer = f"Sec-WebSocket-Protocol: {','.join(protocols)}"  # as websocket/_handshake.py sends it
    options: dict[str, Any] = {
        "header": [*target.header, offer],
        "timeout": timeout,
        "redirect_limit": 0,
    }
    if target.proxy:
        from urllib.parse import urlsplit

        proxy = urlsplit(target.proxy)
        options.update(http_proxy_host=proxy.hostname, http_proxy_port=proxy.port, proxy_type="http")
    ws = WebSocket(sslopt=target.sslopt, skip_utf8_validation=True)
    _cap_messages(ws, max_message)
    deadline = Deadline(ends - time.monotonic())
    deadline.watch_attribute(ws, "sock")  # set inside connect, before the upgrade's answer is read
    deadline.start()
    try:
        ws.connect(target.url, **options)  # type: ignore[no-untyped-call]
        if deadline.expired:
            raise WebSocketException(f"no whole upgrade answer within {timeout:.3g} s (timed out)")
    except WebSocketBadStatusException as err:
        deadline.cancel()
        answer = Response(int(err.status_code), bytes(err.resp_body or b""), dict(JSON_HEADERS))
        error = api_error(answer, f"GET {path}")
        if error is not None and error.status == 403:
            raise StreamForbidden(f"GET {path}", 403, error.reason, error.message) from None
        if error is not None:
            raise error from None
        raise StreamClosed(what, f"the upgrade answered HTTP {err.status_code}") from None
    except (OSError, WebSocketException) as err:
        ws.shutdown()  # type: ignore[no-untyped-call]
        deadline.cancel()
        reason = f"no whole upgrade answer within {timeout:.3g} s (timed out)" if deadline.expired else ""
        if not reason and "Redirect limit exhausted" in str(err):  # websocket/_core.py, redirect_limit 0
            reason = (
                "the upgrade answered with a redirect, which is not followed: it would carry the "
                "kubeconfig's credentials to another address"
            )
        raise ApiServerUnreachable(target.server, reason or _first_line(err)) from None
    chosen = str((ws.getheaders() or {}).get("sec-websocket-protocol") or "").strip()
    if chosen not in protocols:
        ws.shutdown()  # type: ignore[no-untyped-call]
        deadline.cancel()
        raise StreamClosed(
            what,
            f"the upgrade chose subprotocol {chosen[:100]!r}, which was not offered "
            f"(offered: {', '.join(protocols)}): not a Kubernetes channel stream",
        )
    return ChannelSocket(ws, what, deadline, chosen)


class _FrameTooLarge(Exception):
    def __init__(self, length: int, cap: int) -> None:
        super().__init__(f"a message of {length} bytes, more than {cap}")
        self.length, self.cap = length, cap


def _cap_messages(ws: WebSocket, cap: int) -> None:
    """Refuse a frame, or a fragmented message, announcing more than `cap` bytes when its
    length is read, before its payload: websocket-client's frame_buffer.recv_strict reads a
    frame's whole announced length into memory (2^63 bytes allowed by RFC 6455 section 5.2)."""
    from websocket import ABNF, frame_buffer

    class Capped(frame_buffer):
        message = 0  # bytes announced so far by the data message being received

        def recv_length(self) -> None:
            super().recv_length()
            opcode, length = (self.header or (0,) * 7)[4], self.length or 0
            if opcode in (ABNF.OPCODE_TEXT, ABNF.OPCODE_BINARY):
                self.message = length
                total = length
            elif opcode == ABNF.OPCODE_CONT:
                self.message += length
                total = self.message
            else:  # a control frame, 125 bytes at most by RFC 6455 section 5.5
                total = length
            if total > cap:
                raise _FrameTooLarge(total, cap)

    ws.frame_buffer = Capped(ws.frame_buffer.recv, ws.frame_buffer.skip_utf8_validation)


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0][:300] if text else type(err).__name__
