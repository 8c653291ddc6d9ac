"""How a Postfix world with a deferred backlog grows with simulated duration.

Usage: python benchmarks/growth.py [--days 1 2 4 8] [--repeat 3] [--rate 2000]

A Postfix sender (``encrypt``: TLS required) sends ``--rate`` messages an hour; 30% of
them go to three domains whose MX hosts offer no STARTTLS, so they are deferred until
maximal_queue_lifetime (5 d) returns them. Each duration is run ``--repeat`` times, the
durations interleaved in each round (this machine is shared), and the best CPU time of
each is kept. The last line is ``exponent X``: the least-squares slope of log(CPU time)
against log(duration). Linear growth is 1; issue 13's goal is at most 1.1.
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
from worlds import one_sender

from sim.scenario.model import Scenario
from sim.simulate import run

UNDELIVERABLE_SHARE = 0.3


def backlog_world(days: float, rate_per_hour: float) -> Scenario:
    good = [{"name": f"ok{i}.example", "mx": [{"host": f"mx.ok{i}.example", "tls": "trusted"}]} for i in range(7)]
    bad = [{"name": f"plain{i}.example", "mx": [{"host": f"mx.plain{i}.example", "tls": "none"}]} for i in range(3)]
    weights = {d["name"]: (1 - UNDELIVERABLE_SHARE) / len(good) for d in good}
    weights |= {d["name"]: UNDELIVERABLE_SHARE / len(bad) for d in bad}
    return one_sender(
        f"growth-{days:g}d",
        profile="postfix",
        outbound_tls="required",  # Postfix "encrypt"
        remotes={"domains": good + bad},
        outbound={"rate_per_hour": rate_per_hour, "domains": weights},
        duration=f"{days:g}d",
        sample_interval="1h",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=float, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--rate", type=float, default=2000.0)
    args = parser.parse_args()
    if len(set(args.days)) < 2 or min(args.days) <= 0:
        parser.error("--days needs at least two different positive durations to fit an exponent")
    best = {days: math.inf for days in args.days}
    facts: dict[float, tuple[int, int, int]] = {}
    for _ in range(args.repeat):
        for days in args.days:
            scenario = backlog_world(days, args.rate)
            started = time.process_time()
            row = run(scenario).summary_row
            best[days] = min(best[days], time.process_time() - started)
            facts[days] = (row["out_messages"], row["out_deferrals"] + row["out_deferrals_suspended"], row["out_ndr"])
    print(f"Postfix, {args.rate:g} messages/h, {UNDELIVERABLE_SHARE:.0%} undeliverable; best CPU of {args.repeat}")
    print(f"{'days':>5} {'messages':>9} {'deferrals':>10} {'NDRs':>7} {'cpu_s':>7} {'us/event':>9}")
    for days in args.days:
        messages, deferrals, ndrs = facts[days]
        per = 1e6 * best[days] / max(messages + deferrals, 1)  # an event: a message or a deferral
        print(f"{days:5g} {messages:9,} {deferrals:10,} {ndrs:7,} {best[days]:7.2f} {per:9.2f}")
    slope = np.polyfit(np.log(args.days), np.log([best[d] for d in args.days]), 1)[0]
    print(f"exponent {slope:.2f}")


if __name__ == "__main__":
    main()
