"""StorageGuard: refuse, at preview, a change of the in-cluster MySQL's volume size or class.

A StatefulSet's volumeClaimTemplates are immutable, so pulumi-kubernetes replaces the
StatefulSet when `database.storageSize` or `database.storageClass` changes. The new pod then
binds the PersistentVolumeClaim the old one left behind (`data-kuscia-mysql-0`: Kubernetes
never deletes it), at its old size and class: the change would look applied and not be. The
guard is a tiny local resource whose `check` compares the new settings with the ones it was
created with and fails, naming the setting, before anything touches the cluster. The
StatefulSet depends on it, so even `up --skip-preview` stops before the replacement.
"""

from __future__ import annotations

from typing import Any, ClassVar

import pulumi
from pulumi.dynamic import (
    CheckFailure,
    CheckResult,
    CreateResult,
    DiffResult,
    ReadResult,
    Resource,
    ResourceProvider,
    UpdateResult,
)

SETTINGS = {"storage_size": "database.storageSize", "storage_class": "database.storageClass"}


def refusals(olds: dict[str, Any], news: dict[str, Any], claim: str) -> list[CheckFailure]:
    """One failure per changed setting; nothing on the first deploy (no olds) or in another
    namespace (a new claim there)."""
    if not olds or olds.get("namespace") != news.get("namespace"):
        return []
    failures = []
    for key, setting in SETTINGS.items():
        old, new = olds.get(key) or None, news.get(key) or None
        if _same(key, old, new):
            continue
        failures.append(
            CheckFailure(
                key,
                f"{setting} cannot change once the database exists (from {old or 'the default class'} "
                f"to {new or 'the default class'}): the StatefulSet would be replaced and the new pod "
                f"would reuse the PersistentVolumeClaim {claim} at its old size and class. Keep "
                f"{setting}: {old or '(unset)'}; to grow the volume, expand the claim itself "
                f"(kubectl -n {news.get('namespace')} patch pvc {claim} -p "
                '\'{"spec":{"resources":{"requests":{"storage":"20Gi"}}}}\', which needs a '
                "StorageClass with allowVolumeExpansion).",
            )
        )
    return failures


def _same(key: str, old: Any, new: Any) -> bool:
    if old == new:
        return True
    if key != "storage_size" or old is None or new is None:
        return False
    from kuscia_components.config.quantity import QuantityError, parse_quantity

    try:
        return parse_quantity(str(old)) == parse_quantity(str(new))  # 10Gi == 10240Mi
    except QuantityError:
        return False


class StorageGuardProvider(ResourceProvider):
    offline_safe: ClassVar[bool] = True  # pure local comparison: runs in `render` too

    def check(self, olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        return CheckResult(news, refusals(olds, news, str(news.get("claim"))))

    def create(self, props: dict[str, Any]) -> CreateResult:
        return CreateResult(id_=f"storage-{props.get('claim')}", outs=props)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        changed = [k for k in (*SETTINGS, "namespace", "claim") if olds.get(k) != news.get(k)]
        return DiffResult(changes=bool(changed), replaces=[], delete_before_replace=False)

    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        return UpdateResult(outs=news)

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        return ReadResult(id_=id_, outs=props)


class StorageGuard(Resource, module="kuscia", name="StorageGuard"):
    """Holds the volume settings the database was created with (see module docstring)."""

    def __init__(
        self,
        name: str,
        *,
        namespace: str,
        claim: str,
        storage_size: str,
        storage_class: str | None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        props = {
            "namespace": namespace,
            "claim": claim,
            "storage_size": storage_size,
            "storage_class": storage_class,
        }
        super().__init__(StorageGuardProvider(), name, props, opts)
