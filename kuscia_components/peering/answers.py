"""The shapes of KusciaAPI answers, checked before anything reads them.

Kuscia answers `{status: {code, message, details}, data}` with `data` the call's response message
(proto/api/v1alpha1/kusciaapi/*.proto, written by protojson: an empty message may be left out, an
int32 is a number, an int64 a decimal string). A 200 of any other shape raises `BadShape` naming
where (`data.routes[0].status`); the client turns it into UnexpectedAnswer naming the node and
the call, so no caller ever meets an AttributeError, TypeError or ValueError from an answer.
"""

from __future__ import annotations

import json
from typing import Any

NOT_JSON = object()


class BadShape(ValueError):
    """What in an answer is not the shape its proto gives (a path like data.routes[0].status)."""


def parse_json(body: bytes) -> Any:
    try:
        return json.loads(body or b"null")
    except (ValueError, RecursionError):  # not JSON (or not UTF-8), or nested beyond the parser
        return NOT_JSON


def kind_of(value: object) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}
    return names.get(type(value), "a number")


def message(value: object, where: str) -> dict[str, Any]:
    """A message: an object, or absent/null (protojson leaves out an empty one)."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BadShape(f"{where} is {kind_of(value)}, not an object")
    return value


def text(block: dict[str, Any], key: str, where: str) -> str:
    value = block.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise BadShape(f"{where}.{key} is {kind_of(value)}, not a string")
    return value


def flag(block: dict[str, Any], key: str, where: str) -> bool:
    value = block.get(key, False)
    if not isinstance(value, bool):
        raise BadShape(f"{where}.{key} is {kind_of(value)}, not a boolean")
    return value


def whole(block: dict[str, Any], key: str, where: str) -> int:
    """An int32 is a JSON number; an int64 a decimal string (protojson)."""
    value = block.get(key, 0)
    if isinstance(value, str) and value.lstrip("-").isdigit() and len(value) <= 20:
        return int(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadShape(f"{where}.{key} is {kind_of(value)}, not a whole number")
    return value


def _list(block: dict[str, Any], key: str, where: str) -> list[Any]:
    value = block.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise BadShape(f"{where}.{key} is {kind_of(value)}, not a list")
    return value


def with_texts(block: dict[str, Any], where: str, *keys: str) -> dict[str, Any]:
    for key in keys:
        text(block, key, where)
    return dict(block)


def route(data: dict[str, Any]) -> dict[str, Any]:
    with_texts(data, "data", "name", "source", "destination", "authentication_type")
    endpoint = with_texts(message(data.get("endpoint"), "data.endpoint"), "data.endpoint", "host")
    for index, item in enumerate(_list(endpoint, "ports", "data.endpoint")):
        where = f"data.endpoint.ports[{index}]"
        port = with_texts(message(item, where), where, "name", "protocol", "path_prefix")
        whole(port, "port", where)
        flag(port, "isTLS", where)
    route_status(data.get("status"), "data.status")
    return dict(data)


def route_status(value: object, where: str) -> dict[str, str]:
    block = message(value, where)
    return {k: text(block, k, where) for k in ("status", "reason") if k in block}


def statuses(data: dict[str, Any]) -> dict[str, dict[str, str]]:
    found: dict[str, dict[str, str]] = {}
    for index, item in enumerate(_list(data, "routes", "data")):
        where = f"data.routes[{index}]"
        route = with_texts(message(item, where), where, "name", "source", "destination")
        name = route.get("name") or f"{route.get('source')}-{route.get('destination')}"
        found[str(name)] = route_status(route.get("status"), f"{where}.status")
    return found
