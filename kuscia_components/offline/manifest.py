"""A recorded Kubernetes resource as the YAML `kubectl apply` takes: exact types, stable order.

Pulumi's protobuf Struct carries every number as a float (`port: 1080.0`), and Kubernetes decodes
integer fields strictly, so a float goes back to an int exactly where the Kubernetes schema says
integer or int-or-string (offline/k8s_integers.py) and nowhere else: a quantity or a string stays
as it is. Keys are ordered the conventional way (apiVersion, kind, metadata, then the rest; inside,
`name` first and the rest sorted) so that two renders of one stack give the same bytes.
"""

from __future__ import annotations

from typing import Any

from kuscia_components.offline.k8s_integers import FIELDS, KINDS

HEAD = ("apiVersion", "kind", "metadata")


def exact_types(manifest: dict[str, Any]) -> dict[str, Any]:
    """`manifest` with schema-integer floats back as ints; unknown kinds are left alone."""
    definition = KINDS.get(f"{manifest.get('apiVersion')}/{manifest.get('kind')}")
    if definition is None:
        return manifest
    restored: dict[str, Any] = _restore(manifest, definition)
    return restored


def _restore(value: Any, shape: str) -> Any:
    if shape == "int":
        if isinstance(value, float) and value.is_integer():
            return int(value)
        return value
    if shape.startswith("[") and isinstance(value, list):
        return [_restore(item, shape[1:-1]) for item in value]
    if shape.startswith("{") and isinstance(value, dict):
        return {key: _restore(item, shape[1:-1]) for key, item in value.items()}
    if isinstance(value, dict):
        fields = FIELDS.get(shape, {})
        return {key: _restore(item, fields[key]) if key in fields else item for key, item in value.items()}
    return value


def conventional_order(manifest: dict[str, Any]) -> dict[str, Any]:
    """apiVersion, kind, metadata first; every nested mapping `name` first, then sorted."""
    head = {key: _ordered(manifest[key]) for key in HEAD if key in manifest}
    rest = {key: _ordered(manifest[key]) for key in sorted(manifest) if key not in HEAD}
    return {**head, **rest}


def _ordered(value: Any) -> Any:
    if isinstance(value, dict):
        keys = sorted(value, key=lambda k: (k != "name", k != "namespace", str(k)))
        return {key: _ordered(value[key]) for key in keys}
    if isinstance(value, list):
        return [_ordered(item) for item in value]
    return value
