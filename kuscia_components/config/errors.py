"""A rejected setting (`Problem`) and all of a config's problems together (`ConfigError`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Problem:
    """One rejected setting: what, which rule, and a value that would be accepted."""

    setting: str  # full key, e.g. "kuscia:database.name"
    rule: str  # e.g. "must match [A-Za-z0-9_]{1,64}"
    example: str  # e.g. "kuscia_alice"
    got: str | None = None  # short, non-secret rendering of the rejected value

    def __str__(self) -> str:
        got = f" (got {self.got})" if self.got is not None else ""
        return f"{self.setting}: {self.rule}{got}. Example: {self.example}"


class ConfigError(ValueError):
    """All problems of one config, reported together."""

    def __init__(self, problems: list[Problem], source: str = "stack config") -> None:
        self.problems = list(problems)
        self.source = source
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"{len(self.problems)} problem(s) in {source}:\n{lines}")

    def __reduce__(self) -> tuple[Any, ...]:  # picklable across Automation API processes
        return (type(self), (self.problems, self.source))
