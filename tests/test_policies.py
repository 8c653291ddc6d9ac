"""Transport policies, decided per product (reference modern-policies.md, MP below).

Each test is a row of a decision table: policy x host state x product -> delivered over
TLS / deferred with a status / bounced with a status, on a hand-built world.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from worlds import host, organisation, scenario

from sim.policy.sts import sts_matches
from sim.simulate import Simulation, run

HOUR = 3600.0
DAY = 86400.0


def sts(mode="enforce", mx=("*.d.example",), **fields):
    return {"mode": mode, "mx": list(mx), "max_age": "7d", **fields}


def domain(*hosts, **fields):
    return {"domains": [{"name": "d.example", "mx": list(hosts), **fields}]}


def one(org, rem, *, duration="2h", n=1, requiretls=False):
    simulation = Simulation(scenario(org, rem, duration=duration), trace=True)
    ids = [simulation.inject(0, "d.example") for _ in range(n)]
    if requiretls:
        # Mark the injected messages REQUIRETLS (flows mark a share; see test below).
        world = simulation.world
        submit = world.submit

        def marked(source, message):
            message.requiretls = message.id in ids
            submit(source, message)

        world.submit = marked
    result = simulation.run()
    events = [(t, e, d) for t, _, e, d in result.trace if e != "accepted"]
    return result, events


def outcome(events):
    """The message's ending, or its last deferral, as (event, detail)."""
    endings = [(e, d) for _, e, d in events if e in ("delivered", "bounced", "expired")]
    if endings:
        return endings[-1]
    return [(e, d) for _, e, d in events if e == "deferred"][-1]


EXO = "exchange-online"
MX_LOOKUP = (
    "4.4.3 Host or domain name not found. Name service error for name=d.example type=MX: Host not found, try again"
)
PF37 = "postfix"
PF311 = "postfix-3.11"


# --------------------------------------------------------------------------- MTA-STS (MP 1c, 5, 8)


@pytest.mark.parametrize(
    ("profile", "mta_sts", "served", "expected"),
    [
        # enforce + certificate valid for the MX name: verified TLS
        (EXO, "apply", "trusted", ("delivered", "tls-verified")),
        (PF37, "apply", "trusted", ("delivered", "tls-verified")),
        # enforce + self-signed: deferred with the product's status (EXO 4.7.5; Postfix 4.7.5)
        (EXO, "apply", "self-signed", ("deferred", "4.7.5 Remote certificate failed MTA-STS validation")),
        (PF37, "apply", "self-signed", ("deferred", "4.7.5 Server certificate not verified")),
        # enforce + no STARTTLS: EXO 4.7.321; Postfix 4.7.4
        (EXO, "apply", "none", ("deferred", "4.7.321 starttls-not-supported")),
        (PF37, "apply", "none", ("deferred", "4.7.4 TLS is required, but was not offered by host")),
        # the product does not apply MTA-STS: as without a policy (opportunistic TLS)
        ("exchange2016", None, "self-signed", ("delivered", "tls-unverified")),
        (PF37, None, "self-signed", ("delivered", "tls-unverified")),  # no plug-in configured
    ],
)
def test_enforced_mta_sts_by_product(profile, mta_sts, served, expected):
    vs = {"mta_sts": mta_sts} if mta_sts else {}
    org = organisation("opportunistic", profile=profile, **vs)
    _, events = one(org, domain(host("mx1.d.example", served), mta_sts=sts()))
    event, detail = outcome(events)
    assert (event, detail[: len(expected[1])]) == expected


def test_testing_mode_never_changes_delivery():
    # RFC 8461 s.5: "messages may be delivered as though there were no MTA-STS validation failure".
    org = organisation("opportunistic", profile=EXO)
    _, events = one(org, domain(host("mx1.d.example", "self-signed"), mta_sts=sts("testing")))
    assert outcome(events) == ("delivered", "tls-unverified")


