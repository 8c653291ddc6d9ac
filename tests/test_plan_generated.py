"""A generated population planned by kind, all at once (``sim/plan/generated.py``): every
queue a world makes so, and every route it notes, equals what it makes with each
domain planned alone, on settings that give the domains every reason to differ
(address spaces and policy entries that name some of them or claim all of them, both
address-space rules, load shared between connectors, a smart host, no route, the
``verify`` level that names hosts), and whole runs with their tables are the same."""

from __future__ import annotations

from typing import Any

import pytest
import simpy
from worlds import EVERY_POLICY, organisation, scenario

import sim.plan.outbound
from sim.model.metrics import Metrics
from sim.model.queue import DeliveryQueue
from sim.model.world import World
from sim.plan.kinds import domain_kind
from sim.population import generate
from sim.simulate import Simulation
from sim.tls.sessions import SessionPlan

POPULATION = {
    "name": "p",
    "domains": 300,
    "seed": 5,
    "tls": {"none": 0.2, "trusted": 0.4, "name-mismatch": 0.1, "self-signed": 0.1, "handshake-fails": 0.2},
    "mx_per_domain": {1: 0.5, 2: 0.3, 3: 0.2},
    "requires_tls": 0.1,
    "requires_tls_without_starttls": 0.2,
    "outage_share": 0.2,
    "outages": {"mean_up": "6h", "mean_down": "1h"},
    "greylist_share": 0.2,
}


def _connectors(*spaces: tuple[str, list[str], dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {"name": name, "source": ["EX1/default"], "address_spaces": [{"pattern": p} for p in patterns], **extra}
        for name, patterns, extra in spaces
    ]


# The domains an address space or a policy entry names: each planned alone.
NAMED = {
    "postfix, entries for some and for the parent of all": ["p-000002.example", "p-000009.example"],
    "address spaces, exchange 2003": ["p-000003.example"],
    "address spaces, exchange 2016": ["p-000004.example", "p-000005.example"],
    "a smart host for some": ["p-000006.example"],
}
RELAY = {"hosts": [{"host": "relay.example.net", "tls": "trusted"}]}
SETTINGS: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "opportunistic, exchange 2003": (organisation("opportunistic"), {}),
    "required, exchange 2016": (organisation("required", profile="exchange2016"), {}),
    "verify names hosts": (organisation("verify", profile="exchange2016"), {}),
    "postfix, entries for some and for the parent of all": (
        organisation(
            "may",
            profile="postfix",
            tls_policy={".example": "encrypt", "p-000002.example": "none", "p-000009.example": "verify"},
        ),
        {},
    ),
    # Exchange 2000 rules: "example" claims every generated domain as a suffix; one
    # domain is named; "*.p-000004.example" names none (only its subdomains, 2007 rules).
    "address spaces, exchange 2003": (
        organisation(
            "required",
            connectors=_connectors(
                ("all", ["*"], {}),
                ("parent", ["example"], {"tls": "opportunistic"}),
                ("one", ["p-000003.example"], {}),
            ),
        ),
        {},
    ),
    "address spaces, exchange 2016": (
        organisation(
            "opportunistic",
            profile="exchange2016",
            connectors=_connectors(
                ("all", ["*"], {}),
                ("parent", ["*.example"], {"tls": "required"}),
                ("subdomains", ["*.p-000004.example"], {}),
                ("one", ["p-000005.example"], {"tls": "required"}),
            ),
        ),
        {},
    ),
    "load shared by two connectors": (
        organisation("opportunistic", connectors=_connectors(("left", ["*"], {}), ("right", ["*"], {}))),
        {},
    ),
    "a smart host for some": (
        organisation(
            "opportunistic",
            connectors=_connectors(
                ("all", ["*"], {}),
                ("relay", ["p-000006.example"], {"delivery": "smart_host", "smart_hosts": ["relay.example.net"]}),
            ),
        ),
        RELAY,
    ),
    "no route": (organisation("opportunistic", connectors=_connectors(("elsewhere", ["other.example"], {}))), {}),
}


def _sessions(plan: SessionPlan | None) -> object:
    return None if plan is None else (tuple(plan._starts), tuple(plan._segments))


def _queue(queue: DeliveryQueue) -> tuple[object, ...]:
    """What a queue was made with, as plain values."""
    hosts = [
        (
            link.endpoint.name,
            link.endpoint.session_setup,
            link.endpoint.seconds_per_byte,
            tuple(link.endpoint._starts),
            tuple(link.endpoint._ends),
            link.endpoint.greylist,
            _sessions(link.plan),
            _sessions(link.enforced),
            link.policy_type,
            link.enforced_type,
            link.requiretls,
        )
        for link in queue.hosts
    ]
    return (type(queue), queue.name, queue.policy, queue.profile, queue.slots, queue.sts, queue.reporting, hosts)


