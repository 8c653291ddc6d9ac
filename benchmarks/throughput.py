"""Throughput of the mail-flow model against a bare SimPy M/M/1 model, in one process.

Usage: python benchmarks/throughput.py [--messages N] [--repeat R]

Simulates an all-delivering outbound scenario (opportunistic TLS, 50 trusted domains)
of at least N messages; then the floor of its design, a model of the same shape with no
logic (a chain of arrival Timeouts, each starting one transfer Timeout whose callback
counts it: 2 SimPy events a message); then a textbook SimPy M/M/1 model (a process per
customer and a Resource) with as many customers. Each is run R times, alternating, and
the best kept (this machine is shared). Prints the mail model's SimPy events per message
and microseconds per message against the floor's, the peak resident memory, and last a
line ``ratio <messages/s / customers/s>``.
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np
import simpy
from simpy.events import Timeout
from worlds import one_sender

from sim.scenario.model import Scenario
from sim.simulate import Simulation


def mail_scenario(messages: int) -> Scenario:
    hours = 20.0
    domains = [
        {"name": f"d{i}.example", "mx": [{"host": f"mx.d{i}.example", "tls": "trusted", "session_setup": "0.2s"}]}
        for i in range(50)
    ]
    return one_sender(
        "throughput",
        outbound_tls="opportunistic",
        remotes={"domains": domains},
        outbound={
            "rate_per_hour": messages * 1.02 / hours,
            "domains": {d["name"]: 1.0 / (i + 1) for i, d in enumerate(domains)},
        },
        duration=f"{hours}h",
        sample_interval="15m",
    )


def mm1(customers: int, lam: float = 0.9, mu: float = 1.0, seed: int = 1) -> float:
    """A bare SimPy M/M/1 run; returns customers per second of wall time."""
    rng = np.random.default_rng(seed)
    gaps = rng.exponential(1 / lam, customers).tolist()
    services = rng.exponential(1 / mu, customers).tolist()
    env = simpy.Environment()
    server = simpy.Resource(env, capacity=1)
    waits: list[float] = []

    def customer(service: float):
        arrived = env.now
        with server.request() as request:
            yield request
            waits.append(env.now - arrived)
            yield env.timeout(service)

    def source():
        for gap, service in zip(gaps, services, strict=True):
            yield env.timeout(gap)
            env.process(customer(service))

    env.process(source())
    started = time.perf_counter()
    env.run()
    elapsed = time.perf_counter() - started
    assert len(waits) == customers
    return customers / elapsed


def floor(messages: int, seed: int = 1) -> tuple[float, int]:
    """The bare 2-event model: (messages per second of wall time, SimPy events scheduled)."""
    rng = np.random.default_rng(seed)
    gaps = rng.exponential(1.0, messages).tolist()
    transfers = rng.exponential(0.1, messages).tolist()
    env = simpy.Environment()
    done = [0]
    position = [0]

    def transferred(_event: object) -> None:
        done[0] += 1

    def arrive(_event: object) -> None:
        i = position[0]
        Timeout(env, transfers[i]).callbacks.append(transferred)
        position[0] = i + 1
        if i + 1 < messages:
            Timeout(env, gaps[i + 1]).callbacks.append(arrive)

    Timeout(env, gaps[0]).callbacks.append(arrive)
    started = time.perf_counter()
    env.run()
    elapsed = time.perf_counter() - started
    assert done[0] == messages
    return messages / elapsed, next(env._eid)


def mail(scenario: Scenario) -> tuple[int, float, int]:
    """One run of the mail model: (messages, wall seconds, SimPy events scheduled)."""
    simulation = Simulation(scenario)
    started = time.perf_counter()
    row = simulation.run().summary_row
    elapsed = time.perf_counter() - started
    messages = row["out_messages"]
    assert row["out_delivered"] + row["out_queued_at_end"] == messages
    events = next(simulation.env._eid)  # SimPy numbers every event it schedules
    return messages, elapsed, events


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    scenario = mail_scenario(args.messages)
    best = {"mail": 0.0, "floor": 0.0, "mm1": 0.0}
    for _ in range(args.repeat):
        messages, elapsed, events = mail(scenario)
        best["mail"] = max(best["mail"], messages / elapsed)
        floor_rate, floor_events = floor(messages)
        best["floor"] = max(best["floor"], floor_rate)
        best["mm1"] = max(best["mm1"], mm1(messages))
    assert messages >= args.messages, messages
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{messages:,} messages, best of {args.repeat} runs each, alternating")
    print(
        f"mail model: {best['mail']:,.0f} messages/s, {1e6 / best['mail']:.2f} us/message, "
        f"{events / messages:.2f} SimPy events/message"
    )
    print(
        f"bare 2-event floor: {best['floor']:,.0f} messages/s, {1e6 / best['floor']:.2f} us/message, "
        f"{floor_events / messages:.2f} SimPy events/message"
    )
    print(f"mail model at {best['mail'] / best['floor']:.2f} of the floor's rate")
    print(f"bare SimPy M/M/1: {best['mm1']:,.0f} customers/s")
    print(f"peak memory (resident): {peak_mb:.0f} MB")
    print(f"ratio {best['mail'] / best['mm1']:.3f}")


if __name__ == "__main__":
    main()
