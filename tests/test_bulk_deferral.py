"""Deferring a Postfix backlog in bulk (cohorts) gives exactly what deferring message by
message gives (issue 13), on random worlds: dead and flaky destinations, mixed-domain
smart-host queues, short and long lifetimes, delay warnings on and off."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from worlds import host, organisation, scenario

import sim
from sim.model.backoff import BackoffQueue
from sim.model.cohort import Cohort, arrival_bound
from sim.model.message import DomainStats, Message

HOST_KINDS = ["none", "trusted", "self-signed", "handshake-fails", "flaky"]


def _remote(index: int, kind: str) -> dict:
    name = f"d{index}.example"
    if kind == "flaky":
        mx = [host(f"mx.{name}", "trusted", outages={"mean_up": "3h", "mean_down": "2h"}, session_setup=0.3)]
    else:
        mx = [host(f"mx.{name}", kind, session_setup=0.2)]
    return {"name": name, "mx": mx}


@st.composite
def postfix_worlds(draw):
    kinds = draw(st.lists(st.sampled_from(HOST_KINDS), min_size=1, max_size=4))
    level = draw(st.sampled_from(["opportunistic", "required"]))
    delivery = {
        "expiration_timeout": draw(st.sampled_from(["30m", "3h", "9h"])),
        "delay_notification": draw(st.sampled_from([0, "20m", "2h"])),
        "maximal_backoff_time": draw(st.sampled_from(["1000s", "4000s"])),
    }
    domains = [_remote(i, kind) for i, kind in enumerate(kinds)]
    relay = draw(st.sampled_from([None, "none", "flaky"]))
    connectors = [{"name": "internet", "source": ["EX1/default"], "address_spaces": [{"pattern": "*"}]}]
    hosts = []
    if relay is not None:  # every domain through one smart host: cohorts of mixed domains
        hosts = [_remote(99, relay)["mx"][0] | {"host": "relay.example.net"}]
        connectors[0] |= {"delivery": "smart_host", "smart_hosts": ["relay.example.net"]}
    org = organisation(level, connectors=connectors, profile="postfix", delivery=delivery)
    rate = draw(st.sampled_from([40, 400]))
    traffic = {"outbound": {"rate_per_hour": rate, "domains": {d["name"]: 1.0 for d in domains}}}
    seed = draw(st.integers(1, 1000))
    return scenario(org, {"domains": domains, "hosts": hosts}, traffic=traffic, duration="14h", seed=seed)


def _tables(world):
    result = sim.run(world)
    summary = {k: v for k, v in result.summary_row.items() if k != "wall_s"}
    return summary, result.per_domain_rows, result.ndr_rows, result.queue_samples


@pytest.mark.slow  # over a second: runs in CI (.ci/run)
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(world=postfix_worlds())
def test_bulk_deferral_gives_what_one_by_one_gives(world):
    bulk = _tables(world)
    try:
        BackoffQueue.in_bulk = False
        one_by_one = _tables(world)
    finally:
        BackoffQueue.in_bulk = True
    assert bulk[0] == one_by_one[0]
    assert bulk[1:] == one_by_one[1:]


def test_a_dead_destinations_backlog_moves_in_cohorts(monkeypatch):
    moved = []
    file_cohort = BackoffQueue._file_cohort

    def counting(queue, cohort, run):
        moved.append(len(cohort))
        file_cohort(queue, cohort, run)

    monkeypatch.setattr(BackoffQueue, "_file_cohort", counting)
    org = organisation("required", profile="postfix", delivery={"expiration_timeout": "12h"})
    world = scenario(
        org,
        {"domains": [_remote(0, "none"), _remote(1, "trusted")]},
        traffic={"outbound": {"rate_per_hour": 600, "domains": {"d0.example": 1, "d1.example": 1}}},
        duration="1d",
    )
    row = sim.run(world).summary_row
    assert row["out_expired"] > 0
    # A message is deferred about 5 times while young (ages 0, 300, 600, 1200, 2400 s,
    # each on its own backoff) and about 10 times after (every 4000 s for 12 h, in a
    # cohort): most suspended deferrals are carried by cohorts, none touched alone.
    assert sum(moved) > 0.6 * row["out_deferrals_suspended"]
    assert sum(moved) / len(moved) > 20


# --------------------------------------------------------------------------- Cohort itself


def _messages(*arrivals: float) -> list[Message]:
    stats = DomainStats("x.example")
    return [Message(i, t, 1000.0, stats) for i, t in enumerate(arrivals)]


def test_ages_use_whole_seconds_as_postfix_does():
    # age = int(now) - int(arrival): at now = 100.7 the message from 40.9 is 60 s old.
    cohort = Cohort(_messages(10.0, 40.9, 41.0, 41.2, 90.0))
    assert cohort.index_before(arrival_bound(60, int(100.7))) == 2  # 10.0 and 40.9 are >= 60 s old
    assert cohort.index_before(arrival_bound(59, 100)) == 4  # 41.0 and 41.2 are 59 s old
    assert cohort.index_before(arrival_bound(1000, 100)) == 0
    assert cohort.index_before(arrival_bound(0, 100)) == 5
    cohort.drop_front(1)
    assert cohort.index_before(arrival_bound(1000, 100)) == 1  # never before the cohort's start


def test_a_cohort_forgets_what_left_it_and_keeps_its_warned_prefix():
    first = Cohort(_messages(1, 2, 3, 4))
    first.notified = 4  # all warned
    second = Cohort(_messages(5, 6, 7))
    second.drop_front(1)
    second.notified = 2  # 6 warned, 7 not
    first.extend(second)
    assert [m.arrival for m in first.messages] == [1, 2, 3, 4, 6, 7]
    assert first.notified == 5
    first.drop_front(4)  # more than half gone: the list is compacted
    assert first.start == 0 and [m.arrival for m in first.messages] == [6, 7] and first.notified == 1
    tail = first.split_off(1)
    assert [m.arrival for m in tail] == [7] and len(first) == 1


@pytest.mark.parametrize("notified", [0, 2])
def test_extend_after_a_partly_warned_cohort_keeps_its_prefix(notified):
    first = Cohort(_messages(1, 2, 3))
    first.notified = notified
    other = Cohort(_messages(4, 5))
    other.notified = 2
    first.extend(other)
    assert first.notified == notified  # the prefix stops where this cohort's warnings stop
