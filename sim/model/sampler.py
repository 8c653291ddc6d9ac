"""The queue-depth sampler: on a fixed grid of simulated time, one ``(total)`` row and
one row per queue holding mail, and the cumulative outcomes at that instant.

It owns the list of queues it visits: a queue lists itself when mail enters it
(``DeliveryQueue.submit``) and the sampler drops it once it finds it empty, so
thousands of idle destinations cost nothing (issue 13).
"""

from __future__ import annotations

from operator import attrgetter
from typing import Any, Protocol

import simpy

from sim.model.clock import call_in
from sim.model.metrics import Metrics

TOTAL_QUEUE = "(total)"


class Sampled(Protocol):
    """A queue as the sampler sees it."""

    name: str
    order: int  # the order the world made it in: rows are written in that order
    listed: bool  # in the sampler's ``holding``

    @property
    def depth(self) -> int: ...

    @property
    def in_retry(self) -> bool: ...


_made_order = attrgetter("order")


class DepthSampler:
    def __init__(self) -> None:
        # The queues that got mail since the last sample found them empty: only these
        # can hold mail now (a world of 100,000 domains has as many queues, nearly all idle).
        # Kept as one list, changed in place, so a queue may hold on to it.
        self.holding: list[Sampled] = []

    def start(self, env: simpy.Environment, metrics: Metrics, interval: float, duration: float) -> None:
        """Sample ``metrics``' queues every ``interval`` from 0 to ``duration``."""
        holding, samples = self.holding, metrics.samples

        def sample(_event: Any) -> None:
            # One "(total)" row per instant, then the queues that hold mail, in the order
            # the world made them.
            now = env.now
            kept = []
            for queue in holding:
                if queue.depth:
                    kept.append(queue)
                else:
                    queue.listed = False
            kept.sort(key=_made_order)
            holding[:] = kept
            rows = [(now, queue.name, queue.depth, queue.in_retry) for queue in kept]
            samples.append((now, TOTAL_QUEUE, sum(row[2] for row in rows), any(row[3] for row in rows)))
            samples.extend(rows)
            metrics.events.append((now, metrics.delivered, metrics.bounced, metrics.expired, metrics.delay_notices))
            if now + interval <= duration:
                call_in(env, interval, sample)

        call_in(env, 0, sample)
