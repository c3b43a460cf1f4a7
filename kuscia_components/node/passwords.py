"""GeneratedPassword: a random password made once and kept in state as a secret.

A small dynamic provider instead of the pulumi-random plugin: one less plugin to install on
every deploying machine, and the alphabet is ours (letters and digits: safe in a DSN, YAML,
SQL text and shells alike). The provider object holds nothing: the password exists only in the
resource's state, marked secret, and is made again only when `length` or `keepers` change.
"""

from __future__ import annotations

from typing import Any, ClassVar

import pulumi
from pulumi.dynamic import CreateResult, DiffResult, ReadResult, Resource, ResourceProvider

DEFAULT_LENGTH = 32
REPLACE_ON = ("length", "keepers")


class GeneratedPasswordProvider(ResourceProvider):
    offline_safe: ClassVar[bool] = True  # pure local computation: runs in `render` too

    def create(self, props: dict[str, Any]) -> CreateResult:
        from kuscia_components.core.dsn import generate_password

        length = int(props.get("length") or DEFAULT_LENGTH)
        outs = {**props, "result": generate_password(length)}
        return CreateResult(id_=f"password-{props.get('purpose', 'db')}", outs=outs)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        """A new password only for a new length or new keepers; `purpose` is a label."""
        replaces = [k for k in REPLACE_ON if _normal(olds.get(k)) != _normal(news.get(k))]
        return DiffResult(changes=bool(replaces), replaces=replaces, delete_before_replace=False)

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        return ReadResult(id_=id_, outs=props)


def _normal(value: Any) -> Any:
    """State comes back from the engine with numbers as floats and empty maps as None."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value or None


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

        generate_password(length)  # rejects an unsafe length now, at preview, not at create
        props = {"purpose": purpose, "length": length, "keepers": keepers or {}, "result": None}
        secret_opts = pulumi.ResourceOptions(additional_secret_outputs=["result"])
        super().__init__(
            GeneratedPasswordProvider(), name, props, pulumi.ResourceOptions.merge(opts, secret_opts)
        )
