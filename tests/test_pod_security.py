"""The rendered pods against Pod Security Admission's "baseline" and "restricted" levels.

The rules are written here from upstream's checks, kubernetes/kubernetes
staging/src/k8s.io/pod-security-admission/policy/ (one function per check_*.go file named in
its docstring), for the fields our pods can set. Kuscia runs as root, so it passes baseline
and fails restricted exactly on runAsNonRoot and capabilities; the namespace enforces baseline.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from kuscia_components.config import parse_party_config
from kuscia_components.node import manifests
from kuscia_components.node.database import mysql_statefulset

Pod = dict[str, Any]
BASELINE_CAPABILITIES = {  # check_capabilities_baseline.go
    "AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD",
    "NET_BIND_SERVICE", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT",
}  # fmt: skip
SAFE_SYSCTLS = {  # check_sysctls.go
    "kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range", "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_syncookies", "net.ipv4.ping_group_range", "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes", "net.ipv4.tcp_rmem", "net.ipv4.tcp_wmem",
}  # fmt: skip
SELINUX_TYPES = {"", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"}
RESTRICTED_VOLUMES = {  # check_restrictedVolumes.go
    "configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim", "projected", "secret",
}  # fmt: skip


def containers(pod: Pod) -> Iterator[Pod]:
    for kind in ("initContainers", "containers", "ephemeralContainers"):
        yield from pod.get(kind) or []


def sc(c: Pod) -> Pod:
    return c.get("securityContext") or {}


def host_namespaces(pod: Pod) -> bool:  # check_hostNamespaces.go
    return not any(pod.get(k) for k in ("hostNetwork", "hostPID", "hostIPC"))


def privileged(pod: Pod) -> bool:  # check_privileged.go
    return not any(sc(c).get("privileged") for c in containers(pod))


def capabilities_baseline(pod: Pod) -> bool:  # check_capabilities_baseline.go
    return all(
        set((sc(c).get("capabilities") or {}).get("add") or []) <= BASELINE_CAPABILITIES
        for c in containers(pod)
    )


def host_path_volumes(pod: Pod) -> bool:  # check_hostPathVolumes.go
    return not any("hostPath" in v for v in pod.get("volumes") or [])


def host_ports(pod: Pod) -> bool:  # check_hostPorts.go
    return not any(p.get("hostPort") for c in containers(pod) for p in c.get("ports") or [])


def se_linux(pod: Pod) -> bool:  # check_seLinuxOptions.go
    contexts = [pod.get("securityContext") or {}, *map(sc, containers(pod))]
    opts = [x.get("seLinuxOptions") or {} for x in contexts]
    return all(o.get("type", "") in SELINUX_TYPES and not o.get("user") and not o.get("role") for o in opts)


def proc_mount(pod: Pod) -> bool:  # check_procMount.go
    return all(sc(c).get("procMount", "Default") == "Default" for c in containers(pod))


def seccomp_baseline(pod: Pod) -> bool:  # check_seccompProfile_baseline.go
    contexts = [pod.get("securityContext") or {}, *map(sc, containers(pod))]
    return all((x.get("seccompProfile") or {}).get("type") != "Unconfined" for x in contexts)


def app_armor(pod: Pod) -> bool:  # check_appArmorProfile.go
    contexts = [pod.get("securityContext") or {}, *map(sc, containers(pod))]
    return all((x.get("appArmorProfile") or {}).get("type") != "Unconfined" for x in contexts)


def sysctls(pod: Pod) -> bool:  # check_sysctls.go
    return all(s["name"] in SAFE_SYSCTLS for s in (pod.get("securityContext") or {}).get("sysctls") or [])


def windows_host_process(pod: Pod) -> bool:  # check_windowsHostProcess.go
    contexts = [pod.get("securityContext") or {}, *map(sc, containers(pod))]
    return not any((x.get("windowsOptions") or {}).get("hostProcess") for x in contexts)


def restricted_volumes(pod: Pod) -> bool:  # check_restrictedVolumes.go
    return all(set(v) - {"name"} <= RESTRICTED_VOLUMES for v in pod.get("volumes") or [])


def allow_privilege_escalation(pod: Pod) -> bool:  # check_allowPrivilegeEscalation.go
    return all(sc(c).get("allowPrivilegeEscalation") is False for c in containers(pod))


def run_as_non_root(pod: Pod) -> bool:  # check_runAsNonRoot.go
    pod_level = (pod.get("securityContext") or {}).get("runAsNonRoot")
    values = [sc(c).get("runAsNonRoot", pod_level) for c in containers(pod)]
    return pod_level is not False and all(v is True for v in values)


def run_as_user(pod: Pod) -> bool:  # check_runAsUser.go
    contexts = [pod.get("securityContext") or {}, *map(sc, containers(pod))]
    return all(x.get("runAsUser") != 0 for x in contexts)


def seccomp_restricted(pod: Pod) -> bool:  # check_seccompProfile_restricted.go
    pod_type = ((pod.get("securityContext") or {}).get("seccompProfile") or {}).get("type")
    types = [(sc(c).get("seccompProfile") or {}).get("type", pod_type) for c in containers(pod)]
    return all(t in ("RuntimeDefault", "Localhost") for t in types)


def capabilities_restricted(pod: Pod) -> bool:  # check_capabilities_restricted.go
    caps = [sc(c).get("capabilities") or {} for c in containers(pod)]
    return all(
        "ALL" in (k.get("drop") or []) and set(k.get("add") or []) <= {"NET_BIND_SERVICE"} for k in caps
    )


BASELINE: list[Callable[[Pod], bool]] = [
    host_namespaces, privileged, capabilities_baseline, host_path_volumes, host_ports, se_linux,
    proc_mount, seccomp_baseline, app_armor, sysctls, windows_host_process,
]  # fmt: skip
RESTRICTED: list[Callable[[Pod], bool]] = [
    *BASELINE, restricted_volumes, allow_privilege_escalation, run_as_non_root, run_as_user,
    seccomp_restricted, capabilities_restricted,
]  # fmt: skip


def failing(pod: Pod, level: list[Callable[[Pod], bool]]) -> list[str]:
    return [rule.__name__ for rule in level if not rule(pod)]


def party(**values: Any) -> Any:
    base = {"domainId": "alice", "capacity": {"cpu": "4", "memory": "4Gi", "storage": "100Gi"}}
    return parse_party_config({**base, **values}, set())


@pytest.mark.parametrize("runtime", ["runk", "runp"])
def test_the_kuscia_pod_passes_baseline_and_fails_restricted_only_for_running_as_root(runtime: str) -> None:
    pod = manifests.deployment(party(runtime=runtime), "checksum")["spec"]["template"]["spec"]
    assert failing(pod, BASELINE) == []
    assert failing(pod, RESTRICTED) == ["run_as_non_root", "capabilities_restricted"]


def test_the_in_cluster_mysql_pod_passes_baseline() -> None:
    pod = mysql_statefulset(party(), namespace="autonomy-alice")["spec"]["template"]["spec"]
    assert failing(pod, BASELINE) == []


def test_the_rules_reject_what_upstream_rejects() -> None:
    bad = {"hostNetwork": True, "containers": [{"name": "c", "securityContext": {"privileged": True}}]}
    assert {"host_namespaces", "privileged"} <= set(failing(bad, BASELINE))
    root = {
        "containers": [{"name": "c", "securityContext": {"runAsUser": 0}}],
        "volumes": [{"name": "h", "hostPath": {}}],
    }
    assert {"host_path_volumes", "run_as_user", "run_as_non_root"} <= set(failing(root, RESTRICTED))


def test_the_namespace_enforces_baseline_and_warns_and_audits_restricted() -> None:
    labels = manifests.namespace(party())["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "baseline"
    assert labels["pod-security.kubernetes.io/warn"] == "restricted"
    assert labels["pod-security.kubernetes.io/audit"] == "restricted"


# -- podSecurity: rootless (upstream hack/k8s/autonomy/rootless/deployment.yaml) ----------------

ROOTLESS = {"podSecurity": "rootless", "clusterDnsServer": "10.96.0.10"}
EXTERNAL_DB = {"mode": "external", "endpoint": "mysql.example.com:3306", "adminUser": "root"}


def rootless(**values: Any) -> Any:
    base = {"domainId": "alice", "capacity": {"cpu": "4", "memory": "4Gi", "storage": "100Gi"}}
    secret = {"databaseAdminPassword"} if "databaseAdminPassword" in values else set()
    return parse_party_config({**base, **ROOTLESS, **values}, secret)


@pytest.mark.parametrize("runtime", ["runk", "runp"])
def test_the_rootless_kuscia_pod_passes_restricted(runtime: str) -> None:
    pod = manifests.deployment(rootless(runtime=runtime), "checksum")["spec"]["template"]["spec"]
    assert failing(pod, RESTRICTED) == []
    (container,) = pod["containers"]
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}
    assert container["securityContext"]["runAsUser"] == 1000 and pod["securityContext"]["fsGroup"] == 1000


def test_rootless_resolves_through_kusciasown_coredns_and_forwards_to_the_cluster_dns() -> None:
    cfg = rootless()
    pod = manifests.deployment(cfg, "checksum")["spec"]["template"]["spec"]
    assert pod["dnsPolicy"] == "None" and pod["dnsConfig"] == {"nameservers": ["127.0.0.1"]}
    mounts = {m["mountPath"]: m for m in pod["containers"][0]["volumeMounts"]}
    assert mounts["/home/kuscia/var/tmp/resolv.conf"]["subPath"] == "resolv.conf"
    secret = manifests.config_secret(cfg, "kuscia.yaml", "cert")["stringData"]
    assert secret["resolv.conf"].splitlines()[0] == "nameserver 10.96.0.10"
    assert "autonomy-alice.svc.cluster.local" in secret["resolv.conf"]
    # the uid 1000 process reads the Secret's files through its group (fsGroup), never others
    modes = {v["name"]: v["secret"]["defaultMode"] for v in pod["volumes"] if "secret" in v}
    assert modes == {"kuscia-config": 0o440}


def test_root_keeps_upstreams_default_and_no_resolv_conf() -> None:
    cfg = party()
    pod = manifests.deployment(cfg, "checksum")["spec"]["template"]["spec"]
    assert "dnsPolicy" not in pod and "fsGroup" not in pod["securityContext"]
    assert "resolv.conf" not in manifests.config_secret(cfg, "k", "c")["stringData"]


def test_the_namespace_enforces_restricted_only_when_every_pod_in_it_passes() -> None:
    def enforced(cfg: Any) -> str:
        return str(manifests.namespace(cfg)["metadata"]["labels"]["pod-security.kubernetes.io/enforce"])

    alone = rootless(runtime="runp", database=EXTERNAL_DB, databaseAdminPassword="pw")
    assert enforced(alone) == "restricted"
    assert enforced(rootless(runtime="runk", database=EXTERNAL_DB, databaseAdminPassword="pw")) == "baseline"
    assert enforced(rootless(runtime="runp")) == "baseline"  # the in-cluster MySQL shares the namespace
    assert enforced(party(runtime="runp")) == "baseline"


def test_the_in_cluster_mysql_pod_fails_restricted_so_it_keeps_the_namespace_at_baseline() -> None:
    pod = mysql_statefulset(party(), namespace="autonomy-alice")["spec"]["template"]["spec"]
    assert "run_as_non_root" in failing(pod, RESTRICTED)


def test_cluster_dns_server_is_required_by_rootless_and_refused_without_it() -> None:
    from kuscia_components.config import ConfigError

    base = {"domainId": "alice", "capacity": {"cpu": "4", "memory": "4Gi", "storage": "100Gi"}}
    cases = [
        ({"podSecurity": "rootless"}, "is required for podSecurity rootless"),
        ({"clusterDnsServer": "10.96.0.10"}, "only applies to podSecurity rootless"),
        ({**ROOTLESS, "clusterDnsServer": "kube-dns.kube-system"}, "IP address"),
        ({**ROOTLESS, "clusterDnsServer": "127.0.0.1"}, "not a loopback"),
    ]
    for values, fragment in cases:
        with pytest.raises(ConfigError) as err:
            parse_party_config({**base, **values}, set())
        (problem,) = err.value.problems
        assert problem.setting == "kuscia:clusterDnsServer" and fragment in str(problem)
