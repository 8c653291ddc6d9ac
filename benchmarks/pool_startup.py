"""The fixed cost of a sweep's local process pool: start 2 workers as ``sweep`` does and
wait until each has unpickled the task function (so imported what a task needs).

Usage: python benchmarks/pool_startup.py [--repeat 5]

Prints each try and last ``pool_startup_s <best>``. ``benchmarks/sweep_scaling.py``
prints the same figure before its speed-ups.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path


def pool_startup(workers: int = 2) -> float:
    """Seconds from creating the pool to every worker having run an (empty) batch.
    (Imports stay in here: a spawned worker re-imports this script's top level, as it
    would the ``tlssim`` command's, which imports nothing heavy.)"""
    from sim.experiment.runner import run_batch
    from sim.experiment.sweep import _executor

    started = time.perf_counter()
    executor, _, _, close = _executor(workers, None, Path("<benchmark>"))
    futures = [executor.submit(run_batch, []) for _ in range(workers)]
    for future in futures:
        future.result()
    elapsed = time.perf_counter() - started
    close(True)
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    tries = [pool_startup() for _ in range(args.repeat)]
    print("tries: " + ", ".join(f"{t:.2f}" for t in tries))
    print(f"pool_startup_s {min(tries):.3f}")


if __name__ == "__main__":
    main()
