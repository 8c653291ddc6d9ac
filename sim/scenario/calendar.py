"""A policy calendar: overrides that take effect at simulated instants (``changes:``).

A what-if can rehearse a rollout ("our MTA-STS moves to enforce on day 3"), a
certificate rollover or a partner's policy-host outage: each change is a set of
dotted overrides into the organisation and the remote world, applied from its instant
on, to both directions. The run rebuilds its plan at each instant; see
``sim/model/world.py`` for what a change does to mail already queued.
"""

from __future__ import annotations

from typing import Any

from sim.scenario.model import Scenario
from sim.scenario.overrides import set_path

CHANGEABLE_ROOTS = ("organisation", "remotes")


def absolute_path(key: str) -> str:
    """A change's path with its root: relative paths start at the organisation."""
    return key if key.split(".", 1)[0] in ("organisation", "remotes", "traffic", "run") else f"organisation.{key}"


# DNS records we publish, and the TTL field that says how long senders' resolvers keep
# the old ones: a change to them reaches senders that much later (RFC 1035 s.3.2.1).
DNS_RECORDS = {"organisation.publishes.tlsa": "tlsa_ttl", "organisation.publishes.mx": "mx_ttl"}


def dns_ttl(path: str, document: dict[str, Any]) -> float | None:
    """The TTL of the DNS record a change at ``path`` edits (None: not a DNS record)."""
    for prefix, field in DNS_RECORDS.items():
        if path == prefix or path.startswith(prefix + "."):
            publishes = document.get("organisation", {}).get("publishes") or {}
            return float(publishes.get(field, 3600.0))
    return None


def changed_document(scenario: Scenario, count: int, now: float | None = None) -> dict[str, Any]:
    """The scenario's document with its first ``count`` changes applied (raises
    ``OverrideError`` for a path that leads nowhere). With ``now``, as senders see it
    then: an edit of a DNS record only once its TTL has passed since the change."""
    document = scenario.model_dump(mode="json", by_alias=True, exclude={"changes"})
    for change in scenario.changes[:count]:
        for key, value in change.set.items():
            path = absolute_path(key)
            ttl = dns_ttl(path, document) if now is not None else None
            if ttl is None or (now is not None and change.at + ttl <= now):
                set_path(document, path, value)
    return document


def scenario_after(scenario: Scenario, count: int, now: float | None = None) -> Scenario:
    """The scenario as it stands once its first ``count`` changes have taken effect (as
    senders see it at ``now``, when given)."""
    return Scenario.model_validate(changed_document(scenario, count, now))


def record_changes(scenario: Scenario) -> list[float]:
    """The instants at which an edited DNS record reaches senders (its change + TTL)."""
    instants = []
    for count, change in enumerate(scenario.changes):
        document = changed_document(scenario, count)
        ttls = [dns_ttl(absolute_path(key), document) for key in change.set]
        instants += [change.at + ttl for ttl in ttls if ttl is not None]
    return sorted(set(instants))
