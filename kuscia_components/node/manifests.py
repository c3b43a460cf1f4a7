"""Pure builders for the Kubernetes objects of one autonomy node.

Each function takes the typed party config (plus values a cluster computes, when needed) and
returns plain dicts in Kubernetes' own field names, so they can be unit-tested, validated against
the OpenAPI schemas and rendered without Pulumi. `node.py` turns them into resources.
"""

from __future__ import annotations

from typing import Any

from kuscia_components.config import GATEWAY_PORT, KUSCIAAPI_HTTP_PORT, PartyConfig
from kuscia_components.config.constants import KUSCIA_CONTAINER

KUSCIA_HOME = "/home/kuscia"
CONFIG_PATH = f"{KUSCIA_HOME}/etc/conf/kuscia.yaml"
CERT_PATH = f"{KUSCIA_HOME}/var/certs/domain.crt"
RUNK_KUBECONFIG_PATH = f"{KUSCIA_HOME}/etc/runk/kubeconfig"
RUNK_KUBECONFIG_KEY = "kubeconfig"
CONFIG_CHECKSUM_ANNOTATION = "kuscia.secretflow/config-sha256"
DOMAIN_LABEL = "kuscia.secretflow/domain-id"
KUSCIAAPI_GRPC_PORT = 8083
ENVOY_INTERNAL_PORT = 80
DNS_PORT = 53
# pulumi-kubernetes waits for a selector Service's endpoints to be Ready (await/service.go);
# the internal Service's ClusterIP goes into kuscia.yaml, so waiting for pods would deadlock.
SKIP_AWAIT_ANNOTATION = "pulumi.com/skipAwait"

Manifest = dict[str, Any]


def names(cfg: PartyConfig) -> dict[str, str]:
    """Every object name of a node, in one place (the seed's names by default)."""
    base = cfg.service_name  # kuscia-autonomy-<id>
    return {
        "namespace": cfg.namespace,
        "service": base,
        # partner-facing, only for NodePort/LoadBalancer; fits 63 with a 47-character domain ID
        "gateway_service": f"kuscia-gateway-{cfg.domain_id}",
        "deployment": base,
        "config_secret": f"{base}-config",
        "service_account": base,
        "role": f"{base}-runk",
        "role_binding": f"{base}-runk",
        "network_policy": base,
    }


def common_labels(cfg: PartyConfig) -> dict[str, str]:
    """Labels on every object we create, so preflight/verify and humans can find them."""
    return {
        "app.kubernetes.io/name": "kuscia",
        "app.kubernetes.io/instance": cfg.domain_id,
        "app.kubernetes.io/component": "autonomy",
        "app.kubernetes.io/managed-by": "pulumi",
        DOMAIN_LABEL: cfg.domain_id,
    }


def selector_labels(cfg: PartyConfig) -> dict[str, str]:
    """The pod selector; `app: kuscia-autonomy-<id>` is the seed's label."""
    return {"app": cfg.service_name}


def metadata(cfg: PartyConfig, name: str, *, namespaced: bool = True, **extra: Any) -> Manifest:
    meta: Manifest = {"name": name, "labels": common_labels(cfg)}
    if namespaced:
        meta["namespace"] = cfg.namespace
    meta.update({k: v for k, v in extra.items() if v})
    return meta


# Pod Security Admission: as root (k3s, envoy), Kuscia fails "restricted" (runAsNonRoot, drop
# ALL) and passes "baseline", as does the in-cluster MySQL. `podSecurity: rootless` passes
# "restricted"; the namespace enforces it only when nothing else runs there: runk's task pods
# (Kuscia copies them from its app images, with no such securityContext) and the in-cluster
# MySQL (its entrypoint starts as root) would be refused. Warn and audit are always
# "restricted", so a pod below it is visible. Checked in tests/test_pod_security.py.
POD_SECURITY_LABELS = {
    "pod-security.kubernetes.io/enforce": "baseline",
    "pod-security.kubernetes.io/warn": "restricted",
    "pod-security.kubernetes.io/audit": "restricted",
}
# upstream's rootless variant (hack/k8s/autonomy/rootless/deployment.yaml): the image's `kuscia`
# user (build/dockerfile/kuscia-anolis.Dockerfile: useradd, chown -R /home/kuscia)
ROOTLESS_UID = 1000
RESOLV_CONF_PATH = f"{KUSCIA_HOME}/var/tmp/resolv.conf"  # CoreDNS's `forward` file (etc/conf/corefile)


