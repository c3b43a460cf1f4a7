"""GeneratedPassword: a random password made once and kept in state as a secret.

A small dynamic provider instead of the pulumi-random plugin: one less plugin to install on
every deploying machine, and the alphabet is ours (letters and digits: safe in a DSN, YAML,
SQL text and shells alike). The provider object holds nothing: the password exists only in the
resource's state, marked secret, and is made again only when `length` or `keepers` change.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import pulumi
from pulumi.dynamic import (
    CheckFailure,
    CheckResult,
    CreateResult,
    DiffResult,
    ReadResult,
    Resource,
    ResourceProvider,
)
from pulumi.runtime.rpc import UNKNOWN

from kuscia_components.core.preview import unknowns_as_sentinel

DEFAULT_LENGTH = 32
DEFAULT_PURPOSE = "db"
REPLACE_ON = ("length", "keepers")


@dataclass(frozen=True)
class PasswordProps:
    """GeneratedPassword's inputs, as the engine's dict normalises them: state comes back with
    numbers as floats and empty maps as None, which are the same inputs."""

    purpose: str = DEFAULT_PURPOSE  # a label: changing it keeps the password
    length: int = DEFAULT_LENGTH
    keepers: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_props(cls, props: Mapping[str, Any]) -> PasswordProps:
        length = props.get("length")
        if isinstance(length, float) and length.is_integer():
            length = int(length)
        keepers = props.get("keepers")
        return cls(
            purpose=str(props.get("purpose") or DEFAULT_PURPOSE),
            length=length if isinstance(length, int) and not isinstance(length, bool) else DEFAULT_LENGTH,
            keepers=dict(keepers) if isinstance(keepers, Mapping) else {},
        )

    def to_props(self) -> dict[str, Any]:
        return {"purpose": self.purpose, "length": self.length, "keepers": dict(self.keepers)}


class GeneratedPasswordProvider(ResourceProvider):
    offline_safe: ClassVar[bool] = True  # pure local computation: runs in `render` too

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        """An unsafe length fails at preview, with the rule; inputs pass through as given."""
        from kuscia_components.core.dsn import DsnError, generate_password

        failures = []
        seen = unknowns_as_sentinel(news)  # what is checked; the inputs pass through as given
        length = seen.get("length")
        if length not in (None, UNKNOWN):
            whole = int(length) if isinstance(length, float) and length.is_integer() else length
            try:
                generate_password(whole)
            except DsnError as err:
                failures.append(CheckFailure("length", str(err)))
        keepers = seen.get("keepers")
        if keepers not in (None, UNKNOWN) and not isinstance(keepers, Mapping):
            failures.append(
                CheckFailure("keepers", "keepers must be a map of strings, e.g. {'rotation': '1'}")
            )
        return CheckResult(news, failures)

    def create(self, props: dict[str, Any]) -> CreateResult:
        from kuscia_components.core.dsn import generate_password

        inputs = PasswordProps.from_props(props)
        outs = {**inputs.to_props(), "result": generate_password(inputs.length)}
        return CreateResult(id_=f"password-{inputs.purpose}", outs=outs)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        """A new password only for a new length or new keepers (or keepers not known yet)."""
        olds, news = unknowns_as_sentinel(olds), unknowns_as_sentinel(news)
        old, new = PasswordProps.from_props(olds), PasswordProps.from_props(news)
        replaces = [k for k in REPLACE_ON if getattr(old, k) != getattr(new, k) or news.get(k) == UNKNOWN]
        return DiffResult(changes=bool(replaces), replaces=replaces, delete_before_replace=False)

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        return ReadResult(id_=id_, outs=props)


class GeneratedPassword(Resource, module="kuscia", name="GeneratedPassword"):
    """`result` is the password (secret). Replaced only when `length` or `keepers` change."""

    result: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        *,
        purpose: str,
        length: int = DEFAULT_LENGTH,
        keepers: pulumi.Input[dict[str, str]] | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        from kuscia_components.core.dsn import generate_password

        generate_password(length)  # rejects an unsafe length now, in the program, with the rule
        props = {"purpose": purpose, "length": length, "keepers": keepers or {}, "result": None}
        secret_opts = pulumi.ResourceOptions(additional_secret_outputs=["result"])
        super().__init__(
            GeneratedPasswordProvider(), name, props, pulumi.ResourceOptions.merge(opts, secret_opts)
        )
