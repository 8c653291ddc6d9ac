"""The benchmarks' worlds: one organisation with one sending server and one connector
for all mail, in front of the remote world and traffic each benchmark describes."""

from __future__ import annotations

from typing import Any

from sim.scenario.loader import check_references
from sim.scenario.model import Scenario


def one_sender(
    name: str,
    *,
    outbound_tls: str,
    remotes: dict[str, Any],
    outbound: dict[str, Any],
    duration: str,
    sample_interval: str,
    profile: str | None = None,
) -> Scenario:
    """A validated scenario: server MTA1 (``profile``, or the default) sends every
    ``outbound`` message at ``outbound_tls`` through connector ``internet``."""
    organisation: dict[str, Any] = {
        "organisation": "bench",
        "routing_groups": [{"name": "hq"}],
        "servers": [
            {
                "name": "MTA1",
                "routing_group": "hq",
                "virtual_servers": [{"name": "smtp", "outbound_tls": outbound_tls}],
            }
        ],
        "connectors": [{"name": "internet", "source": ["MTA1/smtp"], "address_spaces": [{"pattern": "*"}]}],
    }
    if profile is not None:
        organisation["profile"] = profile
    document = {
        "name": name,
        "organisation": organisation,
        "remotes": remotes,
        "traffic": {"outbound": outbound},
        "run": {"duration": duration, "seed": 1, "sample_interval": sample_interval},
    }
    scenario = Scenario.model_validate(document)
    check_references(scenario, "<benchmark>")
    return scenario
