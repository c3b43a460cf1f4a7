"""Which kubeconfig and context to use, and loading them with the official client.

The path and context are resolved when a connection is made, not when a target is built, so a
refreshed token, a switched $KUBECONFIG or a credential plugin is used as it is then. Loading
goes through the official client's own merger and loader (`kubernetes.config.kube_config`:
KUBECONFIG lists, relative certificate paths, exec plugins, auth providers), with
`persist_config` off: the deployer's file is never written. The loaded configuration lives in the
returned `Connection` only, which the transport drops on `close`.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

from kuscia_components.kube.errors import (
    CONTEXT_SETTING,
    KUBECONFIG_SETTING,
    ContextNotFound,
    ContextNotSet,
    CredentialsNotLoaded,
    KubeconfigNotFound,
)

if TYPE_CHECKING:
    from kubernetes.client import Configuration
    from kubernetes.config.kube_config import ConfigNode

DEFAULT_PATH = "~/.kube/config"
PATH_FIX = f"set {KUBECONFIG_SETTING} to your kubeconfig file (or KUBECONFIG), e.g. {DEFAULT_PATH}"


@dataclass(frozen=True)
class KubeconfigRef:
    """Where the deployer's cluster credentials are: a file and a context name, never their content."""

    kubeconfig: str | None = None  # kuscia:kubeconfig; None: $KUBECONFIG, else ~/.kube/config
    context: str | None = None  # kuscia:kubeContext; None: the file's current-context

    def path(self) -> str:
        """The file (or KUBECONFIG list) to read, resolved now."""
        return self.kubeconfig or os.environ.get("KUBECONFIG") or DEFAULT_PATH


def project_path(path: str, project_dir: str) -> str:
    """`kuscia:kubeconfig` as every reader takes it: `~` expanded, and a relative path taken from
    the project directory (where Pulumi.yaml lives), never from the reader's working directory:
    the program, the provider host (started elsewhere by the engine) and the CLI commands run in
    different ones. Absolute and normalized."""
    expanded = os.path.expanduser(path)
    return os.path.normpath(os.path.join(os.path.abspath(project_dir), expanded))


@dataclass(frozen=True)
class Connection:
    """A loaded context: where the API server is and the client configuration (credentials)."""

    context: str
    server: str
    configuration: Configuration = field(repr=False)


_IMPORT_LOCK = threading.Lock()


def import_kubernetes() -> None:
    """Import the official client once, under a lock. Its modules import each other, and the real
    provider host runs up to 4 creates in threads at once: two threads importing it together made
    Python's import machinery raise `_DeadlockError` on `kubernetes.client.api_client` (seen through
    tests/provider_host.py). After the first call this is a lock and two dict look-ups."""
    with _IMPORT_LOCK:
        import kubernetes.client
        import kubernetes.config  # noqa: F401


def load(ref: KubeconfigRef) -> Connection:
    """Read the kubeconfig now and load the context; raises a KubeconfigError subclass."""
    import_kubernetes()
    from kubernetes.client import Configuration
    from kubernetes.config import kube_config

    path = ref.path()
    merged = _read(path)
    document = merged.value
    available = [str(_value(c).get("name")) for c in document.get("contexts") or [] if _value(c).get("name")]
    wanted = ref.context or str(document.get("current-context") or "")
    if not wanted:
        raise ContextNotSet(
            f"{path} has no current-context and {CONTEXT_SETTING} is not set",
            f"pulumi config set {CONTEXT_SETTING} <one of: {', '.join(available) or 'none defined'}>",
            CONTEXT_SETTING,
        )
    if wanted not in available:
        raise ContextNotFound(
            f"context {wanted!r} is not in {path} (it has: {', '.join(available) or 'none'})",
            f"kubectl config get-contexts, then pulumi config set {CONTEXT_SETTING} <name>",
            CONTEXT_SETTING,
        )
    configuration = Configuration()
    try:
        loader = kube_config.KubeConfigLoader(
            config_dict=merged, active_context=wanted, config_base_path=None
        )
        loader.load_and_set(configuration)
    except Exception as err:  # e.g. a certificate file that is gone, a malformed user entry
        raise CredentialsNotLoaded(
            f"context {wanted!r} does not load: {_reason(err)}",
            f"check that `kubectl --context {wanted} version` works (credential plugins on PATH, "
            "certificates present)",
            CONTEXT_SETTING if ref.context else KUBECONFIG_SETTING,
        ) from None
    return Connection(wanted, without_userinfo(str(configuration.host)), configuration)


def without_userinfo(url: str) -> str:
    """A server URL fit for messages: any `user:password@` removed."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))


def _read(path: str) -> ConfigNode:
    """The merged kubeconfig (the official merger: KUBECONFIG lists, later files add entries)."""
    import_kubernetes()
    import yaml
    from kubernetes.config import kube_config
    from kubernetes.config.config_exception import ConfigException

    from kuscia_components.config import limits

    files = [os.path.expanduser(p) for p in path.split(kube_config.ENV_KUBECONFIG_PATH_SEPARATOR) if p]
    if not any(os.path.exists(f) for f in files):
        raise KubeconfigNotFound(f"no usable kubeconfig at {path}: no such file", PATH_FIX)
    for file in files:  # each refused before the official merger reads it without any limit
        try:
            limits.kubeconfig_text(file)
        except FileNotFoundError:
            continue  # the merger skips missing entries of a KUBECONFIG list, as kubectl does
        except limits.KubeconfigRefused as err:
            raise KubeconfigNotFound(f"no usable kubeconfig at {file}: it {err.reason}", PATH_FIX) from None
        except OSError as err:
            reason = err.strerror or type(err).__name__
            raise KubeconfigNotFound(f"no usable kubeconfig at {file}: {reason}", PATH_FIX) from None
    try:
        merged = kube_config.KubeConfigMerger(path).config
        if merged is None or not isinstance(merged.value, dict):
            raise ConfigException("no configuration found")
    except yaml.YAMLError as err:  # never the YAML error's own text: it quotes the line, token and all
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(err, "problem", None) or "not valid YAML"
        raise KubeconfigNotFound(f"no usable kubeconfig at {path}: {problem}{where}", PATH_FIX) from None
    except Exception as err:
        reason = _reason(err, "it is not a kubeconfig (a YAML mapping of clusters, users and contexts)")
        raise KubeconfigNotFound(f"no usable kubeconfig at {path}: {reason}", PATH_FIX) from None
    node: ConfigNode = merged
    return node


def _value(node: object) -> dict[str, object]:
    value = getattr(node, "value", node)
    return value if isinstance(value, dict) else {}


def _reason(err: BaseException, otherwise: str = "") -> str:
    """The first line of the official client's reason; those name keys and files, not values.
    Anything else (whose text might quote a value) is `otherwise`, or named by its type only."""
    import_kubernetes()
    from kubernetes.config.config_exception import ConfigException

    if isinstance(err, ConfigException | OSError):
        text = (err.strerror if isinstance(err, OSError) and err.strerror else str(err)).strip()
        if isinstance(err, OSError) and err.filename:
            text = f"{err.filename}: {text}"
        return text.splitlines()[0] if text else type(err).__name__
    if otherwise:
        return otherwise
    kind = type(err)
    return f"an entry does not read ({kind.__module__.replace('builtins', 'python')}.{kind.__qualname__})"