def test_enforce_skips_an_mx_outside_the_patterns_under_rfc_checkers_but_not_postfix_3_7():
    # MP 8: Postfix 3.7 matches only the certificate, and "*." accepts two labels;
    # RFC checkers (EXO, Postfix 3.10.5+) skip the MX: "*." is exactly one label.
    hosts = [host("a.b.d.example", "trusted", preference=10), host("mx2.d.example", "trusted", preference=20)]
    rem = domain(*hosts, mta_sts=sts(mx=("*.d.example",)))
    _, exo = one(organisation("opportunistic", profile=EXO), rem)
    assert [d for _, e, d in exo if e == "attempt"] == ["mx2.d.example"]
    _, pf = one(organisation("opportunistic", profile=PF37, mta_sts="apply"), rem)
    assert [d for _, e, d in pf if e == "attempt"] == ["a.b.d.example"]


@pytest.mark.parametrize(
    ("profile", "plugin", "attempts"),
    [
        # The MX-name check (3.10.5) needs the policy's attributes in the plug-in's answer:
        # postfix-mta-sts-resolver as installed sends none, so only the certificate is checked.
        ("postfix-3.10", "postfix-mta-sts-resolver", ["a.b.d.example"]),
        ("postfix-3.11", "postfix-mta-sts-resolver", ["a.b.d.example"]),
        ("postfix-3.10", "postfix-mta-sts-resolver-tlsrpt", ["mx2.d.example"]),
        ("postfix-3.10", "postfix-tlspol", ["mx2.d.example"]),
        ("postfix-3.11", "postfix-tlspol", ["mx2.d.example"]),
    ],
)
def test_postfix_checks_the_mx_name_only_when_the_plug_in_forwards_the_policy(profile, plugin, attempts):
    hosts = [host("a.b.d.example", "trusted", preference=10), host("mx2.d.example", "trusted", preference=20)]
    rem = domain(*hosts, mta_sts=sts(mx=("*.d.example",)))
    org = organisation("may", profile=profile, mta_sts="apply", mta_sts_plugin=plugin)
    _, events = one(org, rem)
    assert [d for _, e, d in events if e == "attempt"] == attempts
    assert outcome(events) == ("delivered", "tls-verified")


def test_a_plug_in_answer_postfix_3_7_refuses_defers_every_enforced_domain():
    # Issue 20 s.3, measured: postfix-mta-sts-resolver with tlsrpt: true against Postfix 3.7
    # -> "invalid attribute name"; every MTA-STS destination defers and expires with it.
    org = organisation("may", profile=PF37, mta_sts="apply", mta_sts_plugin="postfix-mta-sts-resolver-tlsrpt")
    result, events = one(org, domain(host("mx1.d.example", "trusted"), mta_sts=sts()), duration="6d")
    assert {d for _, e, d in events if e == "deferred"} == {"4.7.5 client TLS configuration problem"}
    assert outcome(events) == ("expired", "4.7.5 message expired; last error: client TLS configuration problem")
    assert result.summary_row["out_connections"] == 0
    # The plug-in answers nothing for testing, and nothing without a policy: no change.
    for fields in ({"mta_sts": sts("testing")}, {}):
        _, events = one(org, domain(host("mx1.d.example", "trusted"), **fields))
        assert outcome(events) == ("delivered", "tls-unverified")


def test_postfix_tlspol_puts_dane_first():
    # postfix-tlspol README: "DANE is authoritative when fresh and usable" (RFC 8461 s.2),
    # unlike postfix-mta-sts-resolver, whose answer replaces DANE (MP 8).
    rem = domain(host("mx1.d.example", "trusted", tlsa="mismatch"), dnssec="secure", mta_sts=sts())
    tlspol = organisation("may", profile="postfix-3.10", dane="opportunistic", mta_sts="apply",
                          mta_sts_plugin="postfix-tlspol")  # fmt: skip
    assert outcome(one(tlspol, rem)[1]) == ("deferred", "4.7.5 Server certificate not verified")
    resolver = organisation("may", profile="postfix-3.10", dane="opportunistic", mta_sts="apply")
    assert outcome(one(resolver, rem)[1]) == ("delivered", "tls-verified")