def pod_security_labels(cfg: PartyConfig) -> dict[str, str]:
    """Enforce the strictest level every pod of the namespace passes (see above)."""
    alone = cfg.pod_security == "rootless" and cfg.runtime == "runp" and cfg.database.mode == "external"
    return {
        **POD_SECURITY_LABELS,
        "pod-security.kubernetes.io/enforce": "restricted" if alone else "baseline",
    }


def namespace(cfg: PartyConfig) -> Manifest:
    meta = metadata(cfg, cfg.namespace, namespaced=False)
    meta["labels"] = {**meta.get("labels", {}), **pod_security_labels(cfg)}
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": meta}


def needs_runk_rbac(cfg: PartyConfig) -> bool:
    """RunK with the in-cluster ServiceAccount (the seed's "方式二") needs a Role."""
    return cfg.runtime == "runk" and cfg.runk_kubeconfig_secret is None


def service_account(cfg: PartyConfig) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": metadata(cfg, names(cfg)["service_account"]),
        "automountServiceAccountToken": needs_runk_rbac(cfg),
    }


def runk_role(cfg: PartyConfig) -> Manifest:
    """Only what runk does on this cluster, only in this namespace (NOTES §1.7).

    Checked against Kuscia's code, not its sample rbac.yaml (which grants `*` and leases):
    pkg/agent/provider/pod/k8s_provider.go creates, reads and deletes task pods and watches them
    through an informer, creates and deletes their ConfigMaps and Secrets (found via informers:
    list/watch, no get); k8s_logger.go streams pods/log; k8s_node.go gets a pod as a probe. The
    leader-election Lease and the events go to Kuscia's internal k3s (`kubeClient`, see
    pkg/agent/commands/root.go), not to this cluster, so no leases and no events here.
    """
    informed = ["list", "watch", "create", "delete"]
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": metadata(cfg, names(cfg)["role"]),
        "rules": [
            {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", *informed]},
            {"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]},
            {"apiGroups": [""], "resources": ["configmaps", "secrets"], "verbs": informed},
        ],
    }


def runk_role_binding(cfg: PartyConfig) -> Manifest:
    n = names(cfg)
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": metadata(cfg, n["role_binding"]),
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": n["role"]},
        "subjects": [{"kind": "ServiceAccount", "name": n["service_account"], "namespace": cfg.namespace}],
    }


def service(cfg: PartyConfig) -> Manifest:
    """The node's own ClusterIP Service: the seed's ports, for runk task pods (DNS, envoy) and
    for KusciaAPI through the API server's proxy. Always ClusterIP, never awaited: kuscia.yaml
    needs its ClusterIP before the pod can exist. Partners get `gateway_service` (when exposed)."""
    ports = [
        _port("envoy", GATEWAY_PORT),
        _port("envoy-internal", ENVOY_INTERNAL_PORT),
        _port("dns", DNS_PORT, "UDP"),
        _port("kusciaapi", KUSCIAAPI_HTTP_PORT),
    ]
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(cfg, names(cfg)["service"], annotations={SKIP_AWAIT_ANNOTATION: "true"}),
        "spec": {"type": "ClusterIP", "selector": selector_labels(cfg), "ports": ports},
    }


def gateway_service(cfg: PartyConfig) -> Manifest | None:
    """The partner-facing Service for `service.type` NodePort/LoadBalancer: ONLY the gateway
    1080, so a load balancer or node port never exposes KusciaAPI, DNS or envoy's internal
    port. It carries `service.nodePort` and `service.annotations`; None for ClusterIP."""
    if cfg.service.type == "ClusterIP":
        return None
    gateway = _port("envoy", GATEWAY_PORT)
    if cfg.service.node_port is not None:
        gateway["nodePort"] = cfg.service.node_port
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(cfg, names(cfg)["gateway_service"], annotations=dict(cfg.service.annotations)),
        "spec": {"type": cfg.service.type, "selector": selector_labels(cfg), "ports": [gateway]},
    }


def _port(name: str, port: int, protocol: str = "TCP") -> Manifest:
    return {"name": name, "port": port, "protocol": protocol, "targetPort": port}


