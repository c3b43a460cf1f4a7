"""The parse engine: one generic walk over the declared settings (`model.py`).

Config is parsed once, before any resource exists. For each setting of an object, in declaration
order: a setting of the other mode is refused, a missing one gets its default (or a problem if it
is required), a present one is read by its kind and then checked by its rule. Then the object's
`FINISH` rule looks across its keys. Every problem is collected and reported together
(`ConfigError`), so a bad stack fails at preview and never with a traceback.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import fields
from typing import Any

from kuscia_components.config.constants import CONFIG_NAMESPACE
from kuscia_components.config.errors import ConfigError
from kuscia_components.config.model import NESTED, SECRET_SETTINGS, SETTINGS, PartyConfig
from kuscia_components.config.read import Reader
from kuscia_components.config.schema import Ctx, Setting, defaults_of, settings_of


def parse_party_config(
    values: Mapping[str, object],
    secret_keys: Collection[str] = frozenset(),
    *,
    source: str = "stack config",
    encrypted_keys: Collection[str] = frozenset(),
) -> PartyConfig:
    """Parse `kuscia:` settings (keys without the namespace prefix) into a PartyConfig.

    `secret_keys` names the keys set as secrets (with or without the `kuscia:` prefix; dotted
    paths such as "database.adminPassword" make the check of nested secrets exact);
    `encrypted_keys` the ones present but unreadable here (offline). Raises ConfigError listing
    every problem; never raises anything else for any input.
    """
    r = Reader(
        values,
        secret_keys,
        encrypted_keys,
        settings=SETTINGS,
        nested=NESTED,
        secret_settings=SECRET_SETTINGS,
    )
    r.unknown_keys("", r.raw, SETTINGS)
    top: dict[str, Any] = {}
    _read_settings(r, PartyConfig, "", Ctx(top=top, here=top, raw=r.raw))
    if r.problems:
        raise ConfigError(r.problems, source)
    return PartyConfig(**_init_args(PartyConfig, top), encrypted_settings=frozenset(r.unknown_offline))


def read_pulumi_config() -> PartyConfig:
    """The running stack's `kuscia:` config, parsed (raises ConfigError at preview)."""
    import pulumi
    from pulumi.runtime import config as runtime_config

    prefix = f"{CONFIG_NAMESPACE}:"
    merged: dict[str, object] = {}
    merged.update(runtime_config.get_config_env())
    merged.update(runtime_config.CONFIG.get())
    values = {k[len(prefix) :]: v for k, v in merged.items() if k.startswith(prefix)}
    secrets = {k for k in values if runtime_config.is_config_secret(prefix + k)}
    secrets |= {k[len(prefix) :] for k in runtime_config.get_config_secret_keys_env() if k.startswith(prefix)}
    return parse_party_config(values, secrets, source=f"stack {pulumi.get_stack()}")


def _read_settings(r: Reader, cls: type, where: str, ctx: Ctx) -> dict[str, Any] | None:
    """Fill ctx.here with the settings of `cls` read from ctx.raw; then its FINISH rule."""
    defaults = defaults_of(cls)
    for s in settings_of(cls):
        key = f"{where}.{s.key}" if where else s.key
        ctx.setting = s
        present = s.key in ctx.raw
        if s.applies is not None and ctx.here.get(s.applies[0]) != s.applies[1]:
            sibling, wanted = s.applies
            if present and ctx.here.get(sibling) is not None:
                r.problem(
                    key,
                    f"only applies to {where}.{sibling} {wanted}; set {sibling}: {wanted} or remove it",
                    f'{{"{sibling}": "{wanted}", "{s.key}": ...}}',
                )
            ctx.here[s.name] = defaults.get(s.name)
        elif s.manual:
            ctx.here[s.name] = defaults.get(s.name)
        elif present:
            ctx.here[s.name] = _read_value(r, key, ctx.raw[s.key], s, ctx)
        elif s.required is not None:
            r.problem(key, s.required, s.example)
            ctx.here[s.name] = None
        elif s.kind.parse_missing and s.kind.section is not None:
            ctx.here[s.name] = _read_object(r, s.kind.section, key, {}, ctx)
        elif s.default_from is not None:
            ctx.here[s.name] = s.default_from(r, key, ctx)
        else:
            ctx.here[s.name] = defaults.get(s.name)
    ctx.setting = None
    finish = getattr(cls, "FINISH", None)
    found = finish(r, where, ctx) if finish is not None else {}
    if found is None:
        return None
    ctx.here.update(found)
    return ctx.here


def _read_value(r: Reader, key: str, value: object, s: Setting, ctx: Ctx) -> Any:
    kind = s.kind
    if kind.item is not None and kind.item.section is not None:
        items = r.array(key, value, s.example)
        if items is None:
            return None
        shared: dict[str, Any] = {}
        found = []
        for index, item in enumerate(items):
            where = f"{key}[{index}]"
            raw = r.obj(where, item, kind.item_example)
            parsed = None if raw is None else _read_object(r, kind.item.section, where, raw, ctx, shared)
            if parsed is not None:
                found.append(parsed)
        if s.check is not None:
            s.check(r, key, found, Ctx(ctx.top, ctx.here, ctx.raw, shared, s))
        return None if r.problems_about(key) else tuple(found)
    if kind.section is not None:
        raw = r.obj(key, value, s.example)
        return None if raw is None else _read_object(r, kind.section, key, raw, ctx)
    assert kind.read is not None, f"the kind of {key} reads nothing"
    read = kind.read(r, key, value, s, ctx)
    if read is None or s.check is None:
        return read
    return s.check(r, key, read, ctx)


def _read_object(
    r: Reader,
    cls: type,
    where: str,
    raw: Mapping[Any, object],
    parent: Ctx,
    shared: dict[str, Any] | None = None,
) -> Any:
    """An object setting: unknown keys refused, its settings read; None if any is refused."""
    r.unknown_keys(where, raw, tuple(s.key for s in settings_of(cls)))
    ctx = Ctx(top=parent.top, here={}, raw=raw, shared={} if shared is None else shared)
    found = _read_settings(r, cls, where, ctx)
    if found is None or r.problems_about(where):
        return None
    return cls(**_init_args(cls, found))


def _init_args(cls: type, values: Mapping[str, Any]) -> dict[str, Any]:
    return {f.name: values[f.name] for f in fields(cls) if f.init and f.name in values}
