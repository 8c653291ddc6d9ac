"""Outbound traffic: Poisson arrivals per flow, recipient domains by weight, sizes by distribution.

Each flow is one chain of SimPy callbacks (one pending event at a time), with every
random number drawn in numpy blocks from the flow's own streams.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import simpy
from simpy.events import Timeout

from sim.model.message import DomainStats, Message
from sim.model.streams import BlockDraws, Stream, generator
from sim.model.world import World
from sim.scenario.model import MessageSize, OutboundFlow


def size_sampler(size: MessageSize, rng: np.random.Generator) -> BlockDraws:
    """Message sizes in bytes, with the requested mean."""
    mean = size.mean_kb * 1024.0
    if size.distribution == "fixed":
        return BlockDraws(lambda n: np.full(n, mean))
    if size.distribution == "exponential":
        return BlockDraws(lambda n: rng.exponential(mean, n))
    # lognormal with the given mean: mu = ln(mean) - sigma^2 / 2
    mu = float(np.log(mean) - size.sigma**2 / 2)
    sigma = size.sigma
    return BlockDraws(lambda n: rng.lognormal(mu, sigma, n))


class OutboundSource:
    """Generates one flow's messages until ``stop`` and submits them to the world."""

    def __init__(
        self,
        env: simpy.Environment,
        world: World,
        flow: OutboundFlow,
        index: int,
        replication: int,
        stop: float,
        ids: list[int],
    ) -> None:
        seed = world.scenario.run.seed
        self.env = env
        self.world = world
        self.stop = stop
        self.ids = ids  # shared counter across flows: [next id]
        self.source = flow.from_server or world.scenario.organisation.servers[0].name
        names = list(flow.domains)
        weights = np.array([flow.domains[n] for n in names], dtype=float)
        weights /= weights.sum()
        self.stats: list[DomainStats] = [world.metrics.domain(n) for n in names]
        arrivals = generator(seed, replication, Stream.ARRIVALS, index)
        picks = generator(seed, replication, Stream.DOMAINS, index)
        sizes = generator(seed, replication, Stream.SIZES, index)
        mean_gap = 3600.0 / flow.rate_per_hour
        self.gap = BlockDraws(lambda n: arrivals.exponential(mean_gap, n))
        self.pick = BlockDraws(lambda n: picks.choice(len(names), n, p=weights))
        self.size = size_sampler(flow.size, sizes)

    def start(self) -> None:
        self._schedule()

    def _schedule(self) -> None:
        gap = self.gap()
        if self.env.now + gap >= self.stop:
            return
        Timeout(self.env, gap).callbacks.append(self._arrive)

    def _arrive(self, _event: Any) -> None:
        ident = self.ids[0]
        self.ids[0] = ident + 1
        stats = self.stats[int(self.pick())]
        message = Message(ident, self.env.now, self.size(), stats)
        self.world.metrics.accepted(message)
        self.world.submit(self.source, message)
        self._schedule()
