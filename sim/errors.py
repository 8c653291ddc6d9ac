"""The exception tree: every error the user can cause is a ``ScenarioError``.

Errors inside a run (no route, a host that refuses TLS) are not exceptions: they are
NDR records in the results. Exceptions are for input the tool cannot use.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


class SimError(Exception):
    """Root of tlssim's exceptions."""


class ScenarioError(SimError):
    """A scenario, topology or remotes file that cannot be used as written.

    The message is one line naming the file, the field path, the bad value and what
    is accepted, e.g.
    ``scenarios/x.yaml: connectors[2].address_spaces[0].pattern = '*.exa mple': not a
    domain pattern (accepted: "example.com", "*.example.com" or "*")``.
    """

    def __init__(self, file: str | Path | None, field: str, value: Any, problem: str) -> None:
        self.file = str(file) if file is not None else "<scenario>"
        self.field = field
        self.value = value
        self.problem = problem
        where = f"{self.file}: {field}" if field else self.file
        shown = _show(value)
        super().__init__(_one_line(f"{where}{' = ' + shown if shown else ''}: {problem}"))


def _one_line(text: str) -> str:
    """Control characters (a key named "\\x1e" in YAML, a newline in a value) are shown
    escaped, so the message stays one readable line on any terminal."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _show(value: Any) -> str:
    if value is _NO_VALUE:
        return ""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


class _NoValue:
    def __repr__(self) -> str:
        return "<no value>"


_NO_VALUE: Any = _NoValue()
NO_VALUE: Any = _NO_VALUE
"""Pass as ``value`` when the problem is the absence of a value (a missing field)."""