def config_secret(cfg: PartyConfig, kuscia_yaml: Any, cert_pem: Any) -> Manifest:
    """kuscia.yaml holds the private key and the DB password, so it lives in a Secret (with the
    resolv.conf a rootless node's CoreDNS forwards to)."""
    data: dict[str, Any] = {"kuscia.yaml": kuscia_yaml, "domain.crt": cert_pem}
    if cfg.pod_security == "rootless":
        data["resolv.conf"] = resolv_conf(cfg)
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": metadata(cfg, names(cfg)["config_secret"]),
        "type": "Opaque",
        "stringData": data,
    }


def resolv_conf(cfg: PartyConfig) -> str:
    """As root, Kuscia copies the pod's /etc/resolv.conf here and points /etc/resolv.conf at its
    CoreDNS (cmd/kuscia/modules/coredns.go prepareResolvConf); as non-root it cannot, so the
    cluster's DNS is written here and the pod's DNS is 127.0.0.1 (dnsPolicy None)."""
    ns = cfg.namespace
    return (
        f"nameserver {cfg.cluster_dns_server}\n"
        f"search {ns}.svc.cluster.local svc.cluster.local cluster.local\n"
        "options ndots:5\n"
    )


def container_security(cfg: PartyConfig) -> Manifest:
    """Root as upstream's Deployment (unprivileged, no escalation), or upstream's rootless variant
    narrowed: uid/gid 1000, every capability dropped but NET_BIND_SERVICE (envoy binds 80 and
    1080, CoreDNS 53)."""
    if cfg.pod_security != "rootless":
        return {"allowPrivilegeEscalation": False}
    return {
        "allowPrivilegeEscalation": False,
        "runAsNonRoot": True,
        "runAsUser": ROOTLESS_UID,
        "runAsGroup": ROOTLESS_UID,
        "capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]},
    }


def network_policy(cfg: PartyConfig) -> Manifest:
    """Partners reach only the gateway; our own namespace (runk task pods) reaches everything.
    KusciaAPI (8082) from nowhere else under the port-forward transport: the kubelet dials the
    port inside the pod's own network namespace, which no NetworkPolicy filters. Under the
    service proxy, also from `networkPolicy.kusciaApiFrom` (which must include the API server)."""
    ingress: list[Manifest] = [
        {"ports": [{"protocol": "TCP", "port": GATEWAY_PORT}]},
        {"from": [{"podSelector": {}}]},
    ]
    if cfg.kusciaapi_transport == "serviceProxy":
        ingress.append(
            {
                "from": [{"ipBlock": {"cidr": cidr}} for cidr in cfg.network_policy.kusciaapi_from],
                "ports": [{"protocol": "TCP", "port": KUSCIAAPI_HTTP_PORT}],
            }
        )
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": metadata(cfg, names(cfg)["network_policy"]),
        "spec": {
            "podSelector": {"matchLabels": selector_labels(cfg)},
            "policyTypes": ["Ingress"],
            "ingress": ingress,
        },
    }