def test_enforce_with_no_matching_mx_defers_4_4_8_under_exo_without_connecting():
    org = organisation("opportunistic", profile=EXO)
    result, events = one(org, domain(host("mx.other.example", "trusted"), mta_sts=sts()), duration="2d")
    assert [(e, d[:5]) for _, e, d in events if e == "expired"] == [("expired", "4.4.7")]
    assert "last error: MX hosts of the domain failed MTA-STS validation" in result.ndr_rows[0]["reason"]
    assert {d[:5] for _, e, d in events if e == "deferred"} == {"4.4.8"}
    assert result.summary_row["out_connections"] == 0
    assert [t for t, e, _ in events if e == "expired"] == [DAY]  # EXO's 24 h


def test_unreachable_policy_host_means_no_policy_and_a_cached_policy_survives_an_outage():
    # RFC 8461 s.3.3: no fetchable and no cached policy -> deliver as without MTA-STS;
    # a valid cached policy MUST be applied when no live one can be fetched.
    org = organisation("opportunistic", profile=EXO)
    unreachable = domain(host("mx1.d.example", "self-signed"), mta_sts=sts(policy_host="unreachable"))
    _, events = one(org, unreachable)
    assert outcome(events) == ("delivered", "tls-unverified")
    # Policy host down from 1 h to 7 h: fetched at 0, still applied at 2 h.
    down = domain(host("mx1.d.example", "self-signed"), mta_sts=sts(policy_host_down=[{"from": "1h", "to": "7h"}]))
    simulation = Simulation(scenario(org, down, duration="3h"), trace=True)
    simulation.inject(0, "d.example")
    simulation.inject(2 * HOUR, "d.example")
    result = simulation.run()
    assert result.summary_row["out_delivered"] == 0


def test_a_cached_policy_expires_after_max_age_while_the_policy_host_is_down():
    org = organisation("opportunistic", profile=EXO)
    rem = domain(
        host("mx1.d.example", "self-signed"),
        mta_sts=sts(max_age="1h", policy_host_down=[{"from": "30m", "to": "10h"}]),
    )
    simulation = Simulation(scenario(org, rem, duration="4h"), trace=True)
    simulation.inject(0, "d.example")  # fetched at 0: enforced, deferred
    simulation.inject(2 * HOUR, "d.example")  # cache older than max_age, refetch fails: no policy
    result = simulation.run()
    delivered = [round(t) for t, _, e, _ in result.trace if e == "delivered"]
    # The first at its first retry after the cached policy expired (1 h; EXO retries every
    # 10 min from 44 min: 3840 s); the second at once.
    assert delivered == [3840, 7200]


@pytest.mark.parametrize(
    ("pattern", "host_name", "check", "matches"),
    [
        ("mx1.d.example", "mx1.d.example", "mx-name", True),
        ("*.d.example", "mx1.d.example", "mx-name", True),
        ("*.d.example", "d.example", "mx-name", False),
        ("*.d.example", "a.b.d.example", "mx-name", False),
        ("*.d.example", "a.b.d.example", "certificate", True),
        # The Google TLS-RPT report of MP 1c: two labels left of mx.microsoft fail "*.mx.microsoft".
        ("*.mx.microsoft", "icewolf-li.h-v1.mx.microsoft", "mx-name", False),
    ],
)
def test_sts_mx_pattern_matching(pattern, host_name, check, matches):
    assert sts_matches(host_name, pattern, check) is matches


# --------------------------------------------------------------------------- DANE (RFC 7672, MP 2, 8)


