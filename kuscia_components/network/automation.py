"""Deploy, peer, inspect and tear down a whole N-party network from another service.

    from kuscia_components.network.automation import PartySpec, WorkspaceSettings, deploy_network
    report = deploy_network([PartySpec("alice"), PartySpec("bob")], topology="mesh",
                            workspace=WorkspaceSettings(work_dir=Path("/var/lib/kuscia-network")))

The rollout itself (phases, reports) is `network.py`; the specs are `network_spec.py`. This module
is the Pulumi side: `PulumiStackRunner` drives the Pulumi CLI through `pulumi.automation` with the
inline program `inline_program()`, i.e. `program.party_program`, the function the stack-file path
runs too. It also holds the public functions; the `network` command (kuscia_components.cli.network)
only parses, calls them and prints.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kuscia_components.config import CONFIG_NAMESPACE, ConfigError, Problem, limits, yaml_limits
from kuscia_components.network.planner import (
    DEFAULT_READY_TIMEOUT_SECONDS,
    SECRET_OUTPUT,
    LinkWait,
    OutputSink,
    StackRunner,
)
from kuscia_components.network.report import LinkReport, NetworkReport, PartyReport
from kuscia_components.network.rollout import (
    ProgressEvent,
    ProgressSink,
    PulumiOutputSink,
    Rollout,
    status_report,
    teardown,
    up_party,
)
from kuscia_components.network.spec import (
    DEFAULT_NETWORK_NAME,
    NETWORK_NAMESPACE,
    ConfigEntry,
    NetworkSpec,
    NetworkSpecError,
    PartySpec,
    PeeringBundle,
    Topology,
)
from kuscia_components.network.specfile import load_network_spec

if TYPE_CHECKING:
    from pulumi.automation import LocalWorkspace, ProjectSettings, PulumiCommand

__all__ = [
    "ConfigEntry",
    "LinkReport",
    "LinkWait",
    "NetworkReport",
    "NetworkSpec",
    "NetworkSpecError",
    "PartyReport",
    "PartySpec",
    "PeeringBundle",
    "ProgressEvent",
    "PulumiCliMissing",
    "PulumiStackRunner",
    "StackOperationError",
    "StackRunner",
    "WorkspaceError",
    "WorkspaceSettings",
    "deploy_network",
    "deploy_party",
    "destroy_network",
    "inline_program",
    "load_network_spec",
    "network_status",
]

INSTALL_HINT = (
    "Install it with `curl -fsSL https://get.pulumi.com | sh` (or see https://www.pulumi.com/docs/install/), "
    "then put ~/.pulumi/bin on PATH"
)
DEFAULT_WORK_DIR = Path(".kuscia-network")
PACKAGE_ROOT = Path(__file__).resolve().parent.parent
# The project when the package is installed without the repo (kept equal to ./Pulumi.yaml by a test).
DEFAULT_PROJECT = {
    "name": "kuscia-p2p",
    "description": "Kuscia (SecretFlow) autonomy nodes on Kubernetes, peered peer-to-peer.",
}
PLUGIN_PACKAGES = ("pulumi_kubernetes", "pulumi_mysql")  # the providers the program can use
SECRETS_PROVIDER_SCHEMES = ("awskms://", "azurekeyvault://", "gcpkms://", "hashivault://")
BACKEND_SCHEMES = ("file://", "s3://", "gs://", "azblob://", "https://", "http://", "postgres://")
MAIN_PY = (
    "# Written by kuscia_components.network.automation so that `pulumi up -s <stack>` in this directory runs\n"
    "# the same program the Automation API runs inline (program.party_program).\n"
    "from kuscia_components.program import party_program\n\nparty_program()\n"
)


class PulumiCliMissing(RuntimeError):
    """The Pulumi CLI cannot be run; the message says why and how to install it."""

    def __init__(self, reason: str, underlying: BaseException | None = None) -> None:
        self.reason = reason
        self.underlying = underlying  # what running the CLI really raised
        super().__init__(f"{reason}. {INSTALL_HINT}.")


class WorkspaceError(ConfigError):
    """Workspace settings that cannot work (backend, secrets provider, passphrase)."""


class StackOperationError(RuntimeError):
    """A Pulumi command on one stack failed; the message holds Pulumi's own error lines."""


