"""A ``Due`` (sim/model/clock.py) is a ``Timeout`` to SimPy's loop: scheduled alike, it
runs at the same instant, in the same order among other events, across ``run(until)``
stops, and tells the instant it runs at."""

from __future__ import annotations

import simpy
from hypothesis import given, settings
from hypothesis import strategies as st
from simpy.events import Timeout

from sim.model.clock import Due, call_in

# Delays on a coarse grid, so that many events fall on one instant (ties keep their order).
DELAYS = st.lists(st.integers(0, 20).map(lambda n: n / 4), min_size=1, max_size=40)


def _order(delays: list[float], use_due: list[bool], stops: list[float]) -> list[tuple[float, int, float]]:
    """(instant, event number, value) as each event runs; each event schedules a follow-up."""
    env = simpy.Environment()
    seen: list[tuple[float, int, float]] = []

    def schedule(number: int, delay: float, due: bool) -> None:
        def ran(event: object) -> None:
            at = event.at if isinstance(event, Due) else env.now
            assert at == env.now
            seen.append((env.now, number, event.value))  # type: ignore[attr-defined]
            if number < 1000:
                schedule(number + 1000, delay / 2 + 0.25, not due)

        if due:
            call_in(env, delay, ran, delay)
        else:
            Timeout(env, delay, delay).callbacks.append(ran)

    for number, (delay, due) in enumerate(zip(delays, use_due, strict=False)):
        schedule(number, delay, due)
    for stop in sorted(stops):
        if stop > env.now:
            env.run(until=stop)
    env.run()
    return seen


@settings(max_examples=150, deadline=None)
@given(DELAYS, st.lists(st.booleans(), min_size=40, max_size=40), st.lists(st.integers(1, 30), max_size=3))
def test_a_due_runs_where_and_when_a_timeout_would(delays, use_due, stops):
    expected = _order(delays, [False] * len(delays), [s / 4 for s in stops])
    assert _order(delays, use_due, [s / 4 for s in stops]) == expected
    assert len(expected) == 2 * len(delays)
