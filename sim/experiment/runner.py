"""Running (design point, replication) tasks: in batches, on any concurrent.futures executor.

Tasks carry their scenario and replication number only; each derives its random
streams from ``SeedSequence(seed, spawn_key=(replication, stream, ...))``, so a run
gives the same row on every executor and policies share random numbers per
replication (reference/des-practice.md sections 4-5).
"""

from __future__ import annotations

import math
import time
import traceback
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Executor, Future, wait
from typing import Any

from sim.experiment.design import DesignPoint
from sim.model.sampler import TOTAL_QUEUE
from sim.results import SUMMARY_COLUMNS
from sim.simulate import run

Task = tuple[str, int]  # (point key, replication)
Record = tuple[dict[str, Any], dict[str, Any]]  # (run row, queue series)
MIN_BATCH_SECONDS = 0.1  # batch tasks so each takes at least this long (des-practice s.5)


def run_one(point: DesignPoint, replication: int) -> Record:
    """One run, never raising: an exception becomes the row's ``exception`` text."""
    started = time.perf_counter()
    scenario = point.scenario
    row: dict[str, Any] = {"point": point.key, "run_key": point.run_key, **point.labels}
    row.update({"replication": replication, "seed": scenario.run.seed})
    series: dict[str, Any] = {"run_key": point.run_key, "replication": replication, "time_s": [], "depth": []}
    try:
        result = run(scenario, replication)
    except Exception:
        row.update({column: None for column in SUMMARY_COLUMNS if column not in row and column != "scenario"})
        row["wall_s"] = time.perf_counter() - started
        row["exception"] = traceback.format_exc(limit=8)
        return row, series
    summary = result.summary_row
    row.update({k: v for k, v in summary.items() if k not in ("scenario", "seed", "replication")})
    row["exception"] = ""
    totals = [(t, depth) for t, queue, depth, _ in result.queue_samples if queue == TOTAL_QUEUE]
    series["time_s"] = [t for t, _ in totals]
    series["depth"] = [d for _, d in totals]
    return row, series


def run_batch(batch: list[tuple[DesignPoint, int]]) -> list[Record]:
    """Runs several tasks in one worker call (so that each call is worth its overhead)."""
    return [run_one(*task) for task in batch]


class SerialExecutor(Executor):
    """Runs each submission at once in this process (``--workers 1``)."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        future: Future[Any] = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:
            future.set_exception(exc)
        return future


def execute(
    executor: Executor,
    points: dict[str, DesignPoint],
    tasks: list[Task],
    capacity: int,
    on_record: Callable[[dict[str, Any], dict[str, Any]], None],
) -> None:
    """Run ``tasks`` on ``capacity`` workers, at most two batches a worker in flight;
    hand every finished run to ``on_record`` as its batch completes.

    The first batches hold one run each; later ones are sized from the runs measured so
    far to take at least MIN_BATCH_SECONDS (so each call is worth its overhead), but
    never more than an equal share of what remains (so no worker is left idle at the
    end). No run is made serially first to measure one: every worker starts at once."""
    pending: set[Future[list[Record]]] = set()
    measured_seconds, measured_runs = 0.0, 0  # wall_s of the runs finished so far
    taken = 0
    while True:
        while taken < len(tasks) and len(pending) < 2 * capacity:
            size = _batch_size(measured_seconds, measured_runs, len(tasks) - taken, capacity)
            batch = [(points[key], rep) for key, rep in tasks[taken : taken + size]]
            taken += size
            pending.add(executor.submit(run_batch, batch))
        if not pending:
            return
        done, pending = wait(pending, return_when=FIRST_COMPLETED)
        for future in done:
            for row, series in future.result():
                measured_seconds += row["wall_s"]
                measured_runs += 1
                on_record(row, series)


def _batch_size(measured_seconds: float, measured_runs: int, remaining: int, capacity: int) -> int:
    if capacity <= 1 or not measured_runs:
        return 1
    seconds_per_run = max(measured_seconds / measured_runs, 1e-6)
    return max(1, min(math.ceil(MIN_BATCH_SECONDS / seconds_per_run), math.ceil(remaining / capacity)))
