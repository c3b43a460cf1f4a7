"""`preflight`: will the first `pulumi up` of a party work? Asked before anything exists.

The config is parsed first (a bad config is exit 2 with every problem listed). Then the
Kubernetes side: the kubeconfig context, the API server, the namespace free or ours, and a
SelfSubjectAccessReview for every kind the program creates and for what `kusciaApiTransport`
needs (pods/portforward and pods/exec, or services/proxy), and how KusciaAPI will be trusted
(the node CA and MTLS client certificate made from the key, in memory). For `database.mode: external`, a real connection with the ADMIN credentials: the server is
MySQL and reachable, the login works (without TLS, as the provider and kine connect), the version,
what the admin may create, and whether the database and the kine user are free or already ours.
Last, each `{stack: X}` partner's stack must exist in the backend (checks/partner_stacks.py).

The admin password is usually a `secure:` value in the stack file, which only Pulumi can decrypt:
it is taken from the environment (`KUSCIA_DATABASE_ADMIN_PASSWORD`), else from
`pulumi config get` when the Pulumi CLI is installed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

from kuscia_components.checks.database import admin_database_checks
from kuscia_components.checks.kube import (
    KubeSession,
    KubeTarget,
    check_access,
    check_api_server,
    check_context,
    check_namespace_free_or_ours,
    check_runk_role_grants,
)
from kuscia_components.checks.partner_stacks import StackLookup, partner_stack_checks
from kuscia_components.checks.report import (
    CheckResult,
    Report,
    Step,
    failed,
    passed,
    run_steps,
    skipped,
    warned,
)
from kuscia_components.checks.transport_access import check_kusciaapi_access
from kuscia_components.config import ENCRYPTED, PartyConfig
from kuscia_components.core.redact import Redactor

PASSWORD_ENV = "KUSCIA_DATABASE_ADMIN_PASSWORD"
PASSWORD_KEYS = (("kuscia:databaseAdminPassword",), ("--path", "kuscia:database.adminPassword"))

PasswordSource = Callable[[], "str | None"]


def run_preflight(
    cfg: PartyConfig,
    *,
    timeout: float = 5.0,
    admin_password: PasswordSource | None = None,
    redactor: Redactor | None = None,
    partner_stacks: StackLookup | None = None,
) -> Report:
    """Every pre-deploy check of one party. `admin_password` is asked only when the stack's own
    value is encrypted (see `admin_password_source`); `partner_stacks` answers whether each
    `{stack: X}` peer's stack exists (checks/partner_stacks.py; None: nobody to ask, SKIP)."""
    redactor = redactor if redactor is not None else Redactor()
    report = Report("preflight", cfg.domain_id, cfg.domain_id)
    report.checks.append(
        passed(
            "config",
            f"domain {cfg.domain_id}, namespace {cfg.namespace}, protocol {cfg.protocol}, runtime {cfg.runtime}, "
            f"database {cfg.database.mode}",
        )
    )
    with KubeSession(KubeTarget.of(cfg, timeout)) as kube:
        report.checks += run_steps(
            [
                Step("kube context", lambda: check_context(kube)),
                Step("API server", lambda: check_api_server(kube), ("kube context",)),
                Step("namespace", lambda: check_namespace_free_or_ours(kube, cfg), ("API server",)),
                Step("access", lambda: check_access(kube, cfg), ("API server",)),
                Step("access runk Role", lambda: check_runk_role_grants(kube, cfg), ("API server",)),
                Step("access KusciaAPI", lambda: check_kusciaapi_access(kube, cfg), ("API server",)),
            ]
        )
    report.checks.append(check_kusciaapi_tls(cfg))
    report.checks += database_preflight(
        cfg, timeout=timeout, admin_password=admin_password, redactor=redactor
    )
    report.checks += partner_stack_checks(cfg, partner_stacks)
    return report


