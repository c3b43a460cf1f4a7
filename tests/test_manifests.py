"""Pure manifest builders: schema-valid, least-privilege, and shaped the way Kuscia needs."""

from __future__ import annotations

import json
from dataclasses import replace

import kubernetes_validate
import pytest

from kuscia_components.config import (
    Capacity,
    NetworkPolicySettings,
    PartyConfig,
    ServiceSettings,
)
from kuscia_components.node import manifests

# The oldest Kubernetes minor still widely run and the newest the schema package knows.
SCHEMA_VERSIONS = ("1.30", kubernetes_validate.latest_version())


def party(**changes: object) -> PartyConfig:
    base = PartyConfig(
        domain_id="alice",
        namespace="autonomy-alice",
        capacity=Capacity(cpu="4", memory="4Gi", storage="100Gi", ephemeral_storage="200Gi"),
        public_endpoint="https://kuscia-autonomy-alice.autonomy-alice.svc.cluster.local:1080",
    )
    return replace(base, **changes)  # type: ignore[arg-type]


VARIANTS = {
    "default": party(),
    "nodeport": party(service=ServiceSettings(type="NodePort", node_port=31080, annotations={"a/b": "c"})),
    "loadbalancer": party(service=ServiceSettings(type="LoadBalancer")),
    "runp": party(runtime="runp", capacity=None),
    "runk-kubeconfig-secret": party(runk_kubeconfig_secret="runk-kubeconfig"),
    "rootless": party(pod_security="rootless", cluster_dns_server="10.96.0.10"),
    "rootless-runp": party(
        pod_security="rootless", cluster_dns_server="10.96.0.10", runtime="runp", runk_kubeconfig_secret=None
    ),
    "netpol-ranges": party(
        network_policy=NetworkPolicySettings(kusciaapi_from=("10.0.0.1/32", "10.0.0.2/32")),
        kusciaapi_transport="serviceProxy",
    ),
}


def all_objects(cfg: PartyConfig) -> list[dict]:
    objects = [
        manifests.namespace(cfg),
        manifests.service_account(cfg),
        manifests.service(cfg),
        manifests.config_secret(cfg, "mode: autonomy\n", "-----BEGIN CERTIFICATE-----\n"),
        manifests.network_policy(cfg),
        manifests.deployment(cfg, "0" * 64),
    ]
    if manifests.needs_runk_rbac(cfg):
        objects += [manifests.runk_role(cfg), manifests.runk_role_binding(cfg)]
    gateway = manifests.gateway_service(cfg)
    if gateway is not None:
        objects.append(gateway)
    return objects


@pytest.mark.parametrize("version", SCHEMA_VERSIONS)
@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_every_object_validates_against_the_kubernetes_openapi_schema(variant: str, version: str) -> None:
    for obj in all_objects(VARIANTS[variant]):
        kubernetes_validate.validate(obj, version, strict=True)


def test_schema_validation_is_live_and_rejects_a_broken_object() -> None:
    broken = manifests.deployment(party(), "x")
    broken["spec"]["replicas"] = "one"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, SCHEMA_VERSIONS[-1], strict=True)


def test_names_follow_the_seed_so_docs_users_find_everything() -> None:
    cfg = party()
    assert manifests.service(cfg)["metadata"]["name"] == "kuscia-autonomy-alice"
    assert manifests.deployment(cfg, "x")["metadata"]["namespace"] == "autonomy-alice"
    assert manifests.deployment(cfg, "x")["spec"]["selector"]["matchLabels"] == {
        "app": "kuscia-autonomy-alice"
    }


