"""``write_csv`` writes a table byte for byte as pandas' ``to_csv(index=False)`` does:
a run's CSVs no longer go through a DataFrame, and nobody reading them may notice."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sim.csvtable import write_csv

COLUMNS = ["a", "b", "c"]


def _pandas(path: Path, rows: list, columns: list[str]) -> bytes:
    pd.DataFrame(rows, columns=columns).to_csv(path, index=False)
    return path.read_bytes()


def _ours(path: Path, rows: list, columns: list[str]) -> bytes:
    write_csv(path, rows, columns)
    return path.read_bytes()


@pytest.mark.parametrize(
    "rows",
    [
        [],
        [{"a": 1, "b": 2.5, "c": "x"}],
        [{"a": 1, "b": None, "c": "x"}, {"a": 2, "b": 3, "c": None}],  # a gap makes ints floats
        [{"a": True, "b": False, "c": True}, {"a": None, "b": True, "c": False}],
        [{"a": math.nan, "b": 1e16, "c": 1e-05}, {"a": 0.1, "b": -0.0, "c": 123456789.125}],
        [{"a": 'say "hi", then\nleave', "b": "", "c": "comma,here"}],
        [{"a": 1, "b": "mixed", "c": 2.0}, {"a": "x", "b": 3, "c": True}],
        [{"a": None, "b": None, "c": None}],
        [(1.5, "q|c|h", 3), (2.0, "q2", 4)],  # tuples, as the queue samples are
        [{"a": 1}],  # missing keys are gaps
    ],
)
def test_the_same_bytes_as_pandas(tmp_path: Path, rows: list) -> None:
    assert _ours(tmp_path / "ours.csv", rows, COLUMNS) == _pandas(tmp_path / "pandas.csv", rows, COLUMNS)


_cell = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**53), max_value=2**53),
    st.floats(allow_infinity=False),
    st.text(max_size=12),
    st.text(alphabet=',"\r\n a', max_size=4),  # what the writer must quote, often
)


@given(
    st.one_of(
        st.lists(st.fixed_dictionaries({column: _cell for column in COLUMNS}), max_size=6),
        st.lists(st.tuples(_cell, _cell, _cell), max_size=6),
    )
)
def test_any_table_the_same_bytes_as_pandas(rows: list) -> None:
    """Rows as mappings, or as tuples in column order (the queue samples)."""
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        here = Path(folder)
        assert _ours(here / "ours.csv", rows, COLUMNS) == _pandas(here / "pandas.csv", rows, COLUMNS)


@given(st.one_of(st.lists(st.tuples(_cell), max_size=6), st.lists(st.fixed_dictionaries({"a": _cell}), max_size=6)))
def test_a_one_column_table_the_same_bytes_as_pandas(rows: list) -> None:
    """An empty field alone on its row is quoted, so that the row is not blank."""
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        here = Path(folder)
        assert _ours(here / "ours.csv", rows, ["a"]) == _pandas(here / "pandas.csv", rows, ["a"])
