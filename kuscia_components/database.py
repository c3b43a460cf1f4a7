"""NodeDatabase: the MySQL database kine (k3s inside Kuscia) stores the node's state in.

- `in-cluster` (default, zero setup): a MySQL 8 StatefulSet in the party's namespace, with
  generated root and kuscia passwords in a Secret and `derived_merge=off` (NOTES §5).
- `external`: an explicit pulumi-mysql provider with the admin credentials creates a utf8mb4
  database, a dedicated user with a generated password, and grants only what kine needs.

Either way the output is one secret: the `mysql://` datastore endpoint for kuscia.yaml.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from . import manifests
from .config import PartyConfig
from .dsn import KINE_PRIVILEGES, build_dsn, datastore_endpoint
from .passwords import GeneratedPassword

COMPONENT_TYPE = "kuscia:index:NodeDatabase"
IN_CLUSTER_NAME = "kuscia-mysql"
MYSQL_PORT = 3306


@dataclass(frozen=True)
class NodeDatabaseArgs:
    config: PartyConfig
    namespace: pulumi.Input[str]


class NodeDatabase(pulumi.ComponentResource):
    datastore_endpoint: pulumi.Output[str]  # secret
    host: pulumi.Output[str]
    port: pulumi.Output[int]
    database_name: pulumi.Output[str]
    user: pulumi.Output[str]

    def __init__(self, name: str, args: NodeDatabaseArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(COMPONENT_TYPE, name, None, opts)
        cfg = args.config
        db = cfg.database
        password = GeneratedPassword(
            f"{name}-user-password", purpose="kine-user", opts=pulumi.ResourceOptions(parent=self)
        )
        if db.mode == "external":
            host = str(db.host)
            self._external(name, cfg, password.result)
        else:
            host = in_cluster_host(cfg)
            self._in_cluster(name, cfg, password.result)
        self.host = pulumi.Output.from_input(host)
        self.port = pulumi.Output.from_input(db.port if db.mode == "external" else MYSQL_PORT)
        self.database_name = pulumi.Output.from_input(db.name)
        self.user = pulumi.Output.from_input(db.user)
        port = db.port if db.mode == "external" else MYSQL_PORT
        self.datastore_endpoint = pulumi.Output.secret(
            password.result.apply(lambda pw: datastore_endpoint(build_dsn(db.user, pw, host, port, db.name)))
        )
        self.register_outputs({"datastoreEndpoint": self.datastore_endpoint, "host": self.host})

    def _external(self, name: str, cfg: PartyConfig, user_password: pulumi.Output[str]) -> None:
        import pulumi_mysql as mysql

        db = cfg.database
        provider = mysql.Provider(
            f"{name}-mysql",
            endpoint=f"{db.host}:{db.port}",
            username=db.admin_user,
            password=pulumi.Output.secret(db.admin_password),
            opts=pulumi.ResourceOptions(parent=self),
        )
        with_provider = pulumi.ResourceOptions(parent=self, provider=provider)
        database = mysql.Database(
            f"{name}-database",
            name=db.name,
            default_character_set="utf8mb4",
            default_collation="utf8mb4_general_ci",
            opts=with_provider,
        )
        user = mysql.User(
            f"{name}-user", user=db.user, host="%", plaintext_password=user_password, opts=with_provider
        )
        mysql.Grant(
            f"{name}-grant",
            user=user.user,
            host=user.host,
            database=database.name,
            privileges=list(KINE_PRIVILEGES),
            opts=with_provider,
        )

    def _in_cluster(self, name: str, cfg: PartyConfig, user_password: pulumi.Output[str]) -> None:
        root_password = GeneratedPassword(
            f"{name}-root-password", purpose="mysql-root", opts=pulumi.ResourceOptions(parent=self)
        )
        child = pulumi.ResourceOptions(parent=self)
        secret = k8s.core.v1.Secret(
            f"{name}-secret",
            **manifests.resource_args(
                mysql_secret(
                    cfg, pulumi.Output.secret(root_password.result), pulumi.Output.secret(user_password)
                )
            ),
            opts=child,
        )
        service = k8s.core.v1.Service(
            f"{name}-service", **manifests.resource_args(mysql_service(cfg)), opts=child
        )
        k8s.apps.v1.StatefulSet(
            f"{name}-statefulset",
            **manifests.resource_args(mysql_statefulset(cfg)),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[secret, service]),
        )


def in_cluster_host(cfg: PartyConfig) -> str:
    """The headless Service's DNS name: it resolves only to a Ready MySQL pod."""
    return f"{IN_CLUSTER_NAME}.{cfg.namespace}.svc.cluster.local"