def test_service_exposes_the_seed_ports_and_node_port_only_on_the_gateway() -> None:
    for variant in ("default", "nodeport", "loadbalancer"):
        internal = manifests.service(VARIANTS[variant])
        ports = {(p["port"], p["protocol"]) for p in internal["spec"]["ports"]}
        assert ports == {(1080, "TCP"), (80, "TCP"), (53, "UDP"), (8082, "TCP")}
        assert internal["spec"]["type"] == "ClusterIP" and "nodePort" not in str(internal)
    gateway = manifests.gateway_service(VARIANTS["nodeport"])
    assert gateway is not None
    assert gateway["spec"]["ports"] == [
        {"name": "envoy", "port": 1080, "protocol": "TCP", "targetPort": 1080, "nodePort": 31080}
    ]
    assert manifests.gateway_service(party()) is None


def test_only_the_gateway_is_exposed_and_kuscia_yaml_never_waits_for_a_load_balancer() -> None:
    """pulumi-kubernetes awaits a Service until its endpoints are Ready and, for a
    LoadBalancer, until it has an address (provider/pkg/await/service.go). The internal Service,
    whose ClusterIP kuscia.yaml needs before the pod can exist, is therefore ClusterIP and
    skipAwait; NodePort/LoadBalancer settings go to a separate Service exposing 1080 only."""
    cfg = VARIANTS["nodeport"]
    internal, gateway = manifests.service(cfg), manifests.gateway_service(cfg)
    assert gateway is not None
    assert internal["metadata"]["annotations"] == {"pulumi.com/skipAwait": "true"}
    assert gateway["metadata"]["name"] == "kuscia-gateway-alice" != internal["metadata"]["name"]
    assert gateway["metadata"]["annotations"] == {"a/b": "c"} and gateway["spec"]["type"] == "NodePort"
    assert [p["port"] for p in gateway["spec"]["ports"]] == [1080]
    assert gateway["spec"]["selector"] == internal["spec"]["selector"]
    lb = manifests.gateway_service(VARIANTS["loadbalancer"])
    assert lb is not None and lb["spec"]["type"] == "LoadBalancer" and len(lb["spec"]["ports"]) == 1
    longest = manifests.names(party(domain_id="a" * 47))
    assert len(longest["service"]) <= 63 and len(longest["gateway_service"]) <= 63  # DNS labels


def test_kuscia_runs_without_privilege_escalation_under_the_runtime_seccomp_profile() -> None:
    """Kuscia's own autonomy Deployment (secretflow/kuscia hack/k8s/autonomy/deployment.yaml)
    is unprivileged and adds no capabilities; nothing in it needs a setuid binary."""
    for variant in ("default", "runp"):
        pod = manifests.deployment(VARIANTS[variant], "x")["spec"]["template"]["spec"]
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        (container,) = pod["containers"]
        assert container["securityContext"]["allowPrivilegeEscalation"] is False
        assert "privileged" not in container["securityContext"]


def test_runk_role_is_namespaced_and_covers_only_what_runk_uses() -> None:
    role = manifests.runk_role(party())
    assert role["kind"] == "Role" and role["metadata"]["namespace"] == "autonomy-alice"
    granted = {
        (g, r): sorted(rule["verbs"])
        for rule in role["rules"]
        for g in rule["apiGroups"]
        for r in rule["resources"]
    }
    # secretflow/kuscia pkg/agent/provider/pod/k8s_provider.go, k8s_logger.go and
    # provider/node/k8s_node.go use the host cluster for exactly this; the leader-election Lease
    # and the events go to Kuscia's internal k3s (pkg/agent/commands/root.go).
    assert granted == {
        ("", "pods"): ["create", "delete", "get", "list", "watch"],
        ("", "pods/log"): ["get"],
        ("", "configmaps"): ["create", "delete", "list", "watch"],
        ("", "secrets"): ["create", "delete", "list", "watch"],
    }
    assert all("*" not in rule["verbs"] for rule in role["rules"])
    binding = manifests.runk_role_binding(party())
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "kuscia-autonomy-alice", "namespace": "autonomy-alice"}
    ]


