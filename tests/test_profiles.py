"""Each MTA profile's behaviour, pinned by exact timelines on hand-built worlds
(reference/mta-semantics.md sections 1-4)."""

from __future__ import annotations

import itertools
import math

import pytest
from worlds import host, organisation, remotes, scenario

from sim.simulate import Simulation

MIN, HOUR, DAY = 60.0, 3600.0, 86400.0


def run_one(org, rem, *, duration="6d", at=0.0, domain="d.example", size_kb=10.0):
    sim = Simulation(scenario(org, rem, duration=duration), trace=True)
    sim.inject(at, domain, size_kb=size_kb)
    result = sim.run()
    return result, [(t, e, d) for t, _, e, d in result.trace if e != "accepted"]


def times(events, kind):
    return [t for t, e, _ in events if e == kind]


def postfix_schedule(lifetime=5 * DAY, minimal=300.0, maximal=4000.0, scan=300.0):
    """qmgr: next eligible = now + clamp(age, min, max), picked up by the next scan."""
    attempts, t = [0.0], 0.0
    while t < lifetime:
        eligible = t + min(max(t, minimal), maximal)
        t = math.ceil(eligible / scan - 1e-9) * scan
        attempts.append(t)
    return attempts


# -- Postfix ------------------------------------------------------------------------------


def test_postfix_encrypt_without_starttls_defers_4_7_4_backs_off_and_bounces_with_last_code():
    result, events = run_one(organisation("encrypt", profile="postfix"), remotes(d_example="none"))
    attempts = times(events, "attempt")
    assert attempts[:8] == [0, 300, 600, 1200, 2400, 4800, 9000, 13200]
    assert attempts == postfix_schedule()
    deferrals = [d for _, e, d in events if e == "deferred"]
    assert set(deferrals) == {"4.7.4 TLS is required, but was not offered by host"}
    # Expiry is tested only after a failed attempt: the first one at or past 5 days.
    (ended,) = [(t, d) for t, e, d in events if e == "expired"]
    assert ended[0] == attempts[-1] >= 5 * DAY > attempts[-2]
    assert ended[1].startswith("4.7.4 ")  # the last deferral code, not 4.4.7
    assert times(events, "delay-notice") == []  # delay_warning_time is 0 by default
    assert result.ndr_rows[0]["status"] == "4.7.4"


def test_postfix_may_after_handshake_failure_defers_young_mail_then_falls_back_to_plaintext():
    _, events = run_one(organisation("may", profile="postfix"), remotes(d_example="handshake-fails"))
    assert [(t, e) for t, e, _ in events if e in ("attempt", "deferred")] == [
        (0.0, "attempt"),
        (0.0, "deferred"),
        (300.0, "attempt"),
    ]
    assert [d for _, e, d in events if e == "deferred"] == ["4.7.5 Cannot start TLS: handshake failure"]
    (delivered,) = [(t, d) for t, e, d in events if e == "delivered"]
    assert delivered[1] == "plaintext"
    assert 300.0 < delivered[0] < 302.0


def test_postfix_may_fallback_to_a_host_that_requires_tls_bounces_5_7_0():
    rem = remotes(d_example=[host("mx.d.example", "handshake-fails", requires_tls=True)])
    result, events = run_one(organisation("may", profile="postfix"), rem)
    assert [(t, e) for t, e, _ in events] == [(0, "attempt"), (0, "deferred"), (300, "attempt"), (300, "bounced")]
    assert result.ndr_rows[0]["status"] == "5.7.0"


def test_postfix_verify_defers_untrusted_certificate_with_4_7_5():
    _, events = run_one(organisation("verify", profile="postfix"), remotes(d_example="self-signed"), duration="1h")
    assert {d for _, e, d in events if e == "deferred"} == {
        "4.7.5 Server certificate not verified: self-signed certificate"
    }


def test_postfix_plaintext_to_host_requiring_tls_bounces_at_once():
    rem = remotes(d_example=[host("mx.d.example", "trusted", requires_tls=True)])
    result, events = run_one(organisation("none", profile="postfix"), rem, duration="1h")
    assert [(t, e) for t, e, _ in events] == [(0, "attempt"), (0, "bounced")]
    assert result.ndr_rows[0]["status"] == "5.7.0"


def test_postfix_delay_warning_after_a_failed_attempt_past_delay_warning_time():
    org = organisation("encrypt", profile="postfix", delivery={"delay_notification": "1h"})
    _, events = run_one(org, remotes(d_example="none"), duration="3h")
    assert times(events, "delay-notice") == [4800.0]  # first failed attempt with age >= 1 h


def test_postfix_per_destination_tls_policy_map():
    org = organisation("may", profile="postfix", tls_policy={"strict.example": "encrypt", ".corp.example": "encrypt"})
    rem = remotes(strict_example="none", loose_example="none", a_corp_example="none")
    sim = Simulation(scenario(org, rem, duration="1h"), trace=True)
    for domain in ("strict.example", "loose.example", "a.corp.example"):
        sim.inject(0, domain)
    per_domain = sim.run().per_domain.set_index("domain")
    assert per_domain.loc["loose.example", "delivered_plaintext"] == 1
    assert per_domain.loc["strict.example", "queued_at_end"] == 1
    assert per_domain.loc["a.corp.example", "queued_at_end"] == 1


