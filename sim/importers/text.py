"""Reading the user's files: text or gzip, line by line, and writing YAML whole."""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from sim.errors import NO_VALUE, ScenarioError
from sim.files import write_text_atomic


def open_lines(path: Path) -> Iterator[str]:
    """The lines of ``path`` (gzip when it starts with the gzip magic), without newlines.

    Bytes that are not UTF-8 are replaced: a log line with a stray byte is still a line."""
    number = 0
    try:
        with path.open("rb") as probe:
            gzipped = probe.read(2) == b"\x1f\x8b"
        opener = gzip.open if gzipped else open
        with opener(path, "rt", encoding="utf-8", errors="replace", newline="") as handle:
            for number, line in enumerate(handle, start=1):  # noqa: B007 - the count names the failing line
                yield line.rstrip("\r\n")
    except FileNotFoundError:
        raise ScenarioError(path, "", NO_VALUE, "file not found") from None
    except IsADirectoryError:
        raise ScenarioError(path, "", NO_VALUE, "is a folder, not a file") from None
    except (OSError, EOFError) as exc:  # unreadable, or a truncated gzip stream
        reason = getattr(exc, "strerror", None) or exc
        raise ScenarioError(path, f"line {number + 1}", NO_VALUE, f"cannot read: {reason}") from None


def read_text_lines(path: Path) -> list[tuple[int, str]]:
    """(line number, line) for every line of a configuration file."""
    return list(enumerate(open_lines(path), start=1))


def write_yaml(path: Path, document: dict[str, Any], header: list[str]) -> Path:
    """Write ``document`` as YAML with ``header`` as comment lines, whole or not at all."""
    comment = "".join(f"# {line}\n" if line else "#\n" for line in header)
    text = comment + yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=100)
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_text_atomic(path, text)
