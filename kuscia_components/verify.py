"""Preflight (before the first `up`) and verify (after it): one function per check, typed results.

Each check returns a `CheckResult` with PASS/FAIL/WARN/SKIP, what was seen, and a one-line fix.
Nothing here raises for an expected failure: an unreachable host, a wrong password or a missing
Secret is a FAIL line, never a traceback. The CLI wrappers (`preflight_main`, `verify_main`)
exit 0 only when nothing FAILed.

The checks follow the seed's "confirm the deployment succeeded" list (pod Running, a `kine`
table with rows, the gateway answering 401, `kubectl get cdr` Ready both ways) and the database
problems users hit (NOTES §5, §9.2).
"""

from __future__ import annotations

import argparse
import base64
import json
import socket
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from .config import PartyConfig
from .dsn import KINE_PRIVILEGES, DsnError, ParsedDsn, parse_dsn

Status = Literal["PASS", "FAIL", "WARN", "SKIP"]
MIN_MYSQL = (8, 0, 23)
KINE_DML = ("SELECT", "INSERT", "UPDATE", "DELETE")
# Kinds the node creates, for SelfSubjectAccessReview: (group, resource, verb).
DEPLOYER_PERMISSIONS = (
    ("", "namespaces", "create"),
    ("", "serviceaccounts", "create"),
    ("", "secrets", "create"),
    ("", "services", "create"),
    ("", "services/proxy", "create"),
    ("apps", "deployments", "create"),
    ("apps", "statefulsets", "create"),
    ("rbac.authorization.k8s.io", "roles", "create"),
    ("rbac.authorization.k8s.io", "rolebindings", "create"),
    ("networking.k8s.io", "networkpolicies", "create"),
)


@dataclass(frozen=True)
class CheckResult:
    name: str
    status: Status
    detail: str
    fix: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def line(self) -> str:
        text = f"{self.status:<5} {self.name}: {self.detail}"
        return text + (f"\n      fix: {self.fix}" if self.fix and self.status in ("FAIL", "WARN") else "")


def passed(name: str, detail: str, **extra: Any) -> CheckResult:
    return CheckResult(name, "PASS", detail, extra=extra)


def failed(name: str, detail: str, fix: str, **extra: Any) -> CheckResult:
    return CheckResult(name, "FAIL", detail, fix, extra)


def warned(name: str, detail: str, fix: str, **extra: Any) -> CheckResult:
    return CheckResult(name, "WARN", detail, fix, extra)


def skipped(name: str, detail: str) -> CheckResult:
    return CheckResult(name, "SKIP", detail)


# -- database ----------------------------------------------------------------------------------


def connect_mysql(dsn: ParsedDsn, *, database: bool = True, timeout: float = 5.0) -> Any:
    import pymysql

    return pymysql.connect(
        host=dsn.host, port=dsn.port, user=dsn.user, password=dsn.password,
        database=dsn.database if database else None, connect_timeout=timeout, read_timeout=timeout,
        autocommit=True,
    )  # fmt: skip


def explain_mysql_error(err: BaseException, dsn: ParsedDsn, who: str = "the node's user") -> tuple[str, str]:
    """(what happened, how to fix it) for a connection failure, in user terms."""
    code = err.args[0] if getattr(err, "args", None) and isinstance(err.args[0], int) else None
    where = f"{dsn.host}:{dsn.port}"
    if code == 1045:
        return (
            f"{who} {dsn.user!r} was refused by {where} (wrong password, unknown user, or the user must use TLS)",
            "check the credentials; if the server requires TLS for this user, Kuscia's DSN cannot carry it yet",
        )
    if code == 1049:
        return (
            f"database {dsn.database!r} does not exist on {where}",
            "Kuscia needs the database to exist before it starts: `pulumi up` (external mode) creates it",
        )
    if code in (1044, 1142):
        return (
            f"{who} {dsn.user!r} may not use database {dsn.database!r}",
            "grant the kine privileges on it",
        )
    if code == 3159:
        return (
            f"{where} requires TLS (require_secure_transport=ON)",
            "allow plain connections for the kine user",
        )
    if code in (2003, 2005, 2002):
        return (
            f"cannot reach MySQL at {where} ({_first_line(err)})",
            "check host, port and firewalls; an in-cluster database is reachable only from the cluster "
            "(use --db-address with `kubectl port-forward`)",
        )
    if code == 2013 or type(err).__name__ in ("InternalError", "struct.error", "error") or code is None:
        return (
            f"{where} did not answer like a MySQL server ({type(err).__name__}: {_first_line(err)})",
            "point database.endpoint at the MySQL port (usually 3306), not another service",
        )
    return (f"{where}: MySQL error {code}: {_first_line(err)}", "see the MySQL error code reference")


