"""Syslog timestamps and rotated files: which file comes first, and which year a line is in.

Traditional syslog stamps (``Dec 31 23:59:58 host ...``) carry no year. A log read in
order keeps its real span across New Year: when a stamp's month falls back by more than
half a year (December, then January), the year advances. RFC 3339 stamps
(``2020-03-19T09:29:04.507835+00:00``) carry their own year and zone.

Rotated files (``mail.log``, ``mail.log.1``, ``mail.log.2.gz``, or dated names) may be
given in any order: they are read oldest first, by their first stamp. Without years the
first stamps lie on a circle of months; the log starts after the largest gap between
them (a log spans less than half a year, so the gap from its end back to its start is
the widest).
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Iterable
from pathlib import Path

from sim.importers.text import open_lines

_MONTHS = {
    m: i
    for i, m in enumerate(["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"], start=1)
}
_TRADITIONAL = re.compile(r"([A-Z][a-z]{2}) ([ 0-9]\d) (\d\d):(\d\d):(\d\d) ")
_ISO = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,9})?)(Z|[+-]\d\d:?\d\d)? ")
_CIRCLE = 366 * 86400  # seconds in year 2000, where undated first stamps are placed


class SyslogClock:
    """Reads the stamp off each line, in log order, keeping track of the year."""

    def __init__(self, year: int) -> None:
        self.year = year
        self._month = 0
        self._cache: tuple[str, dt.datetime] = ("", dt.datetime.min.replace(tzinfo=dt.UTC))

    def stamp(self, line: str) -> tuple[dt.datetime, str] | None:
        """(UTC instant, the rest of the line), or None when the line has no stamp."""
        if line[:1].isdigit():
            return self._iso(line)
        match = _TRADITIONAL.match(line)
        if match is None or match.group(1) not in _MONTHS:
            return None
        key = line[: match.end()]
        if key == self._cache[0]:  # many lines share a second: parse it once
            return self._cache[1], line[match.end() :]
        month = _MONTHS[match.group(1)]
        if self._month and month < self._month - 6:
            self.year += 1  # December, then January
        try:
            hour, minute, second = int(match.group(3)), int(match.group(4)), int(match.group(5))
            when = dt.datetime(self.year, month, int(match.group(2)), hour, minute, second, tzinfo=dt.UTC)
        except ValueError:
            return None  # Nov 31, Feb 29 of a common year
        self._month = month
        self._cache = (key, when)
        return when, line[match.end() :]

    def _iso(self, line: str) -> tuple[dt.datetime, str] | None:
        match = _ISO.match(line)
        if match is None:
            return None
        try:
            when = dt.datetime.fromisoformat(match.group(1) + (match.group(2) or "").replace("Z", "+00:00"))
        except ValueError:
            return None
        when = when.replace(tzinfo=dt.UTC) if when.tzinfo is None else when.astimezone(dt.UTC)
        return when, line[match.end() :]


def _first_stamp(path: Path) -> tuple[dt.datetime | None, bool]:
    """The first stamp of a file (year 2000, a leap year, for traditional stamps) and
    whether it carries its own year."""
    clock = SyslogClock(2000)
    for number, line in enumerate(open_lines(path), start=1):
        if number > 200:
            break
        stamped = clock.stamp(line) if line is not None else None
        if stamped is not None:
            return stamped[0], line is not None and line[:1].isdigit()
    return None, False


def order_files(paths: Iterable[Path]) -> list[Path]:
    """The files oldest first, whatever order they were given in (see module doc)."""
    stamped = [(path, *_first_stamp(path)) for path in paths]
    dated = [(when, path) for path, when, _ in stamped if when is not None]
    undated = [path for path, when, _ in stamped if when is None]
    if all(with_year for _, when, with_year in stamped if when is not None):
        return [path for _, path in sorted(dated, key=lambda item: item[0])] + undated
    dated.sort(key=lambda item: item[0])
    if len(dated) > 1:
        gaps = [((dated[(i + 1) % len(dated)][0] - dated[i][0]).total_seconds()) % _CIRCLE for i in range(len(dated))]
        start = (max(range(len(gaps)), key=lambda i: (gaps[i], -i)) + 1) % len(dated)
        dated = dated[start:] + dated[:start]
    return [path for _, path in dated] + undated


def start_year(first: Path, year: int | None) -> int:
    """The year of the log's first line: given, or that of the first file's last change
    (the previous year if its first stamp falls later in the year than that change)."""
    if year is not None:
        return year
    when, with_year = _first_stamp(first)
    try:
        changed = dt.datetime.fromtimestamp(os.stat(first).st_mtime, dt.UTC)
    except OSError:
        changed = dt.datetime.now(dt.UTC)
    if when is None or with_year:
        return changed.year
    return changed.year - 1 if (when.month, when.day) > (changed.month, changed.day) else changed.year
