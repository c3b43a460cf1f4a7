"""NodeDatabase: the MySQL database kine (k3s inside Kuscia) keeps the node's state in.

- `in-cluster` (default, zero setup): a MySQL 8 StatefulSet in the party's namespace, with
  generated root and kine-user passwords in a Secret and `derived_merge=off` (NOTES §5).
- `external`: an explicit pulumi-mysql provider with the admin credentials creates a utf8mb4
  database, a dedicated user with a generated password, and grants only what kine needs.

Either way the output is one secret: the `mysql://` datastore endpoint for kuscia.yaml. The
manifest builders and `provider_statements` are pure, so tests check them directly (the SQL and
the probes against a real MariaDB).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from kuscia_components.config import PartyConfig
from kuscia_components.core.dsn import build_dsn, datastore_endpoint
from kuscia_components.core.hostport import join_host_port
from kuscia_components.core.mysql import KINE_PRIVILEGES
from kuscia_components.node import manifests
from kuscia_components.node.passwords import GeneratedPassword
from kuscia_components.node.storage_guard import StorageGuard

COMPONENT_TYPE = "kuscia:index:NodeDatabase"
IN_CLUSTER_NAME = "kuscia-mysql"
MYSQL_PORT = 3306
MYSQL_UID = 999  # the mysql user of the official image: owns the data directory via fsGroup
DATA_VOLUME = "data"
# pulumi-kubernetes gives a StatefulSet 10 minutes (await/statefulset.go); the first rollout
# pulls the MySQL image (a few hundred MB) and initialises the data directory, for which the
# startup probe alone allows 5 minutes: 20 minutes.
STATEFULSET_TIMEOUTS = pulumi.CustomTimeouts(create="20m", update="20m")
CHARACTER_SET = "utf8mb4"
# Available on MySQL 5.7, 8.x and MariaDB alike (utf8mb4_0900_ai_ci is not on MariaDB before
# 11.4). kine's only text column, `name`, declares CHARACTER SET ascii itself, so the database
# collation never orders kine's keys.
COLLATION = "utf8mb4_general_ci"
MYSQLD_ARGS = (
    "--optimizer-switch=derived_merge=off",  # Kuscia's tuning advice for kine's queries
    f"--character-set-server={CHARACTER_SET}",
    f"--collation-server={COLLATION}",
    "--max-connections=1000",  # kine opens many; error 1040 otherwise (NOTES §5)
)
# Probes read the passwords from the container's environment at run time (MYSQL_PWD), so no
# password is ever written into the pod spec or onto a command line. TCP to 127.0.0.1, because
# the image's first-boot server listens on its socket only: TCP answers once setup is done.
READY_COMMAND = (
    'MYSQL_PWD="$MYSQL_PASSWORD" exec mysql --protocol=TCP -h 127.0.0.1 --connect-timeout=2 '
    '-u "$MYSQL_USER" -D "$MYSQL_DATABASE" -e "SELECT 1"'
)  # ready = kine's own user can log in to kine's database (what Kuscia's 5 s ping needs)
ALIVE_COMMAND = (
    'MYSQL_PWD="$MYSQL_ROOT_PASSWORD" exec mysql --protocol=TCP -h 127.0.0.1 --connect-timeout=2 '
    '-u root -e "SELECT 1"'
)  # alive = the server answers root, which MySQL lets in even when max_connections is reached


@dataclass(frozen=True)
class NodeDatabaseArgs:
    config: PartyConfig
    namespace: pulumi.Input[str]  # the Namespace's name output, so objects wait for it


class NodeDatabase(pulumi.ComponentResource):
    """The node's kine database. `datastore_endpoint` is secret; the rest are plain."""

    datastore_endpoint: pulumi.Output[str]
    host: pulumi.Output[str]
    port: pulumi.Output[int]
    database_name: pulumi.Output[str]
    user: pulumi.Output[str]

    def __init__(self, name: str, args: NodeDatabaseArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(COMPONENT_TYPE, name, None, opts)
        cfg = args.config
        db = cfg.database
        child = pulumi.ResourceOptions(parent=self)
        password = GeneratedPassword(f"{name}-user-password", purpose="kine-user", opts=child)
        if db.mode == "external":
            host, port = str(db.host), db.port
            self._external(name, cfg, password.result)
        else:
            host, port = in_cluster_host(cfg), MYSQL_PORT
            self._in_cluster(name, cfg, args.namespace, password.result)
        dsn_user, dsn_name = db.user, db.name
        self.host = pulumi.Output.from_input(host)
        self.port = pulumi.Output.from_input(port)
        self.database_name = pulumi.Output.from_input(dsn_name)
        self.user = pulumi.Output.from_input(dsn_user)
        self.datastore_endpoint = pulumi.Output.secret(
            password.result.apply(
                lambda pw: datastore_endpoint(build_dsn(dsn_user, pw, host, port, dsn_name))
            )
        )
        self.register_outputs(
            {
                "datastoreEndpoint": self.datastore_endpoint,
                "host": self.host,
                "port": self.port,
                "databaseName": self.database_name,
                "user": self.user,
            }
        )

    def _external(self, name: str, cfg: PartyConfig, user_password: pulumi.Output[str]) -> None:
        import pulumi_mysql as mysql

        db = cfg.database
        provider = mysql.Provider(
            f"{name}-mysql",
            endpoint=join_host_port(str(db.host), db.port),
            username=db.admin_user,
            password=pulumi.Output.secret(db.admin_password),
            opts=pulumi.ResourceOptions(parent=self),
        )
        with_provider = pulumi.ResourceOptions(parent=self, provider=provider)
        database = mysql.Database(
            f"{name}-database",
            name=db.name,
            default_character_set=CHARACTER_SET,
            default_collation=COLLATION,
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

    def _in_cluster(
        self, name: str, cfg: PartyConfig, namespace: pulumi.Input[str], user_password: pulumi.Output[str]
    ) -> None:
        child = pulumi.ResourceOptions(parent=self)
        root_password = GeneratedPassword(f"{name}-root-password", purpose="mysql-root", opts=child)
        secret = k8s.core.v1.Secret(
            f"{name}-secret",
            **manifests.resource_args(
                mysql_secret(
                    cfg,
                    pulumi.Output.secret(root_password.result),
                    pulumi.Output.secret(user_password),
                    namespace=namespace,
                )
            ),
            opts=child,
        )
        service = k8s.core.v1.Service(
            f"{name}-service", **manifests.resource_args(mysql_service(cfg, namespace=namespace)), opts=child
        )
        guard = StorageGuard(
            f"{name}-storage",
            namespace=cfg.namespace,
            claim=data_claim_name(),
            storage_size=cfg.database.storage_size,
            storage_class=cfg.database.storage_class,
            opts=child,
        )
        k8s.apps.v1.StatefulSet(
            f"{name}-statefulset",
            **manifests.resource_args(mysql_statefulset(cfg, namespace=namespace)),
            opts=pulumi.ResourceOptions(
                parent=self, depends_on=[secret, service, guard], custom_timeouts=STATEFULSET_TIMEOUTS
            ),
        )


# ---------------------------------------------------------------------------------------------
# Pure builders
# ---------------------------------------------------------------------------------------------


def in_cluster_host(cfg: PartyConfig) -> str:
    """The headless Service's DNS name. It resolves only to a Ready pod (so to a server that
    already lets kine's user in), and unlike the pod's own name it does not depend on the
    ordinal or on the StatefulSet's name."""
    return f"{IN_CLUSTER_NAME}.{cfg.namespace}.svc.cluster.local"


def data_claim_name() -> str:
    """The PVC the StatefulSet controller makes for its only pod: <template>-<set>-<ordinal>."""
    return f"{DATA_VOLUME}-{IN_CLUSTER_NAME}-0"


def mysql_labels(cfg: PartyConfig) -> dict[str, str]:
    return {**manifests.common_labels(cfg), "app.kubernetes.io/component": "database", "app": IN_CLUSTER_NAME}


def _metadata(cfg: PartyConfig, namespace: Any) -> dict[str, Any]:
    return {"name": IN_CLUSTER_NAME, "namespace": namespace or cfg.namespace, "labels": mysql_labels(cfg)}


def mysql_secret(
    cfg: PartyConfig, root_password: Any, user_password: Any, *, namespace: Any = None
) -> dict[str, Any]:
    """The image's first-boot settings; the passwords stay Pulumi secrets (Outputs)."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": _metadata(cfg, namespace),
        "type": "Opaque",
        "stringData": {
            "root-password": root_password,
            "user": cfg.database.user,
            "password": user_password,
            "database": cfg.database.name,
        },
    }


def mysql_service(cfg: PartyConfig, *, namespace: Any = None) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(cfg, namespace),
        "spec": {
            "clusterIP": "None",
            "selector": {"app": IN_CLUSTER_NAME},
            "ports": [{"name": "mysql", "port": MYSQL_PORT, "targetPort": MYSQL_PORT, "protocol": "TCP"}],
        },
    }


def mysql_statefulset(cfg: PartyConfig, *, namespace: Any = None) -> dict[str, Any]:
    """MySQL 8 with one PVC; passwords only via secretKeyRef, never in the pod spec."""
    db = cfg.database

    def from_secret(env: str, key: str) -> dict[str, Any]:
        return {"name": env, "valueFrom": {"secretKeyRef": {"name": IN_CLUSTER_NAME, "key": key}}}

    def probe(command: str, **timing: int) -> dict[str, Any]:
        return {"exec": {"command": ["sh", "-c", command]}, "timeoutSeconds": 5, **timing}

    pvc_spec: dict[str, Any] = {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": db.storage_size}},
    }
    if db.storage_class:
        pvc_spec["storageClassName"] = db.storage_class
    container = {
        "name": "mysql",
        "image": db.image,
        "args": list(MYSQLD_ARGS),
        "env": [
            from_secret("MYSQL_ROOT_PASSWORD", "root-password"),
            from_secret("MYSQL_DATABASE", "database"),
            from_secret("MYSQL_USER", "user"),
            from_secret("MYSQL_PASSWORD", "password"),
        ],
        "ports": [{"name": "mysql", "containerPort": MYSQL_PORT, "protocol": "TCP"}],
        "volumeMounts": [{"name": DATA_VOLUME, "mountPath": "/var/lib/mysql"}],
        "resources": {
            "requests": {"cpu": "250m", "memory": "512Mi"},
            "limits": {"cpu": "2", "memory": "2Gi"},
        },
        # The first boot initialises the data directory: allow it five minutes before liveness.
        "startupProbe": probe(ALIVE_COMMAND, periodSeconds=5, failureThreshold=60),
        "readinessProbe": probe(READY_COMMAND, periodSeconds=5),
        "livenessProbe": probe(ALIVE_COMMAND, periodSeconds=20, failureThreshold=3),
        "securityContext": {"allowPrivilegeEscalation": False},
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": _metadata(cfg, namespace),
        "spec": {
            "serviceName": IN_CLUSTER_NAME,
            "replicas": 1,
            "selector": {"matchLabels": {"app": IN_CLUSTER_NAME}},
            "template": {
                "metadata": {"labels": mysql_labels(cfg)},
                "spec": {
                    "securityContext": {"fsGroup": MYSQL_UID, "seccompProfile": {"type": "RuntimeDefault"}},
                    "automountServiceAccountToken": False,
                    "terminationGracePeriodSeconds": 60,  # let InnoDB shut down cleanly
                    "containers": [container],
                },
            },
            "volumeClaimTemplates": [{"metadata": {"name": DATA_VOLUME}, "spec": pvc_spec}],
        },
    }


def provider_statements(
    database: str, user: str, password: str, *, host: str = "%", privileges: tuple[str, ...] = KINE_PRIVILEGES
) -> list[str]:
    """The SQL text pulumi-mysql 3.3.3 (terraform-provider-mysql v1.9.0: resource_database.go,
    resource_user.go, resource_grant.go) runs for our Database, User and Grant on MySQL 8.

    The provider puts the password between single quotes WITHOUT escaping it, which is why the
    password it sets is always a generated one (letters and digits)."""
    return [
        f"CREATE DATABASE `{database}` CHARACTER SET `{CHARACTER_SET}` COLLATE `{COLLATION}`",
        f"CREATE USER '{user}'@'{host}' IDENTIFIED BY '{password}' REQUIRE NONE",
        f"GRANT {', '.join(privileges)} ON `{database}`.* TO '{user}'@'{host}'",
    ]


def provisioning_statements(
    name: str, user: str, password: str, *, host: str = "%", privileges: tuple[str, ...] = KINE_PRIVILEGES
) -> list[tuple[str, tuple[str, ...]]]:
    """`provider_statements` as (statement, parameters) pairs for a DB-API cursor (no
    parameters: the text is complete, as the provider sends it)."""
    return [(sql, ()) for sql in provider_statements(name, user, password, host=host, privileges=privileges)]
