"""A ``Due`` (sim/model/clock.py) is a ``Timeout`` to SimPy's loop: scheduled alike (by
``schedule`` or pushed onto the heap), it runs at the same instant, in the same order
among other events, across ``run(until)`` stops, and tells the instant it runs at. And
``run_until`` runs every event as ``Environment.run(until)`` does."""

from __future__ import annotations

from collections.abc import Callable
from heapq import heappush

import pytest
import simpy
from hypothesis import given, settings
from hypothesis import strategies as st
from simpy.events import NORMAL, URGENT, Event, Timeout

from sim.model.clock import Due, call_in, heap_of, run_until

Runner = Callable[[simpy.Environment, float], None]


def simpy_run(env: simpy.Environment, until: float) -> None:
    env.run(until=until)


# Delays on a coarse grid, so that many events fall on one instant (ties keep their order).
DELAYS = st.lists(st.integers(0, 20).map(lambda n: n / 4), min_size=1, max_size=40)


def _order(
    delays: list[float], use_due: list[int], stops: list[float], runner: Runner = simpy_run
) -> list[tuple[float, int, float]]:
    """(instant, event number, value) as each event runs; each event schedules a
    follow-up. ``use_due``: 0 a Timeout, 1 a Due by ``call_in``, 2 a Due pushed onto the heap."""
    env = simpy.Environment()
    heap, ids = heap_of(env)
    seen: list[tuple[float, int, float]] = []

    def schedule(number: int, delay: float, due: int) -> None:
        def ran(event: object) -> None:
            at = event.at if isinstance(event, Due) else env.now
            assert at == env.now
            seen.append((env.now, number, event.value))  # type: ignore[attr-defined]
            if number < 1000:
                schedule(number + 1000, delay / 2 + 0.25, (due + 1) % 3)

        if due == 2:
            heappush(heap, (env.now + delay, NORMAL, next(ids), Due(env.now + delay, ran, delay)))
        elif due == 1:
            call_in(env, delay, ran, delay)
        else:
            Timeout(env, delay, delay).callbacks.append(ran)

    for number, (delay, due) in enumerate(zip(delays, use_due, strict=False)):
        schedule(number, delay, due)
    for stop in sorted(stops):
        if stop > env.now:
            runner(env, stop)
            assert env.now == stop
    env.run()
    return seen


@settings(max_examples=150, deadline=None)
@given(DELAYS, st.lists(st.booleans(), min_size=40, max_size=40), st.lists(st.integers(1, 30), max_size=3))
def test_a_due_runs_where_and_when_a_timeout_would(delays, use_due, stops):
    expected = _order(delays, [0] * len(delays), [s / 4 for s in stops])
    assert _order(delays, [int(u) for u in use_due], [s / 4 for s in stops]) == expected
    assert len(expected) == 2 * len(delays)


@settings(max_examples=150, deadline=None)
@given(DELAYS, st.lists(st.integers(0, 2), min_size=40, max_size=40), st.lists(st.integers(1, 30), max_size=3))
def test_a_due_pushed_onto_the_heap_runs_where_a_timeout_would(delays, use_due, stops):
    expected = _order(delays, [0] * len(delays), [s / 4 for s in stops])
    assert _order(delays, use_due, [s / 4 for s in stops]) == expected


def _mixed(runner: Runner, delays: list[float], stops: list[float]) -> list[tuple[float, str]]:
    """What runs when, in a world of processes, timeouts and urgent events (some at the
    very instant of a stop), stopped at ``stops`` by ``runner`` and then run out."""
    env = simpy.Environment()
    seen: list[tuple[float, str]] = []

    def worker(number: int, delay: float):  # type: ignore[no-untyped-def]
        for step in range(3):
            yield env.timeout(delay)
            seen.append((env.now, f"process {number} step {step}"))
            if step == 1:
                urgent = Event(env)
                urgent.callbacks.append(lambda _e, n=number: seen.append((env.now, f"urgent {n}")))
                urgent._ok, urgent._value = True, None
                env.schedule(urgent, URGENT, delay)

    for number, delay in enumerate(delays):
        env.process(worker(number, delay))
        call_in(env, delay * 2, lambda _d, n=number: seen.append((env.now, f"due {n}")))
    for stop in sorted(set(stops)):
        if stop > env.now:
            runner(env, stop)
            seen.append((env.now, "stopped"))
    env.run()
    return seen


@settings(max_examples=150, deadline=None)
@given(DELAYS, st.lists(st.integers(1, 40).map(lambda n: n / 4), max_size=4))
def test_run_until_runs_every_event_as_simpy_run_does(delays, stops):
    assert _mixed(run_until, delays, stops) == _mixed(simpy_run, delays, stops)
    assert _order(delays, [0, 1, 2] * 14, stops, run_until) == _order(delays, [0, 1, 2] * 14, stops)


def test_run_until_raises_what_a_process_raised_and_skips_a_defused_failure():
    env = simpy.Environment()

    def broken():  # type: ignore[no-untyped-def]
        yield env.timeout(1)
        raise KeyError("lost")

    env.process(broken())
    with pytest.raises(KeyError, match="lost"):
        run_until(env, 5)
    assert env.now == 1

    env = simpy.Environment()
    failed = env.event()
    failed.fail(KeyError("handled"))
    failed.defused = True
    run_until(env, 5)
    assert env.now == 5
    with pytest.raises(ValueError, match="later than now"):
        run_until(env, 5)
