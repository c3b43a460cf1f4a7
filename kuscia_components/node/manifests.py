"""Pure builders for the Kubernetes objects of one autonomy node.

Each function takes the typed party config (plus values a cluster computes, when needed) and
returns plain dicts in Kubernetes' own field names, so they can be unit-tested, validated against
the OpenAPI schemas and rendered without Pulumi. `node.py` turns them into resources.
"""

from __future__ import annotations

from typing import Any

from kuscia_components.config import GATEWAY_PORT, KUSCIAAPI_HTTP_PORT, PartyConfig

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

Manifest = dict[str, Any]


def names(cfg: PartyConfig) -> dict[str, str]:
    """Every object name of a node, in one place (the seed's names by default)."""
    base = cfg.service_name  # kuscia-autonomy-<id>
    return {
        "namespace": cfg.namespace,
        "service": base,
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


def namespace(cfg: PartyConfig) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": metadata(cfg, cfg.namespace, namespaced=False),
    }


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
    """Only what runk uses, only in this namespace (NOTES §1.7): task pods, their logs,
    ConfigMaps and Secrets, and the agent's leader-election Lease."""
    verbs = ["get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"]
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": metadata(cfg, names(cfg)["role"]),
        "rules": [
            {"apiGroups": [""], "resources": ["pods", "configmaps", "secrets"], "verbs": verbs},
            {"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get", "list", "watch"]},
            {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": verbs},
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
    """Ports as in the seed's service.yaml; only 1080 is meant for partners."""
    gateway: Manifest = {"name": "envoy", "port": GATEWAY_PORT, "protocol": "TCP", "targetPort": GATEWAY_PORT}
    if cfg.service.type != "ClusterIP" and cfg.service.node_port is not None:
        gateway["nodePort"] = cfg.service.node_port
    ports = [
        gateway,
        {
            "name": "envoy-internal",
            "port": ENVOY_INTERNAL_PORT,
            "protocol": "TCP",
            "targetPort": ENVOY_INTERNAL_PORT,
        },
        {"name": "dns", "port": DNS_PORT, "protocol": "UDP", "targetPort": DNS_PORT},
        {
            "name": "kusciaapi",
            "port": KUSCIAAPI_HTTP_PORT,
            "protocol": "TCP",
            "targetPort": KUSCIAAPI_HTTP_PORT,
        },
    ]
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(cfg, names(cfg)["service"], annotations=dict(cfg.service.annotations)),
        "spec": {"type": cfg.service.type, "selector": selector_labels(cfg), "ports": ports},
    }


def config_secret(cfg: PartyConfig, kuscia_yaml: Any, cert_pem: Any) -> Manifest:
    """kuscia.yaml holds the private key and the DB password, so it lives in a Secret."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": metadata(cfg, names(cfg)["config_secret"]),
        "type": "Opaque",
        "stringData": {"kuscia.yaml": kuscia_yaml, "domain.crt": cert_pem},
    }


def network_policy(cfg: PartyConfig) -> Manifest:
    """Partners reach only the gateway; our own namespace (runk task pods) reaches everything;
    KusciaAPI only from `networkPolicy.kusciaApiFrom` (which must include the API server)."""
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": metadata(cfg, names(cfg)["network_policy"]),
        "spec": {
            "podSelector": {"matchLabels": selector_labels(cfg)},
            "policyTypes": ["Ingress"],
            "ingress": [
                {"ports": [{"protocol": "TCP", "port": GATEWAY_PORT}]},
                {"from": [{"podSelector": {}}]},
                {
                    "from": [{"ipBlock": {"cidr": cidr}} for cidr in cfg.network_policy.kusciaapi_from],
                    "ports": [{"protocol": "TCP", "port": KUSCIAAPI_HTTP_PORT}],
                },
            ],
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
    volumes: list[Manifest] = [
        {"name": "kuscia-var-tmp", "emptyDir": {}},
        {"name": "kuscia-config", "secret": {"secretName": n["config_secret"], "defaultMode": 0o400}},
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
                "secret": {"secretName": cfg.runk_kubeconfig_secret, "defaultMode": 0o400},
            }
        )
    # Kuscia's k3s must come up within 30 s and the node needs a little more for envoy and
    # KusciaAPI: the startup probe allows 5 minutes, then liveness takes over.
    container: Manifest = {
        "name": "kuscia",
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
                    "containers": [container],
                    "volumes": volumes,
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
