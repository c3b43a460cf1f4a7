"""Checks of the MySQL server itself, in the order a connection meets it: reachable and really
MySQL, the login as kine makes it, the version and the settings Kuscia documents."""

from __future__ import annotations

import re

from kuscia_components.checks.mysql_session import (
    ER_ACCESS_DENIED,
    ER_CON_COUNT,
    ER_HOST_IS_BLOCKED,
    ER_HOST_NOT_PRIVILEGED,
    ER_SECURE_TRANSPORT_REQUIRED,
    ER_UNKNOWN_SYSTEM_VARIABLE,
    ERROR_REFERENCE,
    TLS_FIX,
    DbSession,
    DbTarget,
    Unreachable,
    _refusal_fix,
    error_code,
    error_text,
    read_greeting,
)
from kuscia_components.checks.report import (
    CheckResult,
    failed,
    passed,
    warned,
)
from kuscia_components.core.mysql import PROVIDER_VERSION_QUERY

MIN_MYSQL = (8, 0, 23)


# -- checks: connection --------------------------------------------------------------------------


def check_server(s: DbSession, name: str = "database server") -> CheckResult:
    """TCP plus the greeting: reachable, and really a MySQL server."""
    try:
        s.greeting = read_greeting(s.target.host, s.target.port, s.target.timeout)
    except Unreachable as err:
        return failed(name, str(err), err.fix)
    tls = "offers TLS" if s.greeting.offers_tls else "no TLS"
    return passed(
        name, f"{s.target.address} speaks MySQL ({s.greeting.version}, {tls})", version=s.greeting.version
    )


def check_login(s: DbSession, name: str = "database login") -> CheckResult:
    """Log in without TLS, as kine does; on refusal, find out whether TLS is the reason."""
    import pymysql

    t = s.target
    try:
        s.conn = s.connect(tls=False)
    except pymysql.err.MySQLError as err:
        code = error_code(err)
        if code == ER_SECURE_TRANSPORT_REQUIRED or (
            code == ER_ACCESS_DENIED
            and s.greeting is not None
            and s.greeting.offers_tls
            and _tls_login_works(s)
        ):
            return failed(
                name,
                f"{t.address} requires TLS for {t.who} {t.user!r}: the same login succeeds over TLS, not without",
                TLS_FIX.format(user=t.user),
            )
        detail, fix = _login_failure(err, t)
        return failed(name, detail, fix)
    return passed(name, f"{t.who} {t.user!r} logged in to {t.address} (no TLS, like kine)")


def _tls_login_works(s: DbSession) -> bool:
    try:
        s.connect(tls=True).close()
    except Exception:
        return False
    return True


def _login_failure(err: BaseException, t: DbTarget) -> tuple[str, str]:
    code, text = error_code(err), error_text(err)
    if code == ER_ACCESS_DENIED:
        return (
            f"{t.address} refused {t.who} {t.user!r}: wrong password, or no such user for this client address "
            f"(server says: {text})",
            "check the user and password; the user must exist for host '%' (or the address the server names)",
        )
    if code in (ER_HOST_NOT_PRIVILEGED, ER_HOST_IS_BLOCKED, ER_CON_COUNT):
        return f"{t.address} refused the connection: {text}", _refusal_fix(code)
    return f"{t.address}: login failed with MySQL error {code}: {text}", ERROR_REFERENCE


def check_version(s: DbSession, name: str = "database version") -> CheckResult:
    """Kuscia documents MySQL >= 8.0.23 (deploy_check.md); anything else works at your risk."""
    version = str(s.value("SELECT VERSION()"))
    numbers = tuple(int(n) for n in re.findall(r"\d+", version.split("-")[0])[:3])
    if "mariadb" in version.lower():
        return warned(
            name,
            f"MariaDB {version}: Kuscia documents MySQL >= 8.0.23 only",
            "kine runs on MariaDB, but Kuscia does not test it: use MySQL 8.0.23+ for production",
            version=version,
        )
    if numbers < MIN_MYSQL:
        return warned(
            name,
            f"MySQL {version} is older than 8.0.23, the version Kuscia documents",
            "upgrade to MySQL 8.0.23 or later",
            version=version,
        )
    return passed(name, f"MySQL {version}", version=version)


def check_provider_compatible(s: DbSession, name: str = "database provider") -> CheckResult:
    """External mode creates the user and grant through pulumi-mysql, whose provider reads
    @@GLOBAL.innodb_version first; MariaDB 10.10+ no longer answers it, so `up` would fail."""
    try:
        s.value(PROVIDER_VERSION_QUERY)
    except Exception as err:
        if error_code(err) != ER_UNKNOWN_SYSTEM_VARIABLE:
            raise
        return failed(
            name,
            "the server does not answer @@GLOBAL.innodb_version (MariaDB 10.10 and later), which pulumi-mysql "
            "reads before it creates the user and the grant: `pulumi up` in external mode would fail",
            "use MySQL 8.0.23+ (what Kuscia documents) for database.mode external, or database.mode in-cluster",
        )
    return passed(name, "pulumi-mysql can manage users and grants on this server")


def check_settings(s: DbSession, name: str = "database settings") -> CheckResult:
    """Kuscia's MySQL tuning guide turns derived_merge off (NOTES §5)."""
    switches = str(s.value("SELECT @@optimizer_switch") or "")
    if "derived_merge=on" in switches:
        return warned(
            name,
            "optimizer_switch has derived_merge=on",
            "SET GLOBAL optimizer_switch='derived_merge=off' (and in the server config), as Kuscia's MySQL tuning "
            "guide advises",
        )
    return passed(name, "derived_merge=off")
