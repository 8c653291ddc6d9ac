"""Traffic: Poisson arrivals per flow, destinations by weight, sizes by distribution.

Each flow is one chain of SimPy callbacks (one pending event at a time), with every
random number drawn in numpy blocks from the flow's own streams.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from heapq import heappush

import numpy as np
import simpy
from simpy.events import NORMAL

from sim.model.clock import Due, call_in, heap_of
from sim.model.message import DomainStats, Message
from sim.model.metrics import Metrics
from sim.model.queue import DeliveryQueue
from sim.model.world import World
from sim.population import generate
from sim.scenario.model import InboundFlow, MessageSize, OutboundFlow
from sim.streams import Draws, Stream, block_draws, generator, weighted_picks


def size_sampler(size: MessageSize, rng: np.random.Generator) -> Draws[float]:
    """Message sizes in bytes, with the requested mean."""
    return block_draws(size_blocks(size, rng))


def size_blocks(size: MessageSize, rng: np.random.Generator) -> Callable[[int], np.ndarray]:
    """``n`` message sizes in bytes at a time, with the requested mean."""
    mean = size.mean_kb * 1024.0
    if size.distribution == "fixed":
        return lambda n: np.full(n, mean)
    if size.distribution == "exponential":
        return lambda n: rng.exponential(mean, n)
    # lognormal with the given mean: mu = ln(mean) - sigma^2 / 2
    mu = float(np.log(mean) - size.sigma**2 / 2)
    sigma = size.sigma
    return lambda n: rng.lognormal(mu, sigma, n)


class PoissonSource:
    """Messages at Poisson times until ``stop``; each one built and handed on by ``emit``
    (given the instant: reading the clock is a property call). One arrival is pending at
    a time, so one ``Due`` serves them all: rescheduled as it runs."""

    def __init__(
        self,
        env: simpy.Environment,
        rate_per_hour: float,
        rng: np.random.Generator,
        stop: float,
        emit: Callable[[float], None],
    ) -> None:
        self.env = env
        self.stop = stop
        self.emit = emit
        mean_gap = 3600.0 / rate_per_hour
        self.gap: Draws[float] = block_draws(lambda n: rng.exponential(mean_gap, n))
        self._heap, self._ids = heap_of(env)

    def start(self) -> None:
        gap = self.gap()
        if self.env.now + gap < self.stop:
            # The Due's value is its callbacks, to restore as it is rescheduled (held by
            # the Due, not by this source: no reference cycle).
            call_in(self.env, gap, self._arrive, (self._arrive,))

    def _arrive(self, due: Due) -> None:
        self.emit(due.at)
        # The next arrival (``start``, written out: this runs once a message): the same
        # Due, its callbacks restored (the loop cleared them), pushed as ``schedule`` would.
        at = due.at + self.gap()  # due.at: now
        if at < self.stop:
            due.at, due.callbacks = at, due.value
            heappush(self._heap, (at, NORMAL, next(self._ids), due))


def make_ahead(
    world: World, source: str, names: list[str], expected: np.ndarray, stats: list[DomainStats | None]
) -> None:
    """Make now, before the run, the tallies and queues of the domains expected to get
    mail (``expected``: messages on average, a message or more), the most popular first
    (``World.prepare``). Their routes are planned first, so that what a message touches
    (tallies, queue, host) lies together in memory, apart from what only planning reads.
    Nothing shows in the results: a queue joins the world with its first mail, and the
    tables list only domains that got mail (tests/test_memory.py)."""
    likely = np.argsort(-expected, kind="stable")[: int(np.count_nonzero(expected >= 1.0))].tolist()
    for i in likely:
        world.plan_route(source, names[i])
    for i in likely:
        stats[i] = world.metrics.domain(names[i])
        world.prepare(source, names[i])


def outbound_source(
    env: simpy.Environment, world: World, flow: OutboundFlow, index: int, stop: float, ids: Iterator[int]
) -> PoissonSource:
    """Our users' mail to the Internet: recipient domains by weight (named, then population)."""
    seed, replication = world.scenario.run.seed, world.replication
    names = list(flow.domains)
    weights = [flow.domains[n] for n in names]
    population = world.scenario.remotes.population
    if population is not None and flow.population_weight > 0:
        generated = generate(population)
        names += generated.names()
        weights += [flow.population_weight * p for p in generated.popularity]
    probabilities = np.array(weights, dtype=float)
    probabilities /= probabilities.sum()
    source = flow.from_server or world.scenario.organisation.servers[0].name
    metrics = world.metrics
    # A domain's tallies are made when it gets its first message (most of a large
    # population may get none; the tables list only domains that got mail), or ahead.
    stats: list[DomainStats | None] = [None] * len(names)
    make_ahead(world, source, names, probabilities * (flow.rate_per_hour * stop / 3600.0), stats)
    picks = weighted_picks(generator(seed, replication, Stream.DOMAINS, index), probabilities)
    sizes = size_blocks(flow.size, generator(seed, replication, Stream.SIZES, index))

    # (domain index, size) a message in one call, each from its own stream (common
    # random numbers): the pairs are the two streams' blocks side by side.
    def pairs(n: int) -> np.ndarray:
        return np.column_stack((picks(n), sizes(n)))

    draw: Draws[list[float]] = block_draws(pairs)
    share = flow.requiretls
    marks: Draws[float] | None = None
    if share > 0:
        marks = block_draws(generator(seed, replication, Stream.REQUIRETLS, index).random)
    submit = world.submit
    # Per domain, the one queue its mail goes to under the plan in force (``only_queue``),
    # looked up by the domain's number: no (server, domain) key to hash a message.
    routed: list[DeliveryQueue | None] = [None] * len(names)
    plan_count = world.plan_count

    def emit(now: float) -> None:
        nonlocal plan_count
        pick, size = draw()
        index = int(pick)
        domain = stats[index]
        if domain is None:
            domain = stats[index] = metrics.domain(names[index])
        message = Message(next(ids), now, size, domain)
        if marks is not None and marks() < share:
            message.requiretls = True
        metrics.accepted(message)
        queue = routed[index]
        if queue is not None and plan_count == world.plan_count and not message.requiretls:
            queue.submit(message)
            return
        if plan_count != world.plan_count:  # a change replanned the world: forget every route
            routed[:] = [None] * len(names)
            plan_count = world.plan_count
        submit(source, message)
        routed[index] = world.only_queue(source, domain.domain)

    return PoissonSource(env, flow.rate_per_hour, generator(seed, replication, Stream.ARRIVALS, index), stop, emit)


