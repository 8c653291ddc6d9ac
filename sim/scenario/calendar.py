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


def changed_document(scenario: Scenario, count: int) -> dict[str, Any]:
    """The scenario's document with its first ``count`` changes applied (raises
    ``OverrideError`` for a path that leads nowhere)."""
    document = scenario.model_dump(mode="json", by_alias=True, exclude={"changes"})
    for change in scenario.changes[:count]:
        for key, value in change.set.items():
            set_path(document, absolute_path(key), value)
    return document


def scenario_after(scenario: Scenario, count: int) -> Scenario:
    """The scenario as it stands once its first ``count`` changes have taken effect."""
    return Scenario.model_validate(changed_document(scenario, count))
