"""Bounded YAML: a node budget while composing, and alias expansion refused the way yaml.v3 does.

PyYAML composes an alias as a second reference to the anchored node, so composing a
billion-laughs document is cheap; what explodes is every later walk over the values (JSON
encoding, merging, checking). The Pulumi CLI reads stack files with Go's yaml.v3, decoding the
whole file into `any` first (workspace.LoadProjectStackBytes); yaml.v3 counts every decode step
and fails with "document contains excessive aliasing" once more than 100 of them came from
aliases, more than 1000 were made, and the alias share exceeds `allowedAliasRatio` (99% up to
400,000 steps, falling to 10% at 4,000,000; decode.go, gopkg.in/yaml.v3, the same rule as
yaml.v2's). `check_aliasing` replays that count over the composed nodes, in yaml.v3's order
(merge keys included: the mapping's own keys are decoded a second time before the merged ones),
and stops at the same step; it walks only as far as the budget allows, so it is bounded however
large the expansion would be. The second decode of a stack file has no aliases left.

Two budgets are our own: at most MAX_NODES nodes in one document (pure-Python composing costs
~15 µs a node), and at most MAX_EXPANDED_TEXT characters of scalar text once aliases are expanded
(yaml.v3 shares one string among 2000 aliases; every copy we make of it would not be shared).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Iterator
from typing import Any

import yaml

MAX_NODES = 20_000
MAX_EXPANDED_TEXT = 4 * 1024 * 1024
_RANGE_LOW, _RANGE_HIGH = 400_000, 4_000_000
_MERGE = "tag:yaml.org,2002:merge"


class YamlLimitError(ValueError):
    """A YAML document refused before it is expanded; the message is the rule it broke."""


class BoundedLoaderMixin:
    """Counts composed nodes (refusing beyond MAX_NODES) and remembers anchor names for messages."""

    node_count = 0
    anchor_names: dict[int, str]

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.peek_event()  # type: ignore[attr-defined]
        if not isinstance(event, yaml.AliasEvent) and event.anchor is not None:
            self.anchors.pop(event.anchor, None)  # type: ignore[attr-defined]  # yaml.v3 lets a later anchor win
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


def safe_load(text: str) -> Any:
    """yaml.safe_load with the node budget and the alias rules; YamlLimitError or YAMLError."""
    node, loader = compose(text)
    if node is None:
        return None
    check_aliasing(node, getattr(loader, "anchor_names", {}))
    return loader.construct_document(node)


class PlainSafeLoader(BoundedSafeLoader):
    """BoundedSafeLoader that builds JSON values only: strings, numbers, booleans, null, lists and
    string-keyed mappings. Our own YAML files (network.yaml) become stack config written as JSON,
    where PyYAML's sets, bytes, dates and ordered pairs have no form; each is refused at its line."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        mapping: dict[Any, Any] = super().construct_mapping(node, deep=deep)
        for key_node, _ in node.value:
            if key_node.tag != _MERGE and not isinstance(self.construct_object(key_node), str):
                raise _not_json(key_node, f"the key {key_node.value[:60]!r} is not a string; quote it")
        return mapping

    def construct_yaml_float(self, node: yaml.ScalarNode) -> float:
        number: float = super().construct_yaml_float(node)
        if math.isfinite(number):
            return number
        raise _not_json(node, f"{node.value[:60]!r} is not a finite number (JSON has no NaN or infinity)")


def _refuse(what: str) -> Callable[[Any, yaml.Node], Any]:
    def construct(loader: Any, node: yaml.Node) -> Any:
        raise _not_json(node, f"{short(node.tag)} {what}")

    return construct


def short(tag: str) -> str:
    return "!!" + tag.removeprefix("tag:yaml.org,2002:") if tag.startswith("tag:yaml.org,2002:") else tag


for _tag, _what in (
    ("set", "makes a set; write a list: [a, b]"),
    ("binary", "makes bytes; write the text"),
    ("omap", "makes ordered pairs; write a mapping: {a: 1, b: 2}"),
    ("pairs", "makes pairs; write a mapping: {a: 1, b: 2}"),
    ("timestamp", "reads as a date or time; quote it: '2001-12-14'"),
):
    PlainSafeLoader.add_constructor(f"tag:yaml.org,2002:{_tag}", _refuse(_what))
PlainSafeLoader.add_constructor("tag:yaml.org,2002:float", PlainSafeLoader.construct_yaml_float)


def _not_json(node: yaml.Node, why: str) -> YamlLimitError:
    return YamlLimitError(
        f"line {node.start_mark.line + 1}: {why} (values here are strings, numbers, booleans, lists and mappings)"
    )


def safe_load_plain(text: str) -> Any:
    """safe_load that builds JSON values only (PlainSafeLoader); YamlLimitError or YAMLError."""
    node, loader = compose(text, PlainSafeLoader)
    if node is None:
        return None
    check_aliasing(node, getattr(loader, "anchor_names", {}))
    return loader.construct_document(node)


def allowed_alias_ratio(decodes: int) -> float:
    """yaml.v3 decode.go allowedAliasRatio (unchanged from yaml.v2)."""
    if decodes <= _RANGE_LOW:
        return 0.99
    if decodes >= _RANGE_HIGH:
        return 0.10
    return 0.99 - 0.89 * ((decodes - _RANGE_LOW) / (_RANGE_HIGH - _RANGE_LOW))


class _Stop(Exception):
    """yaml.v3 would fail here for another reason (the caller's decoder reports it)."""


def _plain_identity(node: yaml.ScalarNode) -> Hashable:
    return (node.tag, node.value)


