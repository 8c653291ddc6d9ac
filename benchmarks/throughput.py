"""Throughput of the mail-flow model against a bare SimPy M/M/1 model, in one process.

Usage: python benchmarks/throughput.py [--messages N]

Simulates an all-delivering outbound scenario (opportunistic TLS, 50 trusted domains)
of at least N messages, then a textbook SimPy M/M/1 model (a process per customer and
a Resource) with the same number of customers, and prints both rates, the peak
resident memory after the mail model, and last a line ``ratio <messages/s / customers/s>``.
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np
import simpy

from sim.scenario.loader import check_references
from sim.scenario.model import Scenario
from sim.simulate import run


def mail_scenario(messages: int) -> Scenario:
    hours = 20.0
    domains = [
        {"name": f"d{i}.example", "mx": [{"host": f"mx.d{i}.example", "tls": "trusted", "session_setup": "0.2s"}]}
        for i in range(50)
    ]
    document = {
        "name": "throughput",
        "organisation": {
            "organisation": "bench",
            "routing_groups": [{"name": "hq"}],
            "servers": [
                {
                    "name": "EX1",
                    "routing_group": "hq",
                    "virtual_servers": [{"name": "smtp", "outbound_tls": "opportunistic"}],
                }
            ],
            "connectors": [{"name": "internet", "source": ["EX1/smtp"], "address_spaces": [{"pattern": "*"}]}],
        },
        "remotes": {"domains": domains},
        "traffic": {
            "outbound": {
                "rate_per_hour": messages * 1.02 / hours,
                "domains": {d["name"]: 1.0 / (i + 1) for i, d in enumerate(domains)},
            }
        },
        "run": {"duration": f"{hours}h", "seed": 1, "sample_interval": "15m"},
    }
    scenario = Scenario.model_validate(document)
    check_references(scenario, "<benchmark>")
    return scenario


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=200_000)
    args = parser.parse_args()

    scenario = mail_scenario(args.messages)
    started = time.perf_counter()
    result = run(scenario)
    elapsed = time.perf_counter() - started
    row = result.summary_row
    messages = row["out_messages"]
    assert messages >= args.messages, messages
    assert row["out_delivered"] + row["out_queued_at_end"] == messages
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    messages_per_s = messages / elapsed
    print(f"mail model: {messages} messages in {elapsed:.2f} s = {messages_per_s:,.0f} messages/s")
    print(f"peak memory (resident, after the mail model): {peak_mb:.0f} MB")

    customers_per_s = mm1(messages)
    print(f"bare SimPy M/M/1: {messages} customers = {customers_per_s:,.0f} customers/s")
    print(f"ratio {messages_per_s / customers_per_s:.3f}")


if __name__ == "__main__":
    main()
