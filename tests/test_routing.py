"""Connector selection (reference/mta-semantics.md 1a and 2a)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from worlds import organisation, remotes, scenario

from sim.mta.profiles import get_profile
from sim.routing.address_space import AddressSpace
from sim.routing.selector import RouteSelector
from sim.scenario.model import Organisation
from sim.simulate import Simulation
from sim.vocabulary import MatchRules, normalise_pattern


def connector(name, *patterns, source="EX1/default", **fields):
    spaces = [{"pattern": p, "cost": c} for p, c in patterns]
    return {"name": name, "source": [source] if isinstance(source, str) else source, "address_spaces": spaces, **fields}


def select(connectors, domain, profile="exchange2003", org=None, source="EX1"):
    org = org or organisation(connectors=connectors, profile=profile)
    model = Organisation.model_validate(org)
    return RouteSelector(model, get_profile(model.profile)).select(source, domain)


def test_more_specific_beats_cheaper():
    decision = select([connector("star", ("*", 1)), connector("contoso", ("contoso.com", 100))], "contoso.com")
    assert [r.connector.name for r in decision.routes] == ["contoso"]
    verdicts = {c.connector: c.verdict for c in decision.candidates}
    assert verdicts["star"].startswith("less specific")


def test_subdomain_match_beats_star_in_2003():
    decision = select([connector("star", ("*", 1)), connector("contoso", ("contoso.com", 50))], "sales.contoso.com")
    assert decision.chosen.connector.name == "contoso"


def test_equal_specificity_lower_cost_wins():
    decision = select([connector("a", ("contoso.com", 20)), connector("b", ("contoso.com", 10))], "contoso.com")
    assert [r.connector.name for r in decision.routes] == ["b"]
    assert {c.connector: c.verdict for c in decision.candidates}["a"].startswith("costs 20")


def test_equal_cost_shares_load_between_both():
    decision = select(
        [connector("a", ("contoso.com", 10)), connector("b", ("contoso.com", 10), source="EX1/plain")], "contoso.com"
    )
    assert sorted(r.connector.name for r in decision.routes) == ["a", "b"]
    org = organisation(connectors=[connector("a", ("*", 10)), connector("b", ("*", 10), source="EX1/plain")])
    sim = Simulation(scenario(org, remotes(contoso_com="trusted"), duration="1h"))
    for i in range(2000):
        sim.inject(i, "contoso.com")
    sim.run()
    assert sim.metrics.delivered == 2000
    shares = {key[1]: queue.submitted for key, queue in sim.world.queues.items()}
    # Each pick is a fair coin: both shares lie within 5 standard deviations (22) of 1000.
    assert set(shares) == {"a", "b"}
    assert all(abs(n - 1000) < 5 * 22.4 for n in shares.values()), shares


def test_no_match_is_ndr_5_0_0():
    org = organisation(connectors=[connector("contoso", ("contoso.com", 1))])
    sim = Simulation(scenario(org, remotes(contoso_com="trusted", fabrikam_com="trusted"), duration="1h"))
    sim.inject(0, "fabrikam.com")
    result = sim.run()
    assert result.ndr_rows == [
        {
            "domain": "fabrikam.com",
            "status": "5.0.0",
            "reason": "No route to the recipient domain: no connector address space matches",
            "count": 1,
        }
    ]
    assert select(org["connectors"], "fabrikam.com", org=org).routes == ()


def test_no_failover_to_star_when_specific_connector_host_is_unreachable():
    # The specific connector's smart host cannot do TLS under forced TLS: the mail queues
    # there and expires; it never falls back to the cheaper "*" connector.
    org = organisation(
        connectors=[
            connector("star", ("*", 1), source="EX1/plain"),
            connector(
                "contoso", ("contoso.com", 1), delivery="smart_host", smart_hosts=["relay.example.net"], tls="required"
            ),
        ]
    )
    rem = remotes(contoso_com="trusted")
    rem["hosts"] = [{"host": "relay.example.net", "tls": "none"}]
    sim = Simulation(scenario(org, rem, duration="3d"))
    sim.inject(0, "contoso.com")
    result = sim.run()
    assert result.summary_row["out_delivered"] == 0
    assert result.ndr_rows[0]["status"] == "4.4.7"
    assert [key[1] for key in sim.world.queues] == ["contoso"]


def test_out_of_scope_connector_is_invisible():
    org = organisation(connectors=[connector("star", ("*", 1))])
    org["routing_groups"].append({"name": "branch"})
    org["routing_group_connectors"] = [{"name": "hq-branch", "between": ["hq", "branch"], "cost": 5}]
    org["servers"].append({"name": "EX2", "routing_group": "branch", "virtual_servers": [{"name": "default"}]})
    org["connectors"].append(connector("branch-only", ("contoso.com", 1), source="EX2/default", scope="routing_group"))
    assert select(None, "contoso.com", org=org, source="EX1").chosen.connector.name == "star"
    assert select(None, "contoso.com", org=org, source="EX2").chosen.connector.name == "branch-only"


def test_path_cost_over_links_that_are_up():
    org = organisation(connectors=[])
    org["routing_groups"] += [{"name": "east"}, {"name": "west"}]
    org["routing_group_connectors"] = [
        {"name": "hq-east", "between": ["hq", "east"], "cost": 10},
        {"name": "hq-west", "between": ["hq", "west"], "cost": 20},
    ]
    org["servers"] += [
        {"name": "EAST", "routing_group": "east", "virtual_servers": [{"name": "smtp"}]},
        {"name": "WEST", "routing_group": "west", "virtual_servers": [{"name": "smtp"}]},
    ]
    org["connectors"] = [
        connector("via-east", ("*", 1), source="EAST/smtp"),
        connector("via-west", ("*", 1), source="WEST/smtp"),
    ]
    decision = select(None, "example.com", org=org)
    assert decision.chosen.connector.name == "via-east"
    assert {c.connector: c.cost for c in decision.candidates} == {"via-east": 11, "via-west": 21}
    org["routing_group_connectors"][0]["up"] = False
    assert select(None, "example.com", org=org).chosen.connector.name == "via-west"


def test_exchange2007_exact_pattern_does_not_match_subdomains():
    connectors = [connector("star", ("*", 1)), connector("exact", ("contoso.com", 1))]
    assert select(connectors, "sales.contoso.com", profile="exchange2016").chosen.connector.name == "star"
    assert select(connectors, "sales.contoso.com", profile="exchange2003").chosen.connector.name == "exact"
    wild = [connector("star", ("*", 1)), connector("wild", ("*.contoso.com", 1))]
    assert select(wild, "sales.contoso.com", profile="exchange2016").chosen.connector.name == "wild"
    assert select(wild, "contoso.com", profile="exchange2016").chosen.connector.name == "wild"


def test_exchange2007_tie_breaks_fewest_hops_then_lowest_name():
    org = organisation(profile="exchange2016", connectors=[])
    org["servers"].append({"name": "EX2", "routing_group": "hq", "virtual_servers": [{"name": "smtp"}]})
    org["connectors"] = [connector("a-remote", ("*", 1), source="EX2/smtp"), connector("z-local", ("*", 1))]
    decision = select(None, "example.com", org=org)
    assert [r.connector.name for r in decision.routes] == ["z-local"]  # local server: 0 hops
    assert {c.connector: c.verdict for c in decision.candidates}["a-remote"].startswith("1 hops")
    org["connectors"] = [connector("b", ("*", 1)), connector("a", ("*", 1), source="EX1/plain")]
    decision = select(None, "example.com", org=org)
    assert [r.connector.name for r in decision.routes] == ["a"]
    assert {c.connector: c.verdict for c in decision.candidates}["b"] == "name sorts after a"
    # The same world under Exchange 2003 shares the load instead.
    org["profile"] = "exchange2003"
    assert sorted(r.connector.name for r in select(None, "example.com", org=org).routes) == ["a", "b"]


labels = st.from_regex(r"[a-z][a-z0-9]{0,5}", fullmatch=True)
domains = st.lists(labels, min_size=1, max_size=4).map(".".join)


@given(
    domain=domains,
    suffix_labels=st.integers(0, 4),
    costs=st.lists(st.integers(1, 100), min_size=3, max_size=3),
    rules=st.sampled_from(["exchange2003", "exchange2016"]),
)
def test_most_specific_address_space_always_wins(domain, suffix_labels, costs, rules):
    parts = domain.split(".")
    suffix = ".".join(parts[len(parts) - min(suffix_labels, len(parts)) :]) if suffix_labels else ""
    patterns = ["*"]
    if suffix:
        patterns += [suffix, f"*.{suffix}"]
    connectors = [connector(f"c{i}", (p, costs[i])) for i, p in enumerate(patterns)]
    decision = select(connectors, domain, profile=rules)
    match_rules = get_profile(rules).match_rules
    scores = {f"c{i}": AddressSpace(p, costs[i]).specificity(domain, match_rules) for i, p in enumerate(patterns)}
    best = max(s for s in scores.values() if s is not None)
    for route in decision.routes:
        assert scores[route.connector.name] == best
    # Whatever the costs, a less specific candidate never wins.
    assert decision.routes


@given(
    recipients=st.lists(domains, min_size=2, max_size=8),
    spaces=st.lists(st.tuples(st.integers(0, 3), st.sampled_from(["", "*."]), st.integers(1, 9)), max_size=6),
    rules=st.sampled_from(["exchange2003", "exchange2016"]),
)
def test_a_selector_reused_over_domains_decides_each_as_a_fresh_one(recipients, spaces, rules):
    """The selector decides once per set of best matches and hands the decision to every
    domain matched alike: each domain's decision (its name, routes, candidates and
    verdicts) is the one a selector that never saw another domain makes."""
    patterns = [("*", 5)]
    for pick, wildcard, cost in spaces:  # suffixes of the recipients: matches that differ between them
        labels = recipients[pick % len(recipients)].split(".")
        patterns.append((wildcard + ".".join(labels[len(labels) // 2 :]), cost))
    connectors = [connector(f"c{i}", pattern) for i, pattern in enumerate(patterns)]
    model = Organisation.model_validate(organisation(connectors=connectors, profile=rules))
    shared = RouteSelector(model, get_profile(rules))
    for domain in recipients * 2:
        assert shared.select("EX1", domain) == RouteSelector(model, get_profile(rules)).select("EX1", domain)


@pytest.mark.parametrize("bad", ["*.exa mple", "exa*mple.com", "abc.*.contoso.com", "", "-x.com", "*.*"])
def test_bad_patterns_are_rejected(bad):
    with pytest.raises(ValueError, match="not a domain pattern"):
        normalise_pattern(bad)


def test_pattern_matching_rules_by_profile():
    space = AddressSpace("contoso.com")
    assert space.specificity("contoso.com", MatchRules.EXCHANGE2007) == (11, 1)
    assert space.specificity("a.contoso.com", MatchRules.EXCHANGE2007) is None
    assert space.specificity("a.contoso.com", MatchRules.EXCHANGE2003) == (11, 0)
    assert space.specificity("notcontoso.com", MatchRules.EXCHANGE2003) is None
