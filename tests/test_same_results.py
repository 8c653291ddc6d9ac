"""Speed work changes no result: every bundled what-if, and hand-built Postfix worlds that
stress the deferred queue, give the tables they gave before it (issue 13).

The fingerprints in ``same_results.json`` were written by the code before the bulk
deferral and the fused message path. A rule change that moves a result on purpose
regenerates them (``python tests/test_same_results.py --write``) and says why in its
commit; a speed change must not.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import pytest
from worlds import bundled_what_ifs, postfix_backlog, postfix_flaky

import sim
from sim.results import RunResult
from sim.simulate import Simulation

FINGERPRINTS = Path(__file__).with_name("same_results.json")
FAST = {"article-force-tls", "article-inbound-tls-offered", "exo-partner-tls"}


def _digest(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, default=repr, allow_nan=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def fingerprint(result: RunResult) -> dict[str, Any]:
    """The summary row in full (a failure shows which count moved) and a hash per table."""
    summary = {k: _plain(v) for k, v in result.summary_row.items() if k != "wall_s"}
    return {
        "summary": summary,
        "per_domain": _digest(result.per_domain_rows),
        "ndr": _digest(result.ndr_rows),
        "inbound": _digest(result.inbound_rows),
        "queues": _digest(result.queue_samples),
        "events": _digest(result.events),
        "delays": _digest(result.delay_histogram),
        "tlsrpt": _digest([result.tlsrpt_received, result.tlsrpt_sent]),
        "trace": _digest(result.trace) if result.trace is not None else None,
    }


def _plain(value: Any) -> Any:
    """A summary value as JSON holds it comparably (NaN is not equal to itself)."""
    if isinstance(value, float) and value != value:
        return "nan"
    return value if isinstance(value, (str, int, float, bool)) or value is None else repr(value)


# --------------------------------------------------------------------------- hand-built worlds


def _cases() -> dict[str, Any]:
    """Case name -> a function computing its fingerprint."""
    cases: dict[str, Any] = {
        p.stem: (lambda p=p: fingerprint(sim.run(sim.load_scenario(p)))) for p in bundled_what_ifs()
    }
    cases["hand:postfix-backlog"] = lambda: fingerprint(sim.run(postfix_backlog()))
    cases["hand:postfix-flaky"] = lambda: fingerprint(sim.run(postfix_flaky(False)))
    cases["hand:postfix-flaky-traced"] = lambda: fingerprint(Simulation(postfix_flaky(True), trace=True).run())
    return cases


CASES = _cases()


def _marks(name: str) -> list[Any]:
    return [] if name in FAST or name.startswith("hand:") else [pytest.mark.slow]


@pytest.mark.parametrize("name", [pytest.param(n, marks=_marks(n)) for n in CASES])
def test_results_are_the_same_as_before_the_speed_work(name):
    expected = json.loads(FINGERPRINTS.read_text())[name]
    got = CASES[name]()
    assert got["summary"] == expected["summary"]
    assert got == expected


if __name__ == "__main__" and sys.argv[1:] == ["--write"]:
    stored = {name: compute() for name, compute in CASES.items()}
    FINGERPRINTS.write_text(json.dumps(stored, indent=1, sort_keys=True, allow_nan=True) + "\n")
    print(f"wrote {len(stored)} fingerprints to {FINGERPRINTS}")
