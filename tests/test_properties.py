"""Invariants over random worlds (hypothesis)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from worlds import host, organisation, scenario

from sim.simulate import run

TLS_CAPABILITIES = ["none", "trusted", "self-signed", "expired", "name-mismatch", "untrusted", "handshake-fails"]
LEVELS = ["off", "opportunistic", "required", "verify"]
PROFILES = ["exchange2003", "exchange2016", "exchange2016-edge", "exchange-online", "postfix", "sendmail"]


@st.composite
def worlds(draw):
    n = draw(st.integers(1, 5))
    domains = []
    for i in range(n):
        hosts = []
        for j in range(draw(st.integers(1, 2))):
            tls = draw(st.sampled_from(TLS_CAPABILITIES))
            requires = draw(st.booleans())  # with tls "none": the misconfigured host of 6c
            extra = {}
            if draw(st.booleans()):
                extra["outages"] = {"mean_up": draw(st.sampled_from(["1h", "6h"])), "mean_down": "2h"}
            if draw(st.booleans()):
                extra["greylist"] = draw(st.sampled_from(["1m", "30m"]))
            hosts.append(
                host(
                    f"mx{j}.d{i}.example",
                    tls,
                    preference=10 * (j + 1),
                    requires_tls=requires,
                    max_connections=draw(st.integers(1, 3)),
                    **extra,
                )
            )
        domains.append({"name": f"d{i}.example", "mx": hosts})
    vs_level = draw(st.sampled_from(LEVELS))
    special = draw(st.sets(st.integers(0, n - 1)))
    connectors = [
        {
            "name": "internet",
            "source": ["EX1/default"],
            "address_spaces": [{"pattern": "*"}],
            "tls": draw(st.sampled_from(LEVELS)),
        }
    ]
    if special:
        connectors.append(
            {
                "name": "special",
                "source": ["EX1/plain"],
                "address_spaces": [{"pattern": f"d{i}.example"} for i in sorted(special)],
                "tls": draw(st.sampled_from(LEVELS)),
            }
        )
    org = organisation(
        vs_level,
        profile=draw(st.sampled_from(PROFILES)),
        connectors=connectors,
        delivery={"expiration_timeout": draw(st.sampled_from(["2h", "6h", "1d"])), "delay_notification": "1h"},
    )
    traffic = {
        "outbound": {
            "rate_per_hour": draw(st.sampled_from([30, 300, 3000])),
            "domains": {d["name"]: draw(st.integers(1, 5)) for d in domains},
            "size": {"distribution": "exponential", "mean_kb": 200},
        }
    }
    seed = draw(st.integers(0, 2**16))
    return scenario(org, {"domains": domains}, traffic=traffic, duration="12h", seed=seed)


def _mandatory(s, route):
    levels = {"off": 0, "opportunistic": 1, "required": 2, "verify": 3}
    vs = {"internet": "default", "special": "plain"}[route]
    vs_level = next(v.outbound_tls.value for v in s.organisation.servers[0].virtual_servers if v.name == vs)
    conn = next(c.tls.value for c in s.organisation.connectors if c.name == route)
    return max(levels[vs_level], levels[conn]) >= 2


@pytest.mark.slow
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(s=worlds())
def test_every_message_ends_exactly_once_and_mandatory_tls_is_never_plaintext(s):
    result = run(s, trace=True)
    row = result.summary_row
    assert row["out_messages"] == row["out_delivered"] + row["out_ndr"] + row["out_queued_at_end"]
    assert row["out_delivered"] == row["out_delivered_tls"] + row["out_delivered_plaintext"]
    never_accepts = {d.name for d in s.remotes.domains if all(h.tls.value == "none" and h.requires_tls for h in d.mx)}
    for d in result.per_domain_rows:
        assert d["messages"] == d["delivered"] + d["ndr"] + d["queued_at_end"]
        if d["domain"] in never_accepts:  # no STARTTLS, and plaintext refused with 530
            assert d["delivered"] == 0, d
        if d["delivered"] and _mandatory(s, d["route"]):
            assert d["delivered_plaintext"] == 0, d
    # From the trace: each accepted message has at most one ending, and the ones without
    # an ending are exactly those still queued at the end.
    endings: dict[int, int] = {}
    accepted = set()
    for _, ident, event, _ in result.trace:
        if event == "accepted":
            accepted.add(ident)
        elif event in ("delivered", "bounced", "expired"):
            endings[ident] = endings.get(ident, 0) + 1
    assert set(endings) <= accepted
    assert all(n == 1 for n in endings.values())
    assert len(accepted) - len(endings) == row["out_queued_at_end"]


@pytest.mark.slow
@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(s=worlds())
def test_same_seed_gives_identical_tables(s):
    first, second = run(s), run(s)
    for table in ("summary", "per_domain", "ndr", "queues"):
        a, b = getattr(first, table), getattr(second, table)
        if table == "summary":
            a, b = a.drop(columns="wall_s"), b.drop(columns="wall_s")
        assert a.equals(b), table
