"""Scenario files: the format (``model``), loading and checking (``loader``), overrides."""

from sim.scenario.loader import load_scenario, scenario_hash, scenario_json_schema
from sim.scenario.model import Organisation, Remotes, Scenario
from sim.vocabulary import ServerTls, TlsLevel

__all__ = [
    "Organisation",
    "Remotes",
    "Scenario",
    "ServerTls",
    "TlsLevel",
    "load_scenario",
    "scenario_hash",
    "scenario_json_schema",
]
