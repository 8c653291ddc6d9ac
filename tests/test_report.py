"""The report of a run: headline numbers in words, figures, one self-contained page."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sim.cli import app

ROOT = Path(__file__).resolve().parent.parent
runner = CliRunner()


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    result = runner.invoke(app, ["run", str(ROOT / "scenarios/article-force-tls.yaml"), "--out", str(out), "-q"])
    assert result.exit_code == 0, result.output
    return out


def test_report_md_tells_the_articles_story_in_numbers(report):
    text = (report / "report.md").read_text()
    # The article's numbers (seed 1): 4,334 + 2,952 returned and 4,283 + 2,808 doomed of 57,361.
    assert (
        "- 25.1% of outbound mail will not arrive (14,377 of 57,361 messages): 12.7% returned as NDR 4.4.7 "
        "by the end of the run, 12.4% still queued with no way out and returned 2 d after it was sent." in text
    )
    assert "The queues peak at 7,314 messages 2 d 2 h into the run." in text
    assert "| oldsendmail.example | 8,617 | 0 | - | 4,334 | 4,283 |" in text


def test_report_html_is_one_self_contained_page_with_every_figure(report):
    page = (report / "report.html").read_text()
    images = re.findall(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)" alt="([^"]+)"', page)
    assert [alt for _, alt in images] == [
        "Queue depth over time: the queues peak at 7,314 messages 2 d 2 h into the run",
        "NDRs and delay notices so far: 7,286 NDRs and 12,562 delay notices by the end of the run",
        "Domains whose mail will not arrive, most lost first: oldsendmail.example (8,617), brokentls.example (5,760)",
        "Time to delivery (median 0.54 s), and to the NDR of mail that will not arrive "
        "(the last 5 d 23 h after the start, 1 d 23 h after the run ends)",
    ]
    assert all(len(data) > 5000 for data, _ in images)
    assert "http://" not in page and "https://" not in page and "<script" not in page
    for png in ("queues.png", "events.png", "domains.png", "delays.png"):
        assert (report / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert re.findall(r"<section id=\"([a-z]+)\"", page) == ["outbound", "decision"]


@pytest.fixture(scope="module")
def everything():
    """One run with inbound mail, TLS-RPT reports received and a policy change (no outbound mail)."""
    from sim.scenario.loader import load_scenario
    from sim.simulate import run

    return run(load_scenario(ROOT / "scenarios/mta-sts-testing-to-enforce.yaml"))


@pytest.mark.parametrize(
    ("remove", "expected"),
    [
        ({}, ["inbound", "policies", "calendar"]),
        ({"tlsrpt_received": []}, ["inbound", "calendar"]),
        ({"manifest_extra": {}}, ["inbound", "policies"]),
        ({"inbound": True}, ["policies", "calendar"]),
        ({"outbound": True}, ["outbound", "inbound", "policies", "calendar"]),
    ],
)
def test_a_section_appears_when_and_only_when_the_run_has_its_data(everything, remove, expected):
    import dataclasses

    from sim.report.sections import sections

    result = dataclasses.replace(everything, summary_row=dict(everything.summary_row))
    for name, value in remove.items():
        if name == "inbound":
            result.summary_row["in_messages"] = 0
        elif name == "outbound":
            result.summary_row.update(out_messages=3, out_delivered=3, out_delivered_tls=3, peak_queue_depth=0)
            result.per_domain_rows = [
                {"domain": "a.example", "route": "internet", "tls_level": "opportunistic", "messages": 3,
                 "delivered": 3, "delivered_tls": 3, "ndr": 0, "doomed": 0, "pending": 0, "last_failure": "",
                 "last_status": ""}
            ]  # fmt: skip
        else:
            setattr(result, name, value)
    found = sections(result)
    assert [s.id for s in found] == expected
    charts = {s.id: [c.name for c in s.charts] for s in found}
    if "outbound" in charts:  # no queue, no NDR: no empty queue or event chart
        assert charts["outbound"] == ["domains.png", "delays.png"]


def test_the_policies_section_says_what_enforce_would_have_refused(everything):
    from sim.report.facts import tlsrpt_days
    from sim.report.sections import headline

    days = tlsrpt_days(everything)
    testing = sum(d["failed"] for d in days if d["testing"])
    # Microsoft's three days of certificate-host-mismatch in testing, and 8 sessions on day 4
    # before its next look at our TXT record (TTL 1 h) showed the new id.
    assert testing == 4734 + 4846 + 4782 + 8
    lines = headline(everything)
    assert any(f"{testing:,} of them while the policy was in testing: enforce would have refused" in s for s in lines)
    assert "At 3 d the policy changes: publishes.mta_sts.mode = enforce." in lines


def test_no_report_skips_it(tmp_path):
    args = ["run", str(ROOT / "scenarios/article-baseline.yaml"), "--out", str(tmp_path), "-q", "--no-report"]
    assert runner.invoke(app, args).exit_code == 0
    assert not (tmp_path / "report.html").exists()
    assert (tmp_path / "events.csv").exists()


def test_per_domain_explains_outcomes(report):
    import csv

    rows = {row["domain"]: row for row in csv.DictReader((report / "per_domain.csv").open())}
    old = rows["oldsendmail.example"]
    assert (old["tls_level"], old["last_failure"]) == ("required", "no-starttls")
    assert old["last_status"].startswith("4.4.7 Could not deliver the message in the time limit specified")
    assert rows["fabrikam.com"]["last_status"] == ""


@pytest.mark.slow  # over a second: runs in CI (.ci/run)
def test_compare_tells_the_articles_story_on_one_page(tmp_path):
    args = ["compare", str(ROOT / "scenarios/article-baseline.yaml"), str(ROOT / "scenarios/article-force-tls.yaml")]
    result = runner.invoke(app, [*args, "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    markdown = (tmp_path / "compare.md").read_text()
    assert "- NDRs: 0 -> 7,286" in markdown
    assert "- What-if: 25.1% of outbound mail will not arrive (14,377 of 57,361 messages)" in markdown
    assert "- share of delivered mail over TLS: 0.0% -> 100.0%" in markdown
    changed = [line for line in markdown.splitlines() if line.startswith("- ") and "->" in line and ":" in line]
    assert any(line.startswith("- oldsendmail.example: NDRs 0 -> 4334") and "no-starttls" in line for line in changed)
    assert any(line.startswith("- brokentls.example:") and "handshake" in line for line in changed)
    import csv

    rows = {row["metric"]: row for row in csv.DictReader((tmp_path / "compare.csv").open())}
    assert float(rows["out_ndr"]["difference"]) == 7286
    page = (tmp_path / "compare.html").read_text()
    assert page.count('<img src="data:image/png;base64,') == 2 and "https://" not in page


@pytest.mark.slow
def test_compare_with_replications_gives_a_paired_interval(tmp_path):
    base = ROOT / "scenarios/article-baseline.yaml"
    whatif = ROOT / "scenarios/article-force-tls.yaml"
    args = ["compare", str(base), str(whatif), "--out", str(tmp_path), "--replications", "3"]
    assert runner.invoke(app, args).exit_code == 0
    import csv

    rows = {row["metric"]: row for row in csv.DictReader((tmp_path / "compare.csv").open())}
    assert float(rows["out_ndr"]["difference_ci95"]) > 0
    assert float(rows["out_messages"]["difference"]) == 0  # same arrivals in both: common random numbers


def test_cli_conventions_version_module_json_and_provenance(tmp_path):
    import json
    import subprocess
    import sys

    from sim.version import __version__

    assert runner.invoke(app, ["--version"]).stdout.strip() == f"tlssim {__version__}"
    module = subprocess.run([sys.executable, "-m", "sim", "--version"], capture_output=True, text=True, check=True)
    assert module.stdout.strip() == f"tlssim {__version__}"
    args = ["run", str(ROOT / "scenarios/article-baseline.yaml"), "--out", str(tmp_path), "--json", "--no-report"]
    result = runner.invoke(app, args)
    summary = json.loads(result.stdout)  # one JSON object, nothing else on stdout
    assert summary["out_messages"] == 57361
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["input"].endswith("scenarios/article-baseline.yaml")
    assert {"command", "run_at", "python", "dependencies"} <= set(manifest)
    assert manifest["dependencies"]["simpy"]


def test_run_warns_when_the_run_is_too_short_to_show_expiry(tmp_path):
    text = (ROOT / "scenarios/article-force-tls.yaml").read_text().replace("duration: 4d", "duration: 1d")
    what_if = tmp_path / "short.yaml"
    what_if.write_text(text.replace("../topology/", f"{ROOT}/topology/"))
    result = runner.invoke(app, ["run", str(what_if), "--out", str(tmp_path / "out"), "-q", "--no-report"])
    assert result.exit_code == 0
    assert "warning: the run (1d) is not longer than the expiration timeout (2d)" in result.stderr


@pytest.mark.parametrize("kind", ["what-if", "organisation", "remotes", "experiment"])
def test_schema_per_kind_is_self_contained_and_checks_the_bundled_files(kind):
    import json

    import jsonschema
    import yaml

    result = runner.invoke(app, ["schema", "--kind", kind])
    assert result.exit_code == 0, result.output
    schema = json.loads(result.stdout)
    jsonschema.Draft202012Validator.check_schema(schema)
    refs = re.findall(r'"\$ref": "#/\$defs/([^"]+)"', result.stdout)
    assert set(refs) <= set(schema["$defs"])
    assert refs or kind == "remotes"  # every other kind refers to definitions
    validator = jsonschema.Draft202012Validator(schema)
    files = {
        "what-if": [p for p in (ROOT / "scenarios").glob("*.yaml") if "base:" not in p.read_text()],
        "organisation": [p for p in (ROOT / "topology").glob("*.yaml") if "organisation:" in p.read_text()],
        "remotes": [p for p in (ROOT / "topology").glob("*.yaml") if "organisation:" not in p.read_text()],
        "experiment": [p for p in (ROOT / "scenarios").glob("*.yaml") if "base:" in p.read_text()],
    }[kind]
    assert files
    for path in files:
        errors = list(validator.iter_errors(yaml.safe_load(path.read_text())))
        assert not errors, (path.name, errors[0].message)
    assert list(validator.iter_errors({"name": "x", "nonsense": 1}))  # the root rejects unknown keys


def test_yaml_traps_get_a_hint_and_experiment_files_point_to_sweep(tmp_path):
    text = (ROOT / "scenarios/article-force-tls.yaml").read_text().replace("../topology/", f"{ROOT}/topology/")
    what_if = tmp_path / "w.yaml"
    what_if.write_text(text.replace("outbound_tls: required", "outbound_tls: off"))
    result = runner.invoke(app, ["validate", str(what_if)])
    assert result.exit_code == 2
    assert "quote it, e.g. 'off'" in result.stderr
    result = runner.invoke(app, ["run", str(ROOT / "scenarios/article-policy-sweep.yaml")])
    assert result.exit_code == 2
    assert "this is an experiment file: use tlssim sweep" in result.stderr


def test_per_domain_lists_every_route_when_servers_use_different_connectors():
    from worlds import organisation, remotes, scenario

    from sim.simulate import Simulation

    org = organisation(connectors=[])
    org["routing_groups"].append({"name": "branch"})
    org["routing_group_connectors"] = [{"name": "link", "between": ["hq", "branch"]}]
    org["servers"].append({"name": "EX2", "routing_group": "branch", "virtual_servers": [{"name": "smtp"}]})
    org["connectors"] = [
        {"name": "via-ex1", "source": ["EX1/default"], "address_spaces": [{"pattern": "*"}]},
        {"name": "via-ex2", "source": ["EX2/smtp"], "address_spaces": [{"pattern": "d.example"}],
         "scope": "routing_group", "tls": "required"},
    ]  # fmt: skip
    simulation = Simulation(scenario(org, remotes(d_example="trusted"), duration="1h"))
    simulation.inject(0, "d.example", from_server="EX2")
    simulation.inject(1, "d.example", from_server="EX1")
    [row] = simulation.run().per_domain_rows
    assert (row["route"], row["tls_level"]) == ("via-ex2; via-ex1", "required; off")


@pytest.mark.parametrize("args", [["--help"], ["validate", str(ROOT / "scenarios/article-force-tls.yaml")]])
def test_help_and_validate_do_not_load_pandas_matplotlib_or_the_simulation(args):
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "sim", *args], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    loaded = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines() if "|" in line}
    assert not {"pandas", "matplotlib", "sim.simulate", "sim.model.world", "simpy", "numpy", "networkx"} & loaded


@pytest.mark.slow  # over a second: runs in CI (.ci/run)
def test_a_run_without_report_loads_neither_pandas_nor_matplotlib_nor_networkx(tmp_path):
    # Its tables are written from its rows (sim/csvtable.py); the routing-group graph
    # needs networkx only for links between routing groups, which this world has none of.
    import subprocess
    import sys

    args = ["run", "article-baseline", "--out", str(tmp_path / "out"), "-q", "--no-report"]
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "sim", *args], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    loaded = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines() if "|" in line}
    assert "simpy" in loaded and not {"pandas", "matplotlib", "networkx", "scipy"} & loaded


@pytest.mark.slow
def test_run_with_a_baseline_writes_the_comparison_beside_the_run(tmp_path):
    args = [
        "run",
        str(ROOT / "scenarios/article-force-tls.yaml"),
        "--baseline",
        str(ROOT / "scenarios/article-baseline.yaml"),
    ]
    result = runner.invoke(app, [*args, "--out", str(tmp_path), "-q"])
    assert result.exit_code == 0, result.output
    assert "- NDRs: 0 -> 7,286" in (tmp_path / "compare.md").read_text()
    assert (tmp_path / "report.html").exists()


def _troubled(*starts: float):
    """A result whose queues first sample in Retry at ``starts`` (one queue each)."""
    from types import SimpleNamespace

    samples = [(start, f"VS|c|host{n}.example", 5, True) for n, start in enumerate(starts)]
    return SimpleNamespace(queue_samples=samples, timers={"delay notice": 43200.0, "expiry": 172800.0},
                           manifest_extra={})  # fmt: skip


FIRST = ["delay notice (12 h, trouble from 15 min)", "expiry (2 d, trouble from 15 min)"]
SECOND = ["delay notice (12 h, trouble from 1 d)", "expiry (2 d, trouble from 1 d)"]


@pytest.mark.parametrize(
    ("starts", "labelled"),
    [
        ((900.0, 1800.0), FIRST),  # 15 minutes apart on a 4-day axis: one line each, not two over each other
        ((900.0, 86400.0), FIRST + SECOND),  # a second trouble a day later has lines of its own
        ((900.0, 86400.0, 129600.0), FIRST + SECOND),  # only the first two troubles are marked
        ((900.0, 7200.0, 86400.0), FIRST + SECOND),  # the one too close to the first is not counted
    ],
)
def test_timer_lines_mark_each_trouble_once_and_stay_readable(starts, labelled):
    import matplotlib.pyplot as plt

    from sim.report.figures import _mark_time

    figure, ax = plt.subplots()
    try:
        _mark_time(ax, _troubled(*starts), 3600.0, 4 * 86400.0)
        assert [text.get_text() for text in ax.texts] == labelled
        for text in ax.texts:  # clear of its line, on a pale ground
            assert text.get_bbox_patch() is not None
            assert text.xyann == (-2, 0)
    finally:
        plt.close(figure)