# -- workspace settings -----------------------------------------------------------------------------


@dataclass(frozen=True)
class WorkspaceSettings:
    """Where a network's Pulumi project, stack settings and state live.

    `work_dir` holds the project (Pulumi.yaml, a __main__.py running the same program) and each
    stack's Pulumi.<stack>.yaml (config, secrets encrypted); keep it as long as the stacks.
    `backend_url` defaults to the local file backend `file://<work_dir>/state`. Secrets use the
    passphrase provider (passphrase from here, $PULUMI_CONFIG_PASSPHRASE or
    $PULUMI_CONFIG_PASSPHRASE_FILE) unless `secrets_provider` names a KMS (awskms://, gcpkms://,
    azurekeyvault://, hashivault://) or the backend is Pulumi Cloud (https://).
    """

    work_dir: Path = DEFAULT_WORK_DIR
    backend_url: str | None = None
    secrets_provider: str | None = None
    passphrase: str | None = field(default=None, repr=False)
    project_dir: Path | None = None  # take project settings from this Pulumi.yaml (default: the repo's)
    pulumi_root: Path | None = None  # a Pulumi install with bin/pulumi (default: PATH, then ~/.pulumi)
    install_plugins: bool = True  # install the provider plugins pinned to the installed SDKs first
    env: Mapping[str, str] = field(default_factory=dict, repr=False)  # extra environment for Pulumi

    @property
    def backend(self) -> str:
        return self.backend_url or f"file://{Path(self.work_dir).resolve() / 'state'}"

    @property
    def cloud_backend(self) -> bool:
        return self.backend.startswith(("https://", "http://"))

    @property
    def provider(self) -> str | None:
        """The secrets provider given to new stacks (None: the backend's default)."""
        if self.secrets_provider:
            return self.secrets_provider
        return None if self.cloud_backend else "passphrase"

    def problems(self, environ: Mapping[str, str] | None = None) -> list[Problem]:
        env = os.environ if environ is None else environ
        problems = []
        if not self.backend.startswith(BACKEND_SCHEMES):
            problems.append(
                Problem(
                    "backend",
                    "must be a Pulumi backend URL (" + ", ".join(BACKEND_SCHEMES) + ")",
                    "file:///var/lib/kuscia-network/state",
                    repr(self.backend),
                )
            )
        provider = self.provider
        if provider not in (None, "passphrase", "default") and not str(provider).startswith(
            SECRETS_PROVIDER_SCHEMES
        ):
            problems.append(
                Problem(
                    "secretsProvider",
                    "must be passphrase, default (Pulumi Cloud) or a KMS URL ("
                    + ", ".join(SECRETS_PROVIDER_SCHEMES)
                    + ")",
                    "passphrase",
                    repr(provider),
                )
            )
        if provider == "default" and not self.cloud_backend:
            problems.append(
                Problem(
                    "secretsProvider",
                    "default is Pulumi Cloud's own encryption; a self-managed "
                    "backend needs passphrase or a KMS",
                    "passphrase",
                    "'default'",
                )
            )
        if provider == "passphrase" and self.passphrase is None:
            file = env.get("PULUMI_CONFIG_PASSPHRASE_FILE")
            if "PULUMI_CONFIG_PASSPHRASE" not in env and not file:
                problems.append(
                    Problem(
                        "PULUMI_CONFIG_PASSPHRASE",
                        "must be set (or PULUMI_CONFIG_PASSPHRASE_FILE): "
                        "the passphrase secrets provider encrypts this network's secrets with it, "
                        "and every later run needs the same one",
                        "export PULUMI_CONFIG_PASSPHRASE='a long random phrase from your vault'",
                    )
                )
            elif file and "PULUMI_CONFIG_PASSPHRASE" not in env and not Path(file).is_file():
                problems.append(
                    Problem(
                        "PULUMI_CONFIG_PASSPHRASE_FILE",
                        "must name a readable file",
                        "/run/secrets/pulumi-passphrase",
                        repr(file),
                    )
                )
        if Path(self.work_dir).exists() and not Path(self.work_dir).is_dir():
            problems.append(
                Problem(
                    "workDir",
                    "must be a directory (it holds the project and stack settings)",
                    ".kuscia-network",
                    str(self.work_dir),
                )
            )
        return problems

    def cli_env(self) -> dict[str, str]:
        """Environment added for every Pulumi command (on top of the process environment)."""
        env = {
            "PULUMI_SKIP_UPDATE_CHECK": "true",
            # Dynamic providers run in a python Pulumi starts; make it this one (it has this package).
            "PULUMI_PYTHON_CMD": sys.executable,
        }
        if self.passphrase is not None:
            env["PULUMI_CONFIG_PASSPHRASE"] = self.passphrase
        env.update(self.env)
        return env


