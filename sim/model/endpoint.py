"""Remote hosts as the model sees them: shared runtime state, and one queue's view of each."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from sim.policy.rules import PolicyType
from sim.scenario.model import RemoteHost
from sim.tls.sessions import SessionPlan


class Endpoint:
    """A receiving host: how fast it takes mail, when it is down, whether it greylists.

    Down periods are precomputed for the whole run (fixed ones from the scenario, random
    ones from the host's own stream), so ``is_up`` is a binary search, not an event.
    """

    __slots__ = ("_ends", "_starts", "greylist", "name", "seconds_per_byte", "session_setup")

    def __init__(
        self,
        name: str,
        session_setup: float,
        bandwidth_mbps: float,
        down: list[tuple[float, float]],
        greylist: float | None,
    ) -> None:
        self.name = name
        self.session_setup = session_setup
        self.seconds_per_byte = 8.0 / (bandwidth_mbps * 1e6)
        merged = _merge(down)
        # A host that is never down (most of a large population) shares the empty tuple.
        self._starts: Sequence[float] = [start for start, _ in merged] if merged else ()
        self._ends: Sequence[float] = [end for _, end in merged] if merged else ()
        self.greylist = greylist

    @classmethod
    def from_host(cls, host: RemoteHost, horizon: float, rng: np.random.Generator | None) -> Endpoint:
        down = [(o.start, o.end) for o in host.down]
        if host.outages is not None and rng is not None:
            down += random_outages(host.outages.mean_up, host.outages.mean_down, horizon, rng)
        return cls(host.host, host.session_setup, host.bandwidth_mbps, down, host.greylist)

    @property
    def has_outages(self) -> bool:
        return bool(self._starts)

    def is_up(self, now: float) -> bool:
        i = bisect_right(self._starts, now) - 1
        return i < 0 or now >= self._ends[i]

    def transfer_time(self, size: float) -> float:
        return self.session_setup + size * self.seconds_per_byte


def random_outages(
    mean_up: float, mean_down: float, horizon: float, rng: np.random.Generator
) -> list[tuple[float, float]]:
    """Alternating exponential up and down periods from t=0 (up) to ``horizon``."""
    periods: list[tuple[float, float]] = []
    now = float(rng.exponential(mean_up))
    while now < horizon:
        length = float(rng.exponential(mean_down))
        periods.append((now, now + length))
        now += length + float(rng.exponential(mean_up))
    return periods


def _merge(periods: list[tuple[float, float]]) -> list[tuple[float, float]]:
    merged: list[tuple[float, float]] = []
    for start, end in sorted(periods):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


@dataclass(frozen=True, slots=True)
class HostLink:
    """One queue's view of a host: where it is (availability, speed) and what a session
    with it comes to at each instant (``SessionPlan``), also under an enforced MTA-STS
    policy (``enforced``), with the policy type that governs each (for REQUIRETLS and
    TLS-RPT), and whether it advertises REQUIRETLS."""

    endpoint: Endpoint
    plan: SessionPlan
    enforced: SessionPlan | None = None
    policy_type: PolicyType | None = None
    enforced_type: PolicyType | None = None
    requiretls: bool = False