def check_db_connection(dsn: ParsedDsn, *, name: str = "database connection") -> tuple[CheckResult, Any]:
    try:
        conn = connect_mysql(dsn)
    except Exception as err:
        detail, fix = explain_mysql_error(err, dsn)
        return failed(name, detail, fix), None
    return passed(name, f"{dsn.user}@{dsn.host}:{dsn.port}/{dsn.database}"), conn


def check_db_version(conn: Any) -> CheckResult:
    with conn.cursor() as cursor:
        cursor.execute("SELECT VERSION()")
        version = str(cursor.fetchone()[0])
    name = "database version"
    if "mariadb" in version.lower():
        return warned(
            name,
            f"MariaDB {version}",
            "Kuscia documents MySQL >= 8.0.23; MariaDB works for kine but is untested upstream",
        )
    numbers = tuple(int(p) for p in version.split("-")[0].split(".")[:3] if p.isdigit())
    if numbers < MIN_MYSQL:
        return warned(
            name, f"MySQL {version}", "Kuscia documents MySQL >= 8.0.23 (docs/deployment/deploy_check.md)"
        )
    return passed(name, f"MySQL {version}")


def check_kine_table(conn: Any, database: str) -> CheckResult:
    name = "kine table"
    with conn.cursor() as cursor:
        cursor.execute(
            "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = %s AND table_name = 'kine'",
            (database,),
        )
        if not cursor.fetchone()[0]:
            return failed(
                name, f"no table `kine` in {database}",
                "k3s never started against this database: read the pod log (kubectl logs) for the datastore error",
            )  # fmt: skip
        cursor.execute("SELECT COUNT(*) FROM `kine`")
        rows = int(cursor.fetchone()[0])
    if rows == 0:
        return failed(
            name,
            f"`kine` in {database} is empty",
            "k3s created the table but stored nothing: check the pod log",
        )
    return passed(name, f"`kine` in {database} has {rows} rows", rows=rows)


def granted_privileges(conn: Any, database: str) -> set[str]:
    """Privileges the current user holds on `database` (or globally), from SHOW GRANTS."""
    with conn.cursor() as cursor:
        cursor.execute("SHOW GRANTS FOR CURRENT_USER()")
        grants = [str(row[0]) for row in cursor.fetchall()]
    held: set[str] = set()
    for grant in grants:
        if " ON " not in grant or not grant.upper().startswith("GRANT "):
            continue
        privileges, target = grant[6:].split(" ON ", 1)
        scope = target.split(" TO ", 1)[0].strip().replace("`", "").replace("\\", "")
        if scope in ("*.*", f"{database}.*"):
            for privilege in privileges.split(","):
                held.add(privilege.strip().upper())
    if "ALL PRIVILEGES" in held or "ALL" in held:
        held |= set(KINE_PRIVILEGES)
    return held


def check_kine_privileges(conn: Any, database: str) -> CheckResult:
    name = "kine privileges"
    missing = [p for p in KINE_DML if p not in granted_privileges(conn, database)]
    if missing:
        return failed(
            name, f"the user lacks {', '.join(missing)} on {database}",
            f"GRANT {', '.join(KINE_PRIVILEGES)} ON `{database}`.* TO the kine user (pulumi up does this in external mode)",
        )  # fmt: skip
    return passed(name, f"{', '.join(KINE_DML)} on {database}")