def _project_file_error(path: Path, reason: str) -> ConfigError:
    return ConfigError(
        [Problem(str(path), f"must be a Pulumi project file: it {reason}", "name: kuscia-p2p")]
    )


def project_settings(settings: WorkspaceSettings) -> ProjectSettings:
    """The repo's Pulumi.yaml project (name, description, python runtime), pointed at this
    interpreter's virtualenv (dynamic providers must import this package) and at the backend."""
    import yaml
    from pulumi import automation as auto

    source = Path(settings.project_dir) if settings.project_dir else PACKAGE_ROOT
    project: dict[str, Any] = dict(DEFAULT_PROJECT)
    path = source / "Pulumi.yaml"
    if path.is_file():
        try:
            loaded = yaml_limits.safe_load(limits.read_text(path, limits.PROJECT_FILE)) or {}
        except limits.InputLimitError as err:
            raise _project_file_error(path, err.reason) from None
        except yaml_limits.YamlLimitError as err:
            raise _project_file_error(path, str(err)) from None
        except (OSError, yaml.YAMLError, RecursionError):
            raise _project_file_error(path, "cannot be read as YAML") from None
        if not isinstance(loaded, dict):
            loaded = {}
        project.update({k: loaded[k] for k in ("name", "description") if k in loaded})
    options: dict[str, Any] = {"toolchain": "pip"}
    if sys.prefix != sys.base_prefix:  # running in a virtualenv: the providers use the same one
        options["virtualenv"] = sys.prefix
    return auto.ProjectSettings(
        name=str(project["name"]),
        runtime=auto.ProjectRuntimeInfo(name="python", options=options),
        description=project.get("description"),
        backend=auto.ProjectBackend(url=settings.backend),
    )


def plugin_pins() -> list[tuple[str, str]]:
    """(plugin, vX.Y.Z) for every provider SDK installed: the versions those SDKs were built for."""
    from importlib import metadata, resources

    pins = []
    for package in PLUGIN_PACKAGES:
        try:
            meta = json.loads((resources.files(package) / "pulumi-plugin.json").read_text(encoding="utf-8"))
            name, version = str(meta["name"]), str(meta["version"])
        except (ModuleNotFoundError, FileNotFoundError, KeyError, ValueError):
            try:
                name, version = package.removeprefix("pulumi_"), metadata.version(package.replace("_", "-"))
            except metadata.PackageNotFoundError:
                continue
        pins.append((name, version if version.startswith("v") else f"v{version}"))
    return pins


