"""Deploy, peer and tear down a whole N-party network from another service (Automation API).

Peering is two-sided, so a network rollout runs in phases no user should choreograph by hand:
1. nodes: every party's stack comes up (bounded parallelism) with the partners whose public
   bundles are already known (none on a first run);
2. links: every party gets every partner's bundle (from the other stacks' outputs) as inline
   `kuscia:peers`, so both sides register each other; links wait only briefly here;
3. readiness: parties whose links are not Ready yet run again with the full deadline.
Each party's program is `program.party_program`, reading the same `kuscia:` config a stack file
holds: one source of truth. A failed party is reported, it does not hide the others. Re-running
converges; a party removed from the spec loses its links on the others, then its stack.

`StackRunner` is the seam to Pulumi: `PulumiStackRunner` drives the real CLI through
`pulumi.automation`; tests use an in-memory stand-in.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

log = logging.getLogger(__name__)

Topology = Literal["mesh"] | Sequence[tuple[str, str]]
SECRET_KEYS = frozenset({"domainKeyData", "databaseAdminPassword"})
LINK_PHASE_TIMEOUT_SECONDS = 15
PULUMI_INSTALL_HINT = (
    "The Pulumi CLI is not installed or not on PATH. Install it with `curl -fsSL https://get.pulumi.com | sh` "
    "(or see https://www.pulumi.com/docs/install/), then run this again."
)


class PulumiCliMissing(RuntimeError):
    pass


class NetworkSpecError(ValueError):
    """A network spec that cannot be rolled out; lists every problem."""


# -- specs ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PartySpec:
    """Everything a party's stack file holds, as Python. `config` uses the stack-file keys
    (camelCase, without `kuscia:`); `secrets` are set as secret config, never plain."""

    domain_id: str
    config: Mapping[str, Any] = field(default_factory=dict)
    secrets: Mapping[str, str] = field(default_factory=dict, repr=False)
    stack: str | None = None

    @property
    def stack_name(self) -> str:
        return self.stack or self.domain_id

    def stack_config(self, peers: Sequence[Mapping[str, Any]] = ()) -> tuple[dict[str, str], set[str]]:
        """(`kuscia:`-prefixed config as the CLI passes it, secret keys) for this party."""
        values = {f"kuscia:{k}": as_cli_value(v) for k, v in self.config.items() if k != "peers"}
        values["kuscia:domainId"] = self.domain_id
        if peers:
            values["kuscia:peers"] = json.dumps(list(peers))
        secret = set()
        for key, value in self.secrets.items():
            values[f"kuscia:{key}"] = value
            secret.add(f"kuscia:{key}")
        return values, secret


@dataclass(frozen=True)
class NetworkSpec:
    parties: tuple[PartySpec, ...]
    topology: Topology = "mesh"

    def partners(self, domain_id: str) -> list[str]:
        ids = [p.domain_id for p in self.parties]
        if self.topology == "mesh":
            return [other for other in ids if other != domain_id]
        found = []
        for a, b in self.topology:
            if a == domain_id:
                found.append(b)
            elif b == domain_id:
                found.append(a)
        return sorted(set(found))

    def links(self) -> list[tuple[str, str]]:
        """Directed links (source, destination): each peering is one in each direction."""
        return [(p.domain_id, other) for p in self.parties for other in self.partners(p.domain_id)]

    def validate(self) -> None:
        from .config import ConfigError, parse_party_config

        problems: list[str] = []
        ids = [p.domain_id for p in self.parties]
        if not ids:
            problems.append("parties: at least one party is required")
        for dup in sorted({i for i in ids if ids.count(i) > 1}):
            problems.append(f"parties: domainId {dup!r} is listed twice")
        stacks = [p.stack_name for p in self.parties]
        for dup in sorted({s for s in stacks if stacks.count(s) > 1}):
            problems.append(f"parties: stack {dup!r} is used by two parties")
        if self.topology != "mesh":
            for a, b in self.topology:
                for end in (a, b):
                    if end not in ids:
                        problems.append(f"topology: {a}-{b} names {end!r}, which is not a party")
                if a == b:
                    problems.append(f"topology: {a}-{b} links a party to itself")
        for party in self.parties:
            values, secret = party.stack_config()
            try:
                parse_party_config(
                    {k[len("kuscia:") :]: v for k, v in values.items()}, {k[len("kuscia:") :] for k in secret},
                    source=f"party {party.domain_id}",
                )  # fmt: skip
            except ConfigError as err:
                problems += [f"party {party.domain_id}: {p}" for p in err.problems]
        if problems:
            raise NetworkSpecError("network spec problems:\n" + "\n".join(f"  - {p}" for p in problems))


def load_network_spec(path: Path) -> tuple[NetworkSpec, dict[str, Any]]:
    """network.yaml -> (spec, settings such as backend). Raises NetworkSpecError."""
    import yaml

    try:
        document = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise NetworkSpecError(f"network spec {path} does not exist") from None
    except yaml.YAMLError as err:
        raise NetworkSpecError(f"network spec {path} is not valid YAML: {err}") from None
    if not isinstance(document, dict) or not isinstance(document.get("parties"), list):
        raise NetworkSpecError(f"{path}: expected a mapping with a 'parties:' list (see network.yaml)")
    defaults = document.get("defaults") or {}
    parties = []
    for index, raw in enumerate(document["parties"]):
        if not isinstance(raw, dict) or not isinstance(raw.get("domainId"), str):
            raise NetworkSpecError(f"{path}: parties[{index}] needs a domainId (e.g. `- domainId: alice`)")
        unknown = set(raw) - {"domainId", "stack", "config", "secrets"}
        if unknown:
            raise NetworkSpecError(
                f"{path}: parties[{index}] has unknown keys {sorted(unknown)} (domainId, stack, config, secrets)"
            )
        parties.append(
            PartySpec(
                raw["domainId"],
                {**defaults, **(raw.get("config") or {})},
                dict(raw.get("secrets") or {}),
                raw.get("stack"),
            )
        )
    topology_raw = document.get("topology", "mesh")
    if topology_raw == "mesh":
        topology: Topology = "mesh"
    elif isinstance(topology_raw, list) and all(isinstance(t, list) and len(t) == 2 for t in topology_raw):
        topology = [(str(a), str(b)) for a, b in topology_raw]
    else:
        raise NetworkSpecError(f"{path}: topology must be 'mesh' or a list of [a, b] pairs")
    spec = NetworkSpec(tuple(parties), topology)
    spec.validate()
    settings = {k: v for k, v in document.items() if k not in ("parties", "defaults", "topology")}
    return spec, settings


# -- the seam to Pulumi ------------------------------------------------------------------------------


class StackRunner(Protocol):
    def up(self, stack: str, config: Mapping[str, str], secret_keys: set[str]) -> dict[str, Any]: ...
    def outputs(self, stack: str) -> dict[str, Any] | None: ...
    def destroy(self, stack: str) -> None: ...
    def stacks(self) -> list[str]: ...


class PulumiStackRunner:
    """Stacks through `pulumi.automation` (needs the Pulumi CLI). The inline program is the
    same `party_program` that `__main__.py` runs."""

    def __init__(
        self,
        *,
        project_dir: Path | None = None,
        backend_url: str | None = None,
        passphrase: str | None = None,
        secrets_provider: str | None = None,
        on_output: Callable[[str], None] | None = None,
    ) -> None:
        if shutil.which("pulumi") is None:
            raise PulumiCliMissing(PULUMI_INSTALL_HINT)
        self.project_dir = Path(project_dir or Path(__file__).resolve().parent.parent)
        self.backend_url = backend_url or f"file://{(self.project_dir / '.pulumi-state').resolve()}"
        self.passphrase = passphrase
        self.secrets_provider = secrets_provider
        self.on_output = on_output
        self._plugins_installed = False

    def _workspace_options(self) -> Any:
        import yaml
        from pulumi import automation as auto

        project = yaml.safe_load((self.project_dir / "Pulumi.yaml").read_text())
        settings = auto.ProjectSettings(
            name=project["name"], runtime="python", description=project.get("description"),
            backend=auto.ProjectBackend(url=self.backend_url),
        )  # fmt: skip
        env = {"PULUMI_CONFIG_PASSPHRASE": self.passphrase} if self.passphrase is not None else {}
        if self.backend_url.startswith("file://"):
            Path(self.backend_url[len("file://") :]).mkdir(parents=True, exist_ok=True)
        return auto.LocalWorkspaceOptions(
            work_dir=str(self.project_dir),
            project_settings=settings,
            env_vars=env,
            secrets_provider=self.secrets_provider,
        )

    def _stack(self, name: str) -> Any:
        from pulumi import automation as auto

        options = self._workspace_options()
        stack = auto.create_or_select_stack(
            stack_name=name,
            project_name=options.project_settings.name,
            program=_run_party_program,
            opts=options,
        )
        if not self._plugins_installed:
            stack.workspace.install_plugin("kubernetes", "v" + _package_version("pulumi_kubernetes"))
            stack.workspace.install_plugin("mysql", "v" + _package_version("pulumi_mysql"))
            self._plugins_installed = True
        return stack

    def up(self, stack: str, config: Mapping[str, str], secret_keys: set[str]) -> dict[str, Any]:
        from pulumi import automation as auto

        handle = self._stack(stack)
        handle.set_all_config(
            {k: auto.ConfigValue(value=v, secret=k in secret_keys) for k, v in config.items()}
        )
        result = handle.up(on_output=self.on_output)
        return {k: v.value for k, v in result.outputs.items()}

    def outputs(self, stack: str) -> dict[str, Any] | None:
        if stack not in self.stacks():
            return None
        return {k: v.value for k, v in self._stack(stack).outputs().items()}

    def destroy(self, stack: str) -> None:
        handle = self._stack(stack)
        handle.destroy(on_output=self.on_output)
        handle.workspace.remove_stack(stack)

    def stacks(self) -> list[str]:
        from pulumi import automation as auto

        workspace = auto.LocalWorkspace(**_options_kwargs(self._workspace_options()))
        return [s.name for s in workspace.list_stacks()]


def as_cli_value(value: Any) -> str:
    """How a config value reaches a program: scalars as text, objects and lists as JSON."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value)
    return str(value)


