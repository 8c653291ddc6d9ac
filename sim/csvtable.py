"""A table written as CSV without pandas, byte for byte as ``DataFrame.to_csv(index=False)``
writes it: a run's tables need no DataFrame, and importing pandas costs ~0.45 s of a
typical ``tlssim run`` (issue 22).

pandas gives each column one type from its values, and the type decides the text: a
column of integers with a gap is a float column (``3.0``, the gap empty); booleans
are ``True``/``False``; floats are written shortest-exact (Python's ``repr``), NaN
empty. ``tests/test_csvtable.py`` holds this to pandas itself on every case."""

from __future__ import annotations

import csv
import math
import numbers
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any


def write_csv(path: Path, rows: Iterable[Mapping[str, Any] | Sequence[Any]], columns: Sequence[str]) -> None:
    """``rows`` (mappings by column name, or sequences in column order) as CSV at ``path``."""
    rows = list(rows)
    width = len(columns)
    if rows and all(type(row) is tuple and len(row) == width for row in rows):
        cells: list[Sequence[Any]] = list(zip(*rows, strict=True))  # tuples (the queue samples): columns at once
    else:
        table = [_cells(row, columns) for row in rows]
        cells = [[row[i] for row in table] for i in range(width)]
    texts = [_column_texts(list(column)) for column in cells]
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(columns)
        if not (texts and rows):
            return
        if width == 1 or any(_needs_quotes(column) for column in texts):
            writer.writerows(zip(*texts, strict=True))
        else:  # what the writer would write, joined at once (a 44,000-row table: 0.02 s less)
            handle.write("\n".join(map(",".join, zip(*texts, strict=True))))
            handle.write("\n")


_QUOTED = frozenset(',"\r\n')


def _needs_quotes(texts: list[str]) -> bool:
    """Whether the csv writer might quote any of ``texts`` (QUOTE_MINIMAL: a delimiter, a
    quote or a line break in it; an empty field alone on its row, which a one-column
    table leaves to the writer)."""
    return any(not _QUOTED.isdisjoint(text) for text in set(texts))


def _cells(row: Mapping[str, Any] | Sequence[Any], columns: Sequence[str]) -> list[Any]:
    if isinstance(row, Mapping):
        return [row.get(column) for column in columns]
    cells = list(row)
    return cells + [None] * (len(columns) - len(cells))


_NONE = type(None)


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _column_texts(values: list[Any]) -> list[str]:
    """Each value as pandas writes it in a column holding ``values``. The common columns
    (whole numbers, floats with gaps, text) are told by their exact types; any other mix
    (booleans, numpy scalars, mixed kinds) by the general rule below."""
    kinds = set(map(type, values))
    if kinds <= {int}:
        return [str(v) for v in values]  # int64
    if kinds == {float}:
        return ["" if v != v else repr(v) for v in values]  # float64 (NaN is empty)
    if kinds <= {int, float, _NONE} and kinds & {int, float}:
        return ["" if v is None or v != v else repr(float(v)) for v in values]  # float64: a gap makes ints floats
    if kinds <= {str, _NONE}:
        return ["" if v is None else v for v in values]
    if kinds <= {bool, _NONE}:
        return ["" if v is None else str(v) for v in values]
    present = [v for v in values if not _missing(v)]
    numeric = all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in present)
    if present and numeric:
        if len(present) == len(values) and all(isinstance(v, numbers.Integral) for v in present):
            return [str(int(v)) for v in values]  # int64
        return ["" if _missing(v) else repr(float(v)) for v in values]  # float64
    return ["" if _missing(v) else _text(v) for v in values]  # bool or object


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        return repr(float(value))
    return str(value)
