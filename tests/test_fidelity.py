"""Exact behaviour against the real products on small hand-built worlds (reference 6)."""

from __future__ import annotations

import pytest
from worlds import host, organisation, remotes, scenario

from sim.run import Simulation

MIN = 60.0
HOUR = 3600.0
DAY = 86400.0


def _run(org, rem, *, duration="1d", messages=((0.0, "strict.example"),)):
    simulation = Simulation(scenario(org, rem, duration=duration), trace=True)
    for at, domain in messages:
        simulation.inject(at, domain)
    result = simulation.run()
    return result, result.trace


# --------------------------------------------------------------------------- 6c


def _requires_tls_without_starttls():
    return remotes(strict_example=[host("mx.strict.example", "none", requires_tls=True)])


@pytest.mark.parametrize("level", ["none", "may"])
def test_host_requiring_tls_without_starttls_bounces_5_7_0_at_once_below_encrypt(level):
    # 6c, measured on a real Postfix: levels none and may -> one try, immediate bounce 5.7.0.
    result, trace = _run(organisation(level, profile="postfix"), _requires_tls_without_starttls())
    assert [(t, e) for t, _, e, _ in trace if e != "accepted"] == [(0.0, "attempt"), (0.0, "bounced")]
    assert [(r["status"], r["count"]) for r in result.ndr_rows] == [("5.7.0", 1)]
    assert result.summary_row["out_delivered_plaintext"] == 0


@pytest.mark.parametrize("level", ["encrypt", "verify"])
def test_host_requiring_tls_without_starttls_defers_4_7_4_until_expiry_at_encrypt(level):
    # 6c: encrypt and verify -> deferred "4.7.4 TLS is required, but was not offered"
    # until maximal_queue_lifetime; the NDR carries 4.7.4.
    org = organisation(level, profile="postfix", delivery={"expiration_timeout": "1h"})
    result, trace = _run(org, _requires_tls_without_starttls(), duration="3h")
    deferred = {d for _, _, e, d in trace if e == "deferred"}
    assert deferred == {"4.7.4 TLS is required, but was not offered by host"}
    [ndr] = result.ndr_rows
    assert ndr["status"] == "4.7.4"
    assert result.summary_row["out_expired"] == 1


def test_exchange2003_opportunistic_what_if_also_bounces_on_such_a_host():
    result, _ = _run(organisation("opportunistic"), _requires_tls_without_starttls())
    assert [r["status"] for r in result.ndr_rows] == ["5.7.0"]


def test_populations_generate_such_hosts_only_when_a_share_is_given():
    from sim.population import generate
    from sim.scenario.model import Population

    base = {"name": "p", "domains": 400, "tls": {"none": 0.5, "trusted": 0.5}, "requires_tls": 0.1}
    none_requiring = [
        h
        for share in (0.0, 0.5)
        for d in generate(Population.model_validate({**base, "requires_tls_without_starttls": share})).domains
        for h in d.mx
        if h.tls.value == "none" and h.requires_tls
    ]
    without = generate(Population.model_validate(base)).domains
    with_share = generate(Population.model_validate({**base, "requires_tls_without_starttls": 0.5})).domains
    assert not any(h.requires_tls for d in without for h in d.mx if h.tls.value == "none")
    count = sum(h.requires_tls for d in with_share for h in d.mx if h.tls.value == "none")
    total = sum(1 for d in with_share for h in d.mx if h.tls.value == "none")
    assert 0.4 * total < count < 0.6 * total
    assert len(none_requiring) == count


# --------------------------------------------------------------------------- overrides


def test_an_override_creates_a_section_the_file_leaves_at_its_default(tmp_path):
    from worlds import ROOT

    import sim
    from sim.experiment.design import load_experiment

    what_if = tmp_path / "w.yaml"
    what_if.write_text(
        (ROOT / "scenarios/article-force-tls.yaml")
        .read_text()
        .replace("../topology/", f"{ROOT}/topology/")
        .replace(
            "  servers.EX1.virtual_servers.default-smtp.outbound_tls: required\n",
            "  servers.EX1.virtual_servers.default-smtp.outbound_tls: required\n"
            "  servers.EX1.virtual_servers.default-smtp.delivery.expiration_timeout: 1d\n",
        )
    )
    loaded = sim.load_scenario(what_if)
    vs = loaded.organisation.servers[0].virtual_servers[0]
    assert vs.delivery.expiration_timeout == DAY
    # The same path as a sweep axis.
    experiment = tmp_path / "e.yaml"
    experiment.write_text(
        "name: e\nbase: w.yaml\naxes:\n"
        "  servers.EX1.virtual_servers.default-smtp.delivery.expiration_timeout: [1d, 3d]\n"
        "replications: 1\n"
    )
    points = load_experiment(experiment).points
    timeouts = [p.scenario.organisation.servers[0].virtual_servers[0].delivery.expiration_timeout for p in points]
    assert timeouts == [DAY, 3 * DAY]


def test_a_misspelt_section_created_by_an_override_is_still_refused(tmp_path):
    from typer.testing import CliRunner
    from worlds import ROOT

    from sim.cli import app

    what_if = tmp_path / "w.yaml"
    what_if.write_text(
        (ROOT / "scenarios/article-force-tls.yaml")
        .read_text()
        .replace("../topology/", f"{ROOT}/topology/")
        .replace("outbound_tls: required", "delivry.expiration_timeout: 1d")
    )
    result = CliRunner().invoke(app, ["validate", str(what_if)])
    assert result.exit_code == 2
    assert "overrides.servers.EX1.virtual_servers.default-smtp.delivry.expiration_timeout" in result.output
    assert "unknown field" in result.output


# --------------------------------------------------------------------------- 6d: what a product cannot do


def test_opportunistic_under_exchange2003_is_labelled_a_what_if(tmp_path):
    import json

    from typer.testing import CliRunner
    from worlds import ROOT

    from sim.cli import app

    what_if = tmp_path / "w.yaml"
    what_if.write_text(
        (ROOT / "scenarios/article-force-tls.yaml")
        .read_text()
        .replace("../topology/", f"{ROOT}/topology/")
        .replace("outbound_tls: required", "outbound_tls: opportunistic")
        .replace("duration: 4d", "duration: 1h")
    )
    runner = CliRunner()
    expected = (
        "note: EX1/default-smtp via connector internet: TLS level opportunistic under exchange2003 "
        "is a what-if level (the product offers: off, required)"
    )
    for args in (["validate", str(what_if)], ["run", str(what_if), "--quiet", "--out", str(tmp_path / "out")]):
        result = runner.invoke(app, args)
        assert result.exit_code == 0, result.output
        assert expected in result.stderr.splitlines()
    forced = runner.invoke(app, ["validate", str(ROOT / "scenarios/article-force-tls.yaml")])
    assert "note:" not in forced.stderr
    profiles = {p["name"]: p for p in json.loads(runner.invoke(app, ["profiles", "--json"]).stdout)}
    assert profiles["exchange2003"]["tls_levels"] == {
        "off": "product setting",
        "opportunistic": "what-if only",
        "required": "product setting",
        "verify": "what-if only",
    }
    assert set(profiles["postfix"]["tls_levels"].values()) == {"product setting"}
