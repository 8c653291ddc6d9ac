"""A run spaces out Python's cyclic garbage collector (issue 13): sound because the model
makes no reference cycles, so reference counting frees every message, event and
cohort it is done with and memory follows the queues. These tests check that on every
bundled what-if and on hand-built worlds that exercise what the bundled ones may not
(Postfix backlogs with cohorts, expiry and warnings; outages, fallback and revivals; a
kept trace), and that the collector's settings come back after a run."""

from __future__ import annotations

import gc

import pytest
from simpy.events import Timeout
from worlds import bundled_what_ifs, organisation, postfix_backlog, postfix_flaky, remotes, scenario

import sim
from sim.simulate import RUN_COLLECTOR_THRESHOLDS, Simulation, collector_spaced_out

FAST = {"article-force-tls", "exo-partner-tls"}


def _worlds() -> dict[str, tuple[sim.Scenario, bool]]:
    worlds = {p.stem: (sim.load_scenario(p), False) for p in bundled_what_ifs()}
    worlds["hand:postfix-backlog"] = (postfix_backlog(), False)
    worlds["hand:postfix-flaky"] = (postfix_flaky(False), False)
    worlds["hand:postfix-flaky-traced"] = (postfix_flaky(True), True)
    return worlds


WORLDS = _worlds()


@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=[] if n in FAST or n.startswith("hand:") else [pytest.mark.slow]) for n in WORLDS]
)
def test_a_run_leaves_no_cyclic_garbage(name):
    world, trace = WORLDS[name]
    simulation = Simulation(world, trace=trace)
    gc.collect()  # what building the world left (pydantic, the plan): not the run's
    gc.disable()  # so that nothing the run makes is collected before the count below
    try:
        simulation.env.run(until=world.run.duration)
        assert simulation.metrics.messages + simulation.inbound_metrics.messages > 0
        assert gc.collect() == 0  # everything the run let go of was freed by reference counting
    finally:
        gc.enable()


def test_the_collector_is_spaced_out_while_the_model_runs_and_as_before_after():
    world = scenario(
        organisation("may"),
        remotes(a_example="trusted"),
        traffic={"outbound": {"rate_per_hour": 60, "domains": {"a.example": 1}}},
    )
    simulation = Simulation(world)
    seen: list[tuple[int, int, int]] = []
    Timeout(simulation.env, 3600).callbacks.append(lambda _event: seen.append(gc.get_threshold()))
    before = gc.get_threshold()
    simulation.run()
    assert seen == [RUN_COLLECTOR_THRESHOLDS] != [before]
    assert gc.get_threshold() == before


def _population_world(domains: int = 300) -> sim.Scenario:
    population = {
        "name": "p",
        "domains": domains,
        "seed": 3,
        "zipf_exponent": 1.0,
        "tls": {"trusted": 0.8, "none": 0.2},
    }
    traffic = {"outbound": {"rate_per_hour": 120 * domains / 300, "population_weight": 1.0}}
    return scenario(organisation("required"), {"population": population}, traffic=traffic, duration="1d")


