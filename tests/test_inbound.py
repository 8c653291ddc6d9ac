"""Inbound TLS: remote senders deliver to our virtual servers, and retry or lose mail
on their side when we refuse them."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from worlds import organisation, scenario

import sim
from sim.simulate import Simulation

ROOT = Path(__file__).resolve().parent.parent
DAY = 86400.0


def inbound_world(flows, *, tls="offered", strength=128, require=False, duration="3d", seed=1):
    org = organisation("off", inbound={"tls": tls, "strength": strength, "require_secure_channel": require})
    return scenario(org, {"domains": []}, traffic={"inbound": flows}, duration=duration, seed=seed)


def test_offered_not_required_loses_nothing():
    result = sim.run(sim.load_scenario(ROOT / "scenarios/article-inbound-tls-offered.yaml"))
    row = result.summary_row
    assert row["in_messages"] > 20000
    assert row["in_lost"] == 0
    senders = result.inbound.set_index("sender")
    assert senders.loc["oldsendmail.example", "accepted_plaintext"] == senders.loc["oldsendmail.example", "messages"]
    assert senders.loc["legacy40.example", "accepted_tls"] == senders.loc["legacy40.example", "messages"]
    # The Postfix sender whose handshake fails falls back to plaintext after 300 s.
    assert senders.loc["brokentls.example", "accepted_plaintext"] > 0
    assert senders.loc["brokentls.example", "delay_mean_s"] > 300


def test_require_128_bit_secure_channel_drops_inbound_volume():
    offered = sim.run(sim.load_scenario(ROOT / "scenarios/article-inbound-tls-offered.yaml")).summary_row
    result = sim.run(sim.load_scenario(ROOT / "scenarios/article-inbound-require-tls.yaml"))
    row = result.summary_row
    assert row["in_messages"] == offered["in_messages"]  # the same senders send the same mail
    assert row["in_accepted"] < 0.7 * offered["in_accepted"]
    assert row["in_accepted"] == row["in_accepted_tls"]
    senders = result.inbound.set_index("sender")
    for ok in ("fabrikam.com", "woodgrovebank.com"):
        assert senders.loc[ok, "accepted_tls"] == senders.loc[ok, "messages"]
    # No TLS at all: refused with 530 5.7.0, returned by the sender at once.
    assert senders.loc["oldsendmail.example", "lost"] == senders.loc["oldsendmail.example", "messages"]
    # 40-bit only: retried on the sender's side until its 2-day expiration, then lost.
    legacy = senders.loc["legacy40.example"]
    assert legacy["accepted"] == 0 and legacy["lost"] > 0 and legacy["queued_remote_at_end"] > 0


def test_forty_bit_sender_against_128_bit_requirement_retries_on_its_schedule_then_loses_the_mail():
    s = inbound_world(
        [{"from": "old.example", "rate_per_hour": 1, "profile": "exchange2003", "tls": "40-bit"}], require=True
    )
    # Follow the first message the sender generates: its own queue retries it on the
    # Exchange 2003 schedule until its 2-day expiration timeout.
    result = Simulation(s, trace=True).run()
    trace = result.trace
    first = min(i for _, i, e, _ in trace if e == "accepted")
    attempts = [t for t, i, e, _ in trace if e == "attempt" and i == first]
    arrived = next(t for t, i, e, _ in trace if e == "accepted" and i == first)
    assert [round((t - arrived) / 60) for t in attempts[:5]] == [0, 15, 45, 105, 345]
    (lost,) = [t for t, i, e, _ in trace if e == "expired" and i == first]
    assert lost - arrived == pytest.approx(2 * DAY)


def test_sender_without_tls_is_refused_5_7_0_and_bounces_at_once():
    s = inbound_world(
        [{"from": "plain.example", "rate_per_hour": 30, "profile": "postfix", "tls": "none"}],
        require=True,
        duration="1d",
    )
    row = sim.run(s).summary_row
    assert row["in_accepted"] == 0
    assert row["in_lost"] == row["in_messages"] == row["in_rejected_attempts"] > 0
    assert row["in_queued_remote_at_end"] == 0


CLIENTS = ["none", "40-bit", "128-bit", "handshake-fails"]
PROFILES = ["exchange2003", "exchange2016", "exchange-online", "postfix", "sendmail"]


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    flows=st.lists(
        st.tuples(st.sampled_from(PROFILES), st.sampled_from(CLIENTS), st.sampled_from(["may", "encrypt"])),
        min_size=1,
        max_size=4,
    ),
    tls=st.sampled_from(["off", "offered"]),
    strength=st.sampled_from([40, 128]),
    require=st.booleans(),
    seed=st.integers(0, 1000),
)
def test_generated_equals_accepted_plus_lost_plus_queued_at_sender(flows, tls, strength, require, seed):
    require = require and tls == "offered"
    specs = [
        {
            "from": f"s{i}.example",
            "rate_per_hour": 20,
            "profile": p,
            "tls": c,
            "tls_level": level,
            "delivery": {"expiration_timeout": "12h"},
        }
        for i, (p, c, level) in enumerate(flows)
    ]
    row = sim.run(
        inbound_world(specs, tls=tls, strength=strength, require=require, duration="1d", seed=seed)
    ).summary_row
    assert row["in_messages"] == row["in_accepted"] + row["in_lost"] + row["in_queued_remote_at_end"]
    assert row["in_accepted_tls"] <= row["in_accepted"]
    if require:
        # Nothing is ever accepted in plaintext when we require a secure channel.
        assert row["in_accepted_tls"] == row["in_accepted"]


def test_exchange_online_cannot_send_to_a_tls_1_0_only_exchange_2003_server():
    # EXO sends only with TLS 1.2+ and Windows 2003 speaks TLS 1.0 at most (reference 2a,
    # 4b): the handshake fails, EXO defers and returns the mail after its 24 h.
    s = inbound_world([{"from": "tenant.example", "rate_per_hour": 10, "profile": "exchange-online"}], duration="2d")
    row = sim.run(s).summary_row
    assert row["in_accepted"] == 0
    assert row["in_lost"] > 0 and row["in_queued_remote_at_end"] > 0
