"""Speed-up of a sweep on 2 workers over 1, and the per-run overhead of the Dask path.

Usage: python benchmarks/sweep_scaling.py [--replications N] [--small-only]

0. Prints the pool start-up (``pool_startup_s``, best of 3) and the 2-worker speed-up
   on sweeps of 16 and 64 one-day runs (best of 3 each, 1 and 2 workers alternating):
   of running the runs (the manifest's ``wall_s``: pool start, pilot run, runs, pool
   close) and of the whole call, which adds the tables and figures (serial, the same
   work for any number of workers).

1. Runs the bundled article-policy-sweep (8 design points x N replications) with
   --workers 1 and --workers 2 into fresh folders, checks the two runs tables are
   identical, and prints the wall times and the speed-up.
2. Runs a sweep of short runs serially and on a Dask LocalCluster of 2 single-threaded
   worker processes, and prints the Dask path's overhead per run:
   (Dask wall - serial wall / 2) / runs.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

SHORT = """
name: short-runs
base: {base}
overrides: {{run.duration: 1h, traffic.outbound.0.rate_per_hour: 600}}
axes:
  policy:
    baseline: {{}}
    force-tls: {{servers.EX1.virtual_servers.default-smtp.outbound_tls: required}}
replications: {replications}
seed: 1
"""


def timed(**kwargs: object) -> tuple[float, object]:
    # Imported here, not at the top: spawned workers re-import this script's top level.
    from sim.experiment.sweep import sweep

    started = time.perf_counter()
    result = sweep(**kwargs)  # type: ignore[arg-type]
    return time.perf_counter() - started, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replications", type=int, default=4)
    parser.add_argument("--short-runs", type=int, default=100, help="replications per point of the short sweep")
    parser.add_argument("--small-only", action="store_true", help="only part 0")
    args = parser.parse_args()
    experiment = ROOT / "scenarios/article-policy-sweep.yaml"
    with tempfile.TemporaryDirectory() as tmp:
        from pool_startup import pool_startup

        print(f"pool_startup_s {min(pool_startup() for _ in range(3)):.3f}")
        for runs in (16, 64):
            small = Path(tmp) / f"small{runs}.yaml"
            text = SHORT.format(base=ROOT / "scenarios/article-baseline.yaml", replications=runs // 2)
            small.write_text(text.replace("run.duration: 1h", "run.duration: 1d"))
            walls: dict[int, float] = {1: float("inf"), 2: float("inf")}
            running: dict[int, float] = {1: float("inf"), 2: float("inf")}
            for attempt in range(3):
                for workers in (1, 2):
                    out = Path(tmp) / f"o{runs}-{workers}-{attempt}"
                    wall, result = timed(experiment=small, out=out, workers=workers)
                    walls[workers] = min(walls[workers], wall)
                    # The manifest's wall_s ends when the last run is stored and the pool
                    # closed, before the tables and figures (the same serial work for both).
                    running[workers] = min(running[workers], result.manifest["wall_s"])  # type: ignore[attr-defined]
            print(
                f"{runs} one-day runs: running them 1 worker {running[1]:.2f} s, 2 workers {running[2]:.2f} s, "
                f"speed-up {running[1] / running[2]:.2f}; with the report 1 worker {walls[1]:.2f} s, "
                f"2 workers {walls[2]:.2f} s, speed-up {walls[1] / walls[2]:.2f}"
            )
        if args.small_only:
            return
        one, serial = timed(experiment=experiment, out=Path(tmp) / "w1", workers=1, replications=args.replications)
        two, pooled = timed(experiment=experiment, out=Path(tmp) / "w2", workers=2, replications=args.replications)
        runs = len(serial.runs)  # type: ignore[attr-defined]
        same = serial.runs.drop(columns="wall_s").equals(pooled.runs.drop(columns="wall_s"))  # type: ignore[attr-defined]
        print(f"bundled sweep, {runs} runs: 1 worker {one:.1f} s, 2 workers {two:.1f} s; tables identical: {same}")
        print(f"speed-up 2 workers / 1 worker: {one / two:.2f}")

        from dask.distributed import LocalCluster

        short = Path(tmp) / "short.yaml"
        short.write_text(SHORT.format(base=ROOT / "scenarios/article-baseline.yaml", replications=args.short_runs))
        serial_wall, result = timed(experiment=short, out=Path(tmp) / "s1", workers=1)
        n = len(result.runs)  # type: ignore[attr-defined]
        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
            dask_wall, _ = timed(experiment=short, out=Path(tmp) / "sd", scheduler=cluster.scheduler_address)
        overhead = (dask_wall - serial_wall / 2) / n
        print(
            f"short sweep, {n} runs: serial {serial_wall:.2f} s ({serial_wall / n * 1000:.1f} ms a run), "
            f"Dask 2 workers {dask_wall:.2f} s"
        )
        print(f"dask overhead per run {overhead * 1000:.1f} ms")


if __name__ == "__main__":
    main()