def database_checks(dsn_text: str, *, address: str | None = None) -> list[CheckResult]:
    """The node's DSN end to end: connect, version, kine table with rows, privileges."""
    try:
        dsn = parse_dsn(dsn_text)
    except DsnError as err:
        return [failed("database DSN", str(err), "fix datastoreEndpoint (go-sql-driver format)")]
    if address:
        host, _, port = address.rpartition(":")
        dsn = ParsedDsn(dsn.user, dsn.password, dsn.net, f"{host}:{port}", dsn.database, dsn.params)
    elif dsn.host.endswith((".svc", ".svc.cluster.local")) and not _resolves(dsn.host):
        return [
            skipped(
                "database",
                f"{dsn.host} is a cluster-internal name; run `kubectl -n <ns> port-forward svc/kuscia-mysql 3306` "
                "and add --db-address 127.0.0.1:3306",
            )
        ]
    result, conn = check_db_connection(dsn)
    if conn is None:
        return [result]
    with conn:
        return [
            result,
            check_db_version(conn),
            check_kine_table(conn, dsn.database),
            check_kine_privileges(conn, dsn.database),
        ]


def admin_checks(cfg: PartyConfig) -> list[CheckResult]:
    """Preflight for database.mode external: the admin can create what `up` will create."""
    db = cfg.database
    if db.mode != "external":
        return [skipped("database", "in-cluster MySQL: created by `pulumi up`, nothing to check before")]
    if not db.admin_password or db.admin_password.startswith("<encrypted"):
        return [
            skipped(
                "database admin",
                "the admin password is encrypted in the stack file; run preflight with it set",
            )
        ]
    admin = ParsedDsn(str(db.admin_user), db.admin_password, "tcp", f"{db.host}:{db.port}", "", {})
    try:
        conn = connect_mysql(admin, database=False)
    except Exception as err:
        detail, fix = explain_mysql_error(err, admin, "the admin user")
        return [failed("database admin login", detail, fix)]
    with conn:
        results = [
            passed("database admin login", f"{db.admin_user}@{db.host}:{db.port}"),
            check_db_version(conn),
        ]
        held = granted_privileges(conn, db.name)
        with conn.cursor() as cursor:
            cursor.execute("SHOW GRANTS FOR CURRENT_USER()")
            grants = " ".join(str(r[0]) for r in cursor.fetchall()).upper()
        needed = {"CREATE", *KINE_PRIVILEGES}
        can_user = "CREATE USER" in grants or "ALL PRIVILEGES ON *.*" in grants
        missing = sorted(needed - held) + ([] if can_user else ["CREATE USER"])
        if missing or "WITH GRANT OPTION" not in grants:
            results.append(failed(
                "database admin privileges",
                f"{db.admin_user} lacks {', '.join(missing) or 'GRANT OPTION'}",
                f"the admin needs CREATE, CREATE USER and {', '.join(KINE_PRIVILEGES)} WITH GRANT OPTION",
            ))  # fmt: skip
        else:
            results.append(
                passed("database admin privileges", "can create the database, the user and the grant")
            )
        results.append(_database_name_free(conn, db.name, cfg.domain_id))
    return results


def _database_name_free(conn: Any, name: str, domain_id: str) -> CheckResult:
    with conn.cursor() as cursor:
        cursor.execute("SELECT COUNT(*) FROM information_schema.schemata WHERE schema_name = %s", (name,))
        exists = bool(cursor.fetchone()[0])
        cursor.execute(
            "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = %s AND table_name = 'kine'",
            (name,),
        )
        has_kine = bool(cursor.fetchone()[0])
    if not exists:
        return passed("database name", f"{name} is free")
    if has_kine:
        return warned(
            "database name", f"{name} exists and holds a kine table",
            f"reuse it only for domain {domain_id} (k3s data is encrypted with a token derived from the domain ID); "
            "otherwise choose another database.name",
        )  # fmt: skip
    return warned(
        "database name",
        f"{name} exists (no kine table)",
        "pulumi up will adopt it only if it can create it; pick a free name",
    )


# -- Kubernetes ---------------------------------------------------------------------------------


