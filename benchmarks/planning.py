"""What a generated domain costs before its first message is sent: its plan and its queue.

Usage: python benchmarks/planning.py [--domains 100000] [--runs 3] [--before PATH]

Builds ``scale.py``'s world (one opportunistic sender, a Zipf population of
``--domains`` domains whose hosts all take TLS) and asks, for every domain in turn,
what a run asks when the domain gets its first message: its route and queue plan
(``Plan.route``), then the world's queue and host endpoints for it
(``World.dispatch``). A tree that plans a generated population by kind
(``sim/plan/generated.py``) decides every domain's route at once instead
(``GeneratedRoutes.plan_all``), and fills each domain's names in when its queue is
made: compare "plan+queues" between trees, not "plan" alone. Each round runs in a
fresh process; with ``--before`` (a checkout of the code before, ``git worktree add
/tmp/before <commit>``) the two trees alternate, so a busy machine slows both alike.
The cyclic collector is as each tree's build has it: paused where the tree pauses it
while it builds a world, else CPython's defaults. Prints min and median per phase, in
seconds and in microseconds a domain. Issue 22's goal: 100,000 domains planned in well
under a second.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent

# Run in the child, with PYTHONPATH set to the tree measured (its own scale.py world).
_CHILD = """
import gc, json, sys, time
sys.path.insert(0, {benchmarks!r})
from scale import scale_world
from sim.population import generate
import sim.simulate
from sim.simulate import Simulation

# The collector as this tree's build has it: paused where the tree pauses it
# (collector_paused), else CPython's defaults, as Simulation() ran under them.
if hasattr(sim.simulate, "collector_paused"):
    gc.disable()
scenario = scale_world(1000, {domains}, 0.0, 24.0, "exchange2016")
started = time.perf_counter()
names = generate(scenario.remotes.population).names()
generated = time.perf_counter()
simulation = Simulation(scenario)
world, source = simulation.world, scenario.organisation.servers[0].name
route = world.plan.route
built = time.perf_counter()
if hasattr(world.plan, "generated"):  # planned by kind, all at once (sim/plan/generated.py)
    world.plan.generated(source).plan_all()
else:
    for name in names:
        route(source, name)
planned = time.perf_counter()
dispatch = world.dispatch
for name in names:
    dispatch(source, name)
queued = time.perf_counter()
import sim
assert sim.__file__.startswith({tree!r}), sim.__file__  # the tree measured, not the installed one
print(json.dumps({{"generate": generated - started, "plan": planned - built, "queues": queued - planned}}))
"""

PHASES = ("generate", "plan", "queues")


def _phases(tree: Path, domains: int) -> dict[str, float]:
    code = _CHILD.format(benchmarks=str(tree / "benchmarks"), domains=domains, tree=str(tree))
    environment = {**os.environ, "PYTHONPATH": str(tree)}
    done = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True, env=environment, cwd=tree
    )
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--domains", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--before", type=Path)
    arguments = parser.parse_args()
    trees = {"after": HERE} if arguments.before is None else {"before": arguments.before.resolve(), "after": HERE}
    times: dict[str, list[dict[str, float]]] = {name: [] for name in trees}
    for _ in range(arguments.runs):
        for name, tree in trees.items():
            times[name].append(_phases(tree, arguments.domains))
    per = 1e6 / arguments.domains
    for phase in (*PHASES, "plan+queues"):
        for name, rounds in times.items():
            values = [r["plan"] + r["queues"] if phase == "plan+queues" else r[phase] for r in rounds]
            low, middle = min(values), statistics.median(values)
            print(
                f"{phase:12} {name:6} min {low:6.2f} s  median {middle:6.2f} s  "
                f"({per * middle:6.1f} us a domain, N={arguments.runs})"
            )
    label = "before" if "before" in times else "after"
    plan_s = statistics.median(r["plan"] + r["queues"] for r in times["after"])
    if label == "before":
        base = statistics.median(r["plan"] + r["queues"] for r in times["before"])
        print(f"plan+queues speed-up of medians {base / plan_s:.2f}x")
    print(f"planned_s {plan_s:.2f}")


if __name__ == "__main__":
    main()
