"""Small hand-built worlds for tests: dictionaries in the scenario format, validated."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from sim.scenario.loader import check_references
from sim.scenario.model import Scenario

ROOT = Path(__file__).resolve().parent.parent  # the checkout, for tests that copy bundled files


def organisation(
    outbound_tls: str = "off",
    connectors: list[dict[str, Any]] | None = None,
    profile: str = "exchange2003",
    **vs_fields: Any,
) -> dict[str, Any]:
    return {
        "organisation": "test",
        "profile": profile,
        "routing_groups": [{"name": "hq"}],
        "servers": [
            {
                "name": "EX1",
                "routing_group": "hq",
                "virtual_servers": [
                    {"name": "default", "outbound_tls": outbound_tls, **vs_fields},
                    {"name": "plain", "outbound_tls": "off"},
                ],
            }
        ],
        "connectors": connectors
        if connectors is not None
        else [{"name": "internet", "source": ["EX1/default"], "address_spaces": [{"pattern": "*"}]}],
    }


def host(name: str, tls: str = "trusted", **fields: Any) -> dict[str, Any]:
    return {"host": name, "tls": tls, "session_setup": 0, **fields}


def remotes(**domains: str | list[dict[str, Any]]) -> dict[str, Any]:
    """``remotes(example_com="none")`` -> one domain example.com with one host of that TLS."""
    out = []
    for key, spec in domains.items():
        name = key.replace("_", ".")
        mx = [host(f"mx.{name}", spec)] if isinstance(spec, str) else spec
        out.append({"name": name, "mx": mx})
    return {"domains": out}


def scenario(
    org: dict[str, Any],
    rem: dict[str, Any],
    *,
    traffic: dict[str, Any] | None = None,
    duration: str | float = "4d",
    seed: int = 1,
    sample_interval: str = "1h",
    name: str = "test",
) -> Scenario:
    document = {
        "name": name,
        "organisation": copy.deepcopy(org),
        "remotes": copy.deepcopy(rem),
        "traffic": traffic or {},
        "run": {"duration": duration, "seed": seed, "sample_interval": sample_interval},
    }
    result = Scenario.model_validate(document)
    check_references(result, "<test>")
    return result