def check_kusciaapi_tls(cfg: PartyConfig, name: str = "KusciaAPI TLS") -> CheckResult:
    """How peering and verify will trust KusciaAPI: with a domain key at hand, the node CA is
    derived and (MTLS) a client certificate minted here, in memory, and both loaded into a client
    context, as peering does; nothing touches the cluster."""
    from kuscia_components.checks.verify import kusciaapi_tls
    from kuscia_components.core.pki import KeyFormatError, load_domain_key
    from kuscia_components.kube.tls import client_context

    if cfg.protocol == "NOTLS":
        return passed(name, "protocol NOTLS: KusciaAPI speaks plain HTTP, with no token (nothing to verify)")
    if cfg.kusciaapi_transport == "serviceProxy":
        return warned(
            name,
            "kusciaApiTransport serviceProxy: the API server's proxy does not verify KusciaAPI's certificate",
            "kuscia:kusciaApiTransport portForward verifies it against the node's CA",
        )
    how = f"KusciaAPI's certificate will be verified against {cfg.domain_id}'s CA as 'kusciaapi'"
    if cfg.protocol == "MTLS":
        how += ", with a client certificate signed by the domain key"
    if not cfg.domain_key_data:
        return passed(name, f"{how} (from the key `pulumi up` generates or keeps in state)")
    try:
        material = kusciaapi_tls(load_domain_key(cfg.domain_key_data), cfg.domain_id, cfg.protocol)
        assert material is not None  # TLS or MTLS
        client_context(material)
    except (KeyFormatError, ValueError) as err:
        return failed(
            name, f"the TLS material cannot be made from domainKeyData: {err}", "check kuscia:domainKeyData"
        )
    return passed(name, f"{how} (derived from domainKeyData here)")


def database_preflight(
    cfg: PartyConfig, *, timeout: float, admin_password: PasswordSource | None, redactor: Redactor
) -> list[CheckResult]:
    db = cfg.database
    if db.mode != "external":
        return [
            skipped(
                "database",
                "in-cluster MySQL: `pulumi up` creates it in the namespace, with the database, user and grants",
            )
        ]
    password = db.admin_password if db.admin_password and db.admin_password != ENCRYPTED else None
    if password is None and admin_password is not None:
        password = admin_password()
    if not password:
        return [
            skipped(
                "database",
                "the admin password is encrypted in the stack file and no decrypted copy is at hand",
                f"export {PASSWORD_ENV}=... (or install the Pulumi CLI, which preflight asks with `pulumi config get`)",
            )
        ]
    redactor.add(password)
    assert (
        db.host is not None and db.admin_user is not None
    )  # the config parser requires both in external mode
    return admin_database_checks(
        db.host,
        db.port,
        db.admin_user,
        password,
        database=db.name,
        user=db.user,
        domain_id=cfg.domain_id,
        timeout=timeout,
    )


def admin_password_source(stack: str, project_dir: Path, env: dict[str, str] | None = None) -> PasswordSource:
    """The decrypted admin password: $KUSCIA_DATABASE_ADMIN_PASSWORD, else `pulumi config get`
    (either key spelling the config accepts), else None. Called only when needed."""
    environ = os.environ if env is None else env
    cache: list[str | None] = []

    def read() -> str | None:
        if not cache:  # --watch asks every round; the CLI is asked once
            cache.append(ask())
        return cache[0]

    def ask() -> str | None:
        if environ.get(PASSWORD_ENV):
            return environ[PASSWORD_ENV]
        pulumi = shutil.which("pulumi", path=environ.get("PATH"))
        if pulumi is None:
            return None
        for key in PASSWORD_KEYS:
            try:
                done = subprocess.run(
                    [pulumi, "config", "get", *key, "--stack", stack],
                    cwd=project_dir,
                    capture_output=True,
                    text=True,
                    timeout=60,
                    env=dict(environ),
                )
            except (OSError, subprocess.TimeoutExpired):
                return None
            if done.returncode == 0 and done.stdout.strip():
                return done.stdout.rstrip("\n")
        return None

    return read
