"""Wall time of ``tlssim run`` as a whole process, this tree against another checkout.

Usage: python benchmarks/run_wall.py --before PATH [--scenario force-tls-2024] [--runs N]

PATH is a checkout of the code before (``git worktree add /tmp/before <commit>``); it
runs with this interpreter and PYTHONPATH=PATH. Each command runs N times (default 5)
in fresh processes, alternating before and after: ``run`` with and without the report,
and ``validate``, so a busy machine slows both alike. Prints min and median per case
and the speed-up of the medians. Issue 22's goals: with the report >= 2.5x, without it
>= 2x; ``validate`` under 0.3 s of its own (minus a bare ``python -c pass``).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent


def _seconds(tree: Path, scenario: str, out: Path, case: str) -> float:
    if case == "validate":
        command = [sys.executable, "-m", "sim", "validate", scenario]
    elif case == "bare":
        command = [sys.executable, "-c", "pass"]
    else:
        command = [sys.executable, "-m", "sim", "run", scenario, "--out", str(out), "-q"]
    if case == "no report":
        command.append("--no-report")
    environment = {**os.environ, "PYTHONPATH": str(tree)}
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, env=environment, cwd=tree)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, required=True)
    parser.add_argument("--scenario", default="force-tls-2024")
    parser.add_argument("--runs", type=int, default=5)
    arguments = parser.parse_args()
    trees = {"before": arguments.before.resolve(), "after": HERE}
    cases = ("with report", "no report", "validate")
    times: dict[tuple[str, str], list[float]] = {(t, c): [] for t in trees for c in cases}
    bare: list[float] = []
    with tempfile.TemporaryDirectory() as scratch:
        for _ in range(arguments.runs):
            bare.append(_seconds(HERE, "", Path(scratch), "bare"))
            for case in cases:
                for name, tree in trees.items():
                    out = Path(scratch) / f"{name}-{case}"
                    times[(name, case)].append(_seconds(tree, arguments.scenario, out, case))
    print(f"python -c pass: min {min(bare):.2f} s  median {statistics.median(bare):.2f} s")
    for case in cases:
        before, after = times[("before", case)], times[("after", case)]
        for name, values in (("before", before), ("after", after)):
            print(f"{case:12} {name:7} min {min(values):.2f} s  median {statistics.median(values):.2f} s")
        print(
            f"{case:12} speed-up of medians {statistics.median(before) / statistics.median(after):.2f}x "
            f"(N={arguments.runs} each)"
        )


if __name__ == "__main__":
    main()
