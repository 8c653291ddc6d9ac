"""tlssim: predict what a TLS policy change does to an organisation's mail flow.

>>> import sim
>>> scenario = sim.load_scenario("scenarios/article-force-tls.yaml")  # doctest: +SKIP
>>> result = sim.run(scenario)                                          # doctest: +SKIP
>>> result.summary[["out_ndr", "out_delivered_tls"]]                    # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sim.errors import ScenarioError, SimError

if TYPE_CHECKING:
    from sim.experiment.sweep import SweepResult
    from sim.results import RunResult
    from sim.scenario import Scenario, load_scenario
    from sim.simulate import run
    from sim.version import __version__

# The simulation (numpy, SimPy, pandas) is imported on first use, so that the command
# line starts fast: ``tlssim --help`` and ``tlssim validate`` do not load it. The
# version too: reading the installed metadata costs ~30 ms.
_LAZY = {
    "RunResult": "sim.results",
    "run": "sim.simulate",
    "Scenario": "sim.scenario",
    "load_scenario": "sim.scenario",
    "__version__": "sim.version",
}


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'sim' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)


def sweep(
    experiment: str | Path,
    *,
    out: str | Path | None = None,
    workers: int | None = None,
    scheduler: str | None = None,
    replications: int | None = None,
) -> SweepResult:
    """Run a batch experiment and return its runs and summary as DataFrames.

    The experiment machinery (scipy, matplotlib) is imported on first use, so that
    single runs start fast.
    """
    from sim.experiment.sweep import sweep as run_sweep

    return run_sweep(experiment, out=out, workers=workers, scheduler=scheduler, replications=replications)


__all__ = ["RunResult", "Scenario", "ScenarioError", "SimError", "__version__", "load_scenario", "run", "sweep"]
