"""Exact timelines on hand-built worlds (reference/mta-semantics.md 1b)."""

from __future__ import annotations

from worlds import host, organisation, remotes, scenario

from sim.simulate import Simulation

MIN = 60.0
HOUR = 3600.0
DAY = 86400.0


def _trace(org, rem, *, duration="3d", messages=((0.0, "plain.example"),)):
    sim = Simulation(scenario(org, rem, duration=duration), trace=True)
    for at, domain in messages:
        sim.inject(at, domain)
    result = sim.run()
    return result, result.trace


def test_forced_tls_to_host_without_starttls_retries_notifies_and_expires():
    result, trace = _trace(organisation("required"), remotes(plain_example="none"))
    attempts = [t / MIN for t, _, event, _ in trace if event == "attempt"]
    # Each retry interval counts from the previous attempt: 15, 30, 60, then 240 min.
    assert attempts == [0, 15, 45, 105] + [345 + 240 * k for k in range(11)]
    deferred = [(t, detail) for t, _, event, detail in trace if event == "deferred"]
    assert deferred[0] == (0.0, "4.7.4 The remote SMTP service does not support TLS")
    notices = [t for t, _, event, _ in trace if event == "delay-notice"]
    assert notices == [12 * HOUR]
    endings = [(t, event, detail) for t, _, event, detail in trace if event in ("expired", "bounced", "delivered")]
    # Expiry takes effect at the 2-day deadline itself (profile timers="deadline").
    assert len(endings) == 1
    t, event, detail = endings[0]
    assert (t, event) == (2 * DAY, "expired")
    assert detail.startswith("4.4.7 ")
    summary = result.summary_row
    assert (summary["out_messages"], summary["out_ndr"], summary["out_expired"], summary["out_delay_dsn"]) == (
        1,
        1,
        1,
        1,
    )


def test_delivery_settings_override_the_profile_schedule():
    org = organisation(
        "required",
        delivery={
            "first_retry": "5m",
            "second_retry": "5m",
            "third_retry": "10m",
            "subsequent_retry": "1h",
            "delay_notification": "1h",
            "expiration_timeout": "3h",
        },
    )
    _, trace = _trace(org, remotes(plain_example="none"), duration="1d")
    attempts = [t / MIN for t, _, event, _ in trace if event == "attempt"]
    assert attempts == [0, 5, 10, 20, 80, 140]
    assert [t for t, _, e, _ in trace if e == "delay-notice"] == [1 * HOUR]
    assert [(t, e) for t, _, e, _ in trace if e == "expired"] == [(3 * HOUR, "expired")]


def test_queue_retries_as_a_whole_and_later_messages_wait_for_the_retry():
    # The host has no STARTTLS; a second message arrives while the queue is in Retry.
    _, trace = _trace(
        organisation("required"),
        remotes(plain_example="none"),
        duration="1h",
        messages=((0.0, "plain.example"), (20 * MIN, "plain.example")),
    )
    attempts = [(t / MIN, ident) for t, ident, event, _ in trace if event == "attempt"]
    # Message 1 (id 1) arrives at 20 min but waits for the queue's retry at 45 min.
    assert attempts == [(0, 0), (15, 0), (45, 0)]


def test_delivery_takes_session_setup_plus_transfer_time():
    rem = remotes(fast_example=[host("mx.fast.example", "trusted", session_setup="2s", bandwidth_mbps=8)])
    _result, trace = _trace(organisation("required"), rem, duration="1h", messages=((10.0, "fast.example"),))
    # 10 kB at 8 Mbit/s = 10240 * 8 / 8e6 s
    expected = 10.0 + 2.0 + 10240 * 8 / 8e6
    assert [(t, e, d) for t, _, e, d in trace if e == "delivered"] == [(expected, "delivered", "tls-unverified")]


def test_falls_through_to_next_mx_when_the_first_cannot_do_tls():
    rem = remotes(
        two_example=[host("mx1.two.example", "none", preference=10), host("mx2.two.example", "trusted", preference=20)]
    )
    _, trace = _trace(organisation("required"), rem, duration="1h", messages=((0.0, "two.example"),))
    events = [(e, d) for _, _, e, d in trace if e != "accepted"]
    assert events == [("attempt", "mx2.two.example"), ("delivered", "tls-unverified")]


def test_host_that_requires_tls_bounces_plaintext_at_once_with_5_7_0():
    rem = remotes(strict_example=[host("mx.strict.example", "trusted", requires_tls=True)])
    result, trace = _trace(organisation("off"), rem, duration="1h", messages=((0.0, "strict.example"),))
    assert [(t, e) for t, _, e, _ in trace if e != "accepted"] == [(0.0, "attempt"), (0.0, "bounced")]
    assert result.ndr_rows[0]["status"] == "5.7.0"


def _exchange(profile="exchange2016", **delivery):
    return organisation(
        "required",
        profile=profile,
        connectors=[{"name": "internet", "source": ["EX1/default"], "address_spaces": [{"pattern": "*"}]}],
        **({"delivery": delivery} if delivery else {}),
    )


def test_exchange2016_retries_glitch_then_transient_then_connection_failure_interval():
    _, trace = _trace(_exchange(), remotes(plain_example="none"), duration="2h")
    attempts = [t / MIN for t, _, event, _ in trace if event == "attempt"]
    # Reference 6d (message-intervals.md): 4 glitch retries 1 min apart, 6 transient
    # retries 5 min apart, then every OutboundConnectionFailureRetryInterval (10 min).
    glitch = [0, 1, 2, 3, 4]
    transient = [9, 14, 19, 24, 29, 34]
    assert attempts == glitch + transient + [44, 54, 64, 74, 84, 94, 104, 114]
    notices = [t for t, _, event, _ in trace if event == "delay-notice"]
    assert notices == []  # 4 h DelayNotificationTimeout lies beyond the 2 h run


def test_exchange_edge_retries_transient_10_min_then_every_30_min():
    _, trace = _trace(_exchange("exchange2016-edge"), remotes(plain_example="none"), duration="3h")
    attempts = [t / MIN for t, _, event, _ in trace if event == "attempt"]
    assert attempts == [0, 1, 2, 3, 4, 14, 24, 34, 44, 54, 64, 94, 124, 154]


def test_exchange_retry_counts_and_intervals_can_be_overridden():
    org = _exchange(
        queue_glitch_retry_count=0,
        transient_failure_retry_count=2,
        transient_failure_retry_interval="2m",
        outbound_connection_failure_retry_interval="15m",
    )
    _, trace = _trace(org, remotes(plain_example="none"), duration="1h")
    attempts = [t / MIN for t, _, event, _ in trace if event == "attempt"]
    assert attempts == [0, 2, 4, 19, 34, 49]
