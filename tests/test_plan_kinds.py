"""A queue planned for one domain serves the domains of its kind (``sim/plan/kinds.py``):
every plan made so equals the plan made from scratch, on populations and settings that
give the kinds every reason to differ (TLS levels, per-destination entries, DANE and
MTA-STS, TLS-RPT, several MX hosts, outages and greylisting)."""

from __future__ import annotations

from typing import Any

import pytest
from worlds import EVERY_POLICY, organisation, scenario

import sim.plan.outbound
from sim.plan.build import build_plan
from sim.plan.kinds import PLANNED_FIELDS, UNPLANNED_FIELDS
from sim.plan.plans import QueuePlan
from sim.population import generate
from sim.scenario.model import RemoteHost
from sim.tls.sessions import SessionPlan

POPULATION = {
    "name": "p",
    "domains": 400,
    "seed": 11,
    "tls": {
        "none": 0.2,
        "trusted": 0.4,
        "name-mismatch": 0.1,
        "self-signed": 0.1,
        "expired": 0.1,
        "handshake-fails": 0.1,
    },
    "mx_per_domain": {1: 0.4, 2: 0.4, 3: 0.2},
    "requires_tls": 0.1,
    "outage_share": 0.2,
    "outages": {"mean_up": "6h", "mean_down": "1h"},
    "greylist_share": 0.2,
}
SETTINGS: dict[str, dict[str, Any]] = {
    "opportunistic": {"outbound_tls": "opportunistic"},
    "required": {"outbound_tls": "required"},
    "verify": {"outbound_tls": "verify"},
    # Entries for one domain and for a parent of them all: the entry is part of the kind.
    "policy map": {
        "outbound_tls": "opportunistic",
        "tls_policy": {"p-000007.example": "encrypt", "p-000012.example": "none"},
    },
    "postfix dane and mta-sts": {"outbound_tls": "opportunistic", "dane": "opportunistic", "mta_sts": "apply"},
}


def _data(planned: QueuePlan) -> tuple[object, ...]:
    """A queue's plan as plain values (session plans have no equality of their own)."""

    def sessions(plan: SessionPlan | None) -> object:
        return None if plan is None else (tuple(plan._starts), tuple(plan._segments))

    hosts = [(h.host, h.rule, h.enforced_rule, sessions(h.sessions), sessions(h.enforced)) for h in planned.hosts]
    simple = [
        getattr(planned, name) for name in QueuePlan.__dataclass_fields__ if name not in ("hosts", "under_patterns")
    ]
    return (*simple, planned.under_patterns is None, hosts)


def test_the_planned_and_unplanned_fields_are_every_field_of_a_remote_host_once():
    # A new host field must be placed: in the kind (it changes a plan) or out of it.
    assert not set(PLANNED_FIELDS) & set(UNPLANNED_FIELDS)
    assert set(PLANNED_FIELDS) | set(UNPLANNED_FIELDS) == set(RemoteHost.model_fields)


@pytest.mark.parametrize("policies", [None, EVERY_POLICY], ids=["plain", "policies"])
@pytest.mark.parametrize("setting", list(SETTINGS))
def test_a_plan_by_kind_is_the_plan_made_from_scratch(setting, policies, monkeypatch):
    profile = "postfix" if "postfix" in setting else "exchange2016"
    population = {**POPULATION, "policies": policies} if policies else POPULATION
    world = scenario(organisation(profile=profile, **SETTINGS[setting]), {"population": population})
    names = generate(world.remotes.population).names()

    by_kind = build_plan(world)
    shared = [_data(q) for name in names for q in by_kind.route("EX1", name).queues]
    monkeypatch.setattr(sim.plan.outbound, "domain_kind", lambda *_args: None)
    from_scratch = build_plan(world)
    assert shared == [_data(q) for name in names for q in from_scratch.route("EX1", name).queues]
    # Not vacuous: kinds were found, and all but a few domains took their plan from one.
    kinds = by_kind.outbound._kinds
    assert not from_scratch.outbound._kinds
    if setting == "verify" or (policies and "dane" in setting):
        return  # host names in the sessions or rules: little or nothing is shared
    assert 0 < len(kinds) < len(names) / 2  # 96-131 kinds: most of the 400 domains planned from one