def mysql_labels(cfg: PartyConfig) -> dict[str, str]:
    return {**manifests.common_labels(cfg), "app.kubernetes.io/component": "database", "app": IN_CLUSTER_NAME}


def mysql_secret(cfg: PartyConfig, root_password: Any, user_password: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": IN_CLUSTER_NAME, "namespace": cfg.namespace, "labels": mysql_labels(cfg)},
        "type": "Opaque",
        "stringData": {
            "root-password": root_password,
            "user": cfg.database.user,
            "password": user_password,
            "database": cfg.database.name,
        },
    }


def mysql_service(cfg: PartyConfig) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": IN_CLUSTER_NAME, "namespace": cfg.namespace, "labels": mysql_labels(cfg)},
        "spec": {
            "clusterIP": "None",
            "selector": {"app": IN_CLUSTER_NAME},
            "ports": [{"name": "mysql", "port": MYSQL_PORT, "targetPort": MYSQL_PORT, "protocol": "TCP"}],
        },
    }


def mysql_statefulset(cfg: PartyConfig) -> dict[str, Any]:
    """MySQL 8 with one PVC; passwords only via secretKeyRef, never in the pod spec."""
    db = cfg.database

    def from_secret(env: str, key: str) -> dict[str, Any]:
        return {"name": env, "valueFrom": {"secretKeyRef": {"name": IN_CLUSTER_NAME, "key": key}}}

    ping = ["sh", "-c", 'mysqladmin ping -h 127.0.0.1 -uroot -p"$MYSQL_ROOT_PASSWORD" --silent']
    pvc_spec: dict[str, Any] = {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": db.storage_size}},
    }
    if db.storage_class:
        pvc_spec["storageClassName"] = db.storage_class
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": IN_CLUSTER_NAME, "namespace": cfg.namespace, "labels": mysql_labels(cfg)},
        "spec": {
            "serviceName": IN_CLUSTER_NAME,
            "replicas": 1,
            "selector": {"matchLabels": {"app": IN_CLUSTER_NAME}},
            "template": {
                "metadata": {"labels": mysql_labels(cfg)},
                "spec": {
                    "securityContext": {"fsGroup": 999},
                    "automountServiceAccountToken": False,
                    "containers": [
                        {
                            "name": "mysql",
                            "image": db.image,
                            "args": [
                                "--optimizer-switch=derived_merge=off",
                                "--character-set-server=utf8mb4",
                                "--collation-server=utf8mb4_general_ci",
                                "--max-connections=1000",
                            ],
                            "env": [
                                from_secret("MYSQL_ROOT_PASSWORD", "root-password"),
                                from_secret("MYSQL_DATABASE", "database"),
                                from_secret("MYSQL_USER", "user"),
                                from_secret("MYSQL_PASSWORD", "password"),
                            ],
                            "ports": [{"name": "mysql", "containerPort": MYSQL_PORT, "protocol": "TCP"}],
                            "volumeMounts": [{"name": "data", "mountPath": "/var/lib/mysql"}],
                            "resources": {
                                "requests": {"cpu": "250m", "memory": "512Mi"},
                                "limits": {"cpu": "2", "memory": "2Gi"},
                            },
                            "readinessProbe": {
                                "exec": {"command": ping},
                                "periodSeconds": 5,
                                "timeoutSeconds": 3,
                            },
                            "livenessProbe": {
                                "exec": {"command": ping},
                                "initialDelaySeconds": 60,
                                "periodSeconds": 20,
                                "timeoutSeconds": 5,
                            },
                        }
                    ],
                },
            },
            "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": pvc_spec}],
        },
    }


def provisioning_statements(
    name: str, user: str, password: str, *, host: str = "%", privileges: tuple[str, ...] = KINE_PRIVILEGES
) -> list[tuple[str, tuple[str, ...]]]:
    """The SQL the external mode makes pulumi-mysql (terraform-provider-mysql) run, as
    (statement, parameters) pairs: database, user, grant. Names are already validated
    (`[A-Za-z0-9_]`); the password travels as a parameter, never inside the SQL text."""
    return [
        (f"CREATE DATABASE `{name}` CHARACTER SET 'utf8mb4' COLLATE 'utf8mb4_general_ci'", ()),
        ("CREATE USER %s@%s IDENTIFIED BY %s", (user, host, password)),
        (f"GRANT {', '.join(privileges)} ON `{name}`.* TO %s@%s", (user, host)),
    ]
