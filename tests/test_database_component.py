"""NodeDatabase and GeneratedPassword under OfflineMocks (inside `pulumi.runtime.test`, via
offline.run_offline): which resources, under which parent and provider, what is secret, and the
Kubernetes objects schema-validated. The password provider really runs."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import dill
import kubernetes_validate
import pulumi
import pulumi_kubernetes as k8s
import pytest

from kuscia_components.config import PartyConfig, parse_party_config
from kuscia_components.core.dsn import KINE_PRIVILEGES, PASSWORD_ALPHABET, DsnError, parse_dsn
from kuscia_components.node import database as db_module
from kuscia_components.node.database import NodeDatabase, NodeDatabaseArgs
from kuscia_components.node.passwords import GeneratedPassword, GeneratedPasswordProvider
from kuscia_components.offline.mocks import OfflineMocks, RecordedResource, contains_secret, run_offline

CAPACITY = json.dumps({"cpu": "2", "memory": "2Gi", "storage": "10Gi"})
ADMIN_PASSWORD = "Adm1n-s3cret-pw"
PASSWORD_TYPE = "pulumi-python:dynamic/kuscia:GeneratedPassword"
GUARD_TYPE = "pulumi-python:dynamic/kuscia:StorageGuard"
# Kuscia 1.1 ships k3s v1.33 (NOTES §1.8); the cluster running the node is as new or newer.
SCHEMA_VERSIONS = ("1.33.0", kubernetes_validate.latest_version())


class ProviderRecordingMocks(OfflineMocks):
    """OfflineMocks that also note which explicit provider each resource was given."""

    def __init__(self) -> None:
        super().__init__()
        self.providers: dict[str, str | None] = {}

    def new_resource(self, args: Any) -> tuple[str | None, dict]:
        self.providers[args.name] = args.provider
        return super().new_resource(args)


def party(**database: Any) -> PartyConfig:
    values: dict[str, Any] = {"domainId": "alice", "capacity": CAPACITY}
    secrets = set()
    if database:
        values["database"] = json.dumps(database)
    if database.get("mode") == "external":
        values["databaseAdminPassword"] = ADMIN_PASSWORD
        secrets.add("databaseAdminPassword")
    return parse_party_config(values, secrets)


def deploy(cfg: PartyConfig) -> tuple[ProviderRecordingMocks, dict[str, Any]]:
    """The component inside a namespace, as AutonomyNode uses it; returns what it exported,
    including which outputs reached the stack as secrets."""
    mocks = ProviderRecordingMocks()

    def program() -> None:
        ns = k8s.core.v1.Namespace("ns", metadata={"name": cfg.namespace})
        node_db = NodeDatabase("db", NodeDatabaseArgs(config=cfg, namespace=ns.metadata.name))
        outputs = {
            "endpoint": node_db.datastore_endpoint,
            "host": node_db.host,
            "port": node_db.port,
            "database": node_db.database_name,
            "user": node_db.user,
        }

        async def secrecy() -> dict[str, bool]:
            return {key: await out.is_secret() for key, out in outputs.items()}

        for key, out in outputs.items():
            pulumi.export(key, out)
        pulumi.export("secret", pulumi.Output.from_input(asyncio.ensure_future(secrecy())))

    return mocks, run_offline(program, mocks, stack="alice")


def manifest(res: RecordedResource) -> dict[str, Any]:
    """The object as the Kubernetes provider would send it (apiVersion/kind from the type)."""
    group_version, kind = res.type.split(":")[1].rsplit(":", 1)[0], res.type.rsplit(":", 1)[1]
    group, version = group_version.split("/")
    api_version = version if group == "core" else f"{group}/{version}"
    body = {k: v for k, v in res.plain_inputs.items() if k in ("metadata", "spec", "stringData", "type")}
    return {"apiVersion": api_version, "kind": kind, **body}


def strings_in(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [s for v in value.values() for s in strings_in(v)]
    if isinstance(value, list):
        return [s for v in value for s in strings_in(v)]
    return [value] if isinstance(value, str) else []


def children_of(mocks: OfflineMocks, parent: RecordedResource) -> list[RecordedResource]:
    return [r for r in mocks.resources if r.parent_urn == parent.urn]


# -- in-cluster ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def in_cluster() -> tuple[ProviderRecordingMocks, dict[str, Any]]:
    return deploy(party(storageClass="fast-ssd", storageSize="20Gi"))


def test_in_cluster_creates_secret_service_statefulset_and_two_passwords_under_the_component(
    in_cluster: tuple[ProviderRecordingMocks, dict[str, Any]],
) -> None:
    mocks, _ = in_cluster
    component = mocks.one(db_module.COMPONENT_TYPE, "db")
    assert sorted((r.type, r.name) for r in children_of(mocks, component)) == sorted(
        [
            (PASSWORD_TYPE, "db-user-password"),
            (PASSWORD_TYPE, "db-root-password"),
            ("kubernetes:core/v1:Secret", "db-secret"),
            ("kubernetes:core/v1:Service", "db-service"),
            ("kubernetes:apps/v1:StatefulSet", "db-statefulset"),
            (GUARD_TYPE, "db-storage"),
        ]
    )
    assert not mocks.of_type("pulumi:providers:mysql")


def test_in_cluster_objects_are_valid_kubernetes_and_live_in_the_party_namespace(
    in_cluster: tuple[ProviderRecordingMocks, dict[str, Any]],
) -> None:
    mocks, _ = in_cluster
    objects = [manifest(r) for r in mocks.resources if r.type.startswith("kubernetes:") and r.name != "ns"]
    assert {o["kind"] for o in objects} == {"Secret", "Service", "StatefulSet"}
    for obj in objects:
        assert obj["metadata"]["namespace"] == "autonomy-alice"
        for version in SCHEMA_VERSIONS:
            kubernetes_validate.validate(obj, version, strict=True)


def test_statefulset_takes_every_password_from_the_secret_and_tunes_mysql(
    in_cluster: tuple[ProviderRecordingMocks, dict[str, Any]],
) -> None:
    mocks, _ = in_cluster
    sts = mocks.one("kubernetes:apps/v1:StatefulSet")
    assert not sts.is_secret("spec"), "the pod spec stays readable in previews: it holds no secret"
    spec = sts.plain_inputs["spec"]
    container = spec["template"]["spec"]["containers"][0]
    env = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in container["env"]}
    secret = mocks.one("kubernetes:core/v1:Secret").plain_inputs
    assert set(env) == {"MYSQL_ROOT_PASSWORD", "MYSQL_DATABASE", "MYSQL_USER", "MYSQL_PASSWORD"}
    assert all(
        ref["name"] == secret["metadata"]["name"] and ref["key"] in secret["stringData"]
        for ref in env.values()
    )
    assert "--optimizer-switch=derived_merge=off" in container["args"]
    assert container["image"] == "mysql:8.0.40"
    pvc = spec["volumeClaimTemplates"][0]["spec"]
    assert (pvc["storageClassName"], pvc["resources"]["requests"]["storage"]) == ("fast-ssd", "20Gi")
    assert spec["template"]["spec"]["securityContext"]["fsGroup"] == db_module.MYSQL_UID
    passwords = [r.plain_state["result"] for r in mocks.of_type(PASSWORD_TYPE)]
    assert not any(pw in text for pw in passwords for text in strings_in(spec))


def test_in_cluster_endpoint_is_secret_and_carries_the_secrets_user_password(
    in_cluster: tuple[ProviderRecordingMocks, dict[str, Any]],
) -> None:
    mocks, outputs = in_cluster
    assert outputs["secret"] == {
        "endpoint": True,
        "host": False,
        "port": False,
        "database": False,
        "user": False,
    }
    secret = mocks.one("kubernetes:core/v1:Secret")
    assert secret.is_secret("stringData")
    data = secret.plain_inputs["stringData"]
    parsed = parse_dsn(outputs["endpoint"])
    assert (parsed.user, parsed.password, parsed.database) == (
        data["user"],
        data["password"],
        data["database"],
    )
    assert (parsed.host, parsed.port) == ("kuscia-mysql.autonomy-alice.svc.cluster.local", 3306)
    assert (outputs["host"], outputs["port"], outputs["database"], outputs["user"]) == (
        parsed.host,
        3306,
        "kuscia_alice",
        "kuscia_alice",
    )
    user_pw = mocks.one(PASSWORD_TYPE, "db-user-password").plain_state["result"]
    root_pw = mocks.one(PASSWORD_TYPE, "db-root-password").plain_state["result"]
    assert (data["password"], data["root-password"]) == (user_pw, root_pw) and user_pw != root_pw


def test_passwords_are_secret_in_state_and_absent_from_the_pickled_provider(
    in_cluster: tuple[ProviderRecordingMocks, dict[str, Any]],
) -> None:
    mocks, _ = in_cluster
    for res in mocks.of_type(PASSWORD_TYPE):
        assert res.is_secret("result")
        password = res.plain_state["result"]
        assert len(password) == 32 and set(password) <= set(PASSWORD_ALPHABET)
        pickled = base64.b64decode(res.plain_state["__provider"])
        assert password.encode() not in pickled
        assert not vars(dill.loads(pickled)), "the provider object keeps nothing"


def test_no_secret_leaks_into_a_non_secret_value(
    in_cluster: tuple[ProviderRecordingMocks, dict[str, Any]],
) -> None:
    mocks, outputs = in_cluster
    secrets = mocks.secret_values()
    assert len(secrets) >= 2
    for res in mocks.resources:
        for part in (res.inputs, res.state):
            visible = strings_in(
                {k: v for k, v in part.items() if not contains_secret(v) and k != "__provider"}
            )
            assert not [s for s in secrets if any(s in text for text in visible)], res.name
    plain_outputs = [str(v) for k, v in outputs.items() if k not in ("endpoint", "secret")]
    assert not [s for s in secrets if any(s in text for text in plain_outputs)]


# -- external ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def external() -> tuple[ProviderRecordingMocks, dict[str, Any]]:
    return deploy(
        party(mode="external", endpoint="[fd00::5]:3307", adminUser="root", name="kuscia_a", user="kuscia_a")
    )


def test_external_uses_an_explicit_mysql_provider_for_database_user_and_grant(
    external: tuple[ProviderRecordingMocks, dict[str, Any]],
) -> None:
    mocks, _ = external
    component = mocks.one(db_module.COMPONENT_TYPE, "db")
    assert sorted((r.type, r.name) for r in children_of(mocks, component)) == sorted(
        [
            (PASSWORD_TYPE, "db-user-password"),
            ("pulumi:providers:mysql", "db-mysql"),
            ("mysql:index/database:Database", "db-database"),
            ("mysql:index/user:User", "db-user"),
            ("mysql:index/grant:Grant", "db-grant"),
        ]
    )
    provider = mocks.one("pulumi:providers:mysql")
    assert provider.plain_inputs["endpoint"] == "[fd00::5]:3307"
    assert (provider.plain_inputs["username"], provider.plain_inputs["password"]) == ("root", ADMIN_PASSWORD)
    assert provider.is_secret("password")
    for name in ("db-database", "db-user", "db-grant"):
        assert (mocks.providers[name] or "").startswith(provider.urn), name
    assert not mocks.of_type("kubernetes:apps/v1:StatefulSet")


def test_external_database_user_and_grant_are_exactly_what_kine_needs(
    external: tuple[ProviderRecordingMocks, dict[str, Any]],
) -> None:
    mocks, outputs = external
    database = mocks.one("mysql:index/database:Database").plain_inputs
    assert (database["name"], database["defaultCharacterSet"], database["defaultCollation"]) == (
        "kuscia_a",
        "utf8mb4",
        db_module.COLLATION,
    )
    user = mocks.one("mysql:index/user:User")
    assert (user.plain_inputs["user"], user.plain_inputs["host"]) == ("kuscia_a", "%")
    assert user.is_secret("plaintextPassword")
    grant = mocks.one("mysql:index/grant:Grant").plain_inputs
    assert (grant["user"], grant["host"], grant["database"]) == ("kuscia_a", "%", "kuscia_a")
    assert grant["privileges"] == list(KINE_PRIVILEGES)
    parsed = parse_dsn(outputs["endpoint"])
    assert (parsed.user, parsed.password, parsed.addr, parsed.database) == (
        "kuscia_a",
        user.plain_inputs["plaintextPassword"],
        "[fd00::5]:3307",
        "kuscia_a",
    )
    assert outputs["secret"]["endpoint"] and not outputs["secret"]["host"]
    assert ADMIN_PASSWORD not in json.dumps({k: v for k, v in outputs.items() if k != "endpoint"})


# -- GeneratedPassword's provider, directly ------------------------------------------------------


def test_password_is_replaced_only_when_length_or_keepers_change() -> None:
    provider = GeneratedPasswordProvider()
    inputs = {"purpose": "kine-user", "length": 32, "keepers": {"rotation": "1"}, "result": None}
    created = provider.create(inputs).outs or {}
    assert {k: v for k, v in created.items() if k != "result"} == {
        k: v for k, v in inputs.items() if k != "result"
    }
    olds = dict(created)
    assert not provider.diff("id", olds, {**inputs, "length": 32.0}).changes  # engine's float
    assert not provider.diff("id", olds, {**inputs, "purpose": "renamed"}).changes
    assert provider.diff("id", olds, {**inputs, "length": 40}).replaces == ["length"]
    assert provider.diff("id", olds, {**inputs, "keepers": {"rotation": "2"}}).replaces == ["keepers"]
    assert provider.diff("id", {**olds, "keepers": {}}, {**inputs, "keepers": None}).changes is False
    assert (provider.read("id", olds).outs or {})["result"] == olds["result"]
    assert (provider.create(inputs).outs or {})["result"] != olds["result"]


def test_password_length_is_rejected_at_construction_with_setting_rule_and_example() -> None:
    with pytest.raises(
        DsnError, match=r"password length: must be a whole number 16-128 \(got 8\)\. Example: 32"
    ):
        GeneratedPassword("short", purpose="x", length=8)


# -- volume settings and await timeouts -------------------------------------------------------------


def test_statefulset_waits_long_enough_for_a_first_pull_and_depends_on_the_storage_guard(
    in_cluster: tuple[ProviderRecordingMocks, dict[str, Any]],
) -> None:
    """pulumi-kubernetes' StatefulSet await defaults to 10 minutes (provider/pkg/await/statefulset.go)."""
    mocks, _ = in_cluster
    statefulset = mocks.one("kubernetes:apps/v1:StatefulSet", "db-statefulset")
    assert statefulset.custom_timeouts == {"create": "20m", "update": "20m"}
    guard = mocks.one(GUARD_TYPE, "db-storage")
    assert guard.urn in statefulset.dependencies
    assert guard.plain_state["claim"] == "data-kuscia-mysql-0"
    claim_template = statefulset.plain_inputs["spec"]["volumeClaimTemplates"][0]["metadata"]["name"]
    assert guard.plain_state["claim"].startswith(f"{claim_template}-kuscia-mysql-")
    assert (guard.plain_state["storage_size"], guard.plain_state["storage_class"]) == ("20Gi", "fast-ssd")