@pytest.mark.parametrize(
    ("dnssec", "tlsa", "served", "dane", "expected"),
    [
        ("secure", "match", "self-signed", "opportunistic", ("delivered", "tls-verified")),  # DANE-EE ignores names
        ("secure", "match", "expired", "opportunistic", ("delivered", "tls-verified")),
        ("secure", "mismatch", "trusted", "opportunistic", ("deferred", "4.7.5 Server certificate not verified")),
        ("secure", "match", "none", "opportunistic", ("deferred", "4.7.4 TLS is required")),
        ("secure", "unusable", "self-signed", "opportunistic", ("delivered", "tls-unverified")),
        ("secure", "unusable", "none", "opportunistic", ("deferred", "4.7.4 TLS is required")),
        ("bogus", "match", "trusted", "opportunistic", ("deferred", MX_LOOKUP)),  # the MX RRset's zone (issue 20)
        ("lookup-fails", "none", "trusted", "opportunistic", ("deferred", MX_LOOKUP)),
        ("insecure", "match", "none", "opportunistic", ("delivered", "plaintext")),  # no DANE: opportunistic
        ("secure", "none", "none", "opportunistic", ("delivered", "plaintext")),
        ("insecure", "none", "trusted", "mandatory", ("deferred", "4.7.5 non DNSSEC destination")),
        ("secure", "none", "trusted", "mandatory", ("deferred", "4.7.5 no TLSA records found")),
        ("secure", "unusable", "trusted", "mandatory", ("deferred", "4.7.5 TLSA records unusable")),
    ],
)
def test_dane_decision_table_postfix(dnssec, tlsa, served, dane, expected):
    # MP 8, measured on a real Postfix 3.7: dane / dane-only outcomes.
    org = organisation("may", profile=PF37, dane=dane)
    rem = domain(host("mx1.d.example", served, tlsa=tlsa), dnssec=dnssec)
    _, events = one(org, rem)
    event, detail = outcome(events)
    assert (event, detail[: len(expected[1])]) == expected


@pytest.mark.parametrize(
    ("mx_zone", "host_zone", "dane", "expected", "connections"),
    [
        # A failing TLSA lookup in the host's zone: that host only, DANE senders only.
        ("secure", "bogus", "opportunistic", ("deferred", "4.7.5 TLSA lookup error for mx1.d.example:25"), 0),
        ("secure", "lookup-fails", "opportunistic", ("deferred", "4.7.5 TLSA lookup error for mx1.d.example:25"), 0),
        # At dane, Postfix looked TLSA up in the host's signed zone under an insecure MX
        # RRset, and enforced it; at dane-only it refused the insecure MX RRset first.
        ("insecure", "secure", "opportunistic", ("deferred", "4.7.5 Server certificate not verified"), 1),
        ("insecure", "secure", "mandatory", ("deferred", "4.7.5 non DNSSEC destination"), 0),
        # A bogus MX RRset: no MX at all, whatever the host's zone.
        ("bogus", "secure", "opportunistic", ("deferred", MX_LOOKUP), 0),
    ],
)
def test_dnssec_belongs_to_a_zone_the_mx_rrsets_or_the_hosts(mx_zone, host_zone, dane, expected, connections):
    org = organisation("may", profile=PF37, dane=dane)
    rem = domain(host("mx1.d.example", "trusted", tlsa="mismatch", dnssec=host_zone), dnssec=mx_zone)
    result, events = one(org, rem, duration="5m")
    event, detail = outcome(events)
    assert (event, detail) == expected
    assert result.summary_row["out_connections"] == connections


def test_a_bogus_mx_rrset_expires_with_4_4_3_for_validating_senders_and_spares_the_others():
    rem = domain(host("mx1.d.example", "trusted", tlsa="match"), dnssec="bogus")
    result, events = one(organisation("may", profile=PF37, dane="opportunistic"), rem, duration="6d")
    event, detail = outcome(events)  # the NDR carries the last deferral's status (3d)
    assert event == "expired" and detail.startswith("4.4.3 ") and detail.endswith(MX_LOOKUP[6:])
    assert result.summary_row["out_connections"] == 0
    _, plain = one(organisation("may", profile=PF37), rem)
    assert outcome(plain) == ("delivered", "tls-unverified")  # no validating resolver: no DNSSEC at all