def _run_party_program() -> None:
    from .program import party_program

    party_program()


def _options_kwargs(options: Any) -> dict[str, Any]:
    return {k: getattr(options, k) for k in ("work_dir", "project_settings", "env_vars", "secrets_provider")}


def _package_version(module: str) -> str:
    from importlib.metadata import version

    return version(module.replace("_", "-"))


# -- reports ---------------------------------------------------------------------------------------


@dataclass
class PartyReport:
    domain_id: str
    stack: str
    status: Literal["ok", "failed", "removed"] = "ok"
    error: str = ""
    seconds: float = 0.0
    outputs: dict[str, Any] = field(default_factory=dict, repr=False)


@dataclass
class LinkReport:
    source: str
    destination: str
    status: str  # Ready | WaitingForPartner | Failed | Unknown
    reason: str = ""
    diagnosis: str = ""


@dataclass
class NetworkReport:
    parties: dict[str, PartyReport] = field(default_factory=dict)
    links: list[LinkReport] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return all(p.status != "failed" for p in self.parties.values()) and all(
            link.status == "Ready" for link in self.links
        )

    def to_dict(self) -> dict[str, Any]:
        parties = {k: {**asdict(v), "outputs": {}} for k, v in self.parties.items()}
        return {
            "ok": self.ok,
            "seconds": round(self.seconds, 2),
            "parties": parties,
            "links": [asdict(link) for link in self.links],
        }


