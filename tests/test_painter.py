"""The report's painter (sim/report/painter.py): a process forked before the run draws
the figures, byte for byte as this process would; a figure's error reaches the caller;
an abandoned report leaves no process; where forking is not safe the report is drawn
here; and ``tlssim run`` then never imports matplotlib itself."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from worlds import organisation, remotes, scenario

import sim.report.painter
from sim.report import figures
from sim.report.page import write_report
from sim.report.painter import Painter
from sim.report.sections import Drawing, sections
from sim.simulate import run

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def result():
    world = scenario(
        organisation("required"),
        remotes(good_example="trusted", plain_example="none"),
        traffic={"outbound": {"rate_per_hour": 30, "domains": {"good.example": 1, "plain.example": 1}}},
        duration="3d",
    )
    return run(world)


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


@pytest.mark.parametrize("helpers", [0, 1], ids=["alone", "with a copy of itself"])
def test_the_painter_draws_what_this_process_would(result, tmp_path, helpers):
    here, there = tmp_path / "here", tmp_path / "there"
    here.mkdir()
    there.mkdir()
    write_report(result, here)
    painter = Painter()
    try:
        assert painter.available
        written = write_report(result, there, helpers=helpers, painter=painter)
    finally:
        painter.close()
    drawn = _files(here)
    assert len([n for n in drawn if n.endswith(".png")]) >= 3
    assert _files(there) == drawn
    assert sorted(p.name for p in written) == list(drawn)
    assert [p.name for p in written][-2:] == ["report.md", "report.html"]


def test_a_painter_that_cannot_fork_its_copy_draws_every_figure_itself(result, tmp_path, monkeypatch):
    here, there = tmp_path / "here", tmp_path / "there"
    here.mkdir()
    there.mkdir()
    write_report(result, here)

    class NoFork:
        def __getattr__(self, name: str) -> object:
            return getattr(os, name)

        @staticmethod
        def fork() -> int:
            raise OSError(11, "Resource temporarily unavailable")

    monkeypatch.setattr(sim.report.painter, "os", NoFork())  # before the fork: the painter has it too
    painter = Painter()
    try:
        written = write_report(result, there, helpers=1, painter=painter)
    finally:
        painter.close()
    assert _files(there) == _files(here)
    assert sorted(p.name for p in written) == sorted(_files(here))


@pytest.mark.parametrize("place", [0, 1], ids=["the painter's share", "its copy's share"])
def test_a_figure_that_fails_in_the_painter_fails_the_report(result, tmp_path, monkeypatch, place):
    def broken(_result):
        raise ValueError("no axes for you")

    failing = [chart.drawing for section in sections(result) for chart in section.charts][place]
    monkeypatch.setitem(figures.DRAWERS, failing, broken)  # before the fork: the painter has it too
    painter = Painter()
    try:
        with pytest.raises(ValueError, match="no axes for you"):
            write_report(result, tmp_path, helpers=1, painter=painter)
    finally:
        painter.close()
    assert not painter.available and not painter._process.is_alive()


@pytest.mark.parametrize("helpers", [0, 1], ids=["alone", "with a copy of itself"])
def test_an_abandoned_report_leaves_no_painter_behind(result, tmp_path, helpers):
    # A parent whose SIGTERM handler only takes note, and which blocks it, as a library
    # might: the painter still stops when told.
    previous = signal.signal(signal.SIGTERM, lambda *_args: None)
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    try:
        painter = Painter()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        signal.signal(signal.SIGTERM, previous)
    process = painter._process
    drawings = [(Drawing.QUEUES, tmp_path / f"queues-{n}.png") for n in range(40)]
    painter.start(result, drawings, helpers)  # still drawing at close
    copies: list[int] = []
    for _ in range(500):  # the copy is forked once the painter has imported matplotlib
        copies = [int(pid) for pid in Path(f"/proc/{process.pid}/task/{process.pid}/children").read_text().split()]
        if copies or not helpers:
            break
        time.sleep(0.02)
    assert len(copies) == helpers
    painter.close()
    assert not process.is_alive()
    for _ in range(20):  # the copy is killed with it (and reaped by init), not left to draw its 20
        if not any(_alive(pid) for pid in copies):
            break
        time.sleep(0.025)
    assert not any(_alive(pid) for pid in copies)
    assert len(list(tmp_path.glob("queues-*.png"))) < 10  # stopped, not left to draw its share
    painter.close()  # twice: nothing left to do


def test_with_another_thread_running_there_is_no_painter_and_the_report_is_drawn_here(result, tmp_path):
    stop = threading.Event()
    thread = threading.Thread(target=stop.wait)
    thread.start()
    try:
        painter = Painter()  # a fork now could hang on the other thread's locks
        assert not painter.available
        write_report(result, tmp_path, painter=painter)
    finally:
        stop.set()
        thread.join()
    assert (tmp_path / "queues.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow  # a whole tlssim run in a fresh process
def test_tlssim_run_leaves_matplotlib_to_the_painter(tmp_path):
    code = (
        "import sys\n"
        "from sim.cli import main\n"
        f"sys.argv = ['tlssim', 'run', 'article-baseline', '--out', {str(tmp_path / 'out')!r}, '-q']\n"
        "try:\n    main()\nexcept SystemExit as exc:\n    assert not exc.code, exc.code\n"
        "print('matplotlib' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert done.stdout.strip().splitlines()[-1] == "False"
    assert (tmp_path / "out" / "queues.png").exists() or (tmp_path / "out" / "events.png").exists()


def test_a_painter_ends_when_its_parent_is_killed(tmp_path):
    code = (
        "import sys, time\n"
        "from sim.report.painter import Painter\n"
        "painter = Painter()\n"
        "print(painter._process.pid, flush=True)\n"
        "time.sleep(60)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        painter = int(parent.stdout.readline())
    finally:
        parent.kill()
        parent.wait()
    for _ in range(100):  # its pipe ends with the parent: it stops waiting and exits
        if not _alive(painter):
            break
        time.sleep(0.05)
    assert not _alive(painter)


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (an exited child of a killed parent is reaped by init)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split()[2]
    except FileNotFoundError:
        return False
    return state != "Z"


@pytest.mark.parametrize("count", range(6))
def test_figures_shared_with_a_helper_come_back_in_their_order(count):
    from sim.parallel import in_turn, shared_out

    figures_in_order = [f"figure-{n}" for n in range(count)]
    here, there = shared_out(figures_in_order)
    assert len(here) - len(there) in (0, 1) and sorted(here + there) == sorted(figures_in_order)
    assert in_turn(here, there) == figures_in_order
