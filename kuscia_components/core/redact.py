"""The one redaction policy for every output: render files, check reports, network reports, logs.

A secret is masked wherever it appears, in each of its forms:

- the whole value;
- each line of a multi-line value (a PEM key printed line by line, or pasted into a JSON
  string), including a short last line of base64 when it stands next to a masked line;
- its base64 form (Kubernetes Secret `data`), and for a value that is itself base64 text (the
  Kuscia `domainKeyData`), the decoded text and each of its lines.

Overlapping or touching matches become one mask, so no fragment of a secret is left between two
masks. A value that holds another secret (a DSN holding its password) is shown with the inner
secret masked and the rest readable: the user, host and database are what the reader needs.

Pure standard library: importing it never imports pulumi.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable
from typing import Any

MASK = "****"
MIN_SECRET_LENGTH = 4  # shorter values would mask ordinary words
_BASE64_TEXT = re.compile(r"[A-Za-z0-9+/]{16,}={0,2}")
_MIN_ENCODED_LENGTH = 16  # base64 of shorter values is too short to be told from ordinary text


class Redactor:
    """Secret values seen during a run; `scrub` replaces every form of each with the mask."""

    def __init__(self, secrets: Iterable[str | None] = (), *, mask: str = MASK) -> None:
        self.mask = mask
        self._secrets: set[str] = set()
        self._pieces: list[str] | None = None
        self._short_lines: frozenset[str] = frozenset()
        self.add(*secrets)

    def add(self, *values: str | None) -> None:
        for value in values:
            if value and len(value.strip()) >= MIN_SECRET_LENGTH:
                self._secrets.add(value)
                self._pieces = None

    def __call__(self, text: str) -> str:
        return self.scrub(text)

    def scrub(self, text: str) -> str:
        if not self._secrets or not text:
            return text
        pieces = self._compiled()
        spans = sorted(span for piece in pieces for span in _occurrences(text, piece))
        out, pos = [], 0
        for start, end in _merged(spans):
            out += [text[pos:start], self.mask]
            pos = end
        out.append(text[pos:])
        return self._scrub_short_lines("".join(out))

    def scrub_tree(self, value: Any) -> Any:
        """The same for every string in a JSON-like tree (dict keys stay as they are)."""
        if isinstance(value, str):
            return self.scrub(value)
        if isinstance(value, dict):
            return {k: self.scrub_tree(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.scrub_tree(v) for v in value]
        return value

    def __repr__(self) -> str:  # never the values
        return f"Redactor({len(self._secrets)} secrets)"

    def __bool__(self) -> bool:
        return bool(self._secrets)

    # -- the forms of each secret ------------------------------------------------------------------

    def _compiled(self) -> list[str]:
        if self._pieces is None:
            values = set(self._secrets)
            for secret in self._secrets:
                decoded = _decoded_text(secret)
                if decoded is not None:
                    values.add(decoded)
            pieces: set[str] = set()
            short: set[str] = set()
            for value in values:
                inner = [other for other in values if other != value and other in value]
                if not inner:  # a value holding another secret is covered by that secret's mask
                    pieces.add(value)
                lines = [line.strip() for line in value.splitlines()]
                if len(lines) > 1:
                    pieces.update(line for line in lines if len(line) >= MIN_SECRET_LENGTH and not inner)
                    short.update(line for line in lines if 0 < len(line) < MIN_SECRET_LENGTH)
                if len(value) >= _MIN_ENCODED_LENGTH:
                    raw = value.encode("utf-8")
                    pieces.add(base64.b64encode(raw).decode("ascii"))
                    pieces.add(base64.urlsafe_b64encode(raw).decode("ascii"))
            self._pieces = sorted(pieces, key=len, reverse=True)
            self._short_lines = frozenset(short)
        return self._pieces

    def _scrub_short_lines(self, text: str) -> str:
        """A short last line of a multi-line secret ("Zg==") is masked when it stands on its own
        line next to a masked one: it is the tail of the value, not an ordinary word."""
        if not self._short_lines:
            return text
        lines = text.split("\n")
        for i, line in enumerate(lines):
            if line.strip() in self._short_lines:
                near = lines[i - 1 : i] + lines[i + 1 : i + 2]
                if any(n.strip().endswith(self.mask) or n.strip().startswith(self.mask) for n in near):
                    lines[i] = line.replace(line.strip(), self.mask)
        return "\n".join(lines)


def redact(text: str, secrets: Iterable[str | None], *, mask: str = MASK) -> str:
    """`text` with every form of every secret masked (see the module docstring)."""
    return Redactor(secrets, mask=mask).scrub(text)


def _occurrences(text: str, piece: str) -> Iterable[tuple[int, int]]:
    start = text.find(piece)
    while start != -1:
        yield start, start + len(piece)
        start = text.find(piece, start + 1)


def _merged(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in spans:
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def _decoded_text(value: str) -> str | None:
    """The text a base64 value encodes (a PEM inside domainKeyData), else None."""
    compact = "".join(value.split())
    if len(compact) % 4 or not _BASE64_TEXT.fullmatch(compact):
        return None
    try:
        decoded = base64.b64decode(compact, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    printable = all(c.isprintable() or c in "\r\n\t" for c in decoded)
    return decoded if printable and len(decoded.strip()) >= MIN_SECRET_LENGTH else None
