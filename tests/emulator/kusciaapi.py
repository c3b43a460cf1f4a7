"""EMULATION ONLY: an emulated node's KusciaAPI over HTTP (port 8082), domain and route services.

Shapes and rules follow Kuscia (shared/kuscia/NOTES.md §4, reference/kusciaapi-*.md, and upstream
pkg/kusciaapi/service/domain_service.go, domain_route_service.go, bean/http_server_bean.go):
- every endpoint is POST + JSON; answers are HTTP 200 with `status.code` (0, 11100 validation,
  11305/11306 Domain missing/exists, 11400 route rejected by the CRD schema, 11404/11405 route
  missing/exists), protobuf field names, and every field present (`data: null` on errors);
- a TLS or MTLS node wants the `Token` header (HTTP 401, empty body, otherwise); NOTLS ignores it;
- an unknown path or another method answers gin's `404 page not found`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .handshake import Route
from .identity import cert_public_key, normalize_cert, public_pem

if TYPE_CHECKING:
    from .node import EmulatedNode

OK, VALIDATION = 0, 11100
DOMAIN_NOT_EXISTS, DOMAIN_EXISTS = 11305, 11306
CREATE_ROUTE_FAILED, ROUTE_NOT_EXISTS, ROUTE_EXISTS = 11400, 11404, 11405
K3S_NAME = re.compile(r"^[a-z0-9]([a-z0-9.-]{0,61}[a-z0-9])?$")  # pkg/common/constants.go K3sRegex
HOST = re.compile(  # the CRD's spec.endpoint.host pattern (crds/clusterdomainroutes.yaml)
    r"^$|^(?:(?:25[0-5]|2[0-4][0-9]|[01]?[0-9][0-9]?)\.){3}(?:25[0-5]|2[0-4][0-9]|[01]?[0-9][0-9]?)$"
    r"|^(([a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9\-]*[a-zA-Z0-9])\.)*([A-Za-z0-9]|[A-Za-z0-9][A-Za-z0-9\-]*[A-Za-z0-9])$"
)

Result = tuple[int, str, Any]
Reply = tuple[int, dict[str, str], bytes]


def _domain_missing(domain_id: str) -> Result:
    return DOMAIN_NOT_EXISTS, f'domains.kuscia.secretflow "{domain_id}" not found', None


def _route_missing(name: str) -> Result:
    return ROUTE_NOT_EXISTS, f'clusterdomainroutes.kuscia.secretflow "{name}" not found', None


def _auth_center(value: Any) -> dict[str, str] | None:
    """authCenterConverter: the request's auth_center or nothing."""
    if not isinstance(value, dict):
        return None
    return {
        "authentication_type": str(value.get("authentication_type") or ""),
        "token_gen_method": str(value.get("token_gen_method") or ""),
    }


def handle(node: EmulatedNode, method: str, path: str, headers: dict[str, str], body: bytes) -> Reply:
    if node.is_tls:  # HTTPTokenAuthInterceptor runs before routing (also for unknown paths)
        token = next((v for k, v in headers.items() if k.lower() == "token"), None)
        if token != node.token:
            return 401, {"Content-Type": "text/plain"}, b""
    handler = HANDLERS.get(path.split("?")[0])
    if handler is None or method != "POST":
        return 404, {"Content-Type": "text/plain"}, b"404 page not found"
    try:
        request = json.loads(body or b"{}")
        if not isinstance(request, dict):
            raise ValueError("json: cannot unmarshal into a request object")
    except ValueError as err:
        code, message, data = VALIDATION, f"proto: syntax error: {err}", None
    else:
        try:
            with node.lock:
                code, message, data = handler(node, request)
        except (TypeError, ValueError, AttributeError) as err:  # a field of the wrong JSON type
            code, message, data = VALIDATION, f"proto: syntax error: {err}", None
    payload = {
        "status": {"code": code, "message": "success" if code == OK else message, "details": []},
        "data": data,
    }
    return 200, {"Content-Type": "application/json"}, json.dumps(payload).encode()


# -- /healthZ --------------------------------------------------------------------------------------


def health(node: EmulatedNode, _req: dict[str, Any]) -> Result:
    return OK, "", {"ready": True}


# -- /api/v1/domain --------------------------------------------------------------------------------