def test_postfix_one_failure_does_not_kill_the_destination_a_failed_cohort_does():
    # 6b: one failed session lowers the window but the destination stays alive (the
    # in-core queue is then empty and discarded): a new message makes its own connection.
    org = organisation("encrypt", profile="postfix")
    sim = Simulation(scenario(org, remotes(d_example="none"), duration="10m"), trace=True)
    sim.inject(0, "d.example")
    sim.inject(60, "d.example")
    events = [(t, i, e) for t, i, e, _ in sim.run().trace]
    # Message 1 failed at 60 s with age 0: stamped 360, due from 359: the 600 s scan.
    assert [(t, i) for t, i, e in events if e == "attempt"] == [(0, 0), (60, 1), (300, 0)]
    # Three messages at once: three parallel sessions fail, the third failure completes
    # the cohort (1/5 + 1/3 + 1/2 >= 1), and mail arriving while it is dead is deferred
    # "delivery temporarily suspended" without a connection.
    sim = Simulation(scenario(org, remotes(d_example="none"), duration="10m"), trace=True)
    for _ in range(3):
        sim.inject(0, "d.example")
    sim.inject(60, "d.example")
    result = sim.run()
    events = [(t, i, e, d) for t, i, e, d in result.trace]
    assert [(t, i) for t, i, e, _ in events if e == "attempt"][:4] == [(0, 0), (0, 1), (0, 2), (300, 0)]
    [(t, i, d)] = [(t, i, d) for t, i, e, d in events if e == "suspended" and t < 300]
    assert (t, i) == (60, 3)
    assert d == "4.7.4 delivery temporarily suspended: TLS is required, but was not offered by host"
    assert result.summary_row["out_deferrals_suspended"] >= 1


# -- Sendmail -----------------------------------------------------------------------------


def test_sendmail_handshake_failure_defers_403_4_7_0_at_each_queue_run_warns_at_4h_returns_at_5d():
    result, events = run_one(organisation("opportunistic", profile="sendmail"), remotes(d_example="handshake-fails"))
    attempts = times(events, "attempt")
    assert attempts[:4] == [0, 1800, 3600, 5400]
    assert all(b - a == 1800 for a, b in itertools.pairwise(attempts))
    assert {d for _, e, d in events if e == "deferred"} == {"4.7.0 403 4.7.0 TLS handshake failed."}
    assert times(events, "delivered") == []  # no plaintext fallback by default
    assert times(events, "delay-notice") == [4 * HOUR]
    assert [(t, d[:6]) for t, e, d in events if e == "expired"] == [(5 * DAY, "4.4.7 ")]
    assert result.summary_row["out_delivered"] == 0


def test_sendmail_tries_a_new_message_at_once_even_when_the_queue_waits():
    org = organisation("required", profile="sendmail")
    sim = Simulation(scenario(org, remotes(d_example="none"), duration="1h"), trace=True)
    sim.inject(0, "d.example")
    sim.inject(600, "d.example")
    attempts = [(t, i) for t, i, e, _ in sim.run().trace if e == "attempt"]
    assert attempts == [(0, 0), (600, 1), (1800, 0)]


# -- Exchange 2016 and Exchange Online ------------------------------------------------------


def test_exchange2016_require_tls_to_host_without_tls_defers_4_4_317_and_expires_after_2_days():
    _result, events = run_one(
        organisation("required", profile="exchange2016"), remotes(d_example="none"), duration="3d"
    )
    assert {d for _, e, d in events if e == "deferred"} == {
        "4.4.317 450 4.4.317 Cannot connect to remote server: TLS required, not supported"
    }
    assert times(events, "delay-notice") == [4 * HOUR]
    (expired,) = [(t, d) for t, e, d in events if e == "expired"]
    assert expired[0] == 2 * DAY
    assert expired[1].startswith("4.4.7 550 4.4.7 QUEUE.Expired")


def test_exchange2016_certificate_validation_defers_4_7_320():
    _, events = run_one(organisation("verify", profile="exchange2016"), remotes(d_example="expired"), duration="1h")
    assert {d.split()[0] for _, e, d in events if e == "deferred"} == {"4.7.320"}


def test_exchange_online_connector_expires_after_24_hours():
    _, events = run_one(organisation("required", profile="exchange-online"), remotes(d_example="none"), duration="2d")
    assert [t for t, e, _ in events if e == "expired"] == [1 * DAY]


@pytest.mark.parametrize("profile", ["exchange2003", "exchange2016", "exchange-online", "sendmail"])
def test_no_plaintext_fallback_after_handshake_failure_except_postfix(profile):
    _, events = run_one(
        organisation("opportunistic", profile=profile), remotes(d_example="handshake-fails"), duration="1d"
    )
    assert times(events, "delivered") == []


