"""``sweep``: run every (design point, replication) of an experiment once, durably,
on this process, a local process pool, or a Dask cluster; then tables and plots."""

from __future__ import annotations

import html
import json
import multiprocessing
import os
import time
from collections.abc import Callable
from concurrent.futures import Executor, ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sim.errors import ScenarioError
from sim.experiment import plots
from sim.experiment.analysis import half_width, markdown, summarise, summary_table
from sim.experiment.design import Experiment, Replications, load_experiment
from sim.experiment.runner import SerialExecutor, Task, execute, run_batch
from sim.experiment.store import IDENTITY, ResultStore
from sim.experiment.worker import prepare_worker
from sim.files import FolderBusy, folder_lock, write_atomic, write_text_atomic
from sim.htmlpage import STYLE, image, worded_table
from sim.parallel import Background, start_method
from sim.results import SUMMARY_COLUMNS

Progress = Callable[[int, int], None]  # (runs finished, runs planned)


@dataclass
class SweepResult:
    """The runs (one row per design point and replication) and the per-point summary."""

    runs: pd.DataFrame
    summary: pd.DataFrame
    out: Path
    manifest: dict[str, Any]


def sweep(
    experiment: str | Path | Experiment,
    *,
    out: str | Path | None = None,
    workers: int | None = None,
    scheduler: str | None = None,
    replications: int | None = None,
    progress: Progress | None = None,
    notice: Callable[[str], None] | None = None,
) -> SweepResult:
    """Run an experiment (resuming from ``out`` if it holds part of it) and report it.
    One sweep at a time writes a folder: a second one exits naming the first's pid."""
    if not isinstance(experiment, Experiment):
        experiment = load_experiment(experiment, replications=replications)
    folder = results_folder(experiment, out)
    try:
        with folder_lock(folder, wait=False):
            return _sweep(experiment, folder, workers, scheduler, replications, progress, notice)
    except FolderBusy as exc:
        raise ScenarioError(experiment.path, "--out", str(folder), str(exc)) from None


def _sweep(
    experiment: Experiment,
    folder: Path,
    workers: int | None,
    scheduler: str | None,
    replications: int | None,
    progress: Progress | None,
    notice: Callable[[str], None] | None,
) -> SweepResult:
    store = ResultStore(folder)
    points = {p.key: p for p in experiment.points}
    run_keys = experiment.run_keys
    store.claim(experiment.digest, experiment.spec.name, experiment.path, replications, run_keys)
    say = notice or (lambda _message: None)
    started = time.perf_counter()
    executor, description, capacity, close = _executor(workers, scheduler, experiment.path)
    executed = done = planned = 0

    def invocation() -> dict[str, Any]:
        return {"executor": description, "runs_executed": executed, "wall_s": round(time.perf_counter() - started, 3)}

    try:
        finished = set(store.rows())
        target = experiment.spec.replications
        reps = dict.fromkeys(points, experiment.first_replications)

        def record(row: dict[str, Any], series: dict[str, Any]) -> None:
            nonlocal executed, done
            store.append(row, series)
            finished.add((row["run_key"], row["replication"]))
            executed += 1
            done += 1
            if progress:
                progress(done, planned)

        first_round = True
        while True:
            tasks: list[Task] = [(k, r) for k in points for r in range(reps[k]) if (run_keys[k], r) not in finished]
            done = sum(reps.values()) - len(tasks)
            planned = done + len(tasks)
            if first_round and done:
                say(f"{done} of {planned} runs already finished in {folder}: reusing them, running the rest")
            first_round = False
            if progress:
                progress(done, planned)

            if tasks:
                execute(executor, points, tasks, capacity, record)
            if isinstance(target, int) or not _needs_more(store, experiment, target, reps):
                break
    except BaseException:
        close(False)  # interrupted or failed: stop the workers now; the store keeps what finished
        store.log({**invocation(), "interrupted": True})
        raise
    close(True)
    timings = invocation()
    store.log({**timings, "interrupted": False})
    return report(folder, experiment, timings=timings, workers=capacity if scheduler is None else 1)


def results_folder(experiment: Experiment, out: str | Path | None) -> Path:
    """``--out``, or ``results/<experiment name>``."""
    return Path(out) if out is not None else Path("results") / experiment.spec.name


@dataclass
class Status:
    """What a sweep folder holds for an experiment, without running anything."""

    points: list[dict[str, Any]]  # point, done, planned
    done: int
    planned: int
    stored_elsewhere: int  # runs in the store that no current point uses (kept, not shown)


def status(experiment: Experiment, folder: Path) -> Status:
    store = ResultStore(folder)
    store.recognise(experiment.digest, experiment.run_keys)
    finished = set(store.rows())
    wanted = experiment.first_replications
    done = [sum((p.run_key, r) in finished for r in range(wanted)) for p in experiment.points]
    rows = [{"point": p.key, "done": n, "planned": wanted} for p, n in zip(experiment.points, done, strict=True)]
    current = set(experiment.run_keys.values())
    elsewhere = sum(1 for run_key, _ in finished if run_key not in current)
    return Status(rows, sum(done), wanted * len(rows), elsewhere)


