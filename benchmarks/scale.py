"""An Internet-sized world: many messages to a generated population of many domains.

Usage: python benchmarks/scale.py [--messages 10000000] [--domains 100000]
                                  [--undeliverable 0.0] [--hours 24] [--profile exchange2016]

One sender (opportunistic TLS, or ``required`` with ``--undeliverable`` > 0 so that the
population's hosts without STARTTLS cannot take mail) sends ``--messages`` messages over
``--hours`` to a Zipf-popular population of ``--domains`` domains whose hosts all take
TLS, except the ``--undeliverable`` share that offers no STARTTLS. Prints the phases
(world build, simulation, tables), wall and CPU time, the peak resident memory of the
process and, per domain that got mail, the cost; the last line is ``wall_s X``.
"""

from __future__ import annotations

import argparse
import resource
import time

from worlds import one_sender

from sim.scenario.model import Scenario
from sim.simulate import Simulation


def scale_world(messages: int, domains: int, undeliverable: float, hours: float, profile: str) -> Scenario:
    tls = {"trusted": 1.0 - undeliverable, "none": undeliverable} if undeliverable > 0 else {"trusted": 1.0}
    return one_sender(
        f"scale-{messages}-{domains}",
        profile=profile,
        outbound_tls="required" if undeliverable > 0 else "opportunistic",
        remotes={"population": {"name": "scale", "domains": domains, "seed": 1, "zipf_exponent": 1.0, "tls": tls}},
        outbound={"rate_per_hour": messages / hours, "population_weight": 1.0},
        duration=f"{hours:g}h",
        sample_interval="1h",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=10_000_000)
    parser.add_argument("--domains", type=int, default=100_000)
    parser.add_argument("--undeliverable", type=float, default=0.0)
    parser.add_argument("--hours", type=float, default=24.0)
    parser.add_argument("--profile", default="exchange2016")
    args = parser.parse_args()
    if not 0 <= args.undeliverable < 1:
        parser.error("--undeliverable is a share in [0, 1)")

    scenario = scale_world(args.messages, args.domains, args.undeliverable, args.hours, args.profile)
    wall0, cpu0 = time.perf_counter(), time.process_time()
    simulation = Simulation(scenario)
    built = time.perf_counter()
    result = simulation.run()
    simulated = built + result.wall_s  # the run's own clock stops before its tables
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    row = result.summary_row
    reached = len(result.per_domain_rows)
    print(
        f"{row['out_messages']:,} messages to {reached:,} of {args.domains:,} domains over {args.hours:g} h "
        f"({args.profile}, {args.undeliverable:.0%} undeliverable)"
    )
    print(f"delivered {row['out_delivered']:,}, NDRs {row['out_ndr']:,}, queued at end {row['out_queued_at_end']:,}")
    print(
        f"build {built - wall0:.1f} s, simulate {simulated - built:.1f} s, tables {wall0 + wall - simulated:.1f} s; "
        f"{1e6 * (simulated - built) / max(row['out_messages'], 1):.2f} us/message"
    )
    print(f"cpu_s {cpu:.1f}")
    print(f"peak_rss_mb {peak_mb:.0f} ({1024 * peak_mb / max(reached, 1):.1f} KB per domain that got mail)")
    print(f"wall_s {wall:.1f}")


if __name__ == "__main__":
    main()