def kube_client(cfg: PartyConfig) -> tuple[CheckResult, Any]:
    from kubernetes import config as kube_config

    try:
        client = kube_config.new_client_from_config(config_file=cfg.kubeconfig, context=cfg.kube_context)
    except Exception as err:
        return failed(
            "kube context", f"cannot load kubeconfig/context ({_first_line(err)})",
            "check kuscia:kubeconfig / kuscia:kubeContext (kubectl config get-contexts)",
        ), None  # fmt: skip
    return passed("kube context", cfg.kube_context or "current context"), client


def _get(client: Any, path: str, *, method: str = "GET", body: Any = None) -> tuple[int, Any]:
    import urllib3

    _m, url, headers, _b, _p = client.param_serialize(
        method=method, resource_path=path, header_params={"Accept": "application/json", "Content-Type": "application/json"},
        auth_settings=["BearerToken"],
    )  # fmt: skip
    try:
        response = client.rest_client.pool_manager.request(
            method, url, headers=headers, body=json.dumps(body).encode() if body is not None else None,
            timeout=urllib3.Timeout(total=10), retries=False,
        )  # fmt: skip
    except urllib3.exceptions.HTTPError as err:
        raise ConnectionError(_first_line(err)) from None
    try:
        return response.status, json.loads(response.data or b"null")
    except ValueError:
        return response.status, response.data.decode("utf-8", "replace")


def check_api_server(client: Any) -> CheckResult:
    try:
        status, body = _get(client, "/version")
    except ConnectionError as err:
        return failed(
            "API server",
            f"unreachable: {err}",
            "check the cluster address in the kubeconfig and your network/VPN",
        )
    if status != 200:
        return failed("API server", f"/version answered HTTP {status}", "check the kubeconfig credentials")
    return passed("API server", f"Kubernetes {body.get('gitVersion', '?')}")


def check_namespace_free_or_ours(client: Any, cfg: PartyConfig) -> CheckResult:
    status, body = _get(client, f"/api/v1/namespaces/{cfg.namespace}")
    if status == 404:
        return passed("namespace", f"{cfg.namespace} is free")
    labels = (body or {}).get("metadata", {}).get("labels", {}) if isinstance(body, dict) else {}
    if labels.get("kuscia.secretflow/domain-id") == cfg.domain_id:
        return passed("namespace", f"{cfg.namespace} exists and belongs to domain {cfg.domain_id}")
    return warned(
        "namespace", f"{cfg.namespace} exists and was not created by this program",
        "pick another kuscia:namespace, or make sure nothing else runs there (Pulumi will fail to create it)",
    )  # fmt: skip


def check_permissions(client: Any, cfg: PartyConfig) -> CheckResult:
    denied = []
    for group, resource, verb in DEPLOYER_PERMISSIONS:
        sub = ""
        if "/" in resource:
            resource, sub = resource.split("/", 1)
        review = {
            "apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
            "spec": {"resourceAttributes": {"namespace": cfg.namespace, "verb": verb, "group": group,
                                            "resource": resource, "subresource": sub}},
        }  # fmt: skip
        status, body = _get(
            client, "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", method="POST", body=review
        )
        if status >= 300 or not (body or {}).get("status", {}).get("allowed"):
            denied.append(f"{verb} {resource}{'/' + sub if sub else ''}")
    if denied:
        return failed(
            "permissions",
            f"not allowed: {', '.join(denied)}",
            "ask a cluster admin for these rights in the namespace",
        )
    return passed("permissions", f"may create all {len(DEPLOYER_PERMISSIONS)} kinds the node needs")


def check_deployment(client: Any, cfg: PartyConfig) -> CheckResult:
    name = cfg.service_name
    status, body = _get(client, f"/apis/apps/v1/namespaces/{cfg.namespace}/deployments/{name}")
    if status == 404:
        return failed(
            "deployment", f"no Deployment {cfg.namespace}/{name}", f"run `pulumi up` for {cfg.domain_id}"
        )
    available = int((body.get("status") or {}).get("availableReplicas") or 0)
    if available >= 1:
        return passed("deployment", f"{name} available")
    return failed(
        "deployment",
        f"{name} has no available replica",
        "see the pod check below and `kubectl describe deploy`",
    )


