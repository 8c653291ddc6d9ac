"""tlssim: predict what a TLS policy change does to an organisation's mail flow.

>>> import sim
>>> scenario = sim.load_scenario("scenarios/article-force-tls.yaml")  # doctest: +SKIP
>>> result = sim.run(scenario)                                          # doctest: +SKIP
>>> result.summary[["out_ndr", "out_delivered_tls"]]                    # doctest: +SKIP
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("tlssim")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

from sim.errors import ScenarioError, SimError
from sim.results import RunResult
from sim.run import run
from sim.scenario import Scenario, load_scenario

__all__ = ["RunResult", "Scenario", "ScenarioError", "SimError", "__version__", "load_scenario", "run"]