# A mean and its interval may break at "±": a sweep's table fits the page at 1,100 px.
WRAP_INTERVALS = "td.n { white-space: normal; }"
FIGURES = (
    ("outcomes.png", "What became of the mail"),
    ("tls_share.png", "Delivered mail sent encrypted"),
    ("lost_rate.png", "Outbound mail that will not arrive (returned, or queued with no way out)"),
    ("lost_rate_difference.png", "Outbound mail that will not arrive: difference from the baseline"),
    ("queue_depth.png", "Queue depth over time"),
)


def _draw_figures(
    folder: Path, experiment: Experiment, summary: pd.DataFrame, series: pd.DataFrame, pool: Background
) -> Callable[[], None]:
    """Start drawing the sweep's figures, grouped by axis, on ``pool``; the call returned
    waits for them and writes summary.html."""
    axes = list(experiment.axis_names)
    replications = int(summary["runs"].max())
    named = f"{experiment.spec.name} ({replications} replication{'s' if replications != 1 else ''} per point)"
    # The longest first (queue depth, then outcomes: about 0.12 and 0.09 s against 0.07
    # for the others), so that two workers finish together.
    drawn = []
    if len(series):
        drawn.append(
            pool.submit(
                plots.queue_depth, series, axes, summary, f"Total queue depth: {named}", folder / "queue_depth.png"
            )
        )
    drawn += [
        pool.submit(plots.outcomes, summary, axes, f"What became of the mail: {named}", folder / "outcomes.png"),
        pool.submit(
            plots.bar_with_ci,
            summary,
            axes,
            "out_tls_share",
            f"Delivered mail sent encrypted: {named}",
            "share of delivered mail (95% interval)",
            folder / "tls_share.png",
        ),
        pool.submit(
            plots.bar_with_ci,
            summary,
            axes,
            "out_lost_rate",
            f"Mail that will not arrive: {named}",
            "share of outbound mail (95% interval)",
            folder / "lost_rate.png",
        ),
        pool.submit(
            plots.differences,
            summary,
            axes,
            "out_lost_rate",
            f"Mail that will not arrive, minus the baseline's: {named}",
            "difference in share of outbound mail",
            folder / "lost_rate_difference.png",
        ),
    ]

    def finish() -> None:
        for figure in drawn:
            figure.result()
        images = "".join(image(folder / name, caption) for name, caption in FIGURES if (folder / name).exists())
        header, rows, intro = summary_table(experiment, summary)
        table = worded_table(
            [dict(zip(header, row, strict=True)) for row in rows], header, frozenset(header[len(axes) :])
        )
        page = (
            f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{html.escape(named)}</title>"
            f"<style>{STYLE}{WRAP_INTERVALS}</style></head><body><h1>{html.escape(named)}</h1>"
            f"<h2>Summary</h2>{''.join(f'<p>{html.escape(line)}</p>' for line in intro)}{table}{images}</body></html>\n"
        )
        write_text_atomic(folder / "summary.html", page)

    return finish


def report(
    folder: str | Path,
    experiment: Experiment | None = None,
    *,
    timings: dict[str, Any] | None = None,
    workers: int = 1,
) -> SweepResult:
    """Write runs.parquet/csv, summary.csv/md, plots and manifest.json from the store;
    the plots on ``workers`` processes."""
    folder = Path(folder)
    store = ResultStore(folder)
    recorded = store.recorded()
    if recorded is None:
        raise ScenarioError(folder, "", str(folder), "not a sweep results folder (no experiment.json)")
    if experiment is None:
        experiment_file = folder / str(recorded["experiment_file"])  # relative to the folder, or absolute
        if not experiment_file.exists():
            raise ScenarioError(
                folder / IDENTITY, "experiment_file", recorded["experiment_file"], "file not found (moved or renamed?)"
            )
        experiment = load_experiment(experiment_file, replications=recorded.get("replications_override"))
    store.recognise(experiment.digest, experiment.run_keys)
    runs = _runs_frame(experiment, store.rows())
    summary = summarise(experiment, runs)
    pool = Background(workers if workers > 1 else 0)  # one worker: drawn here, at once
    try:
        figures = None
        if len(summary) and summary["runs"].sum() > 0:  # drawn on the workers while the tables are written
            figures = _draw_figures(folder, experiment, summary, _series_frame(experiment, store.series()), pool)
        write_atomic(folder / "runs.parquet", lambda p: runs.to_parquet(p, index=False))
        write_atomic(folder / "runs.csv", lambda p: runs.to_csv(p, index=False))
        write_atomic(folder / "summary.csv", lambda p: summary.to_csv(p, index=False))
        write_text_atomic(folder / "summary.md", markdown(experiment, summary))
        if figures is not None:
            figures()
    finally:
        pool.close()
    from sim.version import __version__

    manifest = {
        "experiment": experiment.spec.name,
        "experiment_hash": experiment.digest,
        "package_version": __version__,
        "design_points": len(experiment.points),
        "runs": len(runs),
        "failed_runs": int((runs["exception"].fillna("") != "").sum()) if len(runs) else 0,
        **(timings or {}),
        "history": store.history(),
    }
    write_atomic(
        folder / "manifest.json", lambda p: p.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    )
    return SweepResult(runs, summary, folder, manifest)