def locate_pulumi(root: Path | None = None) -> PulumiCommand:
    """The Pulumi CLI (from `root`, else PATH, else the installer's ~/.pulumi), version-checked."""
    from pulumi.automation import InvalidVersionError, PulumiCommand

    candidates: list[Path | None] = [root] if root is not None else [None]
    installer_home = Path.home() / ".pulumi"
    if root is None and (installer_home / "bin" / "pulumi").exists():
        candidates.append(installer_home)
    looked = []
    underlying: BaseException | None = None
    for candidate in candidates:
        looked.append(f"{candidate}/bin/pulumi" if candidate else "`pulumi` on PATH")
        try:
            return PulumiCommand(root=str(candidate) if candidate else None)
        except (FileNotFoundError, PermissionError, NotADirectoryError) as err:
            underlying = err
            continue
        except InvalidVersionError as err:
            raise PulumiCliMissing(f"The Pulumi CLI is too old for this SDK ({err})") from None
        except subprocess.CalledProcessError as err:
            raise PulumiCliMissing(f"`pulumi version` failed (exit {err.returncode}); reinstall it") from None
    raise PulumiCliMissing(f"The Pulumi CLI was not found (looked for {' and '.join(looked)})", underlying)


def inline_program(wait: LinkWait | None = None) -> Callable[[], None]:
    """The party program as an Automation API inline program: the stack's `kuscia:` config,
    with this run's link wait applied in-process (the stack config keeps the party's own)."""

    def program() -> None:
        from kuscia_components.config import read_pulumi_config
        from kuscia_components.program import party_program

        if wait is None:
            party_program()
        else:
            party_program(wait.apply(read_pulumi_config()))

    return program


# -- the runner -----------------------------------------------------------------------------------


