"""Scheduled calls: the lightest event SimPy's loop runs, for the calls made once a
message (its arrival, its transfer).

``simpy.Environment.step`` pops ``(time, priority, id, event)`` from its heap and calls
each of ``event.callbacks`` with the event; it reads ``event._ok`` after, to raise a
failed event's exception. A ``Due`` is scheduled with ``Environment.schedule`` (SimPy's
public call) like a ``Timeout``, so it runs at the same instant and in the same order
among the others; it carries its instant (``at``, the time the loop moves to) and a
value, and never fails. It costs one small object, where a ``Timeout`` is a dict-backed
event, a list of callbacks and a call to append to it (tests/test_clock.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import simpy
from simpy.events import NORMAL


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
