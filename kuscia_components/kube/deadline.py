"""An overall deadline for one HTTP request through a urllib3 pool manager.

urllib3's `Timeout(total=...)` bounds each socket operation, not the request: a server that
sends a header line, or a byte of the body, every second keeps every read under the timeout and
the request open forever. Here a timer shuts the request's socket down when the deadline passes,
which wakes whatever read is blocked on it (headers, body, a TLS handshake) with an error or an
early end of file; `Deadline.expired` then tells the caller the answer is not whole.

The socket is found through the pool manager's connection classes: `install` swaps each pool
class for a subclass whose connections register their socket with the deadline of the request
running on this thread (a new connection in `_new_conn`, a kept-alive one in `request`).

A pod stream (kube/streams) uses the same timer without the thread binding (`start`/`cancel`):
its websocket's socket is created inside websocket-client's `connect`, so the timer is told
where it will be (`watch_attribute`) and shuts down whatever is there when the deadline passes.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from typing import Any

_CURRENT = threading.local()


class Deadline:
    """The deadline of the request on this thread; `with Deadline(seconds):` around it."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.ends = time.monotonic() + seconds  # moved to start() + seconds when started
        self.expired = False
        self._lock = threading.Lock()
        self._socks: list[socket.socket] = []
        self._timer = threading.Timer(max(seconds, 0.0), self._expire)
        self._timer.daemon = True

        self._attributes: list[tuple[object, str]] = []

    def __enter__(self) -> Deadline:
        _CURRENT.deadline = self
        return self.start()

    def __exit__(self, *exc: object) -> None:
        _CURRENT.deadline = None
        self.cancel()

    def start(self) -> Deadline:
        self.ends = time.monotonic() + self.seconds
        self._timer.start()
        return self

    def cancel(self) -> None:
        """Stop the timer and drop what it watched (the connections themselves stay open)."""
        self._timer.cancel()
        with self._lock:
            socks, self._socks = self._socks, []
            self._attributes = []
        for sock in socks:
            sock.close()  # our duplicate of the descriptor only; the connection is the pool's

    def watch(self, sock: socket.socket | None) -> None:
        """Shut `sock` down at the deadline (now, if it has passed)."""
        if sock is None or sock.fileno() < 0:
            return
        # A duplicate descriptor: TLS wrapping moves the original into a new object, and a
        # shutdown acts on the connection whichever descriptor names it.
        duplicate = socket.fromfd(sock.fileno(), sock.family, sock.type)
        with self._lock:
            self._socks.append(duplicate)
            expired = self.expired
        if expired:
            _shutdown(duplicate)

    def watch_attribute(self, owner: object, name: str) -> None:
        """Shut down the socket `owner.<name>` holds when the deadline passes (None: nothing
        yet). For a socket made where no hook reaches, e.g. inside websocket-client's
        `connect`, which sets `WebSocket.sock` before its upgrade handshake reads the answer.
        The socket object itself is shut down, not a duplicate: once closed it refuses."""
        with self._lock:
            self._attributes.append((owner, name))

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            socks: list[Any] = list(self._socks)
            socks += [getattr(owner, name, None) for owner, name in self._attributes]
        for sock in socks:
            if isinstance(sock, socket.socket):
                _shutdown(sock)


def _shutdown(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):  # closed meanwhile: nothing left to wake
        sock.shutdown(socket.SHUT_RDWR)


def _current() -> Deadline | None:
    deadline: Deadline | None = getattr(_CURRENT, "deadline", None)
    return deadline


class _Watched:
    """Mixed into a urllib3 connection class: its socket is watched by the current deadline."""

    sock: socket.socket | None

    def _new_conn(self) -> socket.socket:
        sock: socket.socket = super()._new_conn()  # type: ignore[misc]
        deadline = _current()
        if deadline is not None:
            deadline.watch(sock)
        return sock

    def request(self, *args: Any, **kwargs: Any) -> None:
        deadline = _current()
        if deadline is not None:
            deadline.watch(self.sock)  # None for a new connection: _new_conn watched it
        super().request(*args, **kwargs)  # type: ignore[misc]


def install(pool_manager: Any) -> None:
    """Make `pool_manager`'s connections (PoolManager, ProxyManager, SOCKSProxyManager) honour
    the deadline of the request on their thread; call before its first request."""
    classes: dict[str, Any] = dict(pool_manager.pool_classes_by_scheme)
    for scheme, pool_cls in classes.items():
        if issubclass(pool_cls.ConnectionCls, _Watched):
            continue
        connection_cls = type(
            f"Watched{pool_cls.ConnectionCls.__name__}", (_Watched, pool_cls.ConnectionCls), {}
        )
        classes[scheme] = type(f"Watched{pool_cls.__name__}", (pool_cls,), {"ConnectionCls": connection_cls})
    pool_manager.pool_classes_by_scheme = classes
