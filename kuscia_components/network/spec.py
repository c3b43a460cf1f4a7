"""What a network is: typed party specs, a topology, and the `network.yaml` that holds them.

A `PartySpec` holds everything a party's stack file holds, as Python, and turns into the
`kuscia:` stack config (secrets marked) that `program.party_program` reads: the Automation API and
`pulumi up -s alice` run one program on one config shape. A `NetworkSpec` adds who peers with
whom. Everything here is pure (no Pulumi, no I/O except reading the spec file) and every rejected
value is reported as a `Problem` naming the setting, the rule and a good example.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from kuscia_components.config import (
    CONFIG_NAMESPACE,
    SECRET_SETTINGS,
    ConfigError,
    PartyConfig,
    Problem,
    parse_party_config,
)
from kuscia_components.config.exposure import plaintext_partner
from kuscia_components.config.shapes import (  # re-exported: the API's typed settings
    CapacitySpec,
    DatabaseSpec,
    NetworkPolicySpec,
    PartySettings,
    PeerSpec,
    ResourcesSpec,
    ServiceSpec,
)
from kuscia_components.peering.bundle import (
    PeeringBundle,  # the public half of a party (its `peeringBundle` output)
)

__all__ = [  # the shapes and PeeringBundle are re-exported for the Automation API's users
    "BUNDLE_KEYS",
    "DEFAULT_NETWORK_NAME",
    "MAX_PAIRS",
    "MAX_PARTIES",
    "NETWORK_KEY",
    "NETWORK_NAMESPACE",
    "CapacitySpec",
    "ConfigEntry",
    "DatabaseSpec",
    "NetworkPolicySpec",
    "NetworkSpec",
    "NetworkSpecError",
    "PartySpec",
    "PeerSpec",
    "PeeringBundle",
    "ResourcesSpec",
    "ServiceSpec",
    "Topology",
    "config_text",
]

NETWORK_NAMESPACE = "kuscia-network"
NETWORK_KEY = f"{NETWORK_NAMESPACE}:name"  # marks a stack as a member of one network
DEFAULT_NETWORK_NAME = "kuscia"
Topology = Literal["mesh"] | tuple[tuple[str, str], ...]

# A mesh of N parties is N(N-1) directed links: N(N-1) ClusterDomainRoutes across the nodes, and
# each party's stack carries N-1 partner bundles (~1.6 KB each with an RSA-2048 certificate) as
# inline kuscia:peers. At 256 that is 65,280 routes and ~0.4 MB of peers per stack, under the
# 1 MiB a stack file may hold (config/limits.py); 3000 parties would be 9 million links.
MAX_PARTIES = 256
MAX_PAIRS = MAX_PARTIES * (MAX_PARTIES - 1) // 2  # every pair once: a full mesh of MAX_PARTIES
_SHOWN_IDS = 8  # a message lists at most this many party IDs

_LABEL = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")
_STACK_NAME = re.compile(r"[A-Za-z0-9_.-]{1,100}")


class NetworkSpecError(ConfigError):
    """Every problem of a network spec, reported together (never a traceback)."""


# The shapes of the settings (CapacitySpec, ..., PeerSpec) and PartySettings are generated from
# the one declaration of each setting (kuscia_components/config/model.py).
BUNDLE_KEYS = tuple(PeeringBundle.__annotations__)  # domainId, cert, endpoint, protocol


@dataclass(frozen=True)
class ConfigEntry:
    """One stack config value as the Pulumi CLI stores it: text, and whether it is a secret."""

    value: str
    secret: bool = False

    def __repr__(self) -> str:
        return "ConfigEntry([secret])" if self.secret else f"ConfigEntry({self.value!r})"


@dataclass(frozen=True)
class PartySpec(PartySettings):
    """One party, as Python: the settings of its stack file (docs/configuration.md) by name.

    `None` means "not set" (the program's default applies). `peers` are partners outside the
    network only; the network's topology adds the others. `extra` carries settings newer than
    this class. Secret fields are never shown in repr and are set as secret stack config.
    """

    stack: str | None = None  # the party's stack name; default: its domain ID
    extra: Mapping[str, object] = field(default_factory=dict, repr=False)

    @property
    def stack_name(self) -> str:
        return self.stack or self.domain_id

    def settings(self) -> dict[str, object]:
        """The set settings by stack-file key (camelCase, no `kuscia:` prefix), `extra` included."""
        values: dict[str, object] = dict(self.extra)
        for f in fields(self):
            key = f.metadata.get("key")
            value = getattr(self, f.name)
            if key and value is not None:
                values[key] = list(value) if isinstance(value, tuple) else value
        return values

    def secret_keys(self) -> frozenset[str]:
        """Set settings that must be stored as secrets."""
        return frozenset(k for k in self.settings() if k in SECRET_SETTINGS)

    def secret_values(self) -> list[str]:
        """The secret strings this spec holds (to keep them out of messages)."""
        settings = self.settings()
        return [str(settings[k]) for k in self.secret_keys() if settings[k]]

    def to_config(
        self, partners: Iterable[Mapping[str, Any]] = (), *, network: str | None = None
    ) -> dict[str, ConfigEntry]:
        """The stack config (`kuscia:`-prefixed keys) with `partners`' bundles as inline peers."""
        settings = self.settings()
        peers = [dict(p) for p in settings.pop("peers", None) or ()]  # type: ignore[attr-defined]
        peers += [{k: str(bundle[k]) for k in BUNDLE_KEYS} for bundle in partners]
        if peers:
            settings["peers"] = peers
        secret = self.secret_keys()
        config = {
            f"{CONFIG_NAMESPACE}:{key}": ConfigEntry(config_text(value), key in secret)
            for key, value in sorted(settings.items())
        }
        if network is not None:
            config[NETWORK_KEY] = ConfigEntry(network)
        return config

    def parse(self, partners: Iterable[Mapping[str, Any]] = ()) -> PartyConfig:
        """The typed config the program will see; raises ConfigError naming every problem."""
        config = self.to_config(partners)
        prefix = f"{CONFIG_NAMESPACE}:"
        return parse_party_config(
            {k[len(prefix) :]: v.value for k, v in config.items()},
            {k[len(prefix) :] for k, v in config.items() if v.secret},
            source=f"party {self.domain_id}",
        )

    @classmethod
    def from_settings(cls, settings: Mapping[str, object], *, stack: str | None = None) -> PartySpec:
        """Build from stack-file keys (camelCase); JSON text is accepted for objects and lists."""
        by_key = {f.metadata["key"]: f.name for f in fields(cls) if f.metadata.get("key")}
        named: dict[str, Any] = {}
        extra: dict[str, object] = {}
        for key, value in settings.items():
            if key in by_key:
                named[by_key[key]] = _decoded(value)
            else:
                extra[key] = value
        if isinstance(named.get("peers"), list):
            named["peers"] = tuple(named["peers"])
        domain_id = named.pop("domain_id", None)
        if not isinstance(domain_id, str):
            raise NetworkSpecError(
                [Problem("domainId", "is required: the party's domain ID", "alice", _shown(domain_id))],
                "party spec",
            )
        return cls(domain_id, stack=stack, extra=extra, **named)

    @classmethod
    def from_stack_file(cls, path: Path, *, stack: str | None = None) -> PartySpec:
        """A party from its `Pulumi.<stack>.yaml`. Encrypted (`secure:`) values cannot be read
        without Pulumi: pass them as fields instead (e.g. `replace(spec, domain_key_data=...)`)."""
        from kuscia_components.offline.stackfile import load_stack_file

        stack_file = load_stack_file(Path(path))
        values = {k: v for k, v in stack_file.values.items() if k not in stack_file.encrypted_keys}
        name = stack or _stack_name(Path(path))
        return cls.from_settings(values, stack=name if name != values.get("domainId") else None)


def config_text(value: object) -> str:
    """How a value reaches the program: text as is, booleans and numbers as YAML scalars,
    objects and lists as JSON (what the Pulumi CLI hands a program for a stack-file object)."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return json.dumps(value)
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


@dataclass(frozen=True)
class NetworkSpec:
    """Parties and who peers with whom: `"mesh"` (everyone) or explicit pairs."""

    parties: tuple[PartySpec, ...]
    topology: Topology = "mesh"
    name: str = DEFAULT_NETWORK_NAME

    @cached_property
    def _partners(self) -> dict[str, tuple[str, ...]]:
        ids = [p.domain_id for p in self.parties]
        if self.topology == "mesh":
            return {me: tuple(sorted(i for i in ids if i != me)) for me in ids}
        found: dict[str, set[str]] = {me: set() for me in ids}
        for a, b in self.topology:
            found.setdefault(a, set()).add(b)
            found.setdefault(b, set()).add(a)
        return {me: tuple(sorted(found[me] - {me})) for me in ids}

    def partners(self, domain_id: str) -> tuple[str, ...]:
        return self._partners.get(domain_id, ())

    def links(self) -> list[tuple[str, str]]:
        """Directed links (source, destination): every peering is one route each way."""
        return [(p.domain_id, other) for p in self.parties for other in self.partners(p.domain_id)]

    def party(self, domain_id: str) -> PartySpec:
        return next(p for p in self.parties if p.domain_id == domain_id)

    def secret_values(self) -> list[str]:
        return [value for party in self.parties for value in party.secret_values()]

    def link_count(self) -> int:
        """len(links()), without building them."""
        return sum(len(self.partners(p.domain_id)) for p in self.parties)

    def problems(self) -> list[Problem]:
        """Every reason this network cannot be rolled out (empty when it can). A network over the
        size bounds gets only that problem: checking each of thousands of parties costs for nothing."""
        pairs = 0 if self.topology == "mesh" else len(self.topology)
        size = size_problems(len(self.parties), pairs)
        if size:
            return size
        problems: list[Problem] = []
        add = problems.append
        if not _LABEL.fullmatch(self.name):
            add(
                Problem(
                    "name",
                    "must be a DNS label ([a-z0-9-], at most 63, alphanumeric ends): it "
                    f"marks the stacks of this network in {NETWORK_KEY}",
                    "demo",
                    _shown(self.name),
                )
            )
        if not self.parties:
            add(Problem("parties", "needs at least one party", "[{domainId: alice}, {domainId: bob}]", "[]"))
        ids = [p.domain_id for p in self.parties]
        id_set = frozenset(ids)
        first_at: dict[str, int] = {}
        stacks: dict[str, int] = {}
        configs: dict[str, PartyConfig] = {}  # each party as its program will see it (first of an ID)
        for index, party in enumerate(self.parties):
            where = f"parties[{index}]"
            if party.domain_id in first_at:
                add(
                    Problem(
                        f"{where}.domainId",
                        f"is already parties[{first_at[party.domain_id]}]: each party once",
                        "carol",
                        repr(party.domain_id),
                    )
                )
            first_at.setdefault(party.domain_id, index)
            if not _STACK_NAME.fullmatch(party.stack_name):
                add(
                    Problem(
                        f"{where}.stack",
                        "must be a Pulumi stack name ([A-Za-z0-9_.-], at most 100)",
                        party.domain_id,
                        _shown(party.stack_name),
                    )
                )
            elif party.stack_name in stacks:
                add(
                    Problem(
                        f"{where}.stack",
                        f"is already the stack of parties[{stacks[party.stack_name]}]: one stack per party",
                        f"{party.domain_id}",
                        repr(party.stack_name),
                    )
                )
            stacks.setdefault(party.stack_name, index)
            party_problems, config = _party_problems(where, party, id_set)
            problems += party_problems
            if config is not None:
                configs.setdefault(party.domain_id, config)
        problems += _topology_problems(self.topology, ids)
        problems += self._plaintext_link_problems(configs)
        return problems

    def _plaintext_link_problems(self, configs: Mapping[str, PartyConfig]) -> list[Problem]:
        """A party that peers with a NOTLS party outside the cluster, without trustedNetwork.
        Network parties get their partners' bundles only at `network up`, after the partner is
        deployed, where each party's own check (config/exposure `plaintext_partner`) would refuse
        it; here the same rule refuses it from the specs, before anything is deployed."""
        plain: dict[str, str] = {}
        for party in self.parties:
            cfg = configs.get(party.domain_id)
            # A party refused itself (e.g. its own NOTLS exposure) is judged by its spec's endpoint.
            endpoint = cfg.public_endpoint if cfg is not None else party.public_endpoint
            protocol = cfg.protocol if cfg is not None else party.protocol
            if isinstance(endpoint, str) and plaintext_partner(endpoint, protocol) is not None:
                plain.setdefault(party.domain_id, endpoint)
        if not plain:
            return []
        problems = []
        for index, party in enumerate(self.parties):
            me = party.domain_id
            cfg = configs.get(me)
            if cfg is None or cfg.trusted_network:
                continue  # trusted; or refused already, its trustedNetwork unknown (its problems say why)
            partners = [other for other in self.partners(me) if other in plain]
            if not partners:
                continue
            shown = ", ".join(f"{other} at {plain[other]}" for other in partners[:_SHOWN_IDS])
            more = f" and {len(partners) - _SHOWN_IDS} more" if len(partners) > _SHOWN_IDS else ""
            problems.append(
                Problem(
                    f"parties[{index}] ({me})",
                    f"peers with {shown}{more}: NOTLS outside the cluster (not a "
                    f"<service>.<namespace>.svc name), so {me}'s gateway would send the route tokens that "
                    "authenticate every request, and the data, in plain HTTP, readable and replayable by "
                    f"anyone on the path; give {partners[0]} protocol TLS, or, only if the network between "
                    f"{me} and {partners[0]} is yours (a private link or VPN), set trustedNetwork: true on "
                    f"{me}",
                    f"{{domainId: {partners[0]}, protocol: TLS}}",
                )
            )
        return problems

    def validate(self, source: str = "network spec") -> None:
        problems = self.problems()
        if problems:
            raise NetworkSpecError(problems, source)


def size_problems(parties: int, pairs: int) -> list[Problem]:
    """The bounds on a network's size (MAX_PARTIES, MAX_PAIRS), checked before anything else."""
    problems = []
    if parties > MAX_PARTIES:
        problems.append(
            Problem(
                "parties",
                f"has {parties} parties, more than {MAX_PARTIES}: a mesh of N parties is N(N-1) links "
                "and every party's stack carries N-1 partner bundles; split it into networks of at most "
                f"{MAX_PARTIES}",
                "parties: [{domainId: alice}, {domainId: bob}]",
            )
        )
    if pairs > MAX_PAIRS:
        problems.append(
            Problem(
                "topology",
                f"has {pairs} pairs, more than {MAX_PAIRS} (a full mesh of {MAX_PARTIES} parties, "
                "each pair once)",
                "[[alice, bob], [bob, carol]] or mesh",
            )
        )
    return problems


def _party_problems(
    where: str, party: PartySpec, ids: frozenset[str]
) -> tuple[list[Problem], PartyConfig | None]:
    """The party's own problems, and its parsed config when it has none from parsing."""
    problems = []
    database = party.database or {}
    if isinstance(database, Mapping) and "adminPassword" in database:
        problems.append(
            Problem(
                f"{where}.database.adminPassword",
                "goes in databaseAdminPassword (database_admin_password), which is set as a secret",
                "databaseAdminPassword: {fromEnv: ALICE_DB_ADMIN_PASSWORD}",
            )
        )
    for index, peer in enumerate(party.peers or ()):
        peer_id = peer.get("domainId") if isinstance(peer, Mapping) else None
        if peer_id in ids:
            problems.append(
                Problem(
                    f"{where}.peers[{index}]",
                    f"names {peer_id!r}, a party of this network: "
                    "the topology links network parties; list only partners outside it",
                    "{domainId: dave, stack: acme/kuscia-p2p/dave}",
                )
            )
    try:
        config = party.parse()
    except ConfigError as err:
        problems += [
            Problem(f"{where} ({party.domain_id}) {p.setting}", p.rule, p.example, p.got)
            for p in err.problems
        ]
        return problems, None
    return problems, config


def _topology_problems(topology: Topology, ids: Sequence[str]) -> list[Problem]:
    if topology == "mesh":
        return []
    problems = []
    id_set = frozenset(ids)
    listed = ", ".join(ids[:_SHOWN_IDS]) + (f", ... ({len(ids)} in all)" if len(ids) > _SHOWN_IDS else "")
    seen: set[frozenset[str]] = set()
    for index, pair in enumerate(topology):
        where = f"topology[{index}]"
        if len(pair) != 2 or not all(isinstance(end, str) for end in pair):
            problems.append(Problem(where, "must be a pair of domain IDs", "[alice, bob]", _shown(pair)))
            continue
        a, b = pair
        for end in (a, b):
            if end not in id_set:
                problems.append(
                    Problem(
                        where,
                        f"names {_shown(end)}, which is not a party (parties: {listed})",
                        f"[{ids[0] if ids else 'alice'}, ...]",
                    )
                )
        if a == b:
            problems.append(Problem(where, "links a party to itself", "[alice, bob]", f"[{a}, {b}]"))
        elif frozenset(pair) in seen:
            problems.append(Problem(where, f"repeats the pair {a}-{b}: each pair once", "[alice, bob]"))
        seen.add(frozenset(pair))
    return problems


def _decoded(value: object) -> object:
    """JSON text for an object or list (as stack files hand it to a program) -> the value."""
    if isinstance(value, str) and value[:1] in "{[":
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _shown(value: object) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list | tuple):
        return f"a list of {len(value)}"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _stack_name(path: Path) -> str:
    name = path.name
    if name.startswith("Pulumi.") and name.endswith((".yaml", ".yml")):
        return name[len("Pulumi.") :].rsplit(".", 1)[0]
    return path.stem
