"""Batch experiments: same tables on every executor, resumable after a kill, honest statistics."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from typer.testing import CliRunner

import sim
from sim.cli import app
from sim.experiment.analysis import half_width
from sim.experiment.design import LatinHypercube, latin_hypercube, load_experiment
from sim.experiment.sweep import sweep

ROOT = Path(__file__).resolve().parent.parent
runner = CliRunner()

SMALL = f"""
name: small-sweep
base: {ROOT / "scenarios/article-baseline.yaml"}
overrides:
  run.duration: 12h
  traffic.outbound.0.rate_per_hour: 300
axes:
  policy:
    baseline: {{}}
    force-tls: {{servers.EX1.virtual_servers.default-smtp.outbound_tls: required}}
  traffic.outbound.0.size.mean_kb: [50, 200]
replications: 3
baseline: {{policy: baseline}}
seed: 7
"""


def write_small(tmp_path: Path, text: str = SMALL) -> Path:
    path = tmp_path / "small.yaml"
    path.write_text(text)
    return path


def comparable(runs: pd.DataFrame) -> pd.DataFrame:
    return runs.drop(columns=["wall_s"]).reset_index(drop=True)


@pytest.mark.slow  # over a second: runs in CI (.ci/run)
def test_grid_design_points_and_common_random_numbers(tmp_path):
    experiment = load_experiment(write_small(tmp_path))
    assert [p.key for p in experiment.points] == [
        "policy=baseline,traffic.outbound.0.size.mean_kb=50",
        "policy=baseline,traffic.outbound.0.size.mean_kb=200",
        "policy=force-tls,traffic.outbound.0.size.mean_kb=50",
        "policy=force-tls,traffic.outbound.0.size.mean_kb=200",
    ]
    assert {p.scenario.run.seed for p in experiment.points} == {7}
    assert experiment.baseline_of(experiment.points[3]) is experiment.points[1]
    result = sweep(experiment, out=tmp_path / "out", workers=1)
    runs = result.runs
    # Common random numbers: replication r of every point sees the same arrivals.
    per_rep = runs.groupby("replication")["out_messages"].nunique()
    assert (per_rep == 1).all()
    assert runs.groupby("point")["out_messages"].nunique().max() == 3


@pytest.mark.slow
def test_same_tables_serially_with_two_workers_and_on_dask(tmp_path):
    experiment = load_experiment(write_small(tmp_path))
    serial = sweep(experiment, out=tmp_path / "serial", workers=1).runs
    pooled = sweep(experiment, out=tmp_path / "pool", workers=2).runs
    assert len(serial) == 12
    pd.testing.assert_frame_equal(comparable(serial), comparable(pooled))
    distributed = pytest.importorskip("dask.distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        on_dask = sweep(experiment, out=tmp_path / "dask", scheduler=cluster.scheduler_address).runs
    pd.testing.assert_frame_equal(comparable(serial), comparable(on_dask))


def start_sweep_and_wait(path: Path, out: Path, *, workers: int, finished: int) -> tuple[subprocess.Popen[bytes], Path]:
    """Start ``tlssim sweep`` in a child process; return once ``finished`` runs are stored."""
    process = subprocess.Popen(
        [sys.executable, "-m", "sim.cli", "sweep", str(path), "--out", str(out), "--workers", str(workers)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        cwd=path.parent,
    )
    store = out / "runs.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (store.exists() and len(store.read_text().splitlines()) >= finished):
        time.sleep(0.05)
    return process, store


@pytest.mark.slow
def test_a_killed_sweep_resumes_with_exactly_one_row_per_run(tmp_path):
    path = write_small(tmp_path, SMALL.replace("replications: 3", "replications: 6"))
    out = tmp_path / "out"
    process, store = start_sweep_and_wait(path, out, workers=1, finished=3)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    finished_before = sum(1 for line in store.read_text().splitlines() if line.endswith("}"))
    assert 3 <= finished_before < 24, "the sweep was killed part-way"
    with open(store, "ab") as handle:  # as if the kill had cut a line in half
        handle.write(b'{"point": "policy=baseline,traf')
    notices: list[str] = []
    result = sweep(path, out=out, workers=2, notice=notices.append)
    assert notices and "reusing them" in notices[0]
    runs = result.runs
    assert len(runs) == 24
    assert not runs.duplicated(["point", "replication"]).any()
    assert result.manifest["runs_executed"] == 24 - finished_before  # nothing ran twice
    fresh = sweep(path, out=tmp_path / "fresh", workers=1).runs
    pd.testing.assert_frame_equal(comparable(runs), comparable(fresh))


@pytest.mark.slow
def test_twenty_kills_at_random_instants_lose_nothing_and_change_nothing(tmp_path):
    """SIGKILL at seeded random instants (during start-up, the pool's runs, an
    append), resuming after each: the store ends with every run exactly once and the
    tables equal an uninterrupted sweep's."""
    text = SMALL.replace("replications: 3", "replications: 100")
    text = text.replace("  traffic.outbound.0.size.mean_kb: [50, 200]\n", "")  # 2 points x 100 runs
    # Runs long enough (about 0.2 s each) that the sweep outlives twenty kills even on a
    # quiet machine (at 0.1 s a run it once finished after 19).
    text = text.replace("rate_per_hour: 300", "rate_per_hour: 3000")
    path = write_small(tmp_path, text)
    out = tmp_path / "out"
    instants = random.Random(20261129)
    command = [sys.executable, "-m", "sim.cli", "sweep", str(path), "--out", str(out), "--workers", "2"]
    kills = 0
    while kills < 20:
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp_path)
        time.sleep(instants.uniform(0.3, 3.0))
        if process.poll() is not None:
            break  # finished before the kill: too few runs for this test
        process.kill()
        process.wait()
        kills += 1
    assert kills == 20, f"the sweep finished after {kills} kills: give it more runs"
    stored = sum(1 for line in (out / "runs.jsonl").read_text().splitlines() if line.endswith("}"))
    assert 0 < stored < 200, "the kills left part of the sweep to do"
    final = subprocess.run(command, capture_output=True, cwd=tmp_path, timeout=300)
    assert final.returncode == 0, final.stderr.decode()[-2000:]
    records = []
    for line in (out / "runs.jsonl").read_text().splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue  # the remains of an append cut short by a kill
    keys = [(r["run_key"], r["replication"]) for r in records]
    assert len(keys) == len(set(keys)) == 200  # every run exactly once
    killed = pd.read_csv(out / "runs.csv", keep_default_na=False)
    fresh = sweep(path, out=tmp_path / "fresh", workers=2).runs
    fresh.to_csv(tmp_path / "fresh.csv", index=False)
    pd.testing.assert_frame_equal(
        comparable(killed), comparable(pd.read_csv(tmp_path / "fresh.csv", keep_default_na=False))
    )