def check_pod(client: Any, cfg: PartyConfig) -> CheckResult:
    status, body = _get(
        client, f"/api/v1/namespaces/{cfg.namespace}/pods?labelSelector=app={cfg.service_name}"
    )
    pods = (body or {}).get("items", []) if status == 200 else []
    if not pods:
        return failed(
            "pod",
            "no Kuscia pod found",
            f"kubectl -n {cfg.namespace} get pods; kubectl -n {cfg.namespace} describe deploy {cfg.service_name}",
        )
    pod = pods[0]
    pod_name = pod.get("metadata", {}).get("name", "?")
    pod_status = pod.get("status", {})
    ready = any(
        c.get("type") == "Ready" and c.get("status") == "True" for c in pod_status.get("conditions", [])
    )
    containers = pod_status.get("containerStatuses", [])
    restarts = sum(int(c.get("restartCount") or 0) for c in containers)
    waiting: dict[str, Any] = next(
        (c.get("state", {}).get("waiting", {}) for c in containers if c.get("state", {}).get("waiting")), {}
    )
    terminated: dict[str, Any] = next(
        (
            c.get("lastState", {}).get("terminated", {})
            for c in containers
            if c.get("lastState", {}).get("terminated")
        ),
        {},
    )
    last = (
        f"; last exit: {terminated.get('reason', '?')} (code {terminated.get('exitCode', '?')})"
        if terminated
        else ""
    )
    detail = f"{pod_name} {'Ready' if ready else 'not Ready'}, {restarts} restarts{last}"
    if waiting.get("reason") == "CrashLoopBackOff":
        return failed(
            "pod", detail + ", CrashLoopBackOff",
            f"kubectl -n {cfg.namespace} logs {pod_name} --previous: a datastore error means the database "
            "(credentials, database missing, privileges; k3s must start within 30 s)",
        )  # fmt: skip
    if not ready:
        return failed("pod", detail, f"kubectl -n {cfg.namespace} describe pod {pod_name}")
    if restarts:
        return warned("pod", detail, f"kubectl -n {cfg.namespace} logs {pod_name} --previous")
    return passed("pod", detail)


def read_node_config(client: Any, cfg: PartyConfig) -> tuple[CheckResult, dict[str, Any] | None]:
    """kuscia.yaml from the node's Secret (holds the key and the DSN: never printed)."""
    import yaml

    secret = f"{cfg.service_name}-config"
    status, body = _get(client, f"/api/v1/namespaces/{cfg.namespace}/secrets/{secret}")
    if status != 200:
        return failed("node config", f"cannot read Secret {cfg.namespace}/{secret} (HTTP {status})",
                      f"run `pulumi up` for {cfg.domain_id}, or get rights to read Secrets in {cfg.namespace}"), None  # fmt: skip
    try:
        text = base64.b64decode(body["data"]["kuscia.yaml"]).decode()
        doc = yaml.safe_load(text)
        assert isinstance(doc, dict)
    except Exception:
        return failed(
            "node config",
            f"Secret {secret} holds no readable kuscia.yaml",
            f"run `pulumi up` for {cfg.domain_id}",
        ), None
    return passed("node config", f"Secret {secret} (domain {doc.get('domainID')})"), doc


def node_target(cfg: PartyConfig, node_config: dict[str, Any] | None) -> Any:
    from .kusciaapi import NodeTarget
    from .pki import kusciaapi_token

    token = None
    if node_config and cfg.protocol != "NOTLS":
        key_pem = base64.b64decode(str(node_config.get("domainKeyData", ""))).decode()
        token = kusciaapi_token(key_pem, cfg.domain_id)
    return NodeTarget(namespace=cfg.namespace, service=cfg.service_name, domain_id=cfg.domain_id, protocol=cfg.protocol,
                      token=token, kube_context=cfg.kube_context, kubeconfig=cfg.kubeconfig)  # fmt: skip


