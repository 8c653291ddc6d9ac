"""Generated scenario documents, valid and mutated: ``validate`` exits 0 or 2, never with a
traceback; what validates runs and accounts for every message (issue 12, item 5)."""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from sim.cli import app
from sim.scenario.loader import load_scenario
from sim.simulate import run

ROOT = Path(__file__).resolve().parent.parent
runner = CliRunner()

BASE: dict[str, Any] = {
    "name": "fuzzed",
    "topology": str(ROOT / "topology/contoso-2003.yaml"),
    "remotes": str(ROOT / "topology/article-remotes.yaml"),
    "traffic": {
        "outbound": {
            "rate_per_hour": 120,
            "domains": {"fabrikam.com": 0.5, "oldsendmail.example": 0.3, "brokentls.example": 0.2},
            "size": {"distribution": "lognormal", "mean_kb": 75, "sigma": 1.0},
        }
    },
    "overrides": {"servers.EX1.virtual_servers.default-smtp.outbound_tls": "required"},
    "run": {"duration": "6h", "seed": 3, "sample_interval": "15m"},
}

ODD_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**20), max_value=10**20),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(["6h", "0s", "-1d", "1e400", "4d 3h", "required", "encrypt", "dane", "inf", ".nan", "∞"]),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += _paths(value, (*prefix, index))
    return found


PATHS = _paths(BASE)


@st.composite
def documents(draw: st.DrawFn) -> dict[str, Any]:
    """The base document with up to three mutations: a value replaced, a key dropped,
    an unknown key added; or no mutation at all (a valid document)."""
    document = copy.deepcopy(BASE)
    for _ in range(draw(st.integers(min_value=0, max_value=3))):
        paths = _paths(document)
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = document
        for step in path[:-1]:
            parent = parent[step]
        action = draw(st.sampled_from(["replace", "drop", "add"]))
        if action == "replace":
            parent[path[-1]] = draw(ODD_VALUES)
        elif action == "drop" and isinstance(parent, dict):
            del parent[path[-1]]
        elif isinstance(parent, dict):
            parent[draw(st.text(min_size=1, max_size=8))] = draw(ODD_VALUES)
    return document


@pytest.mark.slow  # over a second: runs in CI (.ci/run)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(document=documents())
def test_validate_exits_0_or_2_and_what_validates_conserves_messages(tmp_path_factory, document):
    folder = tmp_path_factory.mktemp("fuzz")
    path = folder / "what-if.yaml"
    path.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code in (0, 2), (result.exit_code, result.output, result.exception)
    if result.exception is not None:
        assert isinstance(result.exception, SystemExit), repr(result.exception)
    text = result.stderr or result.output
    assert "Traceback" not in text
    event(f"validate exit {result.exit_code}")
    if result.exit_code == 2:
        assert len([line for line in text.splitlines() if line.strip()]) == 1, text
        return
    scenario = load_scenario(path)
    hours = scenario.run.duration / 3600
    assume(hours <= 48 and sum(f.rate_per_hour for f in scenario.traffic.outbound) * hours <= 5_000)
    row = run(scenario).summary_row
    ended = row["out_delivered"] + row["out_ndr"] + row["out_queued_at_end"]
    assert ended == row["out_messages"], row
    assert row["out_delivered_tls"] + row["out_delivered_plaintext"] == row["out_delivered"]
    assert not math.isnan(row["out_tls_share"]) or row["out_delivered"] == 0


def test_the_unmutated_document_is_valid(tmp_path):
    # Guards the fuzz test: a broken BASE would make every example "invalid" and prove nothing.
    path = tmp_path / "what-if.yaml"
    path.write_text(yaml.safe_dump(BASE), encoding="utf-8")
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 0, result.output