def test_building_a_world_makes_no_collection_and_leaves_the_collector_as_it_was():
    collections: list[int] = []

    def count(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            collections.append(info["generation"])

    world = _population_world(3000)  # made first: validating it may collect
    gc.callbacks.append(count)
    try:
        Simulation(world)  # thousands of queues made ahead: hundreds of collections, were it on
        assert len(collections) <= 1 and gc.isenabled()  # at most one, as the collector comes back
        gc.disable()
        Simulation(world)
        assert not gc.isenabled()  # a caller's choice stands
    finally:
        gc.enable()
        gc.callbacks.remove(count)


def test_the_built_world_is_left_out_of_collections_while_the_model_runs_and_only_then():
    simulation = Simulation(_population_world())
    frozen: list[int] = []
    Timeout(simulation.env, 3600).callbacks.append(lambda _event: frozen.append(gc.get_freeze_count()))
    assert gc.get_freeze_count() == 0
    simulation.run()
    assert frozen and frozen[0] > 1000  # the world's queues, plans and hosts, among others
    assert gc.get_freeze_count() == 0


def test_the_collector_settings_come_back_when_a_run_fails():
    before = gc.get_threshold()
    with pytest.raises(RuntimeError), collector_spaced_out():
        assert gc.get_threshold() == RUN_COLLECTOR_THRESHOLDS
        raise RuntimeError("a model error")
    assert gc.get_threshold() == before


def test_a_queue_that_never_queues_shares_the_empty_lists_and_one_that_queues_gets_its_own():
    # 760 bytes a deque, two a queue, 100,000 queues in an Internet-sized world (issue 13).
    from worlds import host

    from sim.model.queue import NONE_YET

    rem = remotes(
        up_example="trusted", down_example=[host("mx.down.example", "trusted", down=[{"start": "0s", "end": "2h"}])]
    )
    traffic = {"outbound": {"rate_per_hour": 120, "domains": {"up.example": 0.5, "down.example": 0.5}}}
    simulation = Simulation(scenario(organisation("may"), rem, traffic=traffic, duration="6h"))
    result = simulation.run()
    assert result.summary_row["out_delivered"] == result.summary_row["out_messages"] > 0
    queues = {queue.name.rsplit("|", 1)[1]: queue for queue in simulation.world.queues.values()}
    assert queues["up.example"].pending is NONE_YET and queues["up.example"].watch is NONE_YET
    assert queues["down.example"].pending is not NONE_YET  # it held mail for two hours
    with pytest.raises(TypeError):
        NONE_YET.append(object())
    assert len(NONE_YET) == 0


def test_every_queue_holding_mail_is_listed_for_the_sampler_and_none_twice():
    # The sampler visits only its holding list (issue 13); its rows equal a visit of every
    # queue only if a queue that holds mail is always listed. Checked at 300 instants of a
    # world with idle, busy, retrying and backed-off queues (Exchange and Postfix).
    from worlds import host

    for profile in ("exchange2003", "postfix"):
        rem = remotes(
            **{f"d{i}_example": "trusted" for i in range(40)},
            down_example=[host("mx.down.example", "trusted", down=[{"start": "1h", "end": "5h"}])],
            plain_example="none",
        )
        weights = {f"d{i}.example": 1.0 / (i + 1) for i in range(40)} | {"down.example": 0.5, "plain.example": 0.5}
        traffic = {"outbound": {"rate_per_hour": 400, "domains": weights}}
        org = organisation("required", profile=profile)
        simulation = Simulation(scenario(org, rem, traffic=traffic, duration="12h", sample_interval="10m"))
        queues = simulation.world.queues
        for step in range(1, 301):
            simulation.env.run(until=step * 144.0)
            holding = simulation.world.sampler.holding
            listed = {id(q) for q in holding}
            assert len(listed) == len(holding) and all(q.listed for q in holding)
            assert all(id(q) in listed for q in queues.values() if q.depth), profile
        assert len(queues) > 20  # most queues idle most of the time, some never empty


def test_queues_made_ahead_join_the_world_only_with_their_first_mail(monkeypatch):
    """A run makes the tallies and queues of the domains likely to get mail before it
    starts, the most popular first (``make_ahead``), only for where they lie in memory:
    its tables, and the world's queues and their order, are those of a run that makes
    each when mail first reaches it; a queue made for a domain that gets none never
    joins the world."""
    import sim.model.traffic

    world = _population_world()

    def tables(simulation: Simulation) -> tuple[object, ...]:
        result = simulation.run()
        summary = {k: v for k, v in result.summary_row.items() if k != "wall_s"}
        names = [queue.name for queue in simulation.world.queues.values()]
        orders = [queue.order for queue in simulation.world.queues.values()]
        return summary, result.per_domain_rows, result.queue_samples, result.ndr_rows, names, orders

    ahead = Simulation(world)
    made = len(ahead.world._made)
    assert made > 100  # the likely domains (2,880 messages over 300 domains), made before the run
    got_ahead = tables(ahead)
    unused = set(ahead.world._made)
    assert unused and not unused & set(ahead.world.queues)  # made for domains that got no mail
    monkeypatch.setattr(sim.model.traffic, "make_ahead", lambda *_args: None)
    assert got_ahead == tables(Simulation(world))
    reached = len(got_ahead[1])
    assert len(got_ahead[4]) == reached < 300  # a queue per domain that got mail, and only those
