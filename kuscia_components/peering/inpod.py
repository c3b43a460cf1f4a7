"""The seed's `curl -kvvv <partner endpoint>` run inside our node's pod through pods/exec.

`probe.py` says what an answer means; this module runs it in the Running+Ready pod of a node
(kube/podexec.py) and keeps it cheap and quiet: one probe per call, a short time limit, and
None (no signal) instead of an error when the deployer may not create pods/exec, the pod is
not there, or the exec stream fails. A command missing from the image is read as the shell's
127, so `probe.run` tries the next one (openssl, bash) and says so when none is there.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from kuscia_components.kube import errors as kube_errors
from kuscia_components.peering import probe

if TYPE_CHECKING:
    from kuscia_components.kube.kubeconfig import KubeconfigRef
    from kuscia_components.peering.client import NodeTarget

log = logging.getLogger(__name__)

# A reachable gateway answers in well under a second; 5 s tells "dropped" (not allow-listed)
# from "slow" and keeps one diagnosis round short (curl --max-time 5, the exec 10 s at most).
PROBE_TIMEOUT_SECONDS = 5.0


class _NoExec(Exception):
    """pods/exec is not possible here: forbidden, no pod, or the stream failed."""


def probe_from_node(
    target: NodeTarget, endpoint: str, timeout: float = PROBE_TIMEOUT_SECONDS
) -> probe.ProbeResult | None:
    """What `endpoint` answers from inside `target`'s pod, or None when it could not be asked."""
    try:
        probe.parse_endpoint(endpoint)
    except ValueError:
        return None
    ref, namespace, labels = target.kubeconfig_ref, target.namespace, target.pod_labels
    try:
        return probe.run(lambda argv, limit: _exec(ref, namespace, labels, argv, limit), endpoint, timeout)
    except _NoExec as err:
        log.debug("in-pod probe of %s from %s skipped: %s", endpoint, target.describe(), err)
        return None


def _exec(
    ref: KubeconfigRef, namespace: str, labels: dict[str, str], argv: list[str], timeout: float
) -> tuple[int, str, str]:
    from kuscia_components.kube.podexec import CommandNotRun, run_in_node_pod

    try:
        code, out, err = run_in_node_pod(ref, namespace, labels, argv, timeout=timeout)
    except CommandNotRun as missing:  # not in the image: the shell's "command not found"
        return 127, "", str(missing)
    except kube_errors.StreamClosed as closed:
        if "timed out" in closed.reason or "timeout" in closed.reason:
            raise TimeoutError(closed.reason) from None
        raise _NoExec(str(closed)) from None
    except (kube_errors.KubeError, OSError) as other:  # forbidden, no pod, kubeconfig
        raise _NoExec(f"{type(other).__name__}: {other}") from None
    return code, out.decode("utf-8", "replace"), err.decode("utf-8", "replace")