def _check_cert(req: dict[str, Any]) -> tuple[str, str]:
    cert = str(req.get("cert") or "")
    return normalize_cert(cert) if cert else ("", "")


def domain_create(node: EmulatedNode, req: dict[str, Any]) -> Result:
    domain_id = str(req.get("domain_id") or "")
    role = str(req.get("role") or "")
    master = str(req.get("master_domain_id") or "")
    if not domain_id:
        return VALIDATION, "domain id can not be empty", None
    if domain_id == "master":
        return VALIDATION, "domain id can not be 'master', please choose another name", None
    if not K3S_NAME.match(domain_id):
        return (
            VALIDATION,
            (
                f'Field "domain_id" is invalid, invalid value: "{domain_id}": regex used for '
                f'validation is "{K3S_NAME.pattern}" '
            ),
            None,
        )
    if role not in ("", "partner"):
        return VALIDATION, "role is invalid, must be empty or partner", None
    if master and master != domain_id:
        if master not in node.domains:
            return (
                VALIDATION,
                f'check master domain id failed with err domains.kuscia.secretflow "{master}" not found',
                None,
            )
        if node.domains[master].get("role") != role:
            return (
                VALIDATION,
                f"master domain role is {node.domains[master].get('role')}, but current role is {role}",
                None,
            )
    cert, error = _check_cert(req)
    if error:
        return VALIDATION, error, None
    if domain_id in node.domains:
        return DOMAIN_EXISTS, f'domains.kuscia.secretflow "{domain_id}" already exists', None
    # setDefaultTokenGenMethod: an omitted auth_center becomes {Token, RSA-GEN}.
    auth = _auth_center(req.get("auth_center")) or {
        "authentication_type": "Token",
        "token_gen_method": "RSA-GEN",
    }
    node.domains[domain_id] = {
        "role": role,
        "cert": cert,
        "auth_center": auth,
        "interConnProtocols": ["kuscia"] if role == "partner" else [],
        "master_domain_id": master,
    }
    _authorize_partner(node, domain_id)
    return OK, "", None


def _authorize_partner(node: EmulatedNode, domain_id: str) -> None:
    """The domain controller auto-creates the inbound route `<peer>-<self>` (empty host) for a P2P
    partner, once per Domain (authorization_resource.go; NOTES §3.1)."""
    domain = node.domains[domain_id]
    p2p = domain.get("master_domain_id") in ("", domain_id, node.domain_id)
    if domain.get("role") != "partner" or not p2p or domain_id in node.auth_completed:
        return
    node.auth_completed.add(domain_id)
    name = f"{domain_id}-{node.domain_id}"
    auth = domain.get("auth_center") or {}
    node.route_table.setdefault(
        name,
        Route(
            domain_id,
            node.domain_id,
            "",
            [],
            token_gen_method=auth.get("token_gen_method") or "RSA-GEN",
            rolling_update_period=86400,
            destination_side=True,
        ),
    )


def domain_update(node: EmulatedNode, req: dict[str, Any]) -> Result:
    """UpdateDomain rebuilds role, interConnProtocols, master and auth_center from the request:
    a client that omits role or auth_center downgrades a partner (NOTES §4.1 caveat). An empty
    cert leaves the stored one."""
    domain_id = str(req.get("domain_id") or "")
    role = str(req.get("role") or "")
    if not domain_id:
        return VALIDATION, "domain id can not be empty", None
    if role not in ("", "partner"):
        return VALIDATION, "role is invalid, must be empty or partner", None
    cert, error = _check_cert(req)
    if error:
        return VALIDATION, error, None
    domain = node.domains.get(domain_id)
    if domain is None:
        return _domain_missing(domain_id)
    if role != domain.get("role"):
        domain["role"] = role
        domain["interConnProtocols"] = ["kuscia"] if role == "partner" else []
    if cert:
        domain["cert"] = cert
    domain["master_domain_id"] = str(req.get("master_domain_id") or "") or domain_id
    domain["auth_center"] = _auth_center(req.get("auth_center"))
    _authorize_partner(node, domain_id)
    return OK, "", None


