"""One run: ``run(scenario, replication) -> RunResult``, a pure function of its inputs.

``Simulation`` is the same run taken apart, for tests and notebooks that want to add
hand-placed messages to a world before running it.
"""

from __future__ import annotations

import gc
import itertools
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import simpy

from sim.model.clock import call_in, run_until
from sim.model.message import Message
from sim.model.metrics import Metrics
from sim.model.traffic import inbound_source, outbound_source
from sim.model.world import World
from sim.results import RunResult
from sim.scenario.loader import scenario_hash
from sim.scenario.model import Scenario

PROGRESS_STEPS = 100  # env.run in chunks costs a few percent (des-practice s.3)

ProgressCallback = Callable[[float], None]


class Simulation:
    """A world with its traffic, ready to run once."""

    def __init__(self, scenario: Scenario, replication: int = 0, *, trace: bool = False) -> None:
        with collector_paused():
            self._build(scenario, replication, trace)

    def _build(self, scenario: Scenario, replication: int, trace: bool) -> None:
        self.scenario = scenario
        self.replication = replication
        self.env = simpy.Environment()
        self.metrics = Metrics(trace=trace)
        self.inbound_metrics = Metrics(trace=trace)
        self.world = World(scenario, self.env, self.metrics, replication, self.inbound_metrics)
        self._ids = itertools.count()  # message ids, shared by every flow
        duration = scenario.run.duration
        for index, flow in enumerate(scenario.traffic.outbound):
            outbound_source(self.env, self.world, flow, index, duration, self._ids).start()
        for index, inbound in enumerate(scenario.traffic.inbound):
            inbound_source(self.env, self.world, inbound, index, duration, self._ids).start()
        self.world.sampler.start(self.env, self.metrics, scenario.run.sample_interval, duration)

    def inject(self, at: float, domain: str, size_kb: float = 10.0, from_server: str | None = None) -> int:
        """Schedule one message to ``domain`` at time ``at``; return its id."""
        ident = next(self._ids)
        source = from_server or self.scenario.organisation.servers[0].name
        stats = self.metrics.domain(domain)

        def arrive(_event: Any) -> None:
            message = Message(ident, self.env.now, size_kb * 1024.0, stats)
            self.metrics.accepted(message)
            self.world.submit(source, message)

        call_in(self.env, at - self.env.now, arrive)
        return ident

    def run(self, progress: ProgressCallback | None = None) -> RunResult:
        started = time.perf_counter()
        duration = self.scenario.run.duration
        with collector_spaced_out():
            if progress is None:
                run_until(self.env, duration)
            else:
                for step in range(1, PROGRESS_STEPS + 1):
                    run_until(self.env, duration * step / PROGRESS_STEPS)
                    progress(step / PROGRESS_STEPS)
        wall = time.perf_counter() - started
        ended = self.world.snapshot()
        return RunResult.collect(self.scenario, scenario_hash(self.scenario), self.replication, ended, wall)


# Python's cyclic collector while a run lasts: a young-generation collection every
# 50,000 net allocations instead of 700, the middle one every 20 of those, the full one
# after 100 middle ones (or CPython's own rule: when a quarter of the old objects are new).
RUN_COLLECTOR_THRESHOLDS = (50_000, 20, 100)


@contextmanager
def collector_spaced_out() -> Iterator[None]:
    """The cyclic garbage collector runs seldom while the model runs (thresholds as above),
    as it was set after.

    A run makes no reference cycles (tests/test_memory.py checks every bundled what-if),
    so reference counting frees every message and event it is done with; yet with
    CPython's default thresholds the collector keeps walking the world's live objects,
    which a world of 100,000 domains holds millions of. Measured with
    benchmarks/scale.py's world, 1M messages to 100,000 domains, 3 rounds alternating:
    24.2-24.9 s with the defaults, 18.4-20.0 s with these. The collector stays on (a
    cycle that some future rule makes is still freed, later), and nothing is left to
    collect at the end, as there would be had it been switched off (1.5 s then).
    """
    defaults = gc.get_threshold()
    gc.set_threshold(*RUN_COLLECTOR_THRESHOLDS)
    # What exists now (the built world, and whatever the process held before) lives
    # at least as long as the run: no collection during it need walk it. Its objects
    # are still freed by reference counting; they go back to the oldest generation
    # after, where one full collection soon walks them (0.9 s for 100,000 domains).
    # With the world built without collections (``collector_paused``), a 3M-message
    # run among 100,000 domains spent 1.7 s of 19 s in the collector without this,
    # 0.2 s with it (N=1 each, issue 22).
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()
        gc.set_threshold(*defaults)


@contextmanager
def collector_paused() -> Iterator[None]:
    """No cyclic collection while a world is built, the collector as it was after.

    Building a world makes millions of long-lived objects for a large population and
    frees almost none, so each collection walks ever more of them for nothing: the
    world of benchmarks/scale.py (100,000 domains) took 4.1-4.3 s to build with the
    default thresholds, 2.3 s without collections (N=2 each, issue 22). What the build
    lets go of in cycles (pydantic's copies) is collected once the collector is back.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def run(
    scenario: Scenario,
    replication: int = 0,
    *,
    progress: ProgressCallback | None = None,
    trace: bool = False,
) -> RunResult:
    """Simulate ``scenario`` once and return its tables.

    ``replication`` selects the random streams (with the scenario's seed); ``trace``
    keeps the exact per-message timeline (for tests and small worlds only).
    """
    return Simulation(scenario, replication, trace=trace).run(progress)