class PulumiStackRunner:
    """`StackRunner` over the Pulumi CLI (`pulumi.automation.LocalWorkspace`, inline program).

    Plain config goes through `pulumi config set-all`; secrets through `pulumi config set
    --secret` on stdin, so they never appear on a command line. Outputs come back masked
    (`[secret]`) and are never decrypted for a report.
    """

    def __init__(
        self, settings: WorkspaceSettings | None = None, *, command: PulumiCommand | None = None
    ) -> None:
        self.settings = settings or WorkspaceSettings()
        problems = self.settings.problems()
        if problems:
            raise WorkspaceError(problems, "workspace settings")
        self._command = command or locate_pulumi(self.settings.pulumi_root)
        self._lock = threading.Lock()
        self._workspace: LocalWorkspace | None = None

    def __repr__(self) -> str:
        return (
            f"PulumiStackRunner(work_dir={str(self.settings.work_dir)!r}, backend={self.settings.backend!r})"
        )

    @property
    def workspace(self) -> LocalWorkspace:
        """Created once: work dir, project settings, pinned plugins (before any parallel `up`
        races to download them)."""
        with self._lock:
            if self._workspace is None:
                from pulumi import automation as auto

                work_dir = Path(self.settings.work_dir).resolve()
                work_dir.mkdir(parents=True, exist_ok=True)
                if self.settings.backend.startswith("file://"):
                    Path(self.settings.backend[len("file://") :]).expanduser().mkdir(
                        parents=True, exist_ok=True
                    )
                main = work_dir / "__main__.py"
                if not main.exists() or main.read_text(encoding="utf-8") != MAIN_PY:
                    main.write_text(MAIN_PY, encoding="utf-8")
                workspace = auto.LocalWorkspace(
                    work_dir=str(work_dir),
                    project_settings=project_settings(self.settings),
                    env_vars=self.settings.cli_env(),
                    secrets_provider=self.settings.provider,
                    pulumi_command=self._command,
                )
                if self.settings.install_plugins:
                    for name, version in plugin_pins():
                        self._guarded(
                            f"plugin install {name} {version}", workspace.install_plugin, name, version
                        )
                self._workspace = workspace
            return self._workspace

    def list_stacks(self) -> list[str]:
        return [s.name for s in self._guarded("stack ls", self.workspace.list_stacks)]

    def get_config(self, stack: str) -> dict[str, ConfigEntry] | None:
        if stack not in self.list_stacks():
            return None
        values = self._guarded(f"config of {stack}", self.workspace.get_all_config, stack)
        return {k: ConfigEntry(v.value, bool(v.secret)) for k, v in values.items() if _ours(k)}

    def set_config(self, stack: str, config: Mapping[str, ConfigEntry]) -> None:
        from pulumi import automation as auto

        workspace = self.workspace
        self._guarded(f"stack {stack}", auto.Stack.create_or_select, stack, workspace)
        values = self._guarded(f"config of {stack}", workspace.get_all_config, stack)
        current = {k: ConfigEntry(v.value, bool(v.secret)) for k, v in values.items()}
        stale = [k for k in current if _ours(k) and k not in config]
        if stale:
            self._guarded(f"config rm on {stack}", workspace.remove_all_config, stack, stale)
        changed = {k: v for k, v in config.items() if current.get(k) != v}
        plain = {k: auto.ConfigValue(v.value) for k, v in changed.items() if not v.secret}
        if plain:
            self._guarded(f"config set-all on {stack}", workspace.set_all_config, stack, plain)
        for key, entry in changed.items():
            if entry.secret:
                self._set_secret(stack, key, entry.value)

    def up(
        self, stack: str, *, wait: LinkWait | None = None, on_output: OutputSink | None = None
    ) -> dict[str, Any]:
        from pulumi import automation as auto

        handle = self._guarded(f"stack {stack}", auto.Stack.select, stack, self.workspace)
        # refresh=True: what `options: refresh: always` in Pulumi.yaml does for the stack-file path
        # (the workspace writes its own project settings), so a Ready link whose route broke is seen.
        result = self._guarded(
            f"up {stack}",
            handle.up,
            program=inline_program(wait),
            on_output=on_output,
            color="never",
            refresh=True,
        )
        return {k: SECRET_OUTPUT if v.secret else v.value for k, v in result.outputs.items()}

    def outputs(self, stack: str) -> dict[str, Any] | None:
        if stack not in self.list_stacks():
            return None
        args = ["stack", "output", "--json", "--stack", stack]  # masked: secrets stay "[secret]"
        result = self._guarded(
            f"outputs of {stack}",
            self._command.run,
            args,
            str(self.workspace.work_dir),
            self.settings.cli_env(),
        )
        outputs = json.loads(result.stdout or "{}")
        return dict(outputs) if isinstance(outputs, dict) else {}

    def destroy(self, stack: str, *, on_output: OutputSink | None = None) -> None:
        from pulumi import automation as auto

        if stack not in self.list_stacks():
            return
        handle = self._guarded(f"stack {stack}", auto.Stack.select, stack, self.workspace)
        self._guarded(f"destroy {stack}", handle.destroy, on_output=on_output, color="never")
        self._guarded(f"stack rm {stack}", self.workspace.remove_stack, stack)

    def _set_secret(self, stack: str, key: str, value: str) -> None:
        """`pulumi config set --secret` reading the value from stdin (never from argv)."""
        command = [self._command.command, "config", "set", key, "--secret", "--stack", stack]
        done = subprocess.run(
            command,
            input=value,
            text=True,
            capture_output=True,
            cwd=str(self.workspace.work_dir),
            env={**os.environ, **self.settings.cli_env()},
            check=False,
        )
        if done.returncode != 0:
            raise StackOperationError(
                f"setting secret {key} on {stack} failed: {_pulumi_errors(done.stderr, done.stdout)}"
            )

    def _guarded(self, what: str, call: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Pulumi's errors as one short StackOperationError naming what failed and Pulumi's reason."""
        from pulumi.automation import CommandError

        try:
            return call(*args, **kwargs)
        except CommandError as err:
            stdout, stderr = _streams(err)
            raise StackOperationError(f"{what}: {_pulumi_errors(stderr, stdout)}") from None


def _ours(key: str) -> bool:
    return key.startswith((f"{CONFIG_NAMESPACE}:", f"{NETWORK_NAMESPACE}:"))


def _streams(err: Exception) -> tuple[str, str]:
    text = str(err)
    stdout, _, stderr = text.partition("\n stderr: ")
    return stdout.partition("\n stdout: ")[2], stderr


def _pulumi_errors(stderr: str, stdout: str = "", limit: int = 4) -> str:
    """Pulumi's `error:` lines (diagnostics say why), else the last lines it printed."""
    lines = [line.strip() for line in (stderr + "\n" + stdout).splitlines() if line.strip()]
    errors = [line for line in lines if "error:" in line.lower()]
    picked = (errors or lines[-limit:])[:limit]
    return " | ".join(picked) or "no output"


# -- the public API ---------------------------------------------------------------------------------


def _network(parties: NetworkSpec | Sequence[PartySpec], topology: Topology, name: str) -> NetworkSpec:
    spec = parties if isinstance(parties, NetworkSpec) else NetworkSpec(tuple(parties), topology, name)
    spec.validate()
    return spec


def deploy_network(
    parties: NetworkSpec | Sequence[PartySpec],
    *,
    topology: Topology = "mesh",
    name: str = DEFAULT_NETWORK_NAME,
    runner: StackRunner | None = None,
    workspace: WorkspaceSettings | None = None,
    parallelism: int = 4,
    ready_timeout_seconds: float = DEFAULT_READY_TIMEOUT_SECONDS,
    on_progress: ProgressSink | None = None,
    on_output: PulumiOutputSink | None = None,
) -> NetworkReport:
    """Roll out (or converge) a network: nodes, links on every side, readiness, removals.

    Raises NetworkSpecError for a bad spec, WorkspaceError / PulumiCliMissing when Pulumi cannot
    run, StackOperationError when the stacks cannot even be listed or read; anything failing on
    one stack's `up` or `destroy` is in that party's report instead.
    """
    spec = _network(parties, topology, name)
    rollout = Rollout(
        spec,
        runner or PulumiStackRunner(workspace),
        parallelism=parallelism,
        on_progress=on_progress,
        on_output=on_output,
    )
    return rollout.deploy(ready_timeout_seconds=ready_timeout_seconds)


def network_status(
    parties: NetworkSpec | Sequence[PartySpec],
    *,
    topology: Topology = "mesh",
    name: str = DEFAULT_NETWORK_NAME,
    runner: StackRunner | None = None,
    workspace: WorkspaceSettings | None = None,
) -> NetworkReport:
    """Parties and links as of each stack's last `up`; changes nothing."""
    return status_report(_network(parties, topology, name), runner or PulumiStackRunner(workspace))


def destroy_network(
    parties: NetworkSpec | Sequence[PartySpec],
    *,
    topology: Topology = "mesh",
    name: str = DEFAULT_NETWORK_NAME,
    runner: StackRunner | None = None,
    workspace: WorkspaceSettings | None = None,
    parallelism: int = 4,
    on_progress: ProgressSink | None = None,
    on_output: PulumiOutputSink | None = None,
) -> NetworkReport:
    """Destroy every stack of the network (also members no longer in the spec)."""
    spec = _network(parties, topology, name)
    return teardown(
        spec,
        runner or PulumiStackRunner(workspace),
        parallelism=parallelism,
        on_progress=on_progress,
        on_output=on_output,
    )


def deploy_party(
    party: PartySpec,
    *,
    partners: Sequence[PeeringBundle | Mapping[str, Any]] = (),
    network: str | None = None,
    runner: StackRunner | None = None,
    workspace: WorkspaceSettings | None = None,
    wait: LinkWait | None = None,
    on_output: OutputSink | None = None,
) -> PartyReport:
    """One party's stack with the given partner bundles (e.g. from another organisation).
    Raises ConfigError for a bad party config; a failed `up` is in the report."""
    party.parse(partners)
    return up_party(
        party,
        runner or PulumiStackRunner(workspace),
        partners=partners,
        network=network,
        wait=wait,
        on_output=on_output,
    )
