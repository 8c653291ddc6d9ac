"""The command line: bad input exits 2 with one line naming file and field; good input works."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sim.cli import app

ROOT = Path(__file__).resolve().parent.parent
runner = CliRunner()


@pytest.fixture
def world(tmp_path):
    """A copy of the bundled article world in a temporary folder, to break at will."""
    shutil.copytree(ROOT / "topology", tmp_path / "topology")
    shutil.copytree(ROOT / "scenarios", tmp_path / "scenarios")
    return tmp_path


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


def invoke(*args: str):
    return runner.invoke(app, list(args))


def error_line(result) -> str:
    assert result.exit_code == 2, result.output
    text = result.stderr if result.stderr else result.output
    assert "Traceback" not in text
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1, text
    return lines[0]


BAD_INPUTS = [
    # (file to break, old text, new text, words the one-line error must contain)
    (
        "scenarios/article-force-tls.yaml",
        "name: article-force-tls",
        "name: [unclosed",
        ["article-force-tls.yaml", "not valid YAML"],
    ),
    (
        "scenarios/article-force-tls.yaml",
        "run: {duration",
        "colour: blue\nrun: {duration",
        ["article-force-tls.yaml", "colour", "unknown field", "accepted"],
    ),
    (
        "scenarios/article-force-tls.yaml",
        "rate_per_hour: 600",
        "rate_per_hour: lots",
        ["article-force-tls.yaml", "traffic.outbound[0].rate_per_hour", "'lots'"],
    ),
    (
        "scenarios/article-force-tls.yaml",
        "rate_per_hour: 600",
        "rate_per_hour: -5",
        ["article-force-tls.yaml", "traffic.outbound[0].rate_per_hour", "-5", "greater than 0"],
    ),
    (
        "scenarios/article-force-tls.yaml",
        "duration: 4d",
        "duration: 4 days",
        ["article-force-tls.yaml", "run.duration", "'4 days'", "15m"],
    ),
    (
        "scenarios/article-force-tls.yaml",
        "outbound_tls: required",
        "outbound_tls: always",
        [
            "article-force-tls.yaml",
            "overrides.servers.EX1.virtual_servers.default-smtp.outbound_tls",
            "'always'",
            "'required'",
        ],
    ),
    (
        "scenarios/article-force-tls.yaml",
        "servers.EX1.virtual",
        "servers.EX9.virtual",
        ["article-force-tls.yaml", "overrides.servers.EX9", "no entry named 'EX9'", "EX1"],
    ),
    (
        "topology/contoso-2003.yaml",
        '{pattern: "*", cost: 1}',
        '{pattern: "*.exa mple", cost: 1}',
        ["contoso-2003.yaml", "connectors[0].address_spaces[0].pattern", "'*.exa mple'", "not a domain pattern"],
    ),
    (
        "topology/contoso-2003.yaml",
        "source: [EX1/default-smtp]",
        "source: [EX1/missing-vs]",
        [
            "contoso-2003.yaml",
            ": connectors[0].source[0]",
            "'EX1/missing-vs'",
            "no such virtual server",
            "EX1/default-smtp",
        ],
    ),
    (
        "topology/contoso-2003.yaml",
        "cost: 1}",
        "cost: 500}",
        ["contoso-2003.yaml", "connectors[0].address_spaces[0].cost", "500", "100"],
    ),
    (
        "scenarios/article-force-tls.yaml",
        "../topology/contoso-2003.yaml",
        "../topology/nowhere.yaml",
        ["article-force-tls.yaml", "topology", "nowhere.yaml", "file not found"],
    ),
    (
        "topology/article-remotes.yaml",
        "tls: none",
        "tls: maybe",
        ["article-remotes.yaml", "domains[4].mx[0].tls", "'maybe'", "'handshake-fails'"],
    ),
    (
        "scenarios/article-force-tls.yaml",
        "fabrikam.com: 0.35",
        "unknown.example: 0.35",
        ["article-force-tls.yaml", "traffic.outbound[0].domains.unknown.example", "no such domain"],
    ),
]


@pytest.mark.parametrize(("file", "old", "new", "words"), BAD_INPUTS, ids=[b[3][-1] for b in BAD_INPUTS])
def test_bad_input_exits_2_with_one_line(world, file, old, new, words):
    edit(world / file, old, new)
    for command in ("validate", "run"):
        args = [command, str(world / "scenarios/article-force-tls.yaml")]
        if command == "run":
            args += ["--out", str(world / "out"), "--quiet"]
        line = error_line(invoke(*args))
        for word in words:
            assert word in line, (word, line)
    assert not (world / "out").exists(), "a failed run must not leave result files"


def test_missing_scenario_file():
    line = error_line(invoke("validate", "no/such/file.yaml"))
    assert "no/such/file.yaml" in line and "file not found" in line


@pytest.mark.slow  # over a second: runs in CI (.ci/run)
def test_run_writes_all_tables_and_manifest(tmp_path):
    out = tmp_path / "out"
    result = invoke("run", str(ROOT / "scenarios/article-force-tls.yaml"), "--out", str(out), "--quiet", "--seed", "3")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == [
        "delays.png",
        "domains.png",
        "events.csv",
        "events.png",
        "exceptions",  # the decision packet: this what-if loses mail
        "inbound.csv",
        "manifest.json",
        "ndr.csv",
        "per_domain.csv",
        "queues.csv",
        "queues.png",
        "report.html",
        "report.md",
        "summary.csv",
    ]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["seed"] == 3 and len(manifest["scenario_hash"]) == 64
    header = (out / "summary.csv").read_text().splitlines()[0].split(",")
    required = [
        "scenario",
        "seed",
        "sim_hours",
        "out_messages",
        "out_delivered",
        "out_delivered_tls",
        "out_delivered_plaintext",
        "out_ndr",
        "out_ndr_rate",
        "out_expired",
        "out_delay_dsn",
        "out_queued_at_end",
        "delay_p50_s",
        "delay_p95_s",
        "delay_max_s",
        "peak_queue_depth",
        "peak_queue_time_s",
        "wall_s",
    ]
    assert set(required) <= set(header)


def test_route_json_names_connector_virtual_server_next_hop_and_candidates():
    result = invoke("route", str(ROOT / "scenarios/article-workaround.yaml"), "--to", "ann@brokentls.example", "--json")
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["connector"] == "no-tls-domains"
    assert payload["virtual_server"] == "EX1/no-tls-smtp"
    assert payload["next_hop"] == "MX of brokentls.example"
    verdicts = {c["connector"]: c["verdict"] for c in payload["candidates"]}
    assert verdicts["no-tls-domains"] == "chosen"
    assert verdicts["internet"].startswith("less specific")


def test_route_rejects_a_bad_address():
    line = error_line(invoke("route", str(ROOT / "scenarios/article-workaround.yaml"), "--to", "not an address"))
    assert "--to" in line


def test_profiles_lists_every_profile_with_its_defaults():
    result = invoke("profiles", "--json")
    assert result.exit_code == 0, result.output
    profiles = {p["name"]: p for p in json.loads(result.stdout)}
    assert set(profiles) == {
        "exchange2003",
        "exchange2016",
        "exchange2016-edge",
        "exchange2019",
        "exchange-online",
        "postfix",
        "postfix-3.10",
        "postfix-3.11",
        "sendmail",
        "gmail",
        "generic",
    }
    assert profiles["gmail"]["retry"] == "whole queue: 6m, 23m, 28m, 42m, 63m, 68m, 79m, 126m, then every 126m"
    assert profiles["exchange2003"]["retry"] == "whole queue: 15m, 30m, 1h, then every 4h"
    assert profiles["postfix"]["expiry_status"] == "last deferral status"
    assert profiles["sendmail"]["statuses"]["handshake"].startswith("4.7.0")
    assert invoke("profiles").exit_code == 0


def test_population_shares_that_do_not_sum_to_one(tmp_path):
    shutil.copytree(ROOT / "topology", tmp_path / "topology")
    shutil.copytree(ROOT / "scenarios", tmp_path / "scenarios")
    edit(tmp_path / "topology/internet-2024.yaml", "none: 0.10", "none: 0.50")
    line = error_line(invoke("validate", str(tmp_path / "scenarios/force-tls-2024.yaml")))
    assert "internet-2024.yaml" in line and "population.tls" in line and "sum to 1" in line


def test_schema_is_json_with_the_three_formats():
    result = invoke("schema")
    assert result.exit_code == 0
    schema = json.loads(result.stdout)
    assert set(schema["$defs"]) >= {"scenario", "organisation", "remotes"}