def test_a_failed_handshake_under_dane_is_mandatory_tls_no_plaintext_and_the_destination_throttled():
    # Issue 20 s.3, measured: when usable TLSA govern the host, a failed handshake is an
    # encrypt failure: no plaintext retry, and the destination dies as encrypt's does.
    grid = {"queue_run_delay": 1, "minimal_backoff_time": 2, "maximal_backoff_time": 4, "expiration_timeout": 15}
    governed = domain(host("mx1.d.example", "handshake-fails", tlsa="match"), dnssec="secure")
    dane = organisation("may", profile=PF37, dane="opportunistic", delivery=grid)
    result, events = one(dane, governed, duration="60s", n=3)
    assert [e for _, e, _ in events if e == "delivered"] == []
    assert outcome(events) == ("expired", "4.7.5 message expired; last error: Cannot start TLS: handshake failure")
    encrypt = organisation("encrypt", profile=PF37, delivery=grid)
    plain_host = domain(host("mx1.d.example", "handshake-fails"), dnssec="secure")
    forced, _ = one(encrypt, plain_host, duration="60s", n=3)
    counts = ("out_connections", "out_deferrals", "out_deferrals_suspended", "out_expired")
    assert [result.summary_row[c] for c in counts] == [forced.summary_row[c] for c in counts]
    assert result.summary_row["out_deferrals_suspended"] > 0
    # Without TLSA the same host is plain `may`: no throttle, plaintext after the backoff.
    may, events = one(organisation("may", profile=PF37, dane="opportunistic", delivery=grid), plain_host, n=3)
    assert outcome(events) == ("delivered", "plaintext")
    assert may.summary_row["out_deferrals_suspended"] == 0


def test_dane_lookup_failure_and_dane_only_refusals_open_no_connection():
    org = organisation("may", profile=PF37, dane="opportunistic")
    result, _ = one(org, domain(host("mx1.d.example", "trusted", tlsa="match"), dnssec="bogus"))
    assert result.summary_row["out_connections"] == 0
    assert result.summary_row["out_policy_refusals"] >= 1


def test_dane_ta_checks_the_name_dane_ee_does_not():
    org = organisation("may", profile=PF37, dane="opportunistic")
    ee = domain(host("mx1.d.example", "name-mismatch", tlsa="match", tlsa_usage=3), dnssec="secure")
    ta = domain(host("mx1.d.example", "name-mismatch", tlsa="match", tlsa_usage=2), dnssec="secure")
    assert outcome(one(org, ee)[1]) == ("delivered", "tls-verified")
    assert outcome(one(org, ta)[1])[0] == "deferred"


def test_exchange_online_dane_statuses_and_dane_over_mta_sts():
    org = organisation("opportunistic", profile=EXO)
    mismatch = domain(host("mx1.d.example", "trusted", tlsa="mismatch"), dnssec="secure", mta_sts=sts())
    # RFC 8461 s.2: a failing DANE validation is not overridden by a passing MTA-STS one.
    assert outcome(one(org, mismatch)[1])[1].startswith("4.7.323 tlsa-invalid")
    bogus = domain(host("mx1.d.example", "trusted"), dnssec="bogus")
    assert outcome(one(org, bogus)[1])[1].startswith("4.7.324 dnssec-invalid")


def test_postfix_mta_sts_replaces_dane():
    # MP 8: with an MTA-STS answer Postfix never queries TLSA: a host that fails DANE but
    # passes MTA-STS is delivered; one that passes DANE but fails MTA-STS is deferred.
    org = organisation("may", profile=PF37, dane="opportunistic", mta_sts="apply")
    fails_dane = domain(host("mx1.d.example", "trusted", tlsa="mismatch"), dnssec="secure", mta_sts=sts())
    assert outcome(one(org, fails_dane)[1]) == ("delivered", "tls-verified")
    fails_sts = domain(host("mx1.d.example", "self-signed", tlsa="match"), dnssec="secure", mta_sts=sts())
    assert outcome(one(org, fails_sts)[1])[0] == "deferred"


