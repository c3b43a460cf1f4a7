"""The schema vocabulary: a setting is declared once, as a dataclass field carrying its metadata.

`setting(key, kind, example, ...)` is a `dataclasses.field` whose metadata holds a `Setting`:
the stack-file key, its kind (how a raw value is read), the rule and default as the docs state
them, an example of a good value, and whether it is a secret. The parse engine (`parse.py`), the
docs table (`docs.py`) and the Automation API shape (`shapes.py`, generated) are all derived
from these declarations, so adding a setting is one `setting(...)` line plus its tests.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kuscia_components.config.read import Reader


@dataclass
class Ctx:
    """What a rule may look at: the settings parsed so far, here and at the top level."""

    top: dict[str, Any]  # top-level values parsed so far, by field name
    here: dict[str, Any]  # this object's values parsed so far (the top level: same as top)
    raw: Mapping[Any, object]  # this object's raw values, by key
    shared: dict[str, Any] = dataclasses.field(default_factory=dict)  # state across list items
    setting: Setting | None = None  # the setting being read


ReadFn = Callable[["Reader", str, object, "Setting", Ctx], Any]
CheckFn = Callable[["Reader", str, Any, Ctx], Any]
DefaultFn = Callable[["Reader", str, Ctx], Any]
FinishFn = Callable[["Reader", str, Ctx], "dict[str, Any] | None"]


@dataclass(frozen=True)
class Kind:
    """How a raw value is read. `read` returns the value or None after recording a problem."""

    doc: str  # the docs' type column
    py: str  # the stack-file type in Python (the Automation API's TypedDicts)
    read: ReadFn | None = None
    section: type | None = None  # an object whose keys are the settings of this dataclass
    item: Kind | None = None  # a list of this kind
    item_example: str = ""
    keys: tuple[str, ...] = ()  # the fixed keys of a map
    parse_missing: bool = False  # a missing object is read as {} (its defaults need context)


@dataclass(frozen=True)
class Setting:
    """One `kuscia:` setting (or a key of an object setting)."""

    key: str  # stack-file key, camelCase
    kind: Kind
    example: str  # a good value, shown with every problem
    rule: str = ""  # the docs' rule column; empty: no row of its own
    default_doc: str = "—"  # the docs' default column
    secret: bool = False
    required: str | None = None  # the rule when it is missing (None: optional)
    default_from: DefaultFn | None = None  # the default, when it depends on other settings
    check: CheckFn | None = None  # a rule beyond the kind's; returns the value or None
    applies: tuple[str, str] | None = None  # (sibling field, value): only valid with it
    manual: bool = False  # read by its object's `FINISH` rule instead
    spec: bool = True  # part of the Automation API's shape
    type_doc: str = ""  # overrides kind.doc in the docs
    doc_example: str = ""  # overrides the example in the docs
    group: str = ""  # the docs section of a top-level setting
    name: str = ""  # the Python field name (filled in by `settings_of`)

    @property
    def type_text(self) -> str:
        return self.type_doc or self.kind.doc


def setting(key: str, kind: Kind, example: str, *, default: Any = dataclasses.MISSING, **meta: Any) -> Any:
    """A dataclass field declared as a setting (see `Setting` for the metadata)."""
    factory = meta.pop("default_factory", dataclasses.MISSING)
    repr_ = not meta.get("secret", False)
    info = Setting(key, kind, example, **meta)
    if factory is not dataclasses.MISSING:
        return dataclasses.field(default_factory=factory, repr=repr_, metadata={"setting": info})
    return dataclasses.field(default=default, repr=repr_, metadata={"setting": info})


def snake(key: str) -> str:
    """domainKeyData -> domain_key_data."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", key).lower()


@functools.cache
def settings_of(cls: type) -> tuple[Setting, ...]:
    """The settings of a config dataclass: its `setting()` fields, then its input-only `INPUTS`."""
    found = [
        dataclasses.replace(f.metadata["setting"], name=f.name)
        for f in dataclasses.fields(cls)
        if "setting" in f.metadata
    ]
    found += [dataclasses.replace(s, name=snake(s.key)) for s in getattr(cls, "INPUTS", ())]
    return tuple(found)


@functools.cache
def defaults_of(cls: type) -> Mapping[str, Any]:
    """Field name -> default value (a fresh call of the factory, fine for frozen values)."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.default is not dataclasses.MISSING:
            out[f.name] = f.default
        elif f.default_factory is not dataclasses.MISSING:
            out[f.name] = f.default_factory()
    return out


def walk(cls: type, where: str = "") -> list[tuple[str, Setting]]:
    """Every setting under `cls` with its dotted path, depth first (`peers[].stack`, ...)."""
    out: list[tuple[str, Setting]] = []
    for s in settings_of(cls):
        path = f"{where}.{s.key}" if where else s.key
        out.append((path, s))
        kind = s.kind.item or s.kind
        if kind.section is not None:
            out += walk(kind.section, path + ("[]" if s.kind.item else ""))
    return out


def nested_keys(cls: type) -> dict[str, tuple[str, ...]]:
    """Object path -> its known keys, e.g. {"capacity": ("cpu", ...), "peers[]": (...)}."""
    out: dict[str, tuple[str, ...]] = {}
    for path, s in walk(cls):
        kind = s.kind.item or s.kind
        where = path + ("[]" if s.kind.item else "")
        if kind.section is not None:
            out[where] = tuple(x.key for x in settings_of(kind.section))
        elif kind.keys:
            out[where] = kind.keys
    return out


# -- the kinds --------------------------------------------------------------------------------

TEXT = Kind("string", "str", lambda r, k, v, s, c: r.text(k, v, s.example, secret=s.secret))
BOOLEAN = Kind("boolean", "bool", lambda r, k, v, s, c: r.boolean(k, v, s.example))


def integer(low: int, high: int) -> Kind:
    return Kind("whole number", "int", lambda r, k, v, s, c: r.integer(k, v, s.example, low, high))


def choice(*options: str) -> Kind:
    """One of `options` in any case, returned in the canonical spelling."""
    return Kind(
        "string",
        "Literal[" + ", ".join(f'"{o}"' for o in options) + "]",
        lambda r, k, v, s, c: r.choice(k, v, options, s.example),
    )


def quantity(*, zero_ok: bool = False) -> Kind:
    def read(r: Reader, key: str, value: object, s: Setting, ctx: Ctx) -> str | None:
        parsed = r.quantity(key, value, s.example, zero_ok=zero_ok)
        return None if parsed is None else parsed[0]

    return Kind("quantity", "str", read)


def custom(read: ReadFn, doc: str = "string", py: str = "str", *, keys: tuple[str, ...] = ()) -> Kind:
    """A kind whose reading is a rule of its own (`rules.py`)."""
    return Kind(doc, py, read, keys=keys)


def obj(section: type, *, parse_missing: bool = False) -> Kind:
    """An object whose keys are the settings of the dataclass `section`."""
    spec = getattr(section, "SPEC", f"{section.__name__}Spec")
    return Kind("object", spec, section=section, parse_missing=parse_missing)


def list_of(item: Kind, item_example: str) -> Kind:
    return Kind("list", f"list[{item.py}]", item=item, item_example=item_example)


def spec_field(key: str, *, secret: bool = False) -> Any:
    """A field of the Automation API's generated `PartySettings` (shapes.py): unset by default."""
    return dataclasses.field(default=None, repr=not secret, metadata={"key": key, "secret": secret})
