"""Generated populations: reproducible, calibrated, usable beside named domains."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from worlds import EVERY_POLICY, organisation, scenario

import sim
from sim.population import GeneratedPopulation, generate
from sim.scenario.loader import read_yaml
from sim.scenario.model import Population, RemoteDomain, RemoteHost, Remotes

ROOT = Path(__file__).resolve().parent.parent


def population(**fields):
    spec = {
        "name": "p",
        "domains": 3000,
        "seed": 5,
        "tls": {"none": 0.3, "trusted": 0.6, "self-signed": 0.1},
        "mx_per_domain": {1: 0.5, 2: 0.5},
        "requires_tls": 0.1,
    }
    spec.update(fields)
    return Population.model_validate(spec)


def test_same_seed_same_population_and_another_seed_another():
    first, again = generate(population()), generate(population())
    assert first == again
    assert generate(population(seed=6)).domains != first.domains
    # A fresh object from the same file content gives the very same domains.
    rebuilt = Population.model_validate_json(population().model_dump_json())
    assert generate(rebuilt).domains == first.domains


@pytest.mark.parametrize("year", ["2003", "2015", "2024"])
def test_bundled_populations_are_valid_and_generate(year):
    remotes = Remotes.model_validate(read_yaml(ROOT / f"topology/internet-{year}.yaml"))
    assert remotes.population is not None
    generated = generate(remotes.population)
    assert len(generated.domains) == remotes.population.domains
    assert sum(generated.popularity) == pytest.approx(1.0)


def test_generated_shares_match_the_file():
    generated = generate(population())
    hosts = [h for d in generated.domains for h in d.mx]
    shares = Counter(h.tls.value for h in hosts)
    n = len(hosts)
    # About 4,500 hosts: each share within 4 standard errors of its target.
    for capability, target in {"none": 0.3, "trusted": 0.6, "self-signed": 0.1}.items():
        assert abs(shares[capability] / n - target) < 4 * (target * (1 - target) / n) ** 0.5
    requiring = [h for h in hosts if h.requires_tls]
    assert all(h.tls.value != "none" for h in requiring)
    assert abs(len(requiring) / (n * 0.7) - 0.1) < 0.03
    assert Counter(len(d.mx) for d in generated.domains).keys() == {1, 2}


def test_popularity_is_zipf():
    popularity = generate(population(zipf_exponent=1.0)).popularity
    assert popularity[0] / popularity[9] == pytest.approx(10.0)


def test_shares_must_sum_to_one():
    with pytest.raises(ValueError, match="sum to 1"):
        population(tls={"none": 0.5, "trusted": 0.6})


def test_named_domains_and_a_population_in_one_scenario():
    remotes = {
        "domains": [{"name": "partner.example", "mx": [{"host": "mx.partner.example", "tls": "none"}]}],
        "population": population(domains=200).model_dump(mode="json"),
    }
    traffic = {"outbound": {"rate_per_hour": 2000, "domains": {"partner.example": 1}, "population_weight": 1}}
    result = sim.run(scenario(organisation("required"), remotes, traffic=traffic, duration="1d"))
    per_domain = result.per_domain.set_index("domain")
    partner = per_domain.loc["partner.example"]
    assert partner["delivered"] == 0 and partner["queued_at_end"] == partner["messages"] > 0
    generated = per_domain.drop(index="partner.example")
    assert len(generated) > 50 and generated["delivered_tls"].sum() > 0
    # About half the mail goes to the named partner (weight 1 against 1).
    assert 0.45 < partner["messages"] / per_domain["messages"].sum() < 0.55


# --------------------------------------------------------------------------- lazy domains (issue 13)


def test_a_domain_made_on_demand_is_the_one_made_with_all_the_others():
    import sim.population as module

    spec = population(policies={"mta_sts": {"enforce": 0.2}, "dnssec_signed": 0.3, "dane": 0.5, "tls_rpt": 0.3})
    late = module._generate.__wrapped__(spec.model_dump_json())  # uncached: a fresh population
    picked = [late.domain(i) for i in (2999, 17, 0)]  # asked for out of order, before the rest
    every = generate(spec).domains
    assert picked == [every[2999], every[17], every[0]]
    assert any(d.mta_sts is not None for d in every) and any(d.dnssec.value == "secure" for d in every)


@pytest.mark.parametrize(
    "policies", [None, {"mta_sts": {"enforce": 0.2}, "dnssec_signed": 0.3, "dane": 0.5}, EVERY_POLICY]
)
def test_a_generated_domain_is_the_validated_model_of_its_own_fields(policies):
    """Generated domains and hosts are built without validation: each equals, field by
    field and in the fields it was given, what validating its own dump makes."""
    for domain in generate(
        population(domains=200, outage_share=0.2, outages={"mean_up": "6h", "mean_down": "1h"}, policies=policies)
    ).domains:
        validated = RemoteDomain.model_validate(domain.model_dump())
        assert domain == validated
        assert repr(domain) == repr(validated)  # fields in the model's order
        assert domain.model_dump() == validated.model_dump()
        assert domain.model_fields_set == set(RemoteDomain.model_fields)
        preferences = [host.preference for host in domain.mx]
        assert preferences == sorted(set(preferences))  # in preference order: the plan takes them as they are
        for host in domain.mx:
            assert host == RemoteHost.model_validate(host.model_dump())
            assert host.model_fields_set == set(RemoteHost.model_fields)
        with pytest.raises(ValidationError):  # frozen, as a validated one
            domain.name = "changed.example"  # type: ignore[misc]


def test_generated_domains_are_found_by_name_and_nothing_else_is():
    generated = generate(population())
    assert generated.index_of("p-000001.example") == 0
    assert generated.index_of("p-003000.example") == 2999
    for name in ("p-003001.example", "p-000000.example", "p-1.example", "q-000001.example", "p-00001x.example"):
        assert generated.index_of(name) is None


@settings(max_examples=300, deadline=None)
@given(
    middle=st.one_of(
        st.integers(0, 1_000_100).map(str),
        st.integers(0, 1_000_100).map(lambda n: f"{n:06d}"),
        st.integers(0, 1_000_100).map(lambda n: f"{n:08d}"),
        st.text(alphabet="0123456789x\u00b2\u0663-.", max_size=9),
    )
)
def test_a_name_is_found_exactly_when_it_is_the_name_of_its_number(middle):
    # index_of checks the digits instead of writing the name again: the same answers,
    # past a million domains too (ranks of seven digits are written without padding).
    generated = generate(population())
    large = GeneratedPopulation(generated.population, (0.0,) * 1_000_050, [0], [], None)
    for world in (generated, large):
        name = f"p-{middle}.example"
        rank = int(middle) if middle.isascii() and middle.isdigit() else 0
        assert world.index_of(name) == (rank - 1 if 1 <= rank <= len(world) and world.name(rank - 1) == name else None)


def test_cannot_tls_from_the_arrays_agrees_with_the_domains():
    generated = generate(population())
    no_tls = {"none", "handshake-fails"}
    assert generated.cannot_tls() == [all(h.tls.value in no_tls for h in d.mx) for d in generated.domains]


@pytest.mark.parametrize(
    "weights",
    [
        [1.0],
        [0.5, 0.0, 0.25, 0.25],  # a domain that never gets mail
        [1.0 / (i + 1) for i in range(100_000)],  # Zipf over a large population
        [3.0, 1.0, 1.0],  # not yet summing to 1 (the flow's weights before scaling)
    ],
    ids=["one", "with-zero", "zipf-100k", "unscaled"],
)
def test_weighted_picks_are_the_numbers_generator_choice_gives(weights):
    # The flow draws recipient domains from sums made once, not with Generator.choice,
    # which remakes them per call: the draws must be the same numbers, call after call.
    import numpy as np

    from sim.streams import weighted_picks

    probabilities = np.array(weights) / np.sum(weights)
    picks = weighted_picks(np.random.default_rng(11), probabilities)
    reference = np.random.default_rng(11)
    for n in (1, 7, 4096, 4096, 3):
        np.testing.assert_array_equal(picks(n), reference.choice(len(weights), n, p=probabilities))
    counts = np.bincount(picks(200_000), minlength=len(weights))
    assert counts[probabilities == 0].sum() == 0
