"""GeneratedPassword: a random password made once and kept in state as a secret.

A small dynamic provider instead of the pulumi-random plugin: one less plugin to install on
every deploying machine, and the alphabet is ours (letters and digits: safe in a DSN, YAML,
SQL and shells alike).
"""

from __future__ import annotations

from typing import Any, ClassVar

import pulumi
from pulumi.dynamic import CreateResult, DiffResult, ReadResult, Resource, ResourceProvider

DEFAULT_LENGTH = 32


class GeneratedPasswordProvider(ResourceProvider):
    offline_safe: ClassVar[bool] = True  # pure local computation: runs in `render` too

    def create(self, props: dict[str, Any]) -> CreateResult:
        from .dsn import generate_password

        length = int(props.get("length") or DEFAULT_LENGTH)
        return CreateResult(
            id_=f"password-{props.get('purpose', 'db')}", outs={**props, "result": generate_password(length)}
        )

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        replaces = [k for k in ("length", "keepers") if olds.get(k) != news.get(k)]
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
        props = {"purpose": purpose, "length": length, "keepers": keepers or {}, "result": None}
        secret_opts = pulumi.ResourceOptions(additional_secret_outputs=["result"])
        super().__init__(
            GeneratedPasswordProvider(), name, props, pulumi.ResourceOptions.merge(opts, secret_opts)
        )
