"""The model against queueing theory: with TLS out of the picture, one next-hop queue
with c connection slots, Poisson arrivals and exponential transfer times is an M/M/c
queue, so the mean time from arrival to delivery must match Erlang C."""

from __future__ import annotations

import math

import numpy as np
import pytest
from worlds import host, organisation, scenario

from sim.simulate import run

# Student t quantiles (two-sided 99%) for n - 1 degrees of freedom.
T_99 = {9: 3.250, 19: 2.861}


def erlang_c_sojourn(lam: float, mu: float, c: int) -> float:
    """Mean time in system W = Wq + 1/mu for M/M/c."""
    a = lam / mu
    rho = a / c
    top = a**c / math.factorial(c) / (1 - rho)
    p_wait = top / (sum(a**k / math.factorial(k) for k in range(c)) + top)
    return p_wait / (c * mu - lam) + 1 / mu


def mmc_world(lam_per_s: float, c: int, seed: int):
    # 1 Mbit/s and a 125,000-byte mean size give a mean transfer time of exactly 1 s.
    mx = [host("mx.sink.example", "trusted", max_connections=c, bandwidth_mbps=1.0)]
    traffic = {
        "outbound": {
            "rate_per_hour": lam_per_s * 3600,
            "domains": {"sink.example": 1},
            "size": {"distribution": "exponential", "mean_kb": 125000 / 1024},
        }
    }
    return scenario(
        organisation("off"),
        {"domains": [{"name": "sink.example", "mx": mx}]},
        traffic=traffic,
        duration=40000,
        seed=seed,
    )


@pytest.mark.slow
@pytest.mark.slow
@pytest.mark.parametrize(("lam", "c"), [(0.8, 1), (2.4, 3)])
def test_mean_delivery_delay_matches_erlang_c(lam, c):
    expected = erlang_c_sojourn(lam, 1.0, c)
    s = mmc_world(lam, c, seed=7)
    means = np.array([run(s, replication=r).summary_row["delay_mean_s"] for r in range(10)])
    half_width = T_99[len(means) - 1] * means.std(ddof=1) / math.sqrt(len(means))
    assert abs(means.mean() - expected) <= half_width, (means.mean(), half_width, expected)
    # And the interval is tight enough to mean something (under 10% of the value).
    assert half_width < 0.1 * expected


def test_erlang_c_helper_reduces_to_mm1():
    assert erlang_c_sojourn(0.8, 1.0, 1) == pytest.approx(1 / (1.0 - 0.8))
