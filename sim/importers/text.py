"""Reading the user's files: text or gzip, line by line, in bounded memory and time.

A line longer than ``MAX_LINE`` bytes is read past, not held, and reported as ``None``
so the caller counts it; a gzip stream that expands far beyond what text compresses
to (a "gzip bomb") stops with a clear error. Numbers from input are ASCII digits
within stated bounds, never whatever ``int()`` accepts (``"²"``, ``"٣"``, 5,000 digits).
"""

from __future__ import annotations

import gzip
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

from sim.errors import NO_VALUE, ScenarioError

MAX_LINE = 64 * 1024
"""Bytes: longer lines are skipped (a mail log line is under 2 KB; Postfix caps at 2,048)."""
GZIP_FLOOR = 64 * 1024 * 1024
GZIP_RATIO = 100
"""A gzip file may expand to GZIP_FLOOR bytes, and beyond that to GZIP_RATIO times its own
size: real mail logs compress 8-11 times (the corpus's Postfix logs, gzip -9); deflate's
ceiling is about 1,030 (a file of zeros)."""

_DIGITS = re.compile(r"[0-9]{1,18}")


class _Lines(Protocol):
    def readline(self, size: int = -1, /) -> bytes: ...


class _Counted:
    """A binary stream that counts what it hands out, and stops a gzip bomb."""

    def __init__(self, handle: _Lines, path: Path, limit: int | None) -> None:
        self.handle, self.path, self.limit, self.read = handle, path, limit, 0

    def readline(self, size: int) -> bytes:
        chunk = self.handle.readline(size)
        self.read += len(chunk)
        if self.limit is not None and self.read > self.limit:
            raise ScenarioError(
                self.path,
                "",
                NO_VALUE,
                f"expands past {self.limit:,} bytes, more than {GZIP_RATIO} times its size: not a mail log "
                "(a gzip bomb?); gunzip it yourself if it is genuine",
            )
        return chunk


def open_lines(path: Path, max_line: int = MAX_LINE) -> Iterator[str | None]:
    """The lines of ``path`` (gzip when it starts with the gzip magic), without newlines;
    ``None`` for a line longer than ``max_line`` bytes, which is skipped in linear time.

    Bytes that are not UTF-8 are replaced: a log line with a stray byte is still a line."""
    number = 0
    try:
        with path.open("rb") as probe:
            gzipped = probe.read(2) == b"\x1f\x8b"
        size = path.stat().st_size
        with gzip.open(path, "rb") if gzipped else path.open("rb") as raw:
            stream = _Counted(raw, path, max(GZIP_FLOOR, GZIP_RATIO * size) if gzipped else None)
            while True:
                chunk = stream.readline(max_line + 1)
                if not chunk:
                    return
                number += 1
                if len(chunk) > max_line and not chunk.endswith(b"\n"):
                    while chunk and not chunk.endswith(b"\n"):  # read past the rest of the line
                        chunk = stream.readline(max_line + 1)
                    yield None
                    continue
                yield chunk.decode("utf-8", "replace").rstrip("\r\n")
    except FileNotFoundError:
        raise ScenarioError(path, "", NO_VALUE, "file not found") from None
    except IsADirectoryError:
        raise ScenarioError(path, "", NO_VALUE, "is a folder, not a file") from None
    except (OSError, EOFError, gzip.BadGzipFile) as exc:  # unreadable, or a truncated gzip stream
        reason = getattr(exc, "strerror", None) or exc
        raise ScenarioError(path, f"line {number + 1}", NO_VALUE, f"cannot read: {reason}") from None


def read_text_lines(path: Path, max_line: int = MAX_LINE) -> list[tuple[int, str]]:
    """(line number, line) for every line of a configuration file; a line too long to be
    configuration is an error naming it."""
    lines = []
    for number, line in enumerate(open_lines(path, max_line), start=1):
        if line is None:
            raise ScenarioError(path, f"line {number}", NO_VALUE, f"longer than {max_line:,} bytes")
        lines.append((number, line))
    return lines


def ascii_int(text: str, low: int = 0, high: int = 10**15) -> int | None:
    """``text`` as a whole number if it is ASCII digits within [low, high], else None.

    >>> ascii_int("25"), ascii_int("²"), ascii_int("٣"), ascii_int("9" * 5000), ascii_int("-1")
    (25, None, None, None, None)
    """
    if _DIGITS.fullmatch(text) is None:
        return None
    value = int(text)
    return value if low <= value <= high else None


def whole_number(path: Path, where: str, text: str, low: int = 0, high: int = 10**15) -> int:
    """``ascii_int`` or exit 2 naming the file, the place and the value."""
    value = ascii_int(text.strip(), low, high)
    if value is None:
        raise ScenarioError(path, where, text[:40], f"not a whole number from {low:,} to {high:,} (ASCII digits)")
    return value