def inbound_source(
    env: simpy.Environment, world: World, flow: InboundFlow, index: int, stop: float, ids: Iterator[int]
) -> PoissonSource:
    """A remote domain's mail to us, entering the queue at its own MTA."""
    seed, replication = world.scenario.run.seed, world.replication
    metrics: Metrics = world.inbound_metrics
    stats = metrics.domain(flow.from_domain)
    queue = world.sender_queue(flow)
    stats.route = queue.name.split("|", 1)[1]  # the receiving virtual server, or our MX hosts
    size = size_sampler(flow.size, generator(seed, replication, Stream.INBOUND_SIZES, index))
    if flow.observed_failures:
        # Shares of its mail meet observed failures: each share has its own queue, and a
        # stream of its own picks one per message (so no other draw changes).
        parts = [world.sender_queue(flow, n) for n in range(1, len(flow.observed_failures) + 1)]
        bounds = np.cumsum([f.share for f in flow.observed_failures]).tolist()
        pick: Draws[float] = block_draws(generator(seed, replication, Stream.INBOUND_PARTS, index).random)

        def emit(now: float) -> None:
            message = Message(next(ids), now, size(), stats)
            metrics.accepted(message)
            draw = pick()
            target = next((parts[n] for n, bound in enumerate(bounds) if draw < bound), queue)
            target.submit(message)
    else:

        def emit(now: float) -> None:
            message = Message(next(ids), now, size(), stats)
            metrics.accepted(message)
            queue.submit(message)

    arrivals = generator(seed, replication, Stream.INBOUND_ARRIVALS, index)
    return PoissonSource(env, flow.rate_per_hour, arrivals, stop, emit)
