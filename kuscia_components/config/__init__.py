"""Input layer: the `kuscia:` settings of a stack, parsed into typed config. Imports no Pulumi.

Every setting is declared once, in `model.py`; parsing (`parse.py`), the settings table of
docs/configuration.md (`docs.py`) and the Automation API's shape (`shapes.py`) derive from it.
"""

from kuscia_components.config.advice import config_warnings
from kuscia_components.config.constants import (
    CONFIG_NAMESPACE,
    DEFAULT_IMAGE,
    DEFAULT_MYSQL_IMAGE,
    ENCRYPTED,
    GATEWAY_PORT,
    KUSCIAAPI_HTTP_PORT,
    MAX_DOMAIN_ID_LENGTH,
    RESERVED_DOMAIN_IDS,
    SYSTEM_NAMESPACES,
    DatabaseMode,
    LogLevel,
    NodeProtocol,
    Protocol,
    Runtime,
    ServiceType,
    gateway_scheme,
)
from kuscia_components.config.errors import ConfigError, Problem
from kuscia_components.config.model import (
    NESTED,
    SECRET_SETTINGS,
    SETTINGS,
    Capacity,
    DatabaseSettings,
    NetworkPolicySettings,
    PartyConfig,
    PeerSettings,
    PodResources,
    ServiceSettings,
)
from kuscia_components.config.parse import parse_party_config, read_pulumi_config
from kuscia_components.config.rules import default_database_name, default_database_user

__all__ = [
    "CONFIG_NAMESPACE",
    "DEFAULT_IMAGE",
    "DEFAULT_MYSQL_IMAGE",
    "ENCRYPTED",
    "GATEWAY_PORT",
    "KUSCIAAPI_HTTP_PORT",
    "MAX_DOMAIN_ID_LENGTH",
    "NESTED",
    "RESERVED_DOMAIN_IDS",
    "SECRET_SETTINGS",
    "SETTINGS",
    "SYSTEM_NAMESPACES",
    "Capacity",
    "ConfigError",
    "DatabaseMode",
    "DatabaseSettings",
    "LogLevel",
    "NetworkPolicySettings",
    "NodeProtocol",
    "PartyConfig",
    "PeerSettings",
    "PodResources",
    "Problem",
    "Protocol",
    "Runtime",
    "ServiceSettings",
    "ServiceType",
    "config_warnings",
    "default_database_name",
    "default_database_user",
    "gateway_scheme",
    "parse_party_config",
    "read_pulumi_config",
]