def domain_delete(node: EmulatedNode, req: dict[str, Any]) -> Result:
    domain_id = str(req.get("domain_id") or "")
    if not domain_id:
        return VALIDATION, "domain id can not be empty", None
    if domain_id not in node.domains:
        return _domain_missing(domain_id)
    del node.domains[domain_id]
    node.auth_completed.discard(domain_id)
    owned = node.route_table.get(f"{domain_id}-{node.domain_id}")
    if owned is not None and owned.destination_side:  # garbage-collected with its owner
        del node.route_table[owned.name]
    return OK, "", None


def _domain_entry(domain_id: str, domain: dict[str, Any]) -> dict[str, Any]:
    return {
        "domain_id": domain_id,
        "role": domain.get("role") or "",
        "cert": domain.get("cert") or "",
        "node_statuses": [],
    }


def domain_query(node: EmulatedNode, req: dict[str, Any]) -> Result:
    domain_id = str(req.get("domain_id") or "")
    if not domain_id:
        return VALIDATION, "domain id can not be empty", None
    domain = node.domains.get(domain_id)
    if domain is None:
        return _domain_missing(domain_id)
    return (
        OK,
        "",
        {
            **_domain_entry(domain_id, domain),
            "deploy_token_statuses": [],
            "annotations": {},
            "auth_center": domain.get("auth_center"),
            "master_domain_id": domain.get("master_domain_id") or "",
        },
    )


def domain_batch_query(node: EmulatedNode, req: dict[str, Any]) -> Result:
    ids = req.get("domain_ids") or []
    if not ids:
        return VALIDATION, "domain ids can not be empty", None
    for index, domain_id in enumerate(ids):
        if not domain_id:
            return VALIDATION, f"domain id can not be empty on index {index}", None
    out = []
    for domain_id in ids:
        if domain_id not in node.domains:
            return _domain_missing(domain_id)
        out.append(_domain_entry(domain_id, node.domains[domain_id]))
    return OK, "", {"domains": out}


# -- /api/v1/route ---------------------------------------------------------------------------------


def _route_key(req: dict[str, Any]) -> tuple[str, str, str]:
    source, destination = str(req.get("source") or ""), str(req.get("destination") or "")
    if not source:
        return "", "", "source can not be empty"
    if not destination:
        return "", "", "destination can not be empty"
    return source, destination, ""


def _invalid(name: str, field: str, value: Any, rule: str) -> Result:
    """The API server's answer to an object the CRD schema refuses, passed on as code 11400."""
    shown = json.dumps(value)
    return (
        CREATE_ROUTE_FAILED,
        f'ClusterDomainRoute.kuscia.secretflow "{name}" is invalid: {field}: '
        f"Invalid value: {shown}: {field} in body {rule}",
        None,
    )


def route_create(node: EmulatedNode, req: dict[str, Any]) -> Result:
    source, destination, error = _route_key(req)
    if error:
        return VALIDATION, error, None
    auth_type = str(req.get("authentication_type") or "")
    if not auth_type:
        return VALIDATION, "authentication type can not be empty", None
    endpoint = req.get("endpoint") or {}
    raw_ports = endpoint.get("ports") or []
    if not raw_ports:
        return VALIDATION, "endpoint can not be empty when transit is not set", None
    for port in raw_ports:
        if not 0 < int(port.get("port") or 0) <= 65535:
            return VALIDATION, "endpoint port should be positive and less than or equal to 65535 ", None
    for domain_id in (source, destination):  # CheckDomainExists: source, then destination
        if domain_id not in node.domains:
            return _domain_missing(domain_id)
    ports = []
    for port in raw_ports:
        protocol = str(port.get("protocol") or "").upper()  # convert2DomainRouteProtocol
        if protocol not in ("HTTP", "HTTPS", "GRPC", "GRPCS"):
            return (
                CREATE_ROUTE_FAILED,
                "DomainRoute Port Protocol should be HTTP or HTTPS or GRPC or GRPCS",
                None,
            )
        ports.append(
            {
                "name": str(port.get("name") or ""),
                "port": int(port["port"]),
                "protocol": protocol.rstrip("S") if protocol in ("HTTPS", "GRPCS") else protocol,
                "isTLS": protocol in ("HTTPS", "GRPCS") or bool(port.get("isTLS")),
                "path_prefix": str(port.get("path_prefix") or ""),
            }
        )
    name = f"{source}-{destination}"
    host = str(endpoint.get("host") or "")
    if not HOST.match(host):
        return _invalid(name, "spec.endpoint.host", host, f"should match '{HOST.pattern}'")
    token_config = req.get("token_config") or {"token_gen_method": "RSA-GEN"}
    method = str(token_config.get("token_gen_method") or "")
    period = int(token_config.get("rolling_update_period") or 0)
    if auth_type == "Token" and method not in ("RSA-GEN", "UID-RSA-GEN"):
        return _invalid(
            name, "spec.tokenConfig.tokenGenMethod", method, 'should be one of ["RSA-GEN", "UID-RSA-GEN"]'
        )
    if period < 0:
        return _invalid(
            name, "spec.tokenConfig.rollingUpdatePeriod", period, "should be greater than or equal to 0"
        )
    if name in node.route_table:
        return ROUTE_EXISTS, f'clusterdomainroutes.kuscia.secretflow "{name}" already exists', None
    node.route_table[name] = Route(
        source,
        destination,
        host,
        ports,
        authentication_type=auth_type,
        token_gen_method=method,
        rolling_update_period=period,
    )
    return OK, "", None


