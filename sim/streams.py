"""Random streams: one numpy generator per source of randomness, keyed, never global.

``SeedSequence(root_seed, spawn_key=(replication, stream, index))`` gives every
(replication, source) its own stream, independent of how many other streams exist and
of the executor, so policies compared under the same seed see the same arrivals
(common random numbers; reference/des-practice.md section 4).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from enum import IntEnum
from functools import partial
from typing import Any, TypeVar

import numpy as np

T = TypeVar("T")

BLOCK = 4096  # draws per numpy call: about 0.02 us a draw instead of 0.3 us (des-practice s.3)


class Stream(IntEnum):
    ARRIVALS = 0
    DOMAINS = 1
    SIZES = 2
    LOAD_SHARE = 3
    AVAILABILITY = 4
    INBOUND_ARRIVALS = 5
    INBOUND_SIZES = 6
    REQUIRETLS = 7
    INBOUND_PARTS = 8


def generator(seed: int, replication: int, stream: Stream, index: int = 0) -> np.random.Generator:
    """The generator for ``stream`` (of flow or entity ``index``) in one replication."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(replication, int(stream), index)))


Draws = Callable[[], T]
"""One draw at a time: ``draws()`` gives the next number (or row) of its stream."""


def block_draws(draw: Callable[[int], np.ndarray]) -> Draws[Any]:
    """Hands out draws one at a time from numpy blocks of ``BLOCK`` (a row of a 2-D
    block is one draw: several streams' numbers side by side). A block is drawn when the
    one before is used up, so the numbers are those of one draw per call. The call is
    ``next`` on a chained iterator, made in C: two draws a message cost no Python frame."""
    blocks = (draw(BLOCK).tolist() for _ in itertools.count())
    return partial(next, itertools.chain.from_iterable(blocks))


def cumulative_shares(shares: Sequence[float] | np.ndarray) -> np.ndarray:
    """The running sums of ``shares``, scaled to end at 1: what ``Generator.choice(p=...)``
    compares its uniforms with (index i where the uniform first falls below sum i)."""
    cumulative = np.cumsum(shares, dtype=float)
    cumulative /= cumulative[-1]
    return cumulative


def weighted_picks(rng: np.random.Generator, probabilities: np.ndarray) -> Callable[[int], np.ndarray]:
    """``n`` indices at a time, index i with probability ``probabilities[i]``: the numbers
    ``rng.choice(len(probabilities), n, p=probabilities)`` gives, which draws this way
    (cumulative shares, n uniforms, searchsorted to the right) but remakes and checks
    the sums at every call: 0.29 us a draw among 100,000 domains, 0.10 us with the sums
    made once."""
    cumulative = cumulative_shares(probabilities)
    return lambda n: cumulative.searchsorted(rng.random(n), side="right")