def test_products_without_dane_ignore_it():
    org = organisation("opportunistic", profile="exchange2016", dane="mandatory")
    rem = domain(host("mx1.d.example", "trusted", tlsa="mismatch"), dnssec="bogus")
    assert outcome(one(org, rem)[1]) == ("delivered", "tls-unverified")


# --------------------------------------------------------------------------- REQUIRETLS (RFC 8689, MP 3)


def test_requiretls_is_returned_5_7_30_by_a_product_without_it():
    org = organisation("opportunistic", profile=EXO)
    result, events = one(org, domain(host("mx1.d.example", "trusted")), requiretls=True)
    assert [(e, d[:6]) for _, e, d in events if e == "bounced"] == [("bounced", "5.7.30")]
    assert result.summary_row["out_connections"] == 0


@pytest.mark.parametrize(
    ("fields", "dnssec", "expected"),
    [
        # DANE-verified host advertising REQUIRETLS: delivered
        ({"tlsa": "match", "requiretls": True}, "secure", ("delivered", "tls-verified")),
        # verified but no REQUIRETLS advertised: 5.7.30
        ({"tlsa": "match"}, "secure", ("bounced", "5.7.30")),
        # TLS, but no DANE or MTA-STS authenticates the host: 5.7.10
        ({"requiretls": True}, "insecure", ("bounced", "5.7.10")),
        # no STARTTLS at all: 5.7.30, never plaintext
        ({"tls": "none", "requiretls": True}, "insecure", ("bounced", "5.7.30")),
    ],
)
def test_requiretls_under_postfix_3_11(fields, dnssec, expected):
    org = organisation("may", profile=PF311, dane="opportunistic")
    spec = {"tls": "trusted", **fields}
    rem = domain(host("mx1.d.example", spec.pop("tls"), **spec), dnssec=dnssec)
    _, events = one(org, rem, requiretls=True)
    event, detail = outcome(events)
    assert (event, detail[: len(expected[1])]) == expected


def test_requiretls_tries_the_next_mx_before_returning():
    org = organisation("may", profile=PF311, dane="opportunistic")
    rem = domain(
        host("mx1.d.example", "trusted", preference=10),
        host("mx2.d.example", "trusted", preference=20, tlsa="match", requiretls=True),
        dnssec="secure",
    )
    assert outcome(one(org, rem, requiretls=True)[1]) == ("delivered", "tls-verified")


def test_a_flow_marks_its_requiretls_share():
    org = organisation("may", profile=PF311)
    rem = domain(host("mx1.d.example", "trusted"))
    traffic = {"outbound": {"rate_per_hour": 3000, "domains": {"d.example": 1}, "requiretls": 0.2}}
    result = run(scenario(org, rem, traffic=traffic, duration="2h"))
    summary = result.summary_row
    # No DANE or MTA-STS here: every REQUIRETLS message is returned (5.7.10), the rest delivered.
    share = summary["out_ndr"] / summary["out_messages"]
    assert 0.15 < share < 0.25
    assert {row["status"] for row in result.ndr_rows} == {"5.7.10"}


# --------------------------------------------------------------------------- properties


TLS_KINDS = ["none", "trusted", "self-signed", "expired", "name-mismatch", "untrusted", "handshake-fails"]