def test_a_changed_volume_size_or_class_is_refused_at_preview_with_the_setting_named() -> None:
    """A StatefulSet's volumeClaimTemplates are immutable: pulumi-kubernetes replaces it and the new
    pod binds the old PVC at its old size. The engine runs `check` with the old inputs at preview."""
    from kuscia_components.node.storage_guard import StorageGuardProvider

    provider = StorageGuardProvider()
    old = {"namespace": "autonomy-alice", "claim": "data-kuscia-mysql-0", "storage_size": "10Gi"}
    assert provider.check({}, old).failures == []  # first deploy
    assert provider.check(old, dict(old)).failures == []
    assert provider.check(old, {**old, "storage_size": "10240Mi"}).failures == []  # the same quantity
    (bigger,) = provider.check(old, {**old, "storage_size": "20Gi"}).failures
    assert bigger.property == "storage_size"
    assert "database.storageSize cannot change" in bigger.reason and "10Gi" in bigger.reason
    assert "data-kuscia-mysql-0" in bigger.reason and "kubectl -n autonomy-alice patch pvc" in bigger.reason
    (klass,) = provider.check(old, {**old, "storage_class": "fast-ssd"}).failures
    assert klass.property == "storage_class" and "database.storageClass" in klass.reason
    moved = {**old, "namespace": "autonomy-alice2", "storage_size": "20Gi"}
    assert provider.check(old, moved).failures == []  # a new namespace gets a new claim
