"""EMULATION ONLY: the fake API server's object store (GET one object, LIST with selectors).

Objects are put in by tests (`KusciaEmulator.put_object`) the way a real API server would return
them; paths, list shapes, label-selector syntax and the 404 Status follow the Kubernetes API
conventions (https://kubernetes.io/docs/reference/using-api/api-concepts/).
"""

from __future__ import annotations

import copy
import re
import threading
from dataclasses import dataclass
from typing import Any

# Plurals a real API server always serves, so an empty LIST answers 200 rather than 404.
BUILTIN = {
    "": {
        "namespaces": "Namespace",
        "pods": "Pod",
        "services": "Service",
        "secrets": "Secret",
        "configmaps": "ConfigMap",
        "serviceaccounts": "ServiceAccount",
        "endpoints": "Endpoints",
        "events": "Event",
        "persistentvolumeclaims": "PersistentVolumeClaim",
        "nodes": "Node",
        "resourcequotas": "ResourceQuota",
        "limitranges": "LimitRange",
    },
    "apps": {
        "deployments": "Deployment",
        "statefulsets": "StatefulSet",
        "replicasets": "ReplicaSet",
        "daemonsets": "DaemonSet",
    },
    "networking.k8s.io": {"networkpolicies": "NetworkPolicy", "ingresses": "Ingress"},
    "rbac.authorization.k8s.io": {
        "roles": "Role",
        "rolebindings": "RoleBinding",
        "clusterroles": "ClusterRole",
        "clusterrolebindings": "ClusterRoleBinding",
    },
    "coordination.k8s.io": {"leases": "Lease"},
    "batch": {"jobs": "Job", "cronjobs": "CronJob"},
    "policy": {"poddisruptionbudgets": "PodDisruptionBudget"},
}
IRREGULAR = {"endpoints": "endpoints"}
SUBRESOURCES_AS_OBJECT = {"status", "scale"}


def plural_of(kind: str) -> str:
    """Kubernetes' default plural (NetworkPolicy -> networkpolicies, Ingress -> ingresses)."""
    lower = kind.lower()
    if lower in IRREGULAR:
        return IRREGULAR[lower]
    if lower.endswith("y") and lower[-2:-1] not in "aeiou":
        return lower[:-1] + "ies"
    if lower.endswith(("s", "x", "z", "ch", "sh")):
        return lower + "es"
    return lower + "s"


@dataclass(frozen=True)
class Target:
    """One parsed REST path: /api/v1/... or /apis/{group}/{version}/..."""

    group: str
    version: str
    namespace: str | None
    plural: str
    name: str | None = None
    subresource: str | None = None

    @property
    def resource(self) -> str:
        """`deployments.apps`, `pods`: how Kubernetes names a resource in error messages."""
        return f"{self.plural}.{self.group}" if self.group else self.plural


def parse_path(path: str) -> Target | None:
    parts = [p for p in path.split("/") if p]
    if parts[:2] == ["api", "v1"]:
        group, version, rest = "", "v1", parts[2:]
    elif len(parts) >= 3 and parts[0] == "apis":
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        return None
    namespace = None
    if len(rest) >= 3 and rest[0] == "namespaces":
        namespace, rest = rest[1], rest[2:]
    if not 1 <= len(rest) <= 3:
        return None
    return Target(group, version, namespace, rest[0], *rest[1:])


# -- selectors ---------------------------------------------------------------------------------------

_SET = re.compile(r"^\s*(?P<key>[^\s!=]+)\s+(?P<op>in|notin)\s+\((?P<values>[^)]*)\)\s*$")
_EQ = re.compile(r"^\s*(?P<key>[^\s!=]+)\s*(?P<op>==|=|!=)\s*(?P<value>[^\s!=,]*)\s*$")
_EXISTS = re.compile(r"^\s*(?P<neg>!?)\s*(?P<key>[^\s!=()]+)\s*$")


class SelectorError(ValueError):
    pass


def _split_terms(selector: str) -> list[str]:
    """Split on commas outside parentheses (`a in (x,y),b=c`)."""
    terms, depth, current = [], 0, ""
    for char in selector:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            terms.append(current)
            current = ""
        else:
            current += char
    terms.append(current)
    return [t for t in terms if t.strip()]