def deployment(cfg: PartyConfig, config_checksum: Any) -> Manifest:
    """One replica with `Recreate`: two pods must never share one kine database (NOTES §9.3)."""
    n = names(cfg)
    mounts: list[Manifest] = [
        {"name": "kuscia-var-tmp", "mountPath": f"{KUSCIA_HOME}/var/tmp"},
        {"name": "kuscia-config", "mountPath": CONFIG_PATH, "subPath": "kuscia.yaml", "readOnly": True},
        {"name": "kuscia-config", "mountPath": CERT_PATH, "subPath": "domain.crt", "readOnly": True},
    ]
    rootless = cfg.pod_security == "rootless"
    mode = 0o440 if rootless else 0o400  # rootless reads them through fsGroup
    if rootless:
        mounts.append(
            {
                "name": "kuscia-config",
                "mountPath": RESOLV_CONF_PATH,
                "subPath": "resolv.conf",
                "readOnly": True,
            }
        )
    volumes: list[Manifest] = [
        {"name": "kuscia-var-tmp", "emptyDir": {}},
        {"name": "kuscia-config", "secret": {"secretName": n["config_secret"], "defaultMode": mode}},
    ]
    if cfg.runtime == "runk" and cfg.runk_kubeconfig_secret is not None:
        mounts.append(
            {
                "name": "runk-kubeconfig",
                "mountPath": RUNK_KUBECONFIG_PATH,
                "subPath": RUNK_KUBECONFIG_KEY,
                "readOnly": True,
            }
        )
        volumes.append(
            {
                "name": "runk-kubeconfig",
                "secret": {"secretName": cfg.runk_kubeconfig_secret, "defaultMode": mode},
            }
        )
    # Kuscia's k3s must come up within 30 s and the node needs a little more for envoy and
    # KusciaAPI: the startup probe allows 5 minutes, then liveness takes over.
    container: Manifest = {
        "name": KUSCIA_CONTAINER,
        "image": cfg.image,
        "imagePullPolicy": "IfNotPresent",
        "command": ["tini", "--", "kuscia", "start", "-c", "etc/conf/kuscia.yaml"],
        "workingDir": KUSCIA_HOME,
        "ports": [
            {"name": "gateway", "containerPort": GATEWAY_PORT, "protocol": "TCP"},
            {"name": "envoy-internal", "containerPort": ENVOY_INTERNAL_PORT, "protocol": "TCP"},
            {"name": "dns", "containerPort": DNS_PORT, "protocol": "UDP"},
            {"name": "kusciaapi", "containerPort": KUSCIAAPI_HTTP_PORT, "protocol": "TCP"},
            {"name": "kusciaapi-grpc", "containerPort": KUSCIAAPI_GRPC_PORT, "protocol": "TCP"},
        ],
        "volumeMounts": mounts,
        "resources": {"requests": dict(cfg.resources.requests), "limits": dict(cfg.resources.limits)},
        # Kuscia's own autonomy Deployment (hack/k8s/autonomy/deployment.yaml) runs the image as
        # root, unprivileged, with no added capabilities: k3s (runk: no kubelet, no containerd),
        # envoy and runp's processes need no setuid binary, so no privilege escalation either.
        "securityContext": container_security(cfg),
        "startupProbe": {
            "tcpSocket": {"port": KUSCIAAPI_HTTP_PORT},
            "periodSeconds": 10,
            "timeoutSeconds": 3,
            "failureThreshold": 30,
        },
        "readinessProbe": {
            "tcpSocket": {"port": GATEWAY_PORT},
            "periodSeconds": 10,
            "timeoutSeconds": 3,
            "failureThreshold": 3,
        },
        "livenessProbe": {
            "tcpSocket": {"port": KUSCIAAPI_HTTP_PORT},
            "periodSeconds": 20,
            "timeoutSeconds": 5,
            "failureThreshold": 6,
        },
    }
    pod_security_context: Manifest = {"seccompProfile": {"type": "RuntimeDefault"}}
    dns: Manifest = {}
    if rootless:
        pod_security_context["fsGroup"] = ROOTLESS_UID
        dns = {"dnsPolicy": "None", "dnsConfig": {"nameservers": ["127.0.0.1"]}}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata(cfg, n["deployment"]),
        "spec": {
            "replicas": 1,
            "strategy": {"type": "Recreate"},
            "selector": {"matchLabels": selector_labels(cfg)},
            "template": {
                "metadata": {
                    "labels": {**common_labels(cfg), **selector_labels(cfg)},
                    "annotations": {CONFIG_CHECKSUM_ANNOTATION: config_checksum},
                },
                "spec": {
                    "serviceAccountName": n["service_account"],
                    "automountServiceAccountToken": needs_runk_rbac(cfg),
                    "securityContext": pod_security_context,
                    "containers": [container],
                    "volumes": volumes,
                    **dns,
                },
            },
        },
    }


def runk_kubeconfig_file(cfg: PartyConfig) -> str | None:
    """Where kuscia.yaml's `runk.kubeconfigFile` points (seed "方式一"), or None for the SA."""
    if cfg.runtime == "runk" and cfg.runk_kubeconfig_secret is not None:
        return RUNK_KUBECONFIG_PATH
    return None


_KEYWORDS = {
    "stringData": "string_data",
    "automountServiceAccountToken": "automount_service_account_token",
    "roleRef": "role_ref",
}


def resource_args(manifest: Manifest) -> Manifest:
    """Manifest dict -> pulumi_kubernetes keyword arguments (apiVersion/kind are implied)."""
    return {_KEYWORDS.get(k, k): v for k, v in manifest.items() if k not in ("apiVersion", "kind")}