def test_rbac_only_for_runk_with_the_service_account() -> None:
    assert manifests.needs_runk_rbac(party())
    assert not manifests.needs_runk_rbac(VARIANTS["runp"])
    assert not manifests.needs_runk_rbac(VARIANTS["runk-kubeconfig-secret"])
    pod = manifests.deployment(VARIANTS["runp"], "x")["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False


def test_deployment_is_single_replica_recreate_with_pinned_image_and_config_mounts() -> None:
    cfg = party()
    dep = manifests.deployment(cfg, "abc123")
    spec = dep["spec"]
    assert spec["replicas"] == 1 and spec["strategy"] == {"type": "Recreate"}
    assert spec["template"]["metadata"]["annotations"] == {manifests.CONFIG_CHECKSUM_ANNOTATION: "abc123"}
    container = spec["template"]["spec"]["containers"][0]
    assert container["image"] == cfg.image and not container["image"].endswith(":latest")
    assert container["command"] == ["tini", "--", "kuscia", "start", "-c", "etc/conf/kuscia.yaml"]
    assert container["workingDir"] == "/home/kuscia"
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    assert mounts["/home/kuscia/etc/conf/kuscia.yaml"]["subPath"] == "kuscia.yaml"
    assert mounts["/home/kuscia/var/certs/domain.crt"]["subPath"] == "domain.crt"
    assert "/home/kuscia/var/tmp" in mounts
    volumes = {v["name"]: v for v in spec["template"]["spec"]["volumes"]}
    assert volumes["kuscia-config"]["secret"]["secretName"] == "kuscia-autonomy-alice-config"
    assert "configMap" not in str(volumes)


def test_probes_leave_room_for_kuscia_start_of_about_30_seconds() -> None:
    container = manifests.deployment(party(), "x")["spec"]["template"]["spec"]["containers"][0]
    startup = container["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 120
    assert "initialDelaySeconds" not in container["livenessProbe"]  # startup probe gates liveness


def test_runk_kubeconfig_secret_is_mounted_where_kuscia_yaml_points() -> None:
    cfg = VARIANTS["runk-kubeconfig-secret"]
    container = manifests.deployment(cfg, "x")["spec"]["template"]["spec"]["containers"][0]
    paths = {m["mountPath"] for m in container["volumeMounts"]}
    assert manifests.runk_kubeconfig_file(cfg) in paths
    assert manifests.runk_kubeconfig_file(party()) is None


def test_default_network_policy_admits_kusciaapi_from_no_range_only_the_own_namespace() -> None:
    """Port-forward (the default transport) dials 8082 inside the pod's network namespace, which no
    NetworkPolicy filters: no ipBlock at all, not even with kusciaApiFrom set (it is not used)."""
    for cfg in (party(), party(network_policy=NetworkPolicySettings(kusciaapi_from=("0.0.0.0/0",)))):
        rules = manifests.network_policy(cfg)["spec"]["ingress"]
        assert rules == [
            {"ports": [{"protocol": "TCP", "port": 1080}]},  # partners: the gateway only
            {"from": [{"podSelector": {}}]},  # the node's own namespace (runk task pods): all ports
        ]
        assert "ipBlock" not in json.dumps(rules)


def test_network_policy_partners_reach_only_the_gateway_and_kusciaapi_only_from_ranges() -> None:
    rules = manifests.network_policy(VARIANTS["netpol-ranges"])["spec"]["ingress"]
    open_rules = [r for r in rules if "from" not in r]
    assert open_rules == [{"ports": [{"protocol": "TCP", "port": 1080}]}]
    same_namespace = [r for r in rules if r.get("from") == [{"podSelector": {}}]]
    assert same_namespace and "ports" not in same_namespace[0]
    api = [r for r in rules if r.get("ports") == [{"protocol": "TCP", "port": 8082}]]
    assert api[0]["from"] == [{"ipBlock": {"cidr": "10.0.0.1/32"}}, {"ipBlock": {"cidr": "10.0.0.2/32"}}]


def test_every_object_carries_the_domain_labels() -> None:
    for obj in all_objects(party()):
        assert obj["metadata"]["labels"][manifests.DOMAIN_LABEL] == "alice"
        assert obj["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "pulumi"