def matches(selector: str, values: dict[str, str]) -> bool:
    """Label-selector semantics: =, ==, !=, in, notin, key, !key (all terms ANDed)."""
    for term in _split_terms(selector):
        if m := _SET.match(term):
            wanted = {v.strip() for v in m["values"].split(",") if v.strip()}
            inside = values.get(m["key"]) in wanted
            if inside != (m["op"] == "in"):
                return False
        elif m := _EQ.match(term):
            if (values.get(m["key"]) == m["value"]) == (m["op"] == "!="):
                return False
        elif m := _EXISTS.match(term):
            if (m["key"] in values) == bool(m["neg"]):
                return False
        else:
            raise SelectorError(f"unable to parse requirement: {term.strip()!r}")
    return True


def _field_values(obj: dict[str, Any]) -> dict[str, str]:
    meta = obj.get("metadata") or {}
    out = {"metadata.name": str(meta.get("name", "")), "metadata.namespace": str(meta.get("namespace", ""))}
    phase = (obj.get("status") or {}).get("phase")
    if phase is not None:
        out["status.phase"] = str(phase)
    return out


# -- the store -----------------------------------------------------------------------------------


class ObjectStore:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._objects: dict[tuple[str, str | None, str, str], dict[str, Any]] = {}
        self._kinds: dict[tuple[str, str], str] = {
            (group, plural): kind for group, table in BUILTIN.items() for plural, kind in table.items()
        }
        self._revision = 0

    def put(
        self,
        api_version: str,
        kind: str,
        namespace: str | None,
        name: str,
        body: dict[str, Any],
        plural: str | None = None,
    ) -> None:
        group = api_version.rpartition("/")[0]
        plural = plural or plural_of(kind)
        obj = copy.deepcopy(body)
        obj["apiVersion"], obj["kind"] = api_version, kind
        meta = obj.setdefault("metadata", {})
        meta.setdefault("name", name)
        if namespace:
            meta.setdefault("namespace", namespace)
        with self._lock:
            self._revision += 1
            meta.setdefault("resourceVersion", str(self._revision))
            self._kinds[(group, plural)] = kind
            self._objects[(group, namespace, plural, name)] = obj

    def delete(
        self, api_version: str, kind: str, namespace: str | None, name: str, plural: str | None = None
    ) -> bool:
        key = (api_version.rpartition("/")[0], namespace, plural or plural_of(kind), name)
        with self._lock:
            return self._objects.pop(key, None) is not None

    def get(self, target: Target) -> dict[str, Any] | None:
        if target.name is None or (target.subresource and target.subresource not in SUBRESOURCES_AS_OBJECT):
            return None
        with self._lock:
            found = self._objects.get((target.group, target.namespace, target.plural, target.name))
            return copy.deepcopy(found) if found is not None else None

    def known(self, target: Target) -> bool:
        with self._lock:
            return (target.group, target.plural) in self._kinds

    def list(self, target: Target, label_selector: str = "", field_selector: str = "") -> dict[str, Any]:
        """A `<Kind>List`; raises SelectorError for a selector Kubernetes would refuse."""
        with self._lock:
            kind = self._kinds.get((target.group, target.plural), "")
            items = [
                copy.deepcopy(obj)
                for (group, namespace, plural, _name), obj in sorted(
                    self._objects.items(), key=lambda item: (item[0][1] or "", item[0][3])
                )
                if (group, plural) == (target.group, target.plural)
                and (target.namespace is None or namespace == target.namespace)
            ]
            revision = str(self._revision)
        items = [
            obj
            for obj in items
            if matches(label_selector, (obj.get("metadata") or {}).get("labels") or {})
            and matches(field_selector, _field_values(obj))
        ]
        api_version = f"{target.group}/{target.version}" if target.group else target.version
        return {
            "kind": f"{kind}List",
            "apiVersion": api_version,
            "metadata": {"resourceVersion": revision},
            "items": items,
        }

    def pod(self, namespace: str, name: str) -> dict[str, Any] | None:
        """A Pod a test put in, by name."""
        with self._lock:
            found = self._objects.get(("", namespace, "pods", name))
            return copy.deepcopy(found) if found is not None else None

    def has_pod(self, namespace: str, app: str) -> bool:
        """Did a test put in a Pod labelled `app=<app>` in the namespace (so it models the node's pods)?"""
        with self._lock:
            return any(
                (group, ns, plural) == ("", namespace, "pods")
                and ((obj.get("metadata") or {}).get("labels") or {}).get("app") == app
                for (group, ns, plural, _name), obj in self._objects.items()
            )
