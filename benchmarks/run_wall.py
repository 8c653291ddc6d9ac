"""Wall time of ``tlssim run`` as a whole process, this tree against another checkout.

Usage: python benchmarks/run_wall.py --before PATH [--scenario force-tls-2024] [--runs N]

PATH is a checkout of the code before (``git worktree add /tmp/before <commit>``); it
runs with this interpreter and PYTHONPATH=PATH. Each command runs N times (default 5)
in fresh processes, alternating before and after, with and without the report, so a
busy machine slows both alike. Prints min and median per case and the speed-up of the
medians. Issue 22's goals: with the report >= 2.5x, without it >= 2x.
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


def _seconds(tree: Path, scenario: str, out: Path, report: bool) -> float:
    command = [sys.executable, "-m", "sim", "run", scenario, "--out", str(out), "-q"]
    if not report:
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
    times: dict[tuple[str, bool], list[float]] = {(t, r): [] for t in trees for r in (True, False)}
    with tempfile.TemporaryDirectory() as scratch:
        for _ in range(arguments.runs):
            for report in (True, False):
                for name, tree in trees.items():
                    out = Path(scratch) / f"{name}-{report}"
                    times[(name, report)].append(_seconds(tree, arguments.scenario, out, report))
    for report in (True, False):
        label = "with report" if report else "no report"
        before, after = times[("before", report)], times[("after", report)]
        for name, values in (("before", before), ("after", after)):
            print(f"{label:12} {name:7} min {min(values):.2f} s  median {statistics.median(values):.2f} s")
        print(
            f"{label:12} speed-up of medians {statistics.median(before) / statistics.median(after):.2f}x "
            f"(N={arguments.runs} each)"
        )


if __name__ == "__main__":
    main()