@pytest.mark.slow  # keeps the default run under a minute; CI runs it
def test_a_sweep_grows_reusing_every_stored_run(tmp_path):
    path = write_small(tmp_path, SMALL.replace("replications: 3", "replications: 2"))
    out = tmp_path / "out"
    first = sweep(path, out=out, workers=1)
    assert first.manifest["runs_executed"] == 8
    # More replications, one more axis value, a reworded description and a renamed
    # axis value with the same content: only the new runs are computed.
    grown = SMALL.replace("[50, 200]", "[50, 200, 800]").replace("force-tls:", "tls-required:")
    grown = grown.replace("name: small-sweep", "name: small-sweep\ndescription: now with larger mail")
    path.write_text(grown)
    status = runner.invoke(app, ["sweep", str(path), "--out", str(out), "--status"])
    assert status.exit_code == 0, status.output
    assert "8 of 18 runs done, 10 to run" in status.output
    notices: list[str] = []
    result = sweep(path, out=out, workers=1, notice=notices.append)
    assert result.manifest["runs_executed"] == 10
    assert "8 of 18 runs already finished" in notices[0]
    fresh = sweep(path, out=tmp_path / "fresh", workers=1)
    pd.testing.assert_frame_equal(comparable(result.runs), comparable(fresh.runs))
    assert set(result.runs["policy"]) == {"baseline", "tls-required"}
    history = result.manifest["history"]
    assert [h["runs_executed"] for h in history] == [8, 10]
    assert {"executor", "wall_s", "finished_at"} <= set(history[0])
    # Fewer replications: the stored extra runs stay in the store but not in the tables.
    fewer = sweep(path, out=out, workers=1, replications=1)
    assert fewer.manifest["runs_executed"] == 0 and len(fewer.runs) == 6


