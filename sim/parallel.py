"""Work in other processes on this machine: the start method that is safe here, and a
pool that runs a few independent simulations while this process writes the rest."""

from __future__ import annotations

import multiprocessing
import sys
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")


def start_method() -> str:
    """``fork`` where the platform forks by default and this process runs one thread:
    a forked worker starts in milliseconds with the simulation already imported, where
    a spawned one takes about half a second to import it (benchmarks/pool_startup.py).
    Otherwise ``spawn``: a fork while another thread holds a lock (a progress bar's, a
    notebook's) can hang the child, and Python 3.14 no longer forks by default."""
    forks_by_default = sys.platform.startswith("linux") and sys.version_info < (3, 14)
    chosen = multiprocessing.get_start_method(allow_none=True)  # None: nobody chose
    if forks_by_default and chosen in (None, "fork") and threading.active_count() == 1:
        return "fork"
    return "spawn"


def shared_out(items: Sequence[T]) -> tuple[list[T], list[T]]:
    """``items`` shared between this process and a helper: every other one, the first here
    (the figures of a report, drawn beside a forked copy or worker)."""
    return list(items[::2]), list(items[1::2])


def in_turn(here: list[T], there: list[T]) -> list[T]:
    """What became of the two shares of :func:`shared_out`, back in their first order
    (``here`` holds as many as ``there``, or one more)."""
    return [item for pair in zip(here, there, strict=False) for item in pair] + here[len(there) :]


class Background:
    """Calls run in worker processes when they can start cheaply (``fork``), else here,
    at once: a spawned worker would spend longer importing than the call takes."""

    def __init__(self, workers: int) -> None:
        self._pool = (
            ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"))
            if start_method() == "fork" and workers > 0
            else None
        )

    def submit(self, call: Callable[..., T], *args: Any) -> Future[T]:
        if self._pool is not None:
            return self._pool.submit(call, *args)
        done: Future[T] = Future()
        try:
            done.set_result(call(*args))
        except Exception as exc:  # raised where a worker's would be: at result()
            done.set_exception(exc)
        return done

    def close(self, *, wait: bool = True) -> None:
        """Cancel what has not started; with ``wait``, wait for what has."""
        if self._pool is not None:
            self._pool.shutdown(wait=wait, cancel_futures=True)