# -- remote hosts over time --------------------------------------------------------------------


def test_greylisting_defers_the_first_attempt_and_accepts_the_retry():
    rem = remotes(d_example=[host("mx.d.example", "trusted", greylist="5m")])
    _, events = run_one(organisation("off"), rem, duration="1h")
    assert [(t, e) for t, e, _ in events][:3] == [(0, "attempt"), (0, "deferred"), (15 * MIN, "attempt")]
    assert [d for _, e, d in events if e == "deferred"] == ["4.7.1 450 4.7.1 Greylisted, please try again later"]
    assert times(events, "delivered") and times(events, "delivered")[0] < 15 * MIN + 2


def test_falls_through_to_the_next_mx_while_the_first_is_down():
    rem = remotes(
        d_example=[
            host("mx1.d.example", preference=10, down=[{"from": 0, "to": "1h"}]),
            host("mx2.d.example", preference=20),
        ]
    )
    _, events = run_one(organisation("off"), rem, duration="2h")
    assert [(e, d) for _, e, d in events][:1] == [("attempt", "mx2.d.example")]


def test_a_host_down_for_hours_bounces_exactly_the_messages_whose_expiry_falls_in_the_outage():
    start, end = 10 * HOUR, 34 * HOUR
    rem = remotes(d_example=[host("mx.d.example", down=[{"from": start, "to": end}])])
    org = organisation(
        "off",
        delivery={
            "first_retry": "1m",
            "second_retry": "1m",
            "third_retry": "1m",
            "subsequent_retry": "1m",
            "expiration_timeout": "6h",
        },
    )
    sim = Simulation(scenario(org, rem, duration="3d"), trace=True)
    arrivals = {sim.inject(at, "d.example"): at for at in [k * 600.0 + 7.0 for k in range(0, 6 * 36)]}
    trace = sim.run().trace
    resumed = min(t for t, _, e, _ in trace if e == "delivered" and t > start)
    assert end <= resumed < end + 60 + 1  # the first retry after the outage gets through
    bounced = {i for _, i, e, _ in trace if e in ("expired", "bounced")}
    # Mail that arrived before the outage was delivered at once; of the mail queued by
    # the outage, exactly the messages whose 6 h lifetime ends before the queue resumes bounce.
    expected = {i for i, at in arrivals.items() if at >= start and at + 6 * HOUR < resumed}
    assert bounced == expected
    assert bounced  # the window is not empty
    delivered = {i for _, i, e, _ in trace if e == "delivered"}
    assert delivered == set(arrivals) - expected


def test_random_outages_are_reproducible_and_cover_the_expected_share_of_time():
    from sim.model.endpoint import random_outages
    from sim.streams import Stream, generator

    periods = random_outages(10 * HOUR, 2 * HOUR, 2000 * DAY, generator(1, 0, Stream.AVAILABILITY, 7))
    again = random_outages(10 * HOUR, 2 * HOUR, 2000 * DAY, generator(1, 0, Stream.AVAILABILITY, 7))
    assert periods == again
    down = sum(min(e, 2000 * DAY) - s for s, e in periods) / (2000 * DAY)
    assert down == pytest.approx(2 / 12, abs=0.02)  # mean_down / (mean_up + mean_down)


# -- Exchange 2007+ send-connector TLS settings ------------------------------------------------


def _connector(**fields):
    return [{"name": "internet", "source": ["EX1/default"], "address_spaces": [{"pattern": "*"}], **fields}]


@pytest.mark.parametrize(
    ("fields", "remote", "expected"),
    [
        ({"require_tls": True}, "none", "deferred 4.4.317"),
        ({"require_tls": True, "tls_auth_level": "EncryptionOnly"}, "self-signed", "delivered tls-unverified"),
        ({"require_tls": True, "tls_auth_level": "CertificateValidation"}, "self-signed", "deferred 4.7.320"),
        ({"require_tls": True, "tls_auth_level": "DomainValidation"}, "trusted", "delivered tls-verified"),
        ({"ignore_starttls": True}, "trusted", "delivered plaintext"),
    ],
)
def test_exchange2016_send_connector_tls_settings(fields, remote, expected):
    # The virtual server is opportunistic, as Exchange 2007+ send connectors are by default.
    org = organisation("opportunistic", profile="exchange2016", connectors=_connector(**fields))
    _, events = run_one(org, remotes(d_example=remote), duration="2m")
    first = next(f"{e} {d.split()[0]}" for _, e, d in events if e in ("deferred", "delivered"))
    assert first == expected


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"ignore_starttls": True, "require_tls": True}, "ignore_starttls must be false"),
        ({"tls_auth_level": "CertificateValidation"}, "tls_auth_level needs require_tls"),
    ],
)
def test_contradictory_exchange2016_settings_are_rejected(fields, message):
    with pytest.raises(ValueError, match=message):
        scenario(organisation(profile="exchange2016", connectors=_connector(**fields)), remotes(d_example="none"))
