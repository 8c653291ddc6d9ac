"""The policy calendar: overrides that take effect at simulated instants (issue: changes:)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner
from worlds import host, organisation, remotes, scenario

from sim.cli import app
from sim.errors import ScenarioError
from sim.scenario.loader import scenario_from_raw
from sim.simulate import Simulation

HOUR = 3600.0
TLS = "servers.EX1.virtual_servers.default.outbound_tls"


def _what_if(changes, **extra):
    return {
        "name": "cal",
        "topology": organisation("off"),
        "remotes": remotes(d_example=[host("mx.d.example", "none")]),
        "traffic": {"outbound": {"rate_per_hour": 60, "domains": {"d.example": 1}}},
        "run": {"duration": "6h", "sample_interval": "1h"},
        "changes": changes,
        **extra,
    }


def _load(document, tmp_path):
    return scenario_from_raw(document, tmp_path / "w.yaml")


def test_forcing_tls_at_2h_queues_only_the_mail_sent_after_it(tmp_path):
    changes = [{"at": "2h", "set": {"servers.EX1.virtual_servers.default.outbound_tls": "required"}}]
    loaded = _load(_what_if(changes), tmp_path)
    simulation = Simulation(loaded, trace=True)
    result = simulation.run()
    arrivals = {i: t for t, i, e, _ in result.trace if e == "accepted"}
    delivered = {i for _, i, e, _ in result.trace if e == "delivered"}
    assert delivered == {i for i, t in arrivals.items() if t < 2 * HOUR}
    assert result.summary_row["out_queued_at_end"] == sum(1 for t in arrivals.values() if t >= 2 * HOUR)
    # A marker row in queues.csv at the change instant.
    assert (2 * HOUR, "(change 1)", 0, False) in result.queue_samples
    assert result.manifest()["changes"] == [{"at_s": 2 * HOUR, "set": changes[0]["set"]}]


def test_a_change_back_releases_the_queue_at_its_next_retry(tmp_path):
    # Exchange 2003: the queue in Retry is not retried because a setting changed; it
    # delivers at its next scheduled retry (15, 30, 60, 240 min after the first failure).
    path = "servers.EX1.virtual_servers.default.outbound_tls"
    changes = [{"at": "1h", "set": {path: "required"}}, {"at": "3h", "set": {path: "off"}}]
    document = _what_if(changes)
    document["run"]["duration"] = "9h"
    result = Simulation(_load(document, tmp_path), trace=True).run()
    arrivals = {i: t for t, i, e, _ in result.trace if e == "accepted"}
    first_failure = min(t for t, _, e, _ in result.trace if e == "deferred")
    released = [t for t, i, e, _ in result.trace if e == "delivered" and arrivals[i] >= HOUR]
    assert first_failure >= HOUR
    assert min(released) == pytest.approx(first_failure + (15 + 30 + 60 + 240) * 60, abs=1)
    assert result.summary_row["out_queued_at_end"] <= 3  # only the last seconds' arrivals


def test_a_partner_policy_host_outage_from_the_calendar(tmp_path):
    # MTA-STS enforce with a short max_age; the policy host becomes unreachable at 1 h:
    # once the cached policy is older than max_age the sender delivers as without MTA-STS.
    org = organisation("opportunistic", profile="exchange-online")
    rem = {
        "domains": [
            {
                "name": "d.example",
                "mx": [host("mx.d.example", "self-signed")],
                "mta_sts": {"mode": "enforce", "mx": ["mx.d.example"], "max_age": "2h"},
            }
        ]
    }
    document = _what_if(
        [{"at": "1h", "set": {"remotes.domains.d.example.mta_sts.policy_host": "unreachable"}}],
        topology=org,
        remotes=rem,
    )
    result = Simulation(_load(document, tmp_path), trace=True).run()
    delivered = [t for t, _, e, _ in result.trace if e == "delivered"]
    assert delivered and min(delivered) >= 2 * HOUR  # fetched at ~0, valid for 2 h
    assert result.summary_row["out_delivered"] > 0


@pytest.mark.parametrize(
    ("changes", "field", "problem"),
    [
        (
            [{"at": "2h", "set": {"servers.EX1.virtual_servers.default.outbound_tls": "sometimes"}}],
            "changes[0].set",
            "",
        ),
        ([{"at": "2h", "set": {"traffic.outbound.0.rate_per_hour": 5}}], "changes[0].set.traffic", "organisation"),
        ([{"at": "2h", "set": {"servers.EX9.name": "x"}}], "changes[0].set", "EX9"),
        ([{"at": "3h", "set": {TLS: "required"}}, {"at": "1h", "set": {TLS: "off"}}], "changes[1].at", "time order"),
        ([{"at": -3600, "set": {TLS: "required"}}], "changes[0].at", "cannot be negative"),
        ([{"at": "1h", "set": {"servers.EX1.nonsense": 1}}], "changes[0].set", "unknown field"),
    ],
)
def test_bad_changes_name_the_change(tmp_path, changes, field, problem):
    with pytest.raises(ScenarioError) as caught:
        _load(_what_if(changes), tmp_path)
    assert field in str(caught.value)
    assert problem in str(caught.value)


def test_run_writes_the_changes_in_the_manifest(tmp_path):
    document = _what_if([{"at": "1h", "set": {"servers.EX1.virtual_servers.default.outbound_tls": "required"}}])
    (tmp_path / "w.yaml").write_text(json.dumps(document))
    result = CliRunner().invoke(app, ["run", str(tmp_path / "w.yaml"), "--quiet", "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    manifest = json.loads((tmp_path / "out/manifest.json").read_text())
    assert manifest["changes"][0]["at_s"] == HOUR


def test_same_calendar_and_seed_give_identical_tables(tmp_path):
    changes = [{"at": "2h", "set": {"servers.EX1.virtual_servers.default.outbound_tls": "required"}}]
    first = Simulation(_load(_what_if(changes), tmp_path)).run()
    second = Simulation(_load(_what_if(changes), tmp_path)).run()
    assert first.summary.drop(columns="wall_s").equals(second.summary.drop(columns="wall_s"))
    assert first.queues.equals(second.queues)


def test_scenario_helper_without_changes_is_unchanged():
    assert scenario(organisation(), remotes(d_example="none")).changes == []


def test_sweep_axes_reach_the_new_fields(tmp_path):
    # Issue 9 item 8: MTA-STS mode x population year as sweep axes.
    from worlds import ROOT

    from sim.experiment.design import load_experiment

    experiment = tmp_path / "e.yaml"
    experiment.write_text(
        f"name: e\nbase: {ROOT}/scenarios/mta-sts-testing-to-enforce.yaml\n"
        "axes:\n"
        "  publishes.mta_sts.mode: [testing, enforce]\n"
        "  year:\n"
        f"    y2024: {{remotes: {ROOT}/topology/internet-2024.yaml}}\n"
        f"    y2026: {{remotes: {ROOT}/topology/internet-2026.yaml}}\n"
        "  changes.0.at: [1d, 2d]\n"
        "replications: 1\n"
    )
    points = load_experiment(experiment).points
    assert len(points) == 8
    seen = {
        (
            p.scenario.organisation.publishes.mta_sts.mode.value,
            p.scenario.remotes.population.name,
            p.scenario.changes[0].at,
        )
        for p in points
    }
    assert len(seen) == 8
