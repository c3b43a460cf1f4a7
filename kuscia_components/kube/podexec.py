"""Run one command in the node's pod through pods/exec, for in-pod probes (the seed's `curl -kvvv`).

The exec websocket (pkg/kubelet/cri/streaming/remotecommand): stdout on channel 1, stderr on 2,
and on channel 3 a metav1.Status when the command ends: `Success`, or `Failure` with reason
`NonZeroExitCode` and the exit code as the message of the `ExitCode` cause; any other Failure
means the command did not run (not in the image, container gone). No stdin, no TTY. Output
beyond `max_bytes` per stream is cut (and said so), the Status beyond STATUS_CAP in total, and
a message longer than both plus FRAME_MARGIN is refused unread; the whole call ends at `timeout`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from kuscia_components.config.constants import KUSCIA_CONTAINER
from kuscia_components.kube.errors import KubeError, StreamClosed
from kuscia_components.kube.kubeconfig import KubeconfigRef
from kuscia_components.kube.streams import FRAME_MARGIN, V4_CHANNEL, V5_CHANNEL, find_pod, open_channels
from kuscia_components.kube.transport import ApiServerTransport

STDOUT, STDERR, STATUS = 1, 2, 3
DEFAULT_MAX_BYTES = 256 * 1024  # curl -v of one request: a few KiB
STATUS_CAP = 65536  # bytes of the exit Status kept, over all its messages (a Status is < 1 KiB)
NOT_RUN = -1  # the exit code when the command never ran (see ExecResult.error)


class CommandNotRun(KubeError):
    """The runtime could not start the command (e.g. it is not in the image)."""


@dataclass(frozen=True)
class ExecResult:
    """What one command printed and how it ended; `error` is the Status message when it failed."""

    exit_code: int
    stdout: bytes = field(repr=False)
    stderr: bytes = field(repr=False)
    pod: str = ""
    truncated: bool = False
    error: str = ""


def exec_in_pod(
    api: ApiServerTransport,
    namespace: str,
    pod: str,
    argv: Sequence[str],
    *,
    container: str | None = None,
    timeout: float = 10.0,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> ExecResult:
    """Run `argv` in `pod`; StreamClosed on a timeout or a stream that ends without a status."""
    if not argv:
        raise ValueError("argv must name a command, e.g. ['curl', '-kvvv', 'https://bob:1080']")
    deadline = time.monotonic() + timeout
    query = [("command", arg) for arg in argv] + [("stdout", "true"), ("stderr", "true")]
    if container:
        query.append(("container", container))
    path = f"/api/v1/namespaces/{namespace}/pods/{pod}/exec"
    cap = max(max_bytes, STATUS_CAP) + FRAME_MARGIN
    sock = open_channels(api, path, query, [V5_CHANNEL, V4_CHANNEL], timeout, cap)
    out, err, status = bytearray(), bytearray(), b""
    truncated = False
    try:
        while True:
            frame = sock.read(deadline)
            if frame is None:
                break
            channel, data = frame
            if channel in (STDOUT, STDERR):
                buffer = out if channel == STDOUT else err
                room = max_bytes - len(buffer)
                truncated = truncated or len(data) > room
                buffer += data[: max(room, 0)]
            elif channel == STATUS:
                status += data[: STATUS_CAP - len(status)]
    finally:
        sock.close()
    if not status:
        raise StreamClosed(f"exec {argv[0]} in {namespace}/{pod}", "the stream ended without an exit status")
    code, error = _exit_code(status)
    return ExecResult(code, bytes(out), bytes(err), pod, truncated, error)


def _exit_code(status: bytes) -> tuple[int, str]:
    try:
        document = json.loads(status)
    except ValueError:
        return NOT_RUN, status.decode("utf-8", "replace")[:300]
    if not isinstance(document, dict):
        return NOT_RUN, "the exit status is not a Status object"
    if document.get("status") == "Success":
        return 0, ""
    message = str(document.get("message") or "")[:500]
    if document.get("reason") == "NonZeroExitCode":
        causes = (document.get("details") or {}).get("causes") or []
        for cause in causes:
            if isinstance(cause, dict) and cause.get("reason") == "ExitCode":
                try:
                    return int(cause.get("message") or ""), message
                except ValueError:
                    break
    return NOT_RUN, message


def run_in_node_pod(
    transport_ref: KubeconfigRef,
    namespace: str,
    labels: Mapping[str, str],
    argv: Sequence[str],
    timeout: float = 10.0,
    max_bytes: int = DEFAULT_MAX_BYTES,
    container: str | None = KUSCIA_CONTAINER,
) -> tuple[int, bytes, bytes]:
    """(exit code, stdout, stderr) of `argv` in the node's Running+Ready pod. Raises
    CommandNotRun when the command never started, PodNotFound / PodNotReady / StreamForbidden /
    StreamClosed as the port-forward transport does."""
    deadline = time.monotonic() + timeout
    with ApiServerTransport(transport_ref) as api:
        pod = find_pod(api, namespace, labels, timeout)
        result = exec_in_pod(
            api,
            namespace,
            pod,
            argv,
            container=container,  # an injected sidecar (istio, linkerd) makes the default ambiguous: 400
            timeout=max(0.1, deadline - time.monotonic()),
            max_bytes=max_bytes,
        )
    if result.exit_code == NOT_RUN:
        raise CommandNotRun(f"{argv[0]} did not run in {namespace}/{pod}: {result.error}")
    return result.exit_code, result.stdout, result.stderr
