"""One build step: ``tlssim route`` explains the route a run takes (reference 6d)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner
from worlds import host, organisation, remotes, scenario

import sim
from sim.cli import app
from sim.plan.build import build_plan
from sim.plan.remote import all_domains
from sim.scenario.loader import read_yaml
from sim.simulate import Simulation

ROOT = Path(__file__).resolve().parent.parent
WHAT_IFS = sorted(p for p in (ROOT / "scenarios").glob("*.yaml") if "base" not in read_yaml(p))
HOUR = 3600.0
DAY = 86400.0


def route_json(path: Path, domain: str, source: str) -> dict:
    result = CliRunner().invoke(app, ["route", str(path), "--to", domain, "--from", source, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.mark.parametrize("path", WHAT_IFS, ids=lambda p: p.stem)
def test_route_and_a_run_agree_on_connector_virtual_server_next_hop_and_tls_level(path):
    loaded = sim.load_scenario(path)
    short = loaded.model_copy(update={"run": loaded.run.model_copy(update={"duration": 2 * HOUR})})
    simulation = Simulation(short)
    result = simulation.run()
    rows = {row["domain"]: row for row in result.per_domain_rows}
    flows = short.traffic.outbound
    first = short.organisation.servers[0].name
    sources = {flow.from_server or first for flow in flows} or {first}
    plan = simulation.world.plan
    named = {d.name for d in short.remotes.domains}
    domains = [d.name for d in all_domains(short)]  # named and generated
    for source in sources:
        for domain in dict.fromkeys(domains):
            # The command itself for the named domains; for the thousands of generated
            # ones, the function it prints (the same call, without a process per domain).
            payload = route_json(path, domain, source) if domain in named else plan.explain(source, domain)
            dispatch = simulation.world.dispatch(source, domain)
            queue = dispatch.queues[0] if dispatch.queues else None
            assert payload["queue"] == (queue.name if queue else None), domain
            chosen = dispatch.route.decision.chosen
            assert payload["connector"] == (chosen.connector.name if chosen else None), domain
            if chosen is not None:
                assert queue is not None
                assert payload["tls_level"] == queue.policy.level.value, domain
                assert payload["virtual_server"] == queue.name.split("|")[0]
                assert [h["host"] for h in payload["mx"]] == [link.endpoint.name for link in queue.hosts]
            if domain in rows and len(sources) == 1:
                assert rows[domain]["route"] == dispatch.route.label


def test_route_explains_address_spaces_generated_from_the_remote_world():
    # The bug this build step removes: route built its own selector from the raw
    # organisation, so it showed "internet" while the run took the workaround connector.
    org = organisation(
        "required",
        connectors=[
            {"name": "internet", "source": ["EX1/default"], "address_spaces": [{"pattern": "*"}]},
            {"name": "no-tls", "source": ["EX1/plain"], "address_spaces_from_remotes": "cannot-tls"},
        ],
    )
    world = scenario(org, remotes(good_example="trusted", old_example="none"), duration="1h")
    plan = build_plan(world)
    assert plan.route("EX1", "old.example").decision.chosen.connector.name == "no-tls"
    assert plan.route("EX1", "old.example").queues[0].policy.level.value == "off"
    assert plan.route("EX1", "good.example").decision.chosen.connector.name == "internet"


def _two_groups(profile="exchange2003", link_up=False):
    org = organisation(profile=profile, connectors=[])
    org["routing_groups"].append({"name": "branch"})
    org["routing_group_connectors"] = [{"name": "hq-branch", "between": ["hq", "branch"], "cost": 1, "up": link_up}]
    org["servers"].append({"name": "EX2", "routing_group": "branch", "virtual_servers": [{"name": "smtp"}]})
    org["connectors"] = [
        {"name": "star", "source": ["EX1/default"], "address_spaces": [{"pattern": "*"}]},
        {"name": "partner", "source": ["EX2/smtp"], "address_spaces": [{"pattern": "partner.example"}]},
    ]
    return org


def test_no_failover_to_a_less_specific_route_when_the_specific_connector_is_unreachable():
    # 6d: the partner connector's routing group cannot be reached; the mail waits as an
    # unreachable destination and expires, it does not take "*".
    org = _two_groups()
    world = scenario(org, remotes(partner_example="trusted"), duration="3d")
    simulation = Simulation(world, trace=True)
    simulation.inject(0, "partner.example")
    result = simulation.run()
    assert result.summary_row["out_delivered"] == 0
    [ndr] = result.ndr_rows
    assert ndr["status"] == "4.4.7"
    assert "Unreachable destination" in ndr["reason"]
    expired = [t for t, _, event, _ in result.trace if event == "expired"]
    assert expired == [2 * DAY]  # the 2003 expiration timeout, at the deadline
    assert [t for t, _, event, _ in result.trace if event == "delay-notice"] == [12 * HOUR]
    assert result.per_domain_rows[0]["route"] == "(unreachable)"


def test_reachability_chooses_among_equally_specific_connectors():
    org = _two_groups()
    org["connectors"].append(
        {
            "name": "partner-local",
            "source": ["EX1/plain"],
            "address_spaces": [{"pattern": "partner.example", "cost": 50}],
        }
    )
    decision = build_plan(scenario(org, remotes(partner_example="trusted"))).route("EX1", "partner.example").decision
    assert decision.chosen.connector.name == "partner-local"
    org["routing_group_connectors"][0]["up"] = True  # now the cheaper one is reachable and wins
    decision = build_plan(scenario(org, remotes(partner_example="trusted"))).route("EX1", "partner.example").decision
    assert decision.chosen.connector.name == "partner"


def test_unreachable_is_counted_as_queued_until_expiry():
    org = _two_groups()
    world = scenario(org, remotes(partner_example="trusted"), duration="1d")
    simulation = Simulation(world)
    simulation.inject(0, "partner.example")
    result = simulation.run()
    assert result.summary_row["out_queued_at_end"] == 1
    assert result.summary_row["out_ndr"] == 0


def test_exchange2016_with_no_matching_connector_waits_in_the_unreachable_queue_then_ndr():
    # 6d (connector-selection.md): no NDR 5.0.0 under 2007+; the Unreachable queue until
    # MessageExpirationTimeout (2 d), then the NDR.
    org = organisation(
        profile="exchange2016",
        connectors=[{"name": "contoso", "source": ["EX1/default"], "address_spaces": [{"pattern": "contoso.com"}]}],
    )
    world = scenario(org, remotes(contoso_com="trusted", fabrikam_com="trusted"), duration="3d")
    simulation = Simulation(world, trace=True)
    simulation.inject(0, "fabrikam.com")
    result = simulation.run()
    [ndr] = result.ndr_rows
    assert ndr["status"] == "4.4.7"
    assert [t for t, _, event, _ in result.trace if event == "expired"] == [2 * DAY]


def test_route_json_reports_the_unreachable_state_with_its_reason(tmp_path):
    org = _two_groups()
    org["organisation"] = "t"
    (tmp_path / "org.yaml").write_text(json.dumps(org))
    (tmp_path / "rem.yaml").write_text(json.dumps(remotes(partner_example=[host("mx.partner.example")])))
    (tmp_path / "w.yaml").write_text(json.dumps({"name": "w", "topology": "org.yaml", "remotes": "rem.yaml"}))
    payload = route_json(tmp_path / "w.yaml", "partner.example", "EX1")
    assert payload["state"] == "unreachable"
    assert payload["connector"] is None
    assert "partner" in payload["reason"] and "no failover" in payload["reason"]
    verdicts = {c["connector"]: c["verdict"] for c in payload["candidates"]}
    assert verdicts["star"].startswith("less specific")
    assert verdicts["partner"].startswith("most specific, but its routing group cannot be reached")


def test_route_json_predicts_each_mx_session():
    org = organisation("opportunistic", profile="postfix")
    rem = remotes(
        mixed_example=[
            host("mx1.mixed.example", "handshake-fails", preference=10),
            host("mx2.mixed.example", "self-signed", preference=20),
            host("mx3.mixed.example", "none", preference=30, requires_tls=True),
        ]
    )
    plan = build_plan(scenario(org, rem))
    queue = plan.route("EX1", "mixed.example").queues[0]
    from sim.plan.explain import session_outcome

    outcomes = [session_outcome(queue, h) for h in queue.hosts]
    assert [o["outcome"] for o in outcomes] == ["handshake", "tls", "must-starttls"]
    assert outcomes[0]["status"] == "4.7.5 Cannot start TLS: handshake failure"
    assert outcomes[0]["then"] == "plaintext once the message has waited 300 s"
    assert outcomes[2]["permanent"] is True