@st.composite
def policy_worlds(draw):
    hosts = [
        host(
            f"mx{j}.d.example" if draw(st.booleans()) else f"mx{j}.other.example",
            draw(st.sampled_from(TLS_KINDS)),
            preference=10 * (j + 1),
            tlsa=draw(st.sampled_from(["none", "match", "mismatch", "unusable"])),
            tlsa_usage=draw(st.sampled_from([2, 3])),
            requiretls=draw(st.booleans()),
        )
        for j in range(draw(st.integers(1, 3)))
    ]
    mode = draw(st.sampled_from(["enforce", "testing", "none", None]))
    fields = {"dnssec": draw(st.sampled_from(["secure", "insecure", "bogus", "lookup-fails"]))}
    if mode is not None:
        fields["mta_sts"] = sts(mode, policy_host=draw(st.sampled_from(["ok", "ok", "unreachable"])))
    profile = draw(st.sampled_from([EXO, PF37, PF311, "exchange2016", "sendmail"]))
    vs = {"dane": draw(st.sampled_from(["none", "opportunistic", "mandatory"])), "mta_sts": "apply"}
    org = organisation(draw(st.sampled_from(["off", "opportunistic", "required"])), profile=profile, **vs)
    traffic = {"outbound": {"rate_per_hour": 300, "domains": {"d.example": 1}, "requiretls": 0.3}}
    world = scenario(org, domain(*hosts, **fields), traffic=traffic, duration="3h", seed=draw(st.integers(0, 99)))
    return world, mode, fields["dnssec"], vs["dane"], profile


@pytest.mark.slow
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=policy_worlds())
def test_policies_never_deliver_to_a_failing_host_and_requiretls_never_in_clear(case):
    world, mode, dnssec, dane, profile = case
    result = run(world, trace=True)
    summary = result.summary_row
    assert summary["out_messages"] == summary["out_delivered"] + summary["out_ndr"] + summary["out_queued_at_end"]
    published = world.remotes.domains[0]
    hosts = {h.host: h for h in published.mx}
    applies = profile in (EXO, PF37, PF311, "sendmail")
    sts_enforced = applies and mode == "enforce" and published.mta_sts.policy_host.value == "ok"
    sts_replaces_dane = profile in (PF37, PF311) and sts_enforced
    dane_on = applies and dane != "none"
    dane_over_sts = profile not in (PF37, PF311)  # EXO and Sendmail: DANE first; Postfix plug-in: STS replaces DANE
    marked = _requiretls_ids(world)
    last_host: dict[int, str] = {}
    for _, ident, event, detail in result.trace:
        if event == "attempt":
            last_host[ident] = detail
        if event != "delivered":
            continue
        channel, h = detail, hosts[last_host[ident]]
        if dane_on and not sts_replaces_dane:
            assert dnssec not in ("bogus", "lookup-fails"), "a host with a failing TLSA lookup is never used"
        dane_governs = (
            dane_on and not sts_replaces_dane and dnssec == "secure" and h.tlsa.value in ("match", "mismatch")
        )
        if dane_governs:
            assert h.tlsa.value == "match" and channel == "tls-verified"
        elif sts_enforced and not (dane_on and dnssec == "secure" and h.tlsa.value == "unusable" and dane_over_sts):
            # (Unusable TLSA records govern as "encrypt" where DANE precedes MTA-STS, RFC 8461 s.2.)
            # RFC 8461 s.4: STARTTLS, and a certificate valid for the MX name.
            assert channel == "tls-verified" and h.tls.value == "trusted"
            check = "certificate" if profile in (PF37, "sendmail") else "mx-name"
            assert sts_matches(h.host, "*.d.example", check)
        if ident in marked:
            assert channel == "tls-verified", "a REQUIRETLS message went out without verified TLS"


def _requiretls_ids(world):
    """Replay the flow's REQUIRETLS marks (same stream) to know which ids were marked."""
    from sim.streams import Stream, generator

    marks = generator(world.run.seed, 0, Stream.REQUIRETLS, 0).random(100_000)
    # Message ids are given in arrival order from 0; with one flow, id k got mark k.
    return {k for k in range(len(marks)) if marks[k] < world.traffic.outbound[0].requiretls}