def check_kusciaapi(target: Any) -> CheckResult:
    from .kusciaapi import KusciaApiClient, KusciaApiError, RetryPolicy

    try:
        ready = KusciaApiClient(target, retry=RetryPolicy(attempts=2, request_timeout_seconds=5)).health()
    except KusciaApiError as err:
        return failed(
            "KusciaAPI",
            str(err),
            "see the pod check; with a NetworkPolicy, widen networkPolicy.kusciaApiFrom",
        )
    return (
        passed("KusciaAPI", "/healthZ ready")
        if ready
        else failed("KusciaAPI", "/healthZ not ready", "wait for the node to finish starting")
    )


def check_gateway(target: Any) -> CheckResult:
    """The seed's curl: a bare request to :1080 must answer 401 with Kuscia's error header."""
    from .kusciaapi import kubernetes_transport

    try:
        response = kubernetes_transport(target, "GET", target.proxy_path("/", port=1080), {}, None, 5.0)
    except (OSError, TimeoutError) as err:
        return failed("gateway", f"no answer on 1080: {err}", "see the pod check")
    headers = {k.lower() for k in response.headers}
    if response.status == 401 and "kuscia-error-message" in headers:
        return passed("gateway", "1080 answers 401 with kuscia-error-message (healthy)")
    return failed(
        "gateway", f"1080 answered HTTP {response.status} without Kuscia's error header",
        "the gateway (envoy) is not up or another service answers on 1080",
    )  # fmt: skip


@dataclass(frozen=True)
class RouteRow:
    name: str
    source: str
    destination: str
    host: str
    authentication: str
    ready: str  # True | False | "" (no status yet) | missing
    reason: str = ""
    diagnosis: str = ""


def route_rows(target: Any, cfg: PartyConfig) -> list[RouteRow]:
    from .diagnosis import LinkContext, diagnose
    from .kusciaapi import KusciaApiClient, KusciaApiError, RouteNotFound

    client = KusciaApiClient(target)
    rows = []
    for peer in cfg.peers:
        for src, dst in ((cfg.domain_id, peer.domain_id), (peer.domain_id, cfg.domain_id)):
            name = f"{src}-{dst}"
            try:
                route = client.query_route(src, dst)
            except RouteNotFound:
                rows.append(RouteRow(name, src, dst, "", "", "missing", "", f"no route {name} on this node"))
                continue
            except KusciaApiError as err:
                rows.append(RouteRow(name, src, dst, "", "", "unknown", "", str(err)))
                continue
            status = route.get("status") or {}
            ready = (
                "True" if status.get("status") == "Succeeded" else ("False" if status.get("reason") else "")
            )
            ctx = LinkContext(src, dst, peer.endpoint or "", peer.stack)
            diagnosis = (
                ""
                if ready == "True"
                else str(diagnose(str(status.get("status", "")), str(status.get("reason", "")), ctx))
            )
            host = str((route.get("endpoint") or {}).get("host", ""))
            rows.append(RouteRow(name, src, dst, host, str(route.get("authentication_type", "")), ready,
                                 str(status.get("reason", "")), diagnosis))  # fmt: skip
    return rows


def cdr_table(rows: Sequence[RouteRow]) -> str:
    """Like `kubectl get cdr`, plus Kuscia's reason and our diagnosis below each row not Ready."""
    header = ("NAME", "SOURCE", "DESTINATION", "HOST", "AUTHENTICATION", "READY")
    cells = [header] + [(r.name, r.source, r.destination, r.host, r.authentication, r.ready) for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(len(header))]
    lines = []
    for index, cell in enumerate(cells):
        lines.append("   ".join(v.ljust(widths[i]) for i, v in enumerate(cell)).rstrip())
        row = rows[index - 1] if index else None
        if row is not None and row.ready != "True":
            if row.reason:
                lines.append(f"    reason: {row.reason}")
            if row.diagnosis:
                lines.append(f"    diagnosis: {row.diagnosis}")
    return "\n".join(lines)


def check_routes(rows: Sequence[RouteRow]) -> CheckResult:
    if not rows:
        return skipped("routes", "no peers configured")
    bad = [r.name for r in rows if r.ready != "True"]
    if bad:
        return failed("routes", f"not Ready: {', '.join(bad)}", "see the table and diagnosis below")
    return passed("routes", f"{len(rows)} routes Ready")