@pytest.mark.slow  # keeps the default run under a minute; CI runs it
def test_a_store_from_before_run_keys_is_reused_while_the_experiment_is_unchanged(tmp_path):
    path = write_small(tmp_path, SMALL.replace("replications: 3", "replications: 1"))
    out = tmp_path / "out"
    first = sweep(path, out=out, workers=1)
    point_of = {p.run_key: p.key for p in load_experiment(path).points}
    for name, keyed_by_point in (
        ("runs.jsonl", lambda r: r),
        ("series.jsonl", lambda r: {"point": point_of[r["run_key"]], **r}),
    ):
        lines = [json.loads(line) for line in (out / name).read_text().splitlines()]
        old = [{k: v for k, v in keyed_by_point(r).items() if k != "run_key"} for r in lines]
        (out / name).write_text("".join(json.dumps(r) + "\n" for r in old))
    again = sweep(path, out=out, workers=1)
    assert again.manifest["runs_executed"] == 0
    pd.testing.assert_frame_equal(comparable(again.runs), comparable(first.runs))
    path.write_text(SMALL.replace("replications: 3", "replications: 1").replace("seed: 7", "seed: 9"))
    assert sweep(path, out=out, workers=1).manifest["runs_executed"] == 4  # changed: the old rows are not used


@pytest.mark.slow  # over a second: runs in CI (.ci/run)
def test_a_changed_seed_computes_anew_and_another_experiment_is_refused(tmp_path):
    path = write_small(tmp_path)
    out = tmp_path / "out"
    sweep(path, out=out, workers=1, replications=1)
    path.write_text(SMALL.replace("seed: 7", "seed: 8"))
    assert sweep(path, out=out, workers=1, replications=1).manifest["runs_executed"] == 4
    path.write_text(SMALL.replace("name: small-sweep", "name: another"))
    result = runner.invoke(app, ["sweep", str(path), "--out", str(out), "--workers", "1", "--replications", "1"])
    assert result.exit_code == 2
    line = (result.stderr or result.output).strip()
    assert "different experiment (small-sweep, not another)" in line and "\n" not in line