def route_delete(node: EmulatedNode, req: dict[str, Any]) -> Result:
    source, destination, error = _route_key(req)
    if error:
        return VALIDATION, error, None
    name = f"{source}-{destination}"
    if node.route_table.pop(name, None) is None:
        return _route_missing(name)
    return OK, "", None


def _public_key_b64(node: EmulatedNode, domain_id: str) -> str:
    """What the CDR controller writes into tokenConfig: base64 PKCS#1 public PEM from the Domain cert."""
    import base64

    public = cert_public_key((node.domains.get(domain_id) or {}).get("cert") or "")
    return base64.b64encode(public_pem(public)).decode() if public is not None else ""


def route_query(node: EmulatedNode, req: dict[str, Any]) -> Result:
    source, destination, error = _route_key(req)
    if error:
        return VALIDATION, error, None
    name = f"{source}-{destination}"
    route = node.route_table.get(name)
    if route is None:
        return _route_missing(name)
    token_config = None
    if route.authentication_type == "Token":
        token_config = {
            "destination_public_key": _public_key_b64(node, destination),
            "rolling_update_period": str(route.rolling_update_period),
            "source_public_key": _public_key_b64(node, source),
            "token_gen_method": route.token_gen_method,
        }
    return (
        OK,
        "",
        {
            "name": name,
            "authentication_type": route.authentication_type,
            "destination": destination,
            "endpoint": {"host": route.host, "ports": [dict(p) for p in route.ports]},
            "source": source,
            "token_config": token_config,
            "mtls_config": None,
            "status": {"status": route.status, "reason": route.kusciaapi_reason()},
            "transit": None,
            "body_encryption": None,
        },
    )


def route_status(node: EmulatedNode, req: dict[str, Any]) -> Result:
    keys = req.get("route_keys") or []
    if not keys:
        return VALIDATION, "DomainRoute keys can not be empty", None
    parsed = []
    for key in keys:
        source, destination, error = _route_key(key if isinstance(key, dict) else {})
        if error:
            return VALIDATION, error, None
        parsed.append((source, destination))
    out = []
    for source, destination in parsed:
        route = node.route_table.get(f"{source}-{destination}")
        if route is None:
            return _route_missing(f"{source}-{destination}")
        out.append(
            {
                "name": route.name,
                "destination": destination,
                "source": source,
                "status": {"status": route.status, "reason": route.kusciaapi_reason()},
            }
        )
    return OK, "", {"routes": out}


HANDLERS: dict[str, Callable[[EmulatedNode, dict[str, Any]], Result]] = {
    "/healthZ": health,
    "/api/v1/domain/create": domain_create,
    "/api/v1/domain/update": domain_update,
    "/api/v1/domain/delete": domain_delete,
    "/api/v1/domain/query": domain_query,
    "/api/v1/domain/batchQuery": domain_batch_query,
    "/api/v1/route/create": route_create,
    "/api/v1/route/delete": route_delete,
    "/api/v1/route/query": route_query,
    "/api/v1/route/status/batchQuery": route_status,
}