def _dispatched(world: World, names: list[str]) -> list[object]:
    seen = []
    for name in names:
        dispatch = world.dispatch("EX1", name)
        route = dispatch.route
        routes = [(r.connector.name, r.virtual_server) for r in route.decision.routes]
        seen.append((route.label, route.state, route.bounce, routes, [_queue(q) for q in dispatch.queues]))
    return seen


def _world(what_if: object) -> World:
    return World(what_if, simpy.Environment(), Metrics())  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "population",
    [
        POPULATION,
        {**POPULATION, "policies": EVERY_POLICY},
        # Twelve hosts to a domain: kinds numbered by tuples, past 64-bit keys.
        {**POPULATION, "mx_per_domain": {1: 0.9, 12: 0.1}, "policies": EVERY_POLICY},
    ],
    ids=["plain", "policies", "many hosts"],
)
def test_the_kind_numbers_are_the_kinds_of_the_domains_made(population):
    generated = generate(scenario(organisation(), {"population": population}).remotes.population)
    numbers = generated.kinds().tolist()
    kinds = [domain_kind(d, d.mx) for d in generated.domains]
    assert [n < 0 for n in numbers] == [k is None for k in kinds]  # publishes MTA-STS or TLS-RPT
    pairs = {(n, k) for n, k in zip(numbers, kinds, strict=True) if n >= 0}
    assert len(pairs) == len({n for n, _ in pairs}) == len({k for _, k in pairs}) > 5  # one to one


@pytest.mark.parametrize("policies", [None, EVERY_POLICY], ids=["plain", "policies"])
@pytest.mark.parametrize("setting", list(SETTINGS))
def test_a_domain_planned_by_kind_gets_the_queues_of_one_planned_alone(setting, policies, monkeypatch):
    org, remotes = SETTINGS[setting]
    population = {**POPULATION, "policies": policies} if policies else POPULATION
    what_if = scenario(org, {"population": population, **remotes})
    names = generate(what_if.remotes.population).names()
    by_kind = _world(what_if)
    for name in names[::7]:  # some queues made ahead, as a run makes the likely ones
        by_kind.prepare("EX1", name)
    got = _dispatched(by_kind, names)
    generated = by_kind.plan.generated("EX1")
    assert generated is not None
    monkeypatch.setattr(sim.plan.outbound.Outbound, "generated", lambda *_args: None)
    alone = _world(what_if)
    assert got == _dispatched(alone, names)
    assert list(by_kind.queues) == list(alone.queues)  # the same queues, in the same order
    # Not vacuous: most domains took their kind's route, and the named ones did not.
    planned_alone = generated.plan_all()
    if setting == "verify names hosts":
        assert planned_alone == len(names)
        return
    # Half the domains publish MTA-STS or TLS-RPT with every policy drawn: those are alone.
    assert len(names) - planned_alone > (100 if policies else 150)
    for name in NAMED.get(setting, ()):
        assert generated.by_kind(name) is None


# The change below makes a difference to the first setting's domains (its queues by
# kind are replanned), none to the others' (their connectors or entries fix the level).
@pytest.mark.parametrize(
    "setting",
    [
        "opportunistic, exchange 2003",
        "address spaces, exchange 2016",
        "postfix, entries for some and for the parent of all",
    ],
)
def test_a_run_with_domains_planned_by_kind_has_the_tables_of_one_with_each_alone(setting, monkeypatch):
    org, remotes = SETTINGS[setting]
    what_if = scenario(
        org,
        {"population": POPULATION, **remotes},
        traffic={"outbound": {"rate_per_hour": 200, "population_weight": 1.0}},
        duration="1d",
    )
    # A change replans the world: the queues made by kind are handed their new plans.
    change = {"at": 6 * 3600.0, "set": {"servers.EX1.virtual_servers.default.outbound_tls": "required"}}
    what_if = what_if.model_validate({**what_if.model_dump(), "changes": [change]})

    def tables(simulation: Simulation) -> tuple[object, ...]:
        result = simulation.run()
        summary = {k: v for k, v in result.summary_row.items() if k != "wall_s"}
        return summary, result.per_domain_rows, result.queue_samples, result.ndr_rows

    by_kind = tables(Simulation(what_if))
    monkeypatch.setattr(sim.plan.outbound.Outbound, "generated", lambda *_args: None)
    assert by_kind == tables(Simulation(what_if))
    assert by_kind[0]["out_messages"] > 3000 and by_kind[0]["out_queued_at_end"] > 0