@pytest.mark.slow  # over a second: runs in CI (.ci/run)
def test_a_moved_results_folder_reports_with_its_history(tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    path = write_small(project, SMALL.replace("replications: 3", "replications: 1"))
    sweep(path, out=project / "results" / "small", workers=1)
    moved = tmp_path / "elsewhere"
    project.rename(moved)
    result = runner.invoke(app, ["report", str(moved / "results" / "small")])
    assert result.exit_code == 0, result.output
    manifest = json.loads((moved / "results/small/manifest.json").read_text())
    assert manifest["runs"] == 4 and len(manifest["history"]) == 1
    assert manifest["history"][0]["executor"]


@pytest.mark.slow  # over a second: runs in CI (.ci/run)
def test_a_run_that_raises_is_recorded_and_the_sweep_goes_on(tmp_path, monkeypatch):
    from sim.experiment import runner as task_runner

    real_run = task_runner.run

    def flaky(scenario, replication=0, **kwargs):
        if replication == 1:
            raise RuntimeError("simulated crash in replication 1")
        return real_run(scenario, replication, **kwargs)

    monkeypatch.setattr(task_runner, "run", flaky)
    result = sweep(write_small(tmp_path), out=tmp_path / "out", workers=1)
    failed = result.runs[result.runs["exception"] != ""]
    assert len(failed) == 4 and set(failed["replication"]) == {1}
    assert failed["exception"].str.contains("simulated crash in replication 1").all()
    assert (result.summary["runs"] == 2).all() and (result.summary["failed"] == 1).all()
    assert result.manifest["failed_runs"] == 4


@pytest.mark.slow  # over a second: runs in CI (.ci/run)
def test_summary_statistics_are_student_t_and_differences_are_paired(tmp_path):
    result = sweep(write_small(tmp_path), out=tmp_path / "out", workers=1)
    runs, summary = result.runs, result.summary.set_index("point")
    key = "policy=force-tls,traffic.outbound.0.size.mean_kb=200"
    base = "policy=baseline,traffic.outbound.0.size.mean_kb=200"
    values = runs.loc[runs["point"] == key, "out_ndr"].to_numpy(dtype=float)
    expected = stats.t.ppf(0.975, len(values) - 1) * values.std(ddof=1) / np.sqrt(len(values))
    assert summary.loc[key, "out_ndr_ci95"] == pytest.approx(expected)
    assert summary.loc[key, "out_ndr_mean"] == pytest.approx(values.mean())
    mine = runs[runs["point"] == key].set_index("replication")["out_tls_share"]
    theirs = runs[runs["point"] == base].set_index("replication")["out_tls_share"]
    assert summary.loc[key, "out_tls_share_diff_mean"] == pytest.approx((mine - theirs).mean())
    assert summary.loc[key, "out_tls_share_diff_ci95"] == pytest.approx(half_width((mine - theirs).to_numpy()))
    assert "out_ndr_diff_mean" not in summary.columns or pd.isna(summary.loc[base, "out_ndr_diff_mean"])


def test_latin_hypercube_puts_one_sample_in_every_slice():
    lhs = LatinHypercube(samples=10, ranges={"a": (0.0, 10.0), "b": (100.0, 200.0)})
    samples = latin_hypercube(lhs, seed=3)
    assert latin_hypercube(lhs, seed=3) == samples
    for name, (low, high) in lhs.ranges.items():
        slices = sorted(int((s[name] - low) / (high - low) * 10) for s in samples)
        assert slices == list(range(10))


@pytest.mark.slow
def test_bundled_sweep_shows_the_articles_conclusion(tmp_path):
    out = tmp_path / "policy"
    result = runner.invoke(
        app, ["sweep", str(ROOT / "scenarios/article-policy-sweep.yaml"), "--out", str(out), "--replications", "2"]
    )
    assert result.exit_code == 0, result.output
    summary = pd.read_csv(out / "summary.csv").set_index(["policy", "population"])
    for population in ("internet-2015", "internet-2024"):
        assert summary.loc[("article-force-tls", population), "out_ndr_rate_diff_mean"] > 0
        assert summary.loc[("article-workaround", population), "out_ndr_rate_mean"] == 0
        assert summary.loc[("article-workaround", population), "out_tls_share_mean"] > 0.7
        assert summary.loc[("article-baseline", population), "out_tls_share_mean"] == 0
    assert (
        summary.loc[("article-force-tls", "internet-2015"), "out_ndr_rate_mean"]
        > summary.loc[("article-force-tls", "internet-2024"), "out_ndr_rate_mean"]
    )
    for population in ("internet-2015", "internet-2024"):  # returned + doomed: at least what is returned
        forced = summary.loc[("article-force-tls", population)]
        assert forced["out_lost_rate_mean"] > forced["out_ndr_rate_mean"] > 0
    for png in ("lost_rate.png", "queue_depth.png", "tls_share.png", "outcomes.png", "lost_rate_difference.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page = (out / "summary.html").read_text()
    assert page.count('<img src="data:image/png;base64,') == 5
    assert "article-policy-sweep (" in page and "replications per point)" in page
    assert (out / "runs.parquet").exists() and len(pd.read_parquet(out / "runs.parquet")) == 16
    assert "| article-force-tls | internet-2015 |" in (out / "summary.md").read_text()
    assert "<table>" in page and "<pre>" not in page and "will not arrive" in page
    (out / "summary.md").unlink()
    again = runner.invoke(app, ["report", str(out)])
    assert again.exit_code == 0 and (out / "summary.md").exists()


@pytest.mark.slow  # over a second: runs in CI (.ci/run)
def test_python_api_returns_dataframes(tmp_path):
    result = sim.sweep(write_small(tmp_path), out=tmp_path / "out", workers=1, replications=1)
    assert isinstance(result.runs, pd.DataFrame) and isinstance(result.summary, pd.DataFrame)
    assert len(result.runs) == 4


@pytest.mark.slow
def test_ctrl_c_stops_a_pooled_sweep_promptly_and_keeps_finished_runs(tmp_path):
    path = write_small(tmp_path, SMALL.replace("replications: 3", "replications: 8"))
    out = tmp_path / "out"
    process, store = start_sweep_and_wait(path, out, workers=2, finished=2)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)  # a hang here fails the test
    assert process.returncode == 130
    assert b"run the same command again" in stderr and b"Traceback" not in stderr, stderr.decode(errors="replace")
    kept = sum(1 for line in store.read_text().splitlines() if line.endswith("}"))
    assert kept >= 2
    result = sweep(path, out=out, workers=1)
    assert len(result.runs) == 32 and not result.runs.duplicated(["point", "replication"]).any()


def test_validate_checks_an_experiment_file(tmp_path):
    ok = runner.invoke(app, ["validate", str(ROOT / "scenarios/article-policy-sweep.yaml")])
    assert ok.exit_code == 0 and "8 design point(s)" in ok.stdout
    bad = write_small(tmp_path, SMALL.replace("baseline: {policy: baseline}", "baseline: {policy: nothing}"))
    result = runner.invoke(app, ["validate", str(bad)])
    assert result.exit_code == 2
    line = (result.stderr or result.output).strip()
    assert "small.yaml" in line and "baseline.policy" in line and "'nothing'" in line and "\n" not in line


@pytest.mark.slow
def test_sigterm_stops_a_pooled_sweep_like_ctrl_c_and_leaves_no_workers(tmp_path):
    path = write_small(tmp_path, SMALL.replace("replications: 3", "replications: 8"))
    out = tmp_path / "out"
    process, _store = start_sweep_and_wait(path, out, workers=2, finished=2)
    children = _children(process.pid)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 143
    assert b"run the same command again" in stderr and b"Traceback" not in stderr, stderr.decode(errors="replace")
    assert _wait_gone(children)


@pytest.mark.slow
def test_workers_die_with_a_killed_parent(tmp_path):
    path = write_small(tmp_path, SMALL.replace("replications: 3", "replications: 8"))
    process, _ = start_sweep_and_wait(path, tmp_path / "out", workers=2, finished=1)
    children = _children(process.pid)
    assert children
    process.kill()
    process.wait(timeout=30)
    assert _wait_gone(children)  # PR_SET_PDEATHSIG: no orphans


def _children(pid):
    listed = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in listed.split()]


