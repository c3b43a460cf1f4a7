"""SQL facts shared by the NodeDatabase component and the database checks, with no Pulumi import.

The component grants and provisions with these; `preflight`/`verify` test a server against the
same values, so a check can never drift from what `pulumi up` does.
"""

from __future__ import annotations

DEFAULT_PORT = 3306
# What kine needs on its own database (NOTES §5, kine's mysql driver): SELECT/INSERT/UPDATE/
# DELETE for its log (compaction is a DELETE ... JOIN), CREATE and INDEX to create the `kine`
# table and its five indexes on first start. No ALTER: kine only alters the table when the
# operator opts into a schema migration (KINE_SCHEMA_MIGRATION), which Kuscia never sets. No
# DROP, nothing server-wide.
KINE_PRIVILEGES: tuple[str, ...] = ("SELECT", "INSERT", "UPDATE", "DELETE", "CREATE", "INDEX")
# pulumi-mysql 3.3.3 wraps terraform-provider-mysql v1.9.0. Before CREATE USER and GRANT it
# reads the server version with this query, which MariaDB 10.10+ no longer answers.
PROVIDER_VERSION_QUERY = "SELECT @@GLOBAL.innodb_version"