# -- the rollout -----------------------------------------------------------------------------------


Progress = Callable[[str], None]


def deploy_party(
    party: PartySpec,
    runner: StackRunner,
    *,
    peers: Sequence[Mapping[str, Any]] = (),
    overrides: Mapping[str, Any] | None = None,
) -> PartyReport:
    """One party's stack up, with the given partner bundles as inline peers."""
    started = time.monotonic()
    spec = PartySpec(party.domain_id, {**party.config, **(overrides or {})}, party.secrets, party.stack)
    config, secret = spec.stack_config(peers)
    try:
        outputs = runner.up(party.stack_name, config, secret)
    except Exception as err:  # one party failing must not hide the others
        return PartyReport(
            party.domain_id, party.stack_name, "failed", _first_line(err), time.monotonic() - started
        )
    return PartyReport(party.domain_id, party.stack_name, "ok", "", time.monotonic() - started, dict(outputs))


def deploy_network(
    spec: NetworkSpec,
    runner: StackRunner,
    *,
    parallelism: int = 4,
    timeout_seconds: int = 300,
    progress: Progress | None = None,
) -> NetworkReport:
    """Nodes, then links on every side, then readiness. Idempotent; see the module docstring."""
    spec.validate()
    say = progress or log.info
    report = NetworkReport()
    started = time.monotonic()
    bundles = _known_bundles(spec, runner)

    def peers_of(party: PartySpec, known: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
        return [{"domainId": p, **{k: v for k, v in known[p].items() if k != "domainId"}}
                for p in spec.partners(party.domain_id) if p in known]  # fmt: skip

    # Phase 1: nodes (with the partners already known, so a re-run changes nothing).
    say(f"phase 1/3: nodes for {len(spec.parties)} parties")
    link_wait = {"peeringTimeoutSeconds": LINK_PHASE_TIMEOUT_SECONDS}
    first = _parallel(
        spec.parties,
        parallelism,
        lambda p: deploy_party(p, runner, peers=peers_of(p, bundles), overrides=link_wait),
    )
    for party_report in first:
        report.parties[party_report.domain_id] = party_report
        bundle = party_report.outputs.get("peeringBundle")
        if bundle:
            bundles[party_report.domain_id] = bundle
        say(f"  {party_report.domain_id}: {party_report.status} {party_report.error}".rstrip())
    alive = [p for p in spec.parties if report.parties[p.domain_id].status == "ok"]

    # Phase 2: every side registers every partner (short wait per link).
    say("phase 2/3: partner registrations on every side")
    second = _parallel(
        alive, parallelism, lambda p: deploy_party(p, runner, peers=peers_of(p, bundles), overrides=link_wait)
    )
    _merge(report, second)

    # Phase 3: every party again with its own deadline. Links that are Ready return at once (a
    # wait-policy change alone touches nothing); the others wait. It also leaves each stack with
    # exactly the spec's config, so a re-run changes nothing.
    ready = sum(
        _all_ready(report.parties[p.domain_id]) for p in alive if report.parties[p.domain_id].status == "ok"
    )
    say(
        f"phase 3/3: readiness (links Ready so far on {ready}/{len(alive)} parties; deadline {timeout_seconds} s)"
    )
    _merge(report, _parallel(alive, parallelism, lambda p: deploy_party(
        p, runner, peers=peers_of(p, bundles), overrides={"peeringTimeoutSeconds": p.config.get("peeringTimeoutSeconds", timeout_seconds)},
    )))  # fmt: skip

    # Parties removed from the spec: their partners already dropped the links above.
    for stack in _removed_stacks(spec, runner):
        say(f"removing stack {stack} (party no longer in the spec)")
        try:
            runner.destroy(stack)
            report.parties[stack] = PartyReport(stack, stack, "removed")
        except Exception as err:
            report.parties[stack] = PartyReport(stack, stack, "failed", f"destroy failed: {_first_line(err)}")
    report.links = _link_reports(spec, report)
    report.seconds = time.monotonic() - started
    say(f"done in {report.seconds:.1f} s: {'all links Ready' if report.ok else 'not everything is Ready'}")
    return report


def network_status(spec: NetworkSpec, runner: StackRunner) -> NetworkReport:
    report = NetworkReport()
    for party in spec.parties:
        outputs = runner.outputs(party.stack_name)
        if outputs is None:
            report.parties[party.domain_id] = PartyReport(
                party.domain_id, party.stack_name, "failed", "stack does not exist"
            )
        else:
            report.parties[party.domain_id] = PartyReport(
                party.domain_id, party.stack_name, "ok", outputs=outputs
            )
    report.links = _link_reports(spec, report)
    return report


def destroy_network(
    spec: NetworkSpec, runner: StackRunner, *, parallelism: int = 4, progress: Progress | None = None
) -> NetworkReport:
    """Tear down every party's stack (links go with them: each stack deletes its own half)."""
    say = progress or log.info
    report = NetworkReport()

    def destroy(party: PartySpec) -> PartyReport:
        try:
            runner.destroy(party.stack_name)
        except Exception as err:
            return PartyReport(party.domain_id, party.stack_name, "failed", _first_line(err))
        say(f"  {party.domain_id}: removed")
        return PartyReport(party.domain_id, party.stack_name, "removed")

    for item in _parallel(spec.parties, parallelism, destroy):
        report.parties[item.domain_id] = item
    return report


def _parallel(
    parties: Iterable[PartySpec], limit: int, work: Callable[[PartySpec], PartyReport]
) -> list[PartyReport]:
    items = list(parties)
    if not items:
        return []
    with ThreadPoolExecutor(max_workers=max(1, min(limit, len(items)))) as pool:
        return list(pool.map(work, items))


def _merge(report: NetworkReport, results: Iterable[PartyReport]) -> None:
    for item in results:
        previous = report.parties.get(item.domain_id)
        if previous is not None:
            item.seconds += previous.seconds
        report.parties[item.domain_id] = item


def _known_bundles(spec: NetworkSpec, runner: StackRunner) -> dict[str, Mapping[str, Any]]:
    known: dict[str, Mapping[str, Any]] = {}
    for party in spec.parties:
        outputs = runner.outputs(party.stack_name) or {}
        if outputs.get("peeringBundle"):
            known[party.domain_id] = outputs["peeringBundle"]
    return known


def _removed_stacks(spec: NetworkSpec, runner: StackRunner) -> list[str]:
    wanted = {p.stack_name for p in spec.parties}
    return [s for s in runner.stacks() if s not in wanted]


def _all_ready(party: PartyReport) -> bool:
    links = party.outputs.get("links") or {}
    return all((v or {}).get("status") == "Ready" for v in links.values())


def _link_reports(spec: NetworkSpec, report: NetworkReport) -> list[LinkReport]:
    links = []
    for source, destination in spec.links():
        party = report.parties.get(source)
        if party is None or party.status == "failed":
            links.append(
                LinkReport(
                    source,
                    destination,
                    "Unknown",
                    "",
                    f"party {source} failed: {party.error if party else '?'}",
                )
            )
            continue
        link = (party.outputs.get("links") or {}).get(destination) or {}
        links.append(LinkReport(source, destination, str(link.get("status") or "Unknown"), str(link.get("reason") or ""),
                                str(link.get("diagnosis") or "")))  # fmt: skip
    return links


def _first_line(err: BaseException) -> str:
    text = str(err)
    return text.splitlines()[0] if text else type(err).__name__


# -- CLI -----------------------------------------------------------------------------------------


def network_main(argv: Sequence[str]) -> int:
    import argparse
    import os
    import sys

    parser = argparse.ArgumentParser(prog="python -m kuscia_components network")
    parser.add_argument("action", choices=("up", "status", "destroy"))
    parser.add_argument("--spec", type=Path, default=Path("network.yaml"))
    parser.add_argument(
        "--backend", help="Pulumi backend URL (default: the spec's, else file://./.pulumi-state)"
    )
    parser.add_argument("--parallel", type=int, default=4)
    parser.add_argument("--timeout", type=int, default=300, help="seconds to wait for links to be Ready")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(list(argv))
    try:
        spec, settings = load_network_spec(args.spec)
    except NetworkSpecError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    try:
        runner = PulumiStackRunner(
            project_dir=Path.cwd(),
            backend_url=args.backend or settings.get("backend"),
            passphrase=os.environ.get("PULUMI_CONFIG_PASSPHRASE", settings.get("passphrase")),
            on_output=lambda line: print(line, end="", file=sys.stderr),
        )
    except PulumiCliMissing as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    progress = lambda message: print(message, file=sys.stderr)  # noqa: E731
    if args.action == "up":
        report = deploy_network(
            spec, runner, parallelism=args.parallel, timeout_seconds=args.timeout, progress=progress
        )
    elif args.action == "status":
        report = network_status(spec, runner)
    else:
        report = destroy_network(spec, runner, parallelism=args.parallel, progress=progress)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print(format_report(report))
    return (
        0
        if report.ok
        or (args.action == "destroy" and all(p.status == "removed" for p in report.parties.values()))
        else 1
    )


def format_report(report: NetworkReport) -> str:
    lines = ["PARTY        STACK        STATUS    SECONDS  ERROR"]
    for party in report.parties.values():
        lines.append(
            f"{party.domain_id:<12} {party.stack:<12} {party.status:<9} {party.seconds:7.1f}  {party.error}".rstrip()
        )
    if report.links:
        lines += ["", "LINK                 STATUS             DIAGNOSIS"]
        for link in report.links:
            lines.append(
                f"{link.source + '-' + link.destination:<20} {link.status:<18} {link.diagnosis}".rstrip()
            )
    return "\n".join(lines)
