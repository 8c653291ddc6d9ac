"""One run: ``run(scenario, replication) -> RunResult``, a pure function of its inputs."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import simpy
from simpy.events import Timeout

from sim.model.metrics import Metrics
from sim.model.traffic import OutboundSource
from sim.model.world import World
from sim.results import RunResult
from sim.scenario.loader import scenario_hash
from sim.scenario.model import Scenario

PROGRESS_STEPS = 100  # env.run in chunks costs a few percent (des-practice s.3)

ProgressCallback = Callable[[float], None]


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
    started = time.perf_counter()
    env = simpy.Environment()
    metrics = Metrics(trace=trace)
    world = World(scenario, env, metrics, replication)
    duration = scenario.run.duration
    ids = [0]
    for index, flow in enumerate(scenario.traffic.outbound):
        OutboundSource(env, world, flow, index, replication, duration, ids).start()
    _start_sampler(env, world, scenario.run.sample_interval, duration)
    if progress is None:
        env.run(until=duration)
    else:
        for step in range(1, PROGRESS_STEPS + 1):
            env.run(until=duration * step / PROGRESS_STEPS)
            progress(step / PROGRESS_STEPS)
    wall = time.perf_counter() - started
    return RunResult.collect(scenario, scenario_hash(scenario), replication, world, metrics, wall)


def _start_sampler(env: simpy.Environment, world: World, interval: float, duration: float) -> None:
    samples = world.metrics.samples

    def sample(_event: Any) -> None:
        now = env.now
        for queue in world.queues.values():
            samples.append((now, queue.name, queue.depth, queue.in_retry))
        if now + interval <= duration:
            Timeout(env, interval).callbacks.append(sample)

    # The sample at t=0 sees empty queues; later ones see the state after that instant's events.
    Timeout(env, 0).callbacks.append(sample)
