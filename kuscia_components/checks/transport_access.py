"""preflight: may the deployer reach KusciaAPI the way `kuscia:kusciaApiTransport` says?

Asked with SelfSubjectAccessReview, like every other access check (checks/kube.py), in the
node's namespace, before anything exists.
"""

from __future__ import annotations

from kuscia_components.checks.kube import KubeSession
from kuscia_components.checks.report import CheckResult, failed, passed, warned
from kuscia_components.config import PartyConfig


def check_service_proxy(s: KubeSession, cfg: PartyConfig, name: str = "access services/proxy") -> CheckResult:
    """Peering (POST) and verify (GET) reach the node through the API server's service proxy."""
    answers = {v: s.allowed(v, "", "services/proxy", cfg.namespace) for v in ("create", "get")}
    denied = [v for v, ok in answers.items() if ok is False]
    if denied:
        return failed(
            name,
            f"denied: {', '.join(denied)} on services/proxy in {cfg.namespace}; peering reaches KusciaAPI that way",
            f"ask a cluster admin for create and get on services/proxy in {cfg.namespace}",
        )
    if None in answers.values():
        return warned(
            name,
            "the API server did not answer SelfSubjectAccessReview",
            "kubectl auth can-i create services/proxy",
        )
    return passed(name, f"create, get in {cfg.namespace} (KusciaAPI and the gateway through the API server)")


def check_kusciaapi_access(s: KubeSession, cfg: PartyConfig) -> list[CheckResult]:
    """What `kusciaApiTransport` needs. portForward: pods/portforward (peering, verify: KusciaAPI
    and the gateway through a port-forward of the node's pod) and pods/exec (the in-pod probe of a
    partner's endpoint; without it the diagnosis has one signal fewer, so only a warning). The
    websocket upgrade is a GET, authorized as `get` on the subresource, and newer API servers
    also ask `create` (subresources.go, AuthorizePodWebsocketUpgradeCreatePermission), which
    kubectl's own POST needs anyway: both are asked. Finding the pod needs list pods, which
    `access pods` checks."""
    if cfg.kusciaapi_transport == "serviceProxy":
        return [check_service_proxy(s, cfg)]
    results = []
    for sub, why, hard in (
        ("portforward", "peering and verify reach KusciaAPI and the gateway that way", True),
        ("exec", "the in-pod probe of partners' endpoints (the seed's curl check) runs that way", False),
    ):
        name = f"access pods/{sub}"
        answers = {v: s.allowed(v, "", f"pods/{sub}", cfg.namespace) for v in ("create", "get")}
        denied = [v for v, ok in answers.items() if ok is False]
        if denied:
            words = f"denied: {', '.join(denied)} on pods/{sub} in {cfg.namespace}; {why}"
            fix = f"ask a cluster admin for create and get on pods/{sub} in {cfg.namespace}"
            if hard:
                fix += ", or set kuscia:kusciaApiTransport serviceProxy"
            results.append(failed(name, words, fix) if hard else warned(name, words, fix))
        elif None in answers.values():
            results.append(
                warned(
                    name,
                    "the API server did not answer SelfSubjectAccessReview",
                    f"kubectl auth can-i create pods/{sub} -n {cfg.namespace}",
                )
            )
        else:
            results.append(passed(name, f"create, get in {cfg.namespace} ({why})"))
    return results
