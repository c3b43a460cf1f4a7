"""Values Pulumi has not computed yet, as a dynamic provider sees them at preview.

The real provider host deserializes Check and Diff inputs with `keep_unknowns=True`, so an
unknown arrives as a `pulumi.output.Unknown` object (pulumi/dynamic/__main__.py:
`rpc.deserialize_properties(request.news, True)`), while Pulumi's mocks hand over the
`rpc.UNKNOWN` string. Providers normalise their inputs once, at the top of check() and diff(),
so every later comparison with UNKNOWN means the same in both worlds.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def unknowns_as_sentinel(props: Mapping[str, Any]) -> dict[str, Any]:
    """`props` with every `Unknown` object (at any depth) replaced by the `rpc.UNKNOWN` string."""
    from pulumi.output import Unknown
    from pulumi.runtime.rpc import UNKNOWN

    def norm(value: Any) -> Any:
        if isinstance(value, Unknown):
            return UNKNOWN
        if isinstance(value, Mapping):
            return {k: norm(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [norm(v) for v in value]
        return value

    return {k: norm(v) for k, v in props.items()}