def check_aliasing(
    root: yaml.Node,
    anchor_names: dict[int, str] | None = None,
    key_identity: Callable[[yaml.ScalarNode], Hashable] = _plain_identity,
) -> None:
    """Raise YamlLimitError where yaml.v3, decoding `root` into `any`, would stop; or when the
    expanded scalar text passes MAX_EXPANDED_TEXT. `key_identity` gives the Go value a scalar
    key decodes to (merge keys skip the keys a mapping already has)."""
    counter = _Counter(alias_slots(root), anchor_names or {}, key_identity)
    try:
        counter.step()  # the document node
        counter.decode(root)
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


def alias_slots(root: yaml.Node) -> set[tuple[int, int]]:
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
    """yaml.v3's decoder counts (decodeCount, aliasCount, aliasDepth), without building values."""

    def __init__(
        self,
        slots: set[tuple[int, int]],
        names: dict[int, str],
        key_identity: Callable[[yaml.ScalarNode], Hashable],
    ) -> None:
        self.slots, self.names, self.key_identity = slots, names, key_identity
        self.decodes = self.aliased = self.depth = self.text = self.level = 0
        self.active: set[tuple[int, int]] = set()
        self.merged: set[Hashable] | None = None  # decoder.mergedFields
        self.where = ""  # the config key being decoded, for messages

    def refuse(self, rule: str) -> YamlLimitError:
        where = f" (in {self.where[:60]})" if self.where else ""
        return YamlLimitError(f"{rule}{where}")

    def step(self) -> None:
        self.decodes += 1
        if self.depth:
            self.aliased += 1
        if (
            self.aliased > 100
            and self.decodes > 1000
            and self.aliased / self.decodes > allowed_alias_ratio(self.decodes)
        ):
            raise self.refuse(
                "contains excessive aliasing (yaml.v3, which the Pulumi CLI reads it with, refuses it "
                "the same way: 'document contains excessive aliasing'); write the values out instead "
                "of repeating aliases"
            )

    def child(self, parent: yaml.Node, index: int, node: yaml.Node) -> None:
        """unmarshal() of one child: an alias costs a step, then its target is decoded aliased."""
        slot = (id(parent), index)
        if slot not in self.slots:
            self.decode(node)
            return
        self.step()
        if slot in self.active:
            name = self.names.get(id(node), "?")
            line = node.start_mark.line + 1
            raise self.refuse(f"has an anchor whose value contains itself ('{name}', line {line})")
        self.active.add(slot)
        self.depth += 1
        try:
            self.decode(node)
        finally:
            self.depth -= 1
            self.active.discard(slot)

    def decode(self, node: yaml.Node) -> None:
        """unmarshal() into `any` of a node that is not an alias."""
        self.step()
        if isinstance(node, yaml.ScalarNode):
            if self.depth:
                self.text += len(node.value)
                if self.text > MAX_EXPANDED_TEXT:
                    raise self.refuse(
                        f"expands through aliases to more than {MAX_EXPANDED_TEXT // (1024 * 1024)} MiB "
                        "of text; write the values out instead of repeating aliases of long ones"
                    )
            return
        if isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                self.child(node, index, item)
            return
        self.mapping(node)  # type: ignore[arg-type]  # the only other node kind

    def signature(self, parent: yaml.Node, index: int, key: yaml.Node) -> tuple[str, str]:
        """What yaml.v3's duplicate-key check compares: the node kind and its text."""
        if (id(parent), index) in self.slots:
            return ("alias", self.names.get(id(key), ""))
        return (type(key).__name__, key.value if isinstance(key, yaml.ScalarNode) else "")

    def mapping(self, node: yaml.MappingNode) -> None:
        seen: set[tuple[str, str]] = set()
        for index, (key, _) in enumerate(node.value):
            signature = self.signature(node, 2 * index, key)
            if signature in seen:
                return  # "mapping key already defined": the children are not decoded
            seen.add(signature)
        merged, self.merged = self.merged, None
        merge_value: tuple[int, yaml.Node] | None = None
        for index, (key, value) in enumerate(node.value):
            if isinstance(key, yaml.ScalarNode) and key.tag == _MERGE:
                merge_value = (2 * index + 1, value)
                continue
            self.child(node, 2 * index, key)
            if not isinstance(key, yaml.ScalarNode):
                raise _Stop  # "invalid map key"
            if merged is not None:
                identity = self.key_identity(key)
                if identity in merged:
                    continue
                merged.add(identity)
            if self.level == 1:
                self.where = key.value  # a config key, for messages
            self.level += 1
            self.child(node, 2 * index + 1, value)
            self.level -= 1
        self.merged = merged
        if merge_value is not None:
            self.merge(node, *merge_value)

    def merge(self, parent: yaml.MappingNode, index: int, value: yaml.Node) -> None:
        """decoder.merge: the mapping's own keys decoded again (once per merge chain), then a
        mapping (or alias of one), or each of a list of them, decoded into the same map."""
        outer = self.merged
        if outer is None:
            self.merged = set()
            for position, (key, _) in enumerate(parent.value):
                self.child(parent, 2 * position, key)
                if not isinstance(key, yaml.ScalarNode):
                    raise _Stop  # an unhashable key: the Go runtime panics
                self.merged.add(self.key_identity(key))
        if isinstance(value, yaml.SequenceNode) and (id(parent), index) not in self.slots:
            for position, item in enumerate(value.value):
                if not isinstance(item, yaml.MappingNode):
                    raise _Stop  # "map merge requires map or sequence of maps as the value"
                self.child(value, position, item)
        elif isinstance(value, yaml.MappingNode):
            self.child(parent, index, value)
        else:
            raise _Stop
        self.merged = outer