def _stored_for(experiment: Experiment, records: dict[tuple[str, int], dict[str, Any]]) -> list[dict[str, Any]]:
    """The stored records of each current point, in point order, labelled with the point as it
    is named now (a run stored under an older name or description is the same run)."""
    target = experiment.spec.replications
    limit = target if isinstance(target, int) else target.max
    by_key: dict[str, list[int]] = {}
    for run_key, replication in records:
        by_key.setdefault(run_key, []).append(replication)
    out = []
    for point in experiment.points:
        for replication in sorted(r for r in by_key.get(point.run_key, []) if r < limit):
            record = dict(records[(point.run_key, replication)])
            record.update({"point": point.key, **point.labels})
            out.append(record)
    return out


def _runs_frame(experiment: Experiment, records: dict[tuple[str, int], dict[str, Any]]) -> pd.DataFrame:
    columns = [
        "point",
        *experiment.axis_names,
        "replication",
        "seed",
        *(c for c in SUMMARY_COLUMNS if c not in ("scenario", "seed", "replication")),
        "exception",
    ]
    return pd.DataFrame(_stored_for(experiment, records), columns=columns)


def _series_frame(experiment: Experiment, records: dict[tuple[str, int], dict[str, Any]]) -> pd.DataFrame:
    """Every stored run's queue-depth samples, one row each: built as one frame from
    columns (a frame per run, then their concatenation, took 5 ms for 16 runs)."""
    stored = [r for r in _stored_for(experiment, records) if r["time_s"]]
    if not stored:
        return pd.DataFrame(columns=["point", "replication", "time_s", "depth"])
    return pd.DataFrame(
        {
            "point": [r["point"] for r in stored for _ in r["time_s"]],
            "replication": [r["replication"] for r in stored for _ in r["time_s"]],
            "time_s": [t for r in stored for t in r["time_s"]],
            "depth": [d for r in stored for d in r["depth"]],
        }
    )


def _needs_more(store: ResultStore, experiment: Experiment, target: Replications, reps: dict[str, int]) -> bool:
    """Adaptive replication: add runs to points whose interval is still too wide."""
    rows = _runs_frame(experiment, store.rows())
    more = False
    for key in reps:
        values = rows.loc[(rows["point"] == key) & (rows["exception"] == ""), target.metric].astype(float).to_numpy()
        if reps[key] < target.max and not half_width(values[~np.isnan(values)]) <= target.half_width:
            reps[key] = min(target.max, reps[key] + max(1, reps[key] // 2))
            more = True
    return more


def _executor(
    workers: int | None, scheduler: str | None, experiment_file: Path
) -> tuple[Executor, str, int, Callable[[bool], None]]:
    if scheduler is not None:
        try:
            from dask.distributed import Client
        except ImportError:
            raise ScenarioError(
                experiment_file,
                "--scheduler",
                scheduler,
                "Dask is not installed (accepted: pip install 'tlssim[dask]')",
            ) from None
        try:
            client = Client(scheduler, timeout="10s")  # type: ignore[no-untyped-call]
        except (OSError, TimeoutError) as exc:
            raise ScenarioError(
                experiment_file, "--scheduler", scheduler, f"cannot reach the Dask scheduler ({exc})"
            ) from None
        threads = sum(client.nthreads().values()) or 1  # type: ignore[no-untyped-call]
        dask_executor: Executor = client.get_executor()  # type: ignore[no-untyped-call]
        return dask_executor, f"dask {scheduler} ({threads} threads)", threads, lambda _graceful: client.close()  # type: ignore[no-untyped-call]
    count = workers or os.cpu_count() or 1
    if count <= 1:
        return SerialExecutor(), "serial", 1, lambda _graceful: None
    method = start_method()
    pool = ProcessPoolExecutor(count, mp_context=multiprocessing.get_context(method), initializer=prepare_worker)
    # Start the workers here, not at the first batch: a forked pool must fork before the
    # caller's progress bar starts its thread (a forked pool launches all at its first
    # submission, a spawned one one per submission).
    for _ in range(count):
        pool.submit(run_batch, [])

    def close(graceful: bool) -> None:
        if graceful:
            pool.shutdown(wait=True)
            return
        # After Ctrl-C a waiting shutdown can hang on a half-finished batch: end the
        # workers instead (their unfinished runs were never recorded, so none is lost).
        workers_alive = list(getattr(pool, "_processes", {}).values())
        manager = getattr(pool, "_executor_manager_thread", None)
        pool.shutdown(wait=False, cancel_futures=True)
        for process in workers_alive:
            process.terminate()
        # Let the pool's manager thread see its workers gone and close its pipes before
        # the interpreter exits: otherwise its exit hook can write to a pipe the thread
        # is closing ("OSError: Bad file descriptor", a CPython 3.11 race seen in CI).
        if manager is not None:
            manager.join(timeout=10)

    return pool, f"process pool ({count} workers, {method})", count, close
