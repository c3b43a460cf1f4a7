"""Constants of the `kuscia:` namespace, and the one place that maps a protocol to a URL scheme."""

from __future__ import annotations

from typing import Literal

Protocol = Literal["NOTLS", "TLS"]  # how a partner's gateway is addressed
NodeProtocol = Literal["NOTLS", "TLS", "MTLS"]  # what our node runs (MTLS: KusciaAPI client certs)
Runtime = Literal["runk", "runp"]
ServiceType = Literal["ClusterIP", "NodePort", "LoadBalancer"]
DatabaseMode = Literal["in-cluster", "external"]
LogLevel = Literal["DEBUG", "INFO", "WARN", "ERROR"]

CONFIG_NAMESPACE = "kuscia"
DEFAULT_IMAGE = "secretflow-registry.cn-hangzhou.cr.aliyuncs.com/secretflow/kuscia:1.1.0b0"
DEFAULT_MYSQL_IMAGE = "mysql:8.0.40"
GATEWAY_PORT = 1080
KUSCIAAPI_HTTP_PORT = 8082
KUSCIA_CONTAINER = "kuscia"  # the Deployment's container; exec names it (a mesh sidecar makes two)
ENCRYPTED = "<encrypted: decrypted by Pulumi at deploy>"  # offline stand-in for `secure:` values

RESERVED_DOMAIN_IDS = frozenset(
    {"default", "kube-system", "kube-public", "kube-node-lease", "master", "cross-domain"}
)
SYSTEM_NAMESPACES = frozenset({"kube-system", "kube-public", "kube-node-lease"})
# The Service is named kuscia-autonomy-<domainId> and must be a 63-character DNS label.
MAX_DOMAIN_ID_LENGTH = 63 - len("kuscia-autonomy-")


def gateway_scheme(protocol: str | None) -> str:
    """The URL scheme of a Kuscia gateway: plain HTTP under NOTLS, HTTPS otherwise (TLS, MTLS)."""
    return "http" if protocol == "NOTLS" else "https"
