"""Scheduled calls: the lightest event SimPy's loop runs, for the calls made once a
message (its arrival, its transfer).

``simpy.Environment.step`` pops ``(time, priority, id, event)`` from its heap and calls
each of ``event.callbacks`` with the event; it reads ``event._ok`` after, to raise a
failed event's exception. A ``Due`` is scheduled with ``Environment.schedule`` (SimPy's
public call) like a ``Timeout``, so it runs at the same instant and in the same order
among the others; it carries its instant (``at``, the time the loop moves to) and a
value, and never fails. It costs one small object, where a ``Timeout`` is a dict-backed
event, a list of callbacks and a call to append to it (tests/test_clock.py).

The two calls made once a message (an arrival, a transfer's end) push onto SimPy's heap
themselves (:func:`heap_of`), as ``Environment.schedule`` would: the same entry, one
Python call fewer each. A run's loop is :func:`run_until`, SimPy's ``run(until)`` with
its ``step`` written in.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from heapq import heappop, heappush
from typing import Any

import simpy
from simpy.events import NORMAL, URGENT


class Due:
    __slots__ = ("at", "callbacks", "value")
    _ok = True  # read by Environment.step: a Due never fails

    def __init__(self, at: float, callback: Callable[[Due], None], value: Any = None) -> None:
        self.at = at
        self.callbacks: tuple[Callable[[Due], None], ...] | None = (callback,)
        self.value = value


def call_in(env: simpy.Environment, delay: float, callback: Callable[[Due], None], value: Any = None) -> None:
    """Call ``callback(due)`` ``delay`` seconds from now, ``due.value`` being ``value``."""
    env.schedule(Due(env.now + delay, callback, value), NORMAL, delay)  # type: ignore[arg-type]


def heap_of(env: simpy.Environment) -> tuple[list[Any], Iterator[int]]:
    """SimPy's event heap and its counter of event ids: ``Environment.schedule(event,
    NORMAL, delay)`` is ``heappush(heap, (now + delay, NORMAL, next(ids), event))``.
    Private to SimPy 4 (pyproject.toml admits no other); tests/test_clock.py holds a push
    so made to run where a scheduled ``Timeout`` would, and fails if SimPy changes either."""
    return env._queue, env._eid


class _Stopped(Exception):
    """Raised by :func:`run_until`'s stop to leave its loop."""


def _stop(_due: Due) -> None:
    raise _Stopped


def run_until(env: simpy.Environment, until: float) -> None:
    """``env.run(until=until)``, with SimPy's ``step`` written into the loop (one Python
    call fewer an event). The stop is an URGENT entry at ``until`` taking the next event
    id, where ``run`` puts its own: every event runs at the same instant and in the same
    order, and the clock ends at ``until`` (tests/test_clock.py holds the two alike).
    An event that failed undefused (a process that raised) raises its exception here."""
    if until <= env.now:
        raise ValueError(f"until ({until}) must be later than now ({env.now})")
    heap, ids = heap_of(env)
    heappush(heap, (until, URGENT, next(ids), Due(until, _stop)))
    try:
        while True:  # the stop is in the heap: it never runs empty before it
            env._now, _, _, event = heappop(heap)
            callbacks, event.callbacks = event.callbacks, None
            for callback in callbacks:
                callback(event)
            if not event._ok and not hasattr(event, "_defused"):
                raise event._value
    except _Stopped:
        pass