# -- runs ---------------------------------------------------------------------------------------


def run_preflight(cfg: PartyConfig) -> list[CheckResult]:
    results = [passed("config", f"domain {cfg.domain_id}, namespace {cfg.namespace}")]
    results += admin_checks(cfg)
    context, client = kube_client(cfg)
    results.append(context)
    if client is not None:
        api = check_api_server(client)
        results.append(api)
        if api.status == "PASS":
            results += [check_namespace_free_or_ours(client, cfg), check_permissions(client, cfg)]
    return results


def run_verify(
    cfg: PartyConfig, *, db_address: str | None = None
) -> tuple[list[CheckResult], list[RouteRow]]:
    context, client = kube_client(cfg)
    results = [context]
    if client is None:
        return results, []
    api = check_api_server(client)
    results.append(api)
    if api.status != "PASS":
        return results, []
    results += [check_deployment(client, cfg), check_pod(client, cfg)]
    config_result, node_config = read_node_config(client, cfg)
    results.append(config_result)
    target = node_target(cfg, node_config)
    results += [check_kusciaapi(target), check_gateway(target)]
    if node_config is not None:
        results += database_checks(str(node_config.get("datastoreEndpoint", "")), address=db_address)
    rows: list[RouteRow] = []
    if results[-1].status != "FAIL" or cfg.peers:
        try:
            rows = route_rows(target, cfg)
        except Exception as err:  # the KusciaAPI check above already says why
            results.append(
                failed("routes", f"cannot list routes: {_first_line(err)}", "see the KusciaAPI check")
            )
    if cfg.peers:
        results.append(check_routes(rows))
    return results, rows


def render_results(results: Iterable[CheckResult]) -> str:
    return "\n".join(r.line() for r in results)


def _cli(argv: Sequence[str], *, verify: bool) -> int:
    from .__main__ import EXIT_BAD_INPUT, load_party
    from .config import ConfigError
    from .stackfile import StackFileError

    command = "verify" if verify else "preflight"
    parser = argparse.ArgumentParser(prog=f"python -m kuscia_components {command}")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--stack", "-s")
    source.add_argument("--config")
    parser.add_argument("--project-dir", default=".")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    if verify:
        parser.add_argument(
            "--watch", action="store_true", help="re-run until everything passes or --timeout"
        )
        parser.add_argument("--timeout", type=float, default=300.0)
        parser.add_argument(
            "--db-address", help="reach the database here instead (e.g. a kubectl port-forward)"
        )
    args = parser.parse_args(list(argv))
    from pathlib import Path

    args.project_dir = Path(args.project_dir)
    args.config = Path(args.config) if args.config else None
    try:
        _stack, cfg, _warnings = load_party(args)
    except (ConfigError, StackFileError) as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    deadline = time.monotonic() + (args.timeout if verify else 0)
    while True:
        if verify:
            results, rows = run_verify(cfg, db_address=args.db_address)  # type: ignore[arg-type]
        else:
            results, rows = run_preflight(cfg), []  # type: ignore[arg-type]
        failed_any = any(r.status == "FAIL" for r in results)
        if not (verify and args.watch and failed_any and time.monotonic() < deadline):
            break
        print(f"... {sum(r.status == 'FAIL' for r in results)} failing, checking again", file=sys.stderr)
        time.sleep(10)
    if args.json:
        print(json.dumps({"ok": not failed_any, "checks": [asdict(r) for r in results],
                          "routes": [asdict(r) for r in rows]}, indent=2))  # fmt: skip
    else:
        print(render_results(results))
        if rows:
            print("\n" + cdr_table(rows))
    return 1 if failed_any else 0


def preflight_main(argv: Sequence[str]) -> int:
    return _cli(argv, verify=False)


def verify_main(argv: Sequence[str]) -> int:
    return _cli(argv, verify=True)


def _resolves(host: str) -> bool:
    try:
        socket.getaddrinfo(host, None)
    except OSError:
        return False
    return True


def _first_line(err: BaseException) -> str:
    text = str(err)
    return text.splitlines()[0] if text else type(err).__name__
