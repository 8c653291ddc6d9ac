"""Small hand-built worlds for tests: dictionaries in the scenario format, validated."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from sim.scenario.loader import check_references, read_yaml
from sim.scenario.model import Scenario

ROOT = Path(__file__).resolve().parent.parent  # the checkout, for tests that copy bundled files

# A population's transport policies with every share set, generously: each case occurs.
EVERY_POLICY = {
    "mta_sts": {"enforce": 0.2, "testing": 0.1},
    "mta_sts_mismatch": 0.3,
    "mta_sts_unreachable": 0.3,
    "dnssec_signed": 0.3,
    "dnssec_bogus": 0.1,
    "dane": 0.5,
    "tlsa_mismatch": 0.3,
    "tls_rpt": 0.3,
    "requiretls": 0.3,
}


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


def bundled_what_ifs() -> list[Path]:
    """The bundled scenarios that are what-ifs (not the bases others extend)."""
    return [p for p in sorted((ROOT / "scenarios").glob("*.yaml")) if "base" not in read_yaml(p)]


def postfix_backlog() -> Scenario:
    """30% of the mail to hosts without STARTTLS under ``encrypt``: a growing backlog that
    expires after 12 h, with delay warnings at 2 h (the growth benchmark's world, shorter)."""
    org = organisation(
        "required", profile="postfix", delivery={"expiration_timeout": "12h", "delay_notification": "2h"}
    )
    good = {f"ok{i}_example": "trusted" for i in range(4)}
    bad = {f"plain{i}_example": "none" for i in range(2)}
    weights = {k.replace("_", "."): 0.7 / 4 for k in good} | {k.replace("_", "."): 0.15 for k in bad}
    traffic = {"outbound": {"rate_per_hour": 1500, "domains": weights}}
    return scenario(org, remotes(**good, **bad), traffic=traffic, duration="1d", sample_interval="30m")


def postfix_flaky(trace: bool) -> Scenario:
    """``may`` towards hosts that fail the handshake, go down at random and are down for a
    fixed period: revivals, plaintext fallback after PREACTIVE_DELAY, and young mail."""
    rem = remotes(
        broken_example=[host("mx.broken.example", "handshake-fails", session_setup=0.4)],
        flaky_example=[
            host("mx1.flaky.example", "trusted", outages={"mean_up": "2h", "mean_down": "40m"}, session_setup=0.3),
            host("mx2.flaky.example", "self-signed", preference=20, outages={"mean_up": "3h", "mean_down": "1h"}),
        ],
        down_example=[host("mx.down.example", "trusted", down=[{"start": "1h", "end": "13h"}])],
        fine_example="trusted",
    )
    org = organisation("may", profile="postfix", delivery={"expiration_timeout": "10h", "delay_notification": "1h"})
    rate = 60 if trace else 900
    weights = {"broken.example": 0.2, "flaky.example": 0.3, "down.example": 0.3, "fine.example": 0.2}
    traffic = {"outbound": {"rate_per_hour": rate, "domains": weights}}
    return scenario(org, rem, traffic=traffic, duration="16h", seed=7, sample_interval="20m")
