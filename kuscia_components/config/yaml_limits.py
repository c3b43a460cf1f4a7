"""Bounded YAML: a node budget while composing, and alias expansion refused the way yaml.v2 does.

PyYAML composes an alias as a second reference to the anchored node, so composing a
billion-laughs document is cheap; what explodes is every later walk over the values (JSON
encoding, merging, checking). The Pulumi CLI reads stack files with Go's yaml.v2, which counts
every decode step and fails with "document contains excessive aliasing" once more than 100 of
them came from aliases, more than 1000 were made, and the alias share exceeds
`allowedAliasRatio` (99% up to 400,000 steps, falling to 10% at 4,000,000; decode.go,
gopkg.in/yaml.v2). `check_aliasing` replays that count over the composed nodes, in yaml.v2's order
and with the types Pulumi decodes a stack file into, and stops at the same step; it walks only as
far as the budget allows, so it is bounded however large the expansion would be.

Two budgets are our own: at most MAX_NODES nodes in one document (pure-Python composing costs
~15 µs a node), and at most MAX_EXPANDED_TEXT characters of scalar text once aliases are expanded
(yaml.v2 shares one string among 2000 aliases; every copy we make of it would not be shared).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import yaml

MAX_NODES = 20_000
MAX_EXPANDED_TEXT = 4 * 1024 * 1024
_RANGE_LOW, _RANGE_HIGH = 400_000, 4_000_000
_MERGE = "tag:yaml.org,2002:merge"
_NULL = "tag:yaml.org,2002:null"

# What a node is decoded into, as far as counting goes (a Pulumi stack file's Go types).
STACK = "stack"  # workspace.ProjectStack: a struct with these fields
CONFIG = "config"  # map[string]Value
VALUE = "value"  # config.Value: tries a string first, then interface{}
STRING = "string"
ANY = "any"  # interface{}: every node below is decoded
_STACK_FIELDS = {
    "config": CONFIG,
    "environment": ANY,
    "secretsprovider": STRING,
    "encryptedkey": STRING,
    "encryptionsalt": STRING,
}


class YamlLimitError(ValueError):
    """A YAML document refused before it is expanded; the message is the rule it broke."""


class BoundedLoaderMixin:
    """Counts composed nodes (refusing beyond MAX_NODES) and remembers anchor names for messages."""

    node_count = 0
    anchor_names: dict[int, str]

    def compose_node(self, parent: Any, index: Any) -> Any:
        self.node_count += 1
        if self.node_count > MAX_NODES:
            raise YamlLimitError(
                f"has more than {MAX_NODES} YAML nodes (values, keys and list items); a config of a "
                "few hundred settings has a few thousand"
            )
        return super().compose_node(parent, index)  # type: ignore[misc]

    def compose_scalar_node(self, anchor: Any) -> Any:
        return self._named(super().compose_scalar_node(anchor), anchor)  # type: ignore[misc]

    def compose_sequence_node(self, anchor: Any) -> Any:
        return self._named(super().compose_sequence_node(anchor), anchor)  # type: ignore[misc]

    def compose_mapping_node(self, anchor: Any) -> Any:
        return self._named(super().compose_mapping_node(anchor), anchor)  # type: ignore[misc]

    def _named(self, node: Any, anchor: str | None) -> Any:
        if anchor is not None:
            self.__dict__.setdefault("anchor_names", {})[id(node)] = anchor
        return node


class BoundedSafeLoader(BoundedLoaderMixin, yaml.SafeLoader):
    """yaml.SafeLoader with the node budget."""


def compose(text: str, loader: type[yaml.SafeLoader] = BoundedSafeLoader) -> tuple[yaml.Node | None, Any]:
    """(the single document's root node, the loader that composed it); YAML errors propagate."""
    instance = loader(text)
    try:
        return instance.get_single_node(), instance
    finally:
        instance.dispose()


def safe_load(text: str, root: str = ANY) -> Any:
    """yaml.safe_load with the node budget and the alias rules; YamlLimitError or YAMLError."""
    node, loader = compose(text)
    if node is None:
        return None
    check_aliasing(node, root, getattr(loader, "anchor_names", {}))
    return loader.construct_document(node)


def allowed_alias_ratio(decodes: int) -> float:
    """yaml.v2 decode.go allowedAliasRatio."""
    if decodes <= _RANGE_LOW:
        return 0.99
    if decodes >= _RANGE_HIGH:
        return 0.10
    return 0.99 - 0.89 * ((decodes - _RANGE_LOW) / (_RANGE_HIGH - _RANGE_LOW))


class _Stop(Exception):
    """yaml.v2 would fail here for another reason (the caller's parser reports it)."""


def check_aliasing(root: yaml.Node, kind: str = ANY, anchor_names: dict[int, str] | None = None) -> None:
    """Raise YamlLimitError where yaml.v2, decoding `root` into `kind`, would stop; or when the
    expanded scalar text passes MAX_EXPANDED_TEXT."""
    counter = _Counter(_alias_slots(root), anchor_names or {})
    try:
        counter.step(None)  # the document node
        counter.decode(root, kind)
    except _Stop:
        return
    except RecursionError:
        raise YamlLimitError("is nested too deeply to read") from None


def _children(node: yaml.Node) -> Iterator[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            yield key
            yield value
    elif isinstance(node, yaml.SequenceNode):
        yield from node.value


def _alias_slots(root: yaml.Node) -> set[tuple[int, int]]:
    """(id(parent), child index) of every place an alias stands: PyYAML puts the anchored node
    itself there, so the second and later occurrences in document order are the aliases."""
    seen: set[int] = set()
    slots: set[tuple[int, int]] = set()
    stack: list[tuple[int, int, yaml.Node]] = [(0, 0, root)]
    while stack:  # preorder, iteratively: deep documents must not exhaust Python's stack here
        parent, index, node = stack.pop()
        if id(node) in seen:
            slots.add((parent, index))
            continue
        seen.add(id(node))
        children = list(_children(node))
        stack.extend((id(node), i, child) for i, child in reversed(list(enumerate(children))))
    return slots


class _Counter:
    """yaml.v2's decoder counts (decodeCount, aliasCount, aliasDepth), without building values."""

    def __init__(self, slots: set[tuple[int, int]], names: dict[int, str]) -> None:
        self.slots, self.names = slots, names
        self.decodes = self.aliased = self.depth = self.text = 0
        self.active: set[tuple[int, int]] = set()
        self.where = ""  # the config key being decoded, for messages

    def refuse(self, rule: str) -> YamlLimitError:
        where = f" (in {self.where[:60]})" if self.where else ""
        return YamlLimitError(f"{rule}{where}")

    def step(self, node: yaml.Node | None) -> None:
        self.decodes += 1
        if self.depth:
            self.aliased += 1
        if (
            self.aliased > 100
            and self.decodes > 1000
            and self.aliased / self.decodes > allowed_alias_ratio(self.decodes)
        ):
            raise self.refuse(
                "contains excessive aliasing (yaml.v2, which the Pulumi CLI reads it with, refuses it "
                "the same way: 'document contains excessive aliasing'); write the values out instead "
                "of repeating aliases"
            )

    def child(self, parent: yaml.Node, index: int, node: yaml.Node, kind: str) -> bool:
        """unmarshal() of one child: an alias costs a step, then its target is decoded aliased."""
        slot = (id(parent), index)
        if slot not in self.slots:
            return self.decode(node, kind)
        self.step(None)
        if slot in self.active:
            name = self.names.get(id(node), "?")
            line = node.start_mark.line + 1
            raise self.refuse(f"has an anchor whose value contains itself ('{name}', line {line})")
        self.active.add(slot)
        self.depth += 1
        try:
            return self.decode(node, kind)
        finally:
            self.depth -= 1
            self.active.discard(slot)

    def decode(self, node: yaml.Node, kind: str) -> bool:
        """unmarshal() of a node that is not an alias; True when yaml.v2 reports it good."""
        self.step(node)
        scalar = isinstance(node, yaml.ScalarNode)
        if scalar and self.depth:
            self.text += len(node.value)
            if self.text > MAX_EXPANDED_TEXT:
                raise self.refuse(
                    f"expands through aliases to more than {MAX_EXPANDED_TEXT // (1024 * 1024)} MiB of "
                    "text; write the values out instead of repeating aliases of long ones"
                )
        if kind == VALUE and not (scalar and node.tag == _NULL and node.value in ("", "~", "null")):
            self.step(node)  # callUnmarshaler: first into a string, which a scalar satisfies
            if scalar:
                return True
            self.step(node)  # then into interface{}
            return self.decode_body(node, ANY)
        if scalar:
            return True  # every scalar decodes into a string or interface{}; null too
        return self.decode_body(node, kind)

    def decode_body(self, node: yaml.Node, kind: str) -> bool:
        if kind == STRING:
            return False  # a mapping or sequence into a string: a type error, children untouched
        if isinstance(node, yaml.SequenceNode):
            if kind != ANY:
                return False
            for index, item in enumerate(node.value):
                self.child(node, index, item, ANY)
            return True
        for index, (key, value) in enumerate(node.value):
            if key.tag == _MERGE and isinstance(key, yaml.ScalarNode):
                self.merge(node, 2 * index + 1, value, kind)
                continue
            key_kind = ANY if kind == ANY else STRING
            good = self.child(node, 2 * index, key, key_kind)
            if kind == ANY and not isinstance(key, yaml.ScalarNode):
                raise _Stop  # yaml.v2: "invalid map key"
            if not good:
                continue
            if kind == CONFIG and isinstance(key, yaml.ScalarNode):
                self.where = key.value
            if kind == STACK:
                field = _STACK_FIELDS.get(key.value) if isinstance(key, yaml.ScalarNode) else None
                if field is not None:
                    self.child(node, 2 * index + 1, value, field)
            else:
                self.child(node, 2 * index + 1, value, VALUE if kind == CONFIG else ANY)
        return True

    def merge(self, parent: yaml.Node, index: int, value: yaml.Node, kind: str) -> None:
        """decoder.merge: a mapping (or alias of one), or a list of them, decoded into the same map."""
        if isinstance(value, yaml.SequenceNode) and (id(parent), index) not in self.slots:
            for position in range(len(value.value) - 1, -1, -1):
                item = value.value[position]
                if not isinstance(item, yaml.MappingNode):
                    raise _Stop
                self.child(value, position, item, kind)
            return
        if not isinstance(value, yaml.MappingNode):
            raise _Stop  # "map merge requires map or sequence of maps as the value"
        self.child(parent, index, value, kind)
