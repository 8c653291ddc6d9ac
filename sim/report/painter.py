"""A painter: a process forked before the run that imports matplotlib while this one
simulates, then draws the report's figures while this one writes the tables.

Importing matplotlib takes about 0.25 s and drawing a figure 0.1-0.2 s, all on the
critical path of ``tlssim run`` when done after the run (issue 22: the run of
force-tls-2024 spent 0.25 s importing and 0.6 s drawing after the simulation ended,
while the second core was idle during the simulation). The painter is forked while
this process runs one thread (``sim.parallel.start_method``); where forking is not
safe it is not started and the report draws its figures itself.

It talks over a pipe: a job is the run's result, the figures to draw, each to its
path, and how many helpers may draw beside it; the answer is the paths written, or the
exception a figure raised. With a helper, the painter forks itself, matplotlib and all,
and the copy draws every other figure: the second core is idle while the report waits
for its figures, unless the decision packet's what-ifs hold it (the caller says).
"""

from __future__ import annotations

import multiprocessing
import os
import signal
from collections.abc import Callable
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import TYPE_CHECKING

from sim.parallel import in_turn, shared_out, start_method

if TYPE_CHECKING:
    from sim.report.sections import Drawing
    from sim.results import RunResult

Job = tuple["RunResult", list[tuple["Drawing", Path]], int]


class Painter:
    """The painter process and its end of the pipe; ``available`` only where it could be
    forked (else the report draws its own figures)."""

    def __init__(self) -> None:
        self._connection: Connection | None = None
        self._process: BaseProcess | None = None
        self._pending = 0
        if start_method() != "fork":
            return
        context = multiprocessing.get_context("fork")
        ours, theirs = context.Pipe()
        self._process = context.Process(target=_paint, args=(theirs, ours), name="tlssim-painter", daemon=True)
        self._process.start()
        theirs.close()
        self._connection = ours

    @property
    def available(self) -> bool:
        return self._connection is not None

    def start(self, result: RunResult, drawings: list[tuple[Drawing, Path]], helpers: int = 0) -> None:
        """Hand over figures to draw, every other one by a copy of the painter when
        ``helpers`` is 1; ``finish`` waits for them."""
        if self._connection is None:
            raise RuntimeError("no painter process")
        self._connection.send((result, drawings, helpers))
        self._pending += 1

    def finish(self) -> list[Path]:
        """The paths of every figure handed over, in order; a figure's exception is raised here."""
        if self._connection is None:
            return []
        written: list[Path] = []
        while self._pending:
            self._pending -= 1
            try:
                paths, error = self._connection.recv()
            except EOFError:
                raise RuntimeError("the painter process ended before drawing the report's figures") from None
            if error is not None:
                raise error
            written += paths
        return written

    def close(self) -> None:
        """Let the process end (at once, if it is still drawing: the report is abandoned)."""
        if self._connection is None or self._process is None:
            return
        try:
            if self._pending:
                self._process.terminate()
            else:
                self._connection.send(None)
        except (OSError, ValueError):  # the process or the pipe is already gone
            pass
        self._connection.close()
        self._connection = None
        self._process.join(timeout=5)
        if self._process.is_alive():
            self._process.kill()
            self._process.join()


def _paint(connection: Connection, parents_end: Connection) -> None:
    """The painter's life: import the figures (the slow part, while the run runs), then
    draw each job's figures until told to stop or the other end closes: the parent's end
    is closed here, so that the pipe ends when the parent does, killed or not."""
    parents_end.close()
    # Ended by SIGTERM whatever the parent made of it (a handler that only takes note, or
    # the signal blocked, would leave Painter.close waiting for the figures, then killing it).
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})
    try:
        from sim.report import figures  # noqa: F401  (imported now: drawn with in _draw)

        while True:
            job: Job | None = connection.recv()
            if job is None:
                return
            result, drawings, helpers = job
            try:
                paths = _draw(result, drawings, helpers)
            except Exception as exc:  # raised in the parent, where the report is written
                _send(connection, ([], exc))
            else:
                _send(connection, (paths, None))
    except (EOFError, KeyboardInterrupt, BrokenPipeError):
        return  # the parent is gone, or interrupted: nothing to answer


def _draw(result: RunResult, drawings: list[tuple[Drawing, Path]], helpers: int) -> list[Path]:
    """Draw ``drawings`` in order; with a helper, every other one in a forked copy of this
    process (one thread: forking is safe), which a terminated painter takes with it."""
    from sim.report.figures import write_figure

    def draw(share: list[tuple[Drawing, Path]]) -> list[Path]:
        return [write_figure(drawing, result, path) for drawing, path in share]

    mine, theirs = shared_out(drawings)
    copy = _copy(draw, theirs) if helpers >= 1 and theirs else None
    if copy is None:  # alone, or no process to be had (a limit): the painter draws them all
        return draw(drawings)
    child, ours = copy

    def stop(_signal: int, _frame: object) -> None:
        # Painter.close terminates a painter still drawing, then waits for it to end: the
        # copy holds the painter's end of the pipe that tells (its sentinel), so it goes too.
        os.kill(child, signal.SIGKILL)
        os._exit(1)

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        here = draw(mine)
        try:
            there, error = ours.recv()
        except EOFError:
            raise RuntimeError("the painter's helper ended before drawing its figures") from None
        if error is not None:
            raise error
        return in_turn(here, there)
    finally:
        signal.signal(signal.SIGTERM, previous)
        ours.close()
        os.waitpid(child, 0)


def _copy(
    draw: Callable[[list[tuple[Drawing, Path]]], list[Path]], share: list[tuple[Drawing, Path]]
) -> tuple[int, Connection] | None:
    """Fork a copy of the painter that draws ``share``, answers on a pipe and ends; its
    process id and the pipe's end, or ``None`` when no process is to be had."""
    ours, theirs = multiprocessing.Pipe(duplex=False)
    try:
        child = os.fork()
    except OSError:
        ours.close()
        theirs.close()
        return None
    if child == 0:  # the copy: its share, then its answer, and gone without cleaning up the painter's
        code = 0
        try:
            theirs.send((draw(share), None))
        except BaseException as exc:
            try:
                theirs.send(([], exc))
            except BaseException:
                code = 1
        os._exit(code)
    theirs.close()
    return child, ours


def _send(connection: Connection, answer: tuple[list[Path], BaseException | None]) -> None:
    try:
        connection.send(answer)
    except Exception:  # an exception that does not pickle: say what it was
        paths, error = answer
        connection.send((paths, RuntimeError(f"{type(error).__name__}: {error}")))