def _wait_gone(pids, seconds=20.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        alive = []
        for pid in pids:
            try:
                os.kill(pid, 0)
                with open(f"/proc/{pid}/stat") as handle:  # a zombie is gone for our purpose
                    if handle.read().split()[2] != "Z":
                        alive.append(pid)
            except (ProcessLookupError, FileNotFoundError):
                continue
        if not alive:
            return True
        time.sleep(0.2)
    return False


@pytest.mark.slow
def test_a_single_threaded_sweep_forks_its_workers_and_a_threaded_one_spawns_them(tmp_path):
    # Forking skips the workers' imports (about 0.5 s a pool start); a fork while another
    # thread holds a lock can hang the child, so a process running threads spawns.
    from sim.experiment import sweep as sweep_module

    if not sys.platform.startswith("linux") or sys.version_info >= (3, 14):
        pytest.skip("fork is this platform's default only on Linux before Python 3.14")
    path = write_small(tmp_path, SMALL.replace("replications: 3", "replications: 1"))
    command = [sys.executable, "-m", "sim.cli", "sweep", str(path), "--out", str(tmp_path / "cli"), "--workers", "2"]
    done = subprocess.run(command, capture_output=True, cwd=tmp_path, timeout=120)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    manifest = json.loads((tmp_path / "cli/manifest.json").read_text())
    # The command line's progress bar runs a thread: it starts only after the pool.
    assert manifest["history"][0]["executor"] == "process pool (2 workers, fork)"
    release = threading.Event()
    other = threading.Thread(target=release.wait)
    other.start()
    try:
        assert sweep_module.start_method() == "spawn"
        result = sweep(path, out=tmp_path / "threaded", workers=2)
    finally:
        release.set()
        other.join()
    assert result.manifest["history"][0]["executor"] == "process pool (2 workers, spawn)"
    forked = pd.read_csv(tmp_path / "cli/runs.csv", keep_default_na=False)
    spawned = pd.read_csv(tmp_path / "threaded/runs.csv", keep_default_na=False)
    pd.testing.assert_frame_equal(comparable(forked), comparable(spawned))


def test_batches_start_with_one_run_then_fill_a_tenth_of_a_second_but_no_more_than_a_fair_share():
    from sim.experiment.runner import _batch_size

    assert _batch_size(0.0, 0, remaining=15, capacity=2) == 1  # nothing measured: every worker starts at once
    assert _batch_size(0.04, 2, remaining=20, capacity=2) == 5  # 5 x 0.02 s = MIN_BATCH_SECONDS
    assert _batch_size(0.04, 2, remaining=6, capacity=2) == 3  # the rest shared out
    assert _batch_size(0.5, 1, remaining=40, capacity=2) == 1
    assert _batch_size(0.0, 2, remaining=9, capacity=4) == 3
    assert _batch_size(0.001, 1, remaining=50, capacity=1) == 1  # one worker: one run a call


def test_a_spawned_pool_worker_loads_no_pandas_or_matplotlib():
    # Each spawned worker pays for what it imports (issue 13: 1.5 s more per pool start).
    code = (
        "import sys; from sim.experiment.worker import prepare_worker; import sim.experiment.runner; "
        "print(sorted({'pandas', 'matplotlib', 'sim.experiment.sweep'} & set(sys.modules)))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
    from sim.experiment import sweep as sweep_module
    from sim.experiment.worker import prepare_worker

    pool, _, _, close = sweep_module._executor(2, None, Path("x.yaml"))
    try:
        assert pool._initializer is prepare_worker  # the set-up the workers run is that light one
    finally:
        close(True)
