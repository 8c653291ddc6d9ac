"""Changes over time with the caches senders keep (issue 20 s.2): MTA-STS id, TXT TTL and
max_age per sender; DANE TLSA records of real keys through a certificate renewal; MX moves."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
from worlds import scenario

import sim
from sim.model.sts import StsCache
from sim.pki.authorities import our_tlsa_digest
from sim.pki.certs import tlsa_digest
from sim.plan.build import build_plan
from sim.policy.sts_cache import STS_CACHE_RULES
from sim.scenario.published import MtaStsPolicy
from sim.simulate import Simulation

ROOT = Path(__file__).resolve().parent.parent
HOUR, DAY = 3600.0, 86400.0


def policy(mode: str, **fields) -> MtaStsPolicy:
    return MtaStsPolicy.model_validate({"mode": mode, "mx": ["mx1.ours.example"], **fields})


# -- MTA-STS: what a sender sees, and when ------------------------------------------------


@pytest.mark.parametrize("rules", ["postfix-mta-sts-resolver", "rfc8461"])
def test_an_edit_with_a_new_id_is_seen_at_the_next_txt_check(rules):
    cache = StsCache(policy("testing", id="a", max_age="3d", txt_ttl="1h"), STS_CACHE_RULES[rules])
    assert cache.in_effect(100.0).mode == "testing"  # fetched at t = 100: TXT checks at 100 + k h
    cache.publish(policy("enforce", id="b", max_age="3d", txt_ttl="1h"), 10 * HOUR)
    assert cache.in_effect(10 * HOUR + 99).mode == "testing"  # last check at 9 h 1m 40s: old id
    assert cache.in_effect(10 * HOUR + 100).mode == "enforce"  # the check at 10 h 1m 40s


def test_an_edit_without_a_new_id_is_seen_only_at_max_age():
    cache = StsCache(policy("testing", id="a", max_age="2d"), STS_CACHE_RULES["postfix-mta-sts-resolver"])
    cache.in_effect(100.0)
    cache.publish(policy("enforce", id="a", max_age="2d"), 10 * HOUR)
    assert cache.in_effect(2 * DAY + 99).mode == "testing"
    assert cache.in_effect(2 * DAY + 100).mode == "enforce"


def test_a_daily_refresh_sees_it_sooner_and_a_sender_that_ignores_the_id_does_not():
    rfc = StsCache(policy("testing", id="a", max_age="3d"), STS_CACHE_RULES["rfc8461"])
    rfc.in_effect(100.0)
    rfc.publish(policy("enforce", id="a", max_age="3d"), 10 * HOUR)
    assert rfc.in_effect(DAY + 99).mode == "testing"
    assert rfc.in_effect(DAY + 100).mode == "enforce"  # RFC 8461 s.3.3: refreshed once a day
    tlspol = StsCache(policy("testing", id="a", max_age="3d"), STS_CACHE_RULES["postfix-tlspol"])
    tlspol.in_effect(100.0)
    tlspol.publish(policy("enforce", id="b", max_age="3d"), 10 * HOUR)  # a new id, not watched
    assert tlspol.in_effect(3 * DAY + 99).mode == "testing"
    assert tlspol.in_effect(3 * DAY + 100).mode == "enforce"


def test_max_age_above_a_year_is_clamped_not_refused():
    assert policy("enforce", max_age="400d").max_age == 31_557_600
    with pytest.raises(ValueError, match="not an MTA-STS id"):
        policy("enforce", id="not valid!")


# -- DANE: TLSA records of real keys ---------------------------------------------------------


def our_org(certificate: dict, publishes: dict) -> dict:
    """Organisation "ours": one server MX1 whose virtual server smtp takes our mail."""
    vs = {"name": "smtp", "inbound": {"tls": "offered"}, "certificate": {"issuer": "public-ca", **certificate}}
    return {
        "organisation": "ours",
        "profile": "postfix",
        "routing_groups": [{"name": "site"}],
        "servers": [{"name": "MX1", "routing_group": "site", "virtual_servers": [vs]}],
        "publishes": {"domain": "ours.example", **publishes},
    }


def dane_world(records_before: list[str], *, renew_at: str = "10h", records_at: str = "20h") -> sim.Scenario:
    org = our_org(
        {"names": ["mx1.ours.example"], "key_pair": "k1"},
        {
            "mx": [{"host": "mx1.ours.example", "virtual_server": "MX1/smtp"}],
            "dnssec": "secure",
            "tlsa": {"mx1.ours.example": records_before},
            "tlsa_ttl": "30m",
            "tls_rpt": "mailto:tlsrpt@ours.example",
        },
    )
    flows = [
        {"from": "dane.example", "rate_per_hour": 60, "profile": "postfix-3.11", "dane": "opportunistic"},
        {"from": "plain.example", "rate_per_hour": 60, "profile": "postfix"},
    ]
    world = scenario(org, {"domains": []}, traffic={"inbound": flows}, duration="2d")
    document = world.model_dump(mode="json", by_alias=True)
    document["changes"] = [
        {"at": renew_at, "set": {"servers.0.virtual_servers.0.certificate.key_pair": "k2"}},
        {"at": records_at, "set": {"publishes.tlsa": {"mx1.ours.example": ["k2"]}}},
    ]
    return sim.Scenario.model_validate(document)


def deferrals(world: sim.Scenario) -> dict[str, list[float]]:
    """Per sending domain, the instants its MTAs were refused by us."""
    trace = Simulation(world, trace=True).run().trace
    sender = {i: detail for _, i, event, detail in trace if event == "accepted"}
    found: dict[str, list[float]] = {"dane.example": [], "plain.example": []}
    for t, i, event, _ in trace:
        if event == "deferred":
            found[sender[i]].append(t)
    return found


def test_the_records_are_the_sha256_of_the_key_the_certificate_really_holds():
    plan = build_plan(dane_world(["k1"]))
    served = tlsa_digest(plan.certificates["MX1/smtp"].identity.certificate)
    assert plan.tlsa_records("mx1.ours.example", "MX1/smtp") == [served]
    owner = "mx1.ours.example"  # server MX1 of organisation "ours": whose key pairs
    assert served == our_tlsa_digest(owner, "k1", "ec") != our_tlsa_digest(owner, "k2", "ec")
    renewed = copy.deepcopy(dane_world(["k1"]).model_dump(mode="json", by_alias=True))
    renewed["organisation"]["servers"][0]["virtual_servers"][0]["certificate"]["key_pair"] = "k2"
    after = build_plan(sim.Scenario.model_validate(renewed))
    assert after.our_tlsa("mx1.ours.example", "MX1/smtp") == "mismatch"
    assert plan.our_tlsa("mx1.ours.example", "MX1/smtp") == "match"


def test_a_renewal_with_a_new_key_breaks_dane_ee_at_that_instant_for_dane_senders_only():
    found = deferrals(dane_world(["k1"]))
    refused = found["dane.example"]
    assert refused and min(refused) >= 10 * HOUR  # nothing before the renewal
    assert min(refused) < 10 * HOUR + 5 * 60  # the first message after it
    assert max(refused) < 20 * HOUR + 30 * 60  # the new record, once its TTL has passed
    assert found["plain.example"] == []  # a sender without DANE never notices


def test_current_and_next_records_break_nothing():
    found = deferrals(dane_world(["k1", "k2"]))
    assert found == {"dane.example": [], "plain.example": []}


# -- the bundled rehearsals ------------------------------------------------------------------


def inbound_of(name: str) -> dict[str, dict]:
    result = sim.run(sim.load_scenario(ROOT / "scenarios" / f"{name}.yaml"))
    return {row["sender"]: row for row in result.inbound_rows}


def test_tlsa_rollover_returns_exchange_onlines_mail_and_spares_senders_without_dane():
    senders = inbound_of("tlsa-rollover")
    assert senders["fabrikam.com"]["lost"] > 0  # Exchange Online: 1 day < the 25 h break
    assert senders["woodgrovebank.com"]["refused"] > 0 and senders["woodgrovebank.com"]["lost"] == 0
    for untouched in ("adatum.com", "litware.com"):  # Postfix without DANE; Gmail (no DANE)
        assert senders[untouched]["refused"] == 0
        assert senders[untouched]["accepted"] == senders[untouched]["messages"]


@pytest.mark.slow  # over a second: runs in CI (.ci/run)
def test_exo_mx_migration_breaks_every_mta_sts_sender_and_exchange_online_returns_mail():
    senders = inbound_of("exo-mx-migration")
    assert senders["fabrikam.com"]["lost"] > 0  # Exchange Online gives up after 1 day
    for delayed in ("litware.com", "woodgrovebank.com", "adatum.com"):
        assert senders[delayed]["refused"] > 0 and senders[delayed]["lost"] == 0
    assert senders["northwind.com"]["refused"] == 0  # Exchange 2016 does not apply MTA-STS
    # postfix-tlspol keeps the old patterns until max_age (7 d): Postfix's 5 days run out first.
    stuck = senders["tailspintoys.com"]
    assert stuck["lost"] > 0 and stuck["accepted"] + stuck["lost"] == stuck["messages"]


def moved_mx_world(plugin: str) -> sim.Scenario:
    """Our MX moves at 1 h out of the enforced policy's patterns; at 2 h the patterns
    follow with a new id (TXT TTL 10 m); max_age 1 d."""
    org = our_org(
        {"names": ["mx.old.example", "mx.new.example"]},
        {
            "mx": [{"host": "mx.old.example", "virtual_server": "MX1/smtp"}],
            "mta_sts": {"mode": "enforce", "mx": ["mx.old.example"], "max_age": "1d", "txt_ttl": "10m"},
            "mx_ttl": "0s",
        },
    )
    flows = [{"from": "sender.example", "rate_per_hour": 30, "profile": "postfix-3.10", "mta_sts": "apply",
              "mta_sts_plugin": plugin}]  # fmt: skip
    document = scenario(org, {"domains": []}, traffic={"inbound": flows}, duration="30h").model_dump(
        mode="json", by_alias=True
    )
    document["changes"] = [
        {"at": "1h", "set": {"publishes.mx": [{"host": "mx.new.example", "virtual_server": "MX1/smtp"}]}},
        {"at": "2h", "set": {"publishes.mta_sts.mx": ["mx.old.example", "mx.new.example"]}},
    ]
    return sim.Scenario.model_validate(document)


@pytest.mark.parametrize(
    ("plugin", "seen_from", "seen_by"),
    [
        ("postfix-mta-sts-resolver-tlsrpt", 2 * HOUR, 2 * HOUR + 600),  # the next TXT check (TTL 10 m)
        ("postfix-tlspol", DAY, DAY + 600),  # max_age after its first fetch (at the first message)
    ],
)
def test_the_sender_applies_the_patterns_it_has_cached_not_the_published_ones(plugin, seen_from, seen_by):
    trace = Simulation(moved_mx_world(plugin), trace=True).run().trace
    first = min(t for t, _, event, _ in trace if event == "accepted")  # the policy is fetched then
    refused = [t for t, _, event, _ in trace if event == "deferred"]
    assert refused and HOUR <= min(refused) < 2 * HOUR  # the MX moved out of the cached patterns
    assert seen_from - 600 < max(refused) < first + seen_by
    delivered_after = [t for t, _, event, _ in trace if event == "delivered" and t > min(refused)]
    assert delivered_after and min(delivered_after) > seen_from
