"""AutonomyNode: one Kuscia autonomy node on Kubernetes, as a Pulumi component.

It owns the node's identity (key, cert, KusciaAPI token), its database, and the Kubernetes
objects built by `manifests.py`. The rendered kuscia.yaml goes into a Secret together with the
certificate, and its checksum into the pod template, so any config change rolls the pod.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from kuscia_components.config import PartyConfig
from kuscia_components.node import manifests
from kuscia_components.node.database import NodeDatabase, NodeDatabaseArgs
from kuscia_components.node.identity import DomainIdentity
from kuscia_components.node.kuscia_yaml import KusciaYamlInputs, config_checksum, render_kuscia_yaml

COMPONENT_TYPE = "kuscia:index:AutonomyNode"
# pulumi-kubernetes gives a Deployment or Service 10 minutes (await/deployment.go, service.go).
# The first rollout pulls the Kuscia image (over a gigabyte, from a registry in Hangzhou: at
# 1-2 MB/s that alone is 10-20 minutes) and then allows Kuscia 5 minutes to start (the startup
# probe), so 30 minutes. The partner-facing Service waits for the same pod (and a load
# balancer address), so it gets as long.
KUSCIA_ROLLOUT_TIMEOUTS = pulumi.CustomTimeouts(create="30m", update="30m")


@dataclass(frozen=True)
class AutonomyNodeArgs:
    config: PartyConfig


class AutonomyNode(pulumi.ComponentResource):
    """Namespace, identity, database, RBAC, config Secret, Services, NetworkPolicy, Deployment."""

    domain_id: pulumi.Output[str]
    namespace: pulumi.Output[str]
    service_name: pulumi.Output[str]
    protocol: pulumi.Output[str]
    public_endpoint: pulumi.Output[str]
    cert_b64: pulumi.Output[str]
    kusciaapi_token: pulumi.Output[str]  # secret
    cert_pem: pulumi.Output[str]  # trust anchor for KusciaAPI's server certificate (kube/tls.py)
    kusciaapi_client_cert_pem: pulumi.Output[str]  # presented under MTLS
    kusciaapi_client_key_pem: pulumi.Output[str]  # secret
    peering_bundle: pulumi.Output[dict[str, str]]

    def __init__(self, name: str, args: AutonomyNodeArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(COMPONENT_TYPE, name, None, opts)
        cfg = args.config
        n = manifests.names(cfg)
        child = pulumi.ResourceOptions(parent=self)

        self.identity = DomainIdentity(
            f"{name}-identity",
            domain_id=cfg.domain_id,
            supplied_key=pulumi.Output.secret(cfg.domain_key_data) if cfg.domain_key_data else None,
            opts=child,
        )
        ns = k8s.core.v1.Namespace(
            f"{name}-namespace", **manifests.resource_args(manifests.namespace(cfg)), opts=child
        )
        in_ns = pulumi.ResourceOptions(parent=self, depends_on=[ns])

        self.database = NodeDatabase(
            f"{name}-database", NodeDatabaseArgs(config=cfg, namespace=ns.metadata.name), opts=in_ns
        )
        sa = k8s.core.v1.ServiceAccount(
            f"{name}-sa", **manifests.resource_args(manifests.service_account(cfg)), opts=in_ns
        )
        rbac: list[pulumi.Resource] = []
        if manifests.needs_runk_rbac(cfg):
            role = k8s.rbac.v1.Role(
                f"{name}-runk-role", **manifests.resource_args(manifests.runk_role(cfg)), opts=in_ns
            )
            rbac = [
                role,
                k8s.rbac.v1.RoleBinding(
                    f"{name}-runk-rolebinding",
                    **manifests.resource_args(manifests.runk_role_binding(cfg)),
                    opts=pulumi.ResourceOptions(parent=self, depends_on=[ns, role, sa]),
                ),
            ]
        # The internal Service is never awaited (manifests.service): its ClusterIP is known as
        # soon as it exists, and kuscia.yaml needs it before the pod can start.
        svc = k8s.core.v1.Service(
            f"{name}-service", **manifests.resource_args(manifests.service(cfg)), opts=in_ns
        )
        gateway = manifests.gateway_service(cfg)
        if gateway is not None:
            k8s.core.v1.Service(
                f"{name}-gateway-service",
                **manifests.resource_args(gateway),
                opts=pulumi.ResourceOptions(
                    parent=self, depends_on=[ns], custom_timeouts=KUSCIA_ROLLOUT_TIMEOUTS
                ),
            )

        kuscia_yaml: pulumi.Output[str] = pulumi.Output.all(
            self.identity.domain_key_data, svc.spec.cluster_ip, self.database.datastore_endpoint
        ).apply(lambda v: render_kuscia_yaml(_yaml_inputs(cfg, key_data=v[0], cluster_ip=v[1], dsn=v[2])))
        kuscia_yaml = pulumi.Output.secret(kuscia_yaml)
        config = k8s.core.v1.Secret(
            f"{name}-config",
            **manifests.resource_args(manifests.config_secret(cfg, kuscia_yaml, self.identity.cert_pem)),
            opts=in_ns,
        )
        if cfg.network_policy.enabled:
            k8s.networking.v1.NetworkPolicy(
                f"{name}-netpol", **manifests.resource_args(manifests.network_policy(cfg)), opts=in_ns
            )

        # A sha256 of the config reveals nothing about the key or passwords; keeping it plain
        # lets previews show the pod template instead of a wholly secret spec.
        checksum = pulumi.Output.unsecret(kuscia_yaml.apply(config_checksum))
        k8s.apps.v1.Deployment(
            f"{name}-deployment",
            **manifests.resource_args(manifests.deployment(cfg, checksum)),
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=[ns, sa, config, self.database, *rbac],
                custom_timeouts=KUSCIA_ROLLOUT_TIMEOUTS,
            ),
        )

        self.domain_id = pulumi.Output.from_input(cfg.domain_id)
        self.namespace = ns.metadata.name
        self.service_name = svc.metadata.name
        self.protocol = pulumi.Output.from_input(cfg.protocol)
        self.public_endpoint = pulumi.Output.from_input(cfg.public_endpoint)
        self.cert_b64 = self.identity.cert_b64
        self.kusciaapi_token = pulumi.Output.secret(self.identity.kusciaapi_token)
        self.cert_pem = self.identity.cert_pem
        self.kusciaapi_client_cert_pem = self.identity.kusciaapi_client_cert_pem
        self.kusciaapi_client_key_pem = pulumi.Output.secret(self.identity.kusciaapi_client_key_pem)
        self.peering_bundle = pulumi.Output.unsecret(self.cert_b64).apply(
            lambda cert: {
                "domainId": cfg.domain_id,
                "cert": cert,
                "endpoint": cfg.public_endpoint,
                "protocol": cfg.protocol,
            }
        )
        self.config_secret_name = n["config_secret"]
        self.register_outputs(
            {
                "domainId": self.domain_id,
                "namespace": self.namespace,
                "serviceName": self.service_name,
                "protocol": self.protocol,
                "publicEndpoint": self.public_endpoint,
                "peeringBundle": self.peering_bundle,
            }
        )


def _yaml_inputs(cfg: PartyConfig, *, key_data: str, cluster_ip: str, dsn: str) -> KusciaYamlInputs:
    """runk task pods resolve through the node's own DNS: the Service ClusterIP (NOTES §1.7)."""
    return KusciaYamlInputs(
        domain_id=cfg.domain_id,
        domain_key_data=key_data,
        protocol=cfg.protocol,
        runtime=cfg.runtime,
        log_level=cfg.log_level,
        runk_namespace=cfg.namespace,
        dns_servers=(cluster_ip,),
        runk_kubeconfig_file=manifests.runk_kubeconfig_file(cfg),
        capacity=cfg.capacity,
        datastore_endpoint=dsn,
    )
