"""Kubernetes resource quantities ("500m", "4Gi", "1e3"), parsed exactly and without dependencies.

Config validation needs more than a regex: capacity must be positive and a container's requests
must not exceed its limits, which the API server would otherwise refuse at deploy time. The
grammar is the one documented on `resource.Quantity`:

    quantity  ::= [+-] number [suffix]
    number    ::= digits | digits "." [digits] | "." digits
    suffix    ::= Ki | Mi | Gi | Ti | Pi | Ei          (binary, powers of 1024)
                | n | u | m | k | M | G | T | P | E    (decimal SI)
                | (e | E) [+-] digits                 (decimal exponent)

Go's parser is a little looser (it takes "Gi" or "." as zero); those forms are refused here,
so anything accepted here is also accepted by Kubernetes and by Kuscia.
"""

from __future__ import annotations

import re
from fractions import Fraction

_GRAMMAR = re.compile(
    r"(?P<sign>[+-]?)(?P<number>[0-9]+(?:\.[0-9]*)?|\.[0-9]+)"
    r"(?P<suffix>[eE][+-]?[0-9]+|Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE])?"
)
_BINARY = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}
_DECIMAL = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
MAX_EXPONENT = 100  # far beyond any real resource; keeps 10**exponent cheap
MAX_LENGTH = 64  # int64 has 19 digits; nothing real comes close
MAX_VALUE = Fraction(2**63 - 1)  # Kubernetes caps quantities at the int64 maximum


class QuantityError(ValueError):
    """Not a usable Kubernetes quantity; the message states the rule ("must be ...")."""


def parse_quantity(text: str) -> Fraction:
    """The exact value of a quantity string (signed), or QuantityError."""
    if len(text) > MAX_LENGTH:
        raise QuantityError(f"must be a Kubernetes quantity of at most {MAX_LENGTH} characters")
    match = _GRAMMAR.fullmatch(text)
    if match is None:
        raise QuantityError(
            "must be a Kubernetes quantity: a number with an optional suffix, like 500m, 4Gi or 1e3"
        )
    number = Fraction(match["number"] if not match["number"].endswith(".") else match["number"][:-1])
    suffix = match["suffix"] or ""
    if suffix in _BINARY:
        value = number * 2 ** _BINARY[suffix]
    else:
        exponent = _DECIMAL[suffix] if suffix in _DECIMAL else int(suffix[1:])
        if abs(exponent) > MAX_EXPONENT:
            raise QuantityError(f"must have an exponent from -{MAX_EXPONENT} to {MAX_EXPONENT}")
        value = number * Fraction(10) ** exponent
    if value > MAX_VALUE:
        raise QuantityError("must be at most 2^63-1, the largest quantity Kubernetes represents")
    signed: Fraction = -value if match["sign"] == "-" else value
    return signed
