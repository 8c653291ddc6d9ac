"""What a sweep's pool worker sets up when it starts. A leaf module on purpose: the
worker imports this and, with its first task, ``sim.experiment.runner``; never pandas,
matplotlib or the sweep's reporting (issue 13: about 1.5 s less per worker start)."""

from __future__ import annotations

import os
import signal
import sys


def prepare_worker() -> None:
    """Workers leave Ctrl-C to the parent, which stops them (no traceback from each worker),
    and die with it: a parent killed outright (SIGKILL) leaves no orphaned workers. A
    forked worker inherits the parent's handlers: SIGTERM goes back to plain ending."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    die_with_parent()


def die_with_parent() -> None:
    """Linux PR_SET_PDEATHSIG: the kernel sends SIGTERM to this process when its parent dies."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG = 1
    except (OSError, AttributeError):
        return
    if os.getppid() == 1:  # the parent died before the call: go now
        os._exit(1)
