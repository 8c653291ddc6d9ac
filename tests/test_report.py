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
    # The article's numbers (seed 1): README "What the bundled scenarios show".
    assert "7,286 messages (12.7%) to 2 domain(s) return as NDR 4.4.7 from 2 d." in text
    assert "The queue peaks at 7,314 messages after 2 d 2 h." in text


def test_report_html_is_one_self_contained_page_with_every_figure(report):
    page = (report / "report.html").read_text()
    images = re.findall(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)" alt="([^"]+)"', page)
    assert [alt for _, alt in images] == [
        "Queue depth over time",
        "NDRs and delay notices over time",
        "Outcome per recipient domain",
        "Delivery delay",
    ]
    assert all(len(data) > 5000 for data, _ in images)
    assert "http://" not in page and "https://" not in page and "<script" not in page
    for png in ("queues.png", "events.png", "domains.png", "delays.png"):
        assert (report / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


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


def test_compare_tells_the_articles_story_on_one_page(tmp_path):
    args = ["compare", str(ROOT / "scenarios/article-baseline.yaml"), str(ROOT / "scenarios/article-force-tls.yaml")]
    result = runner.invoke(app, [*args, "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    markdown = (tmp_path / "compare.md").read_text()
    assert "- NDRs: 0 -> 7,286" in markdown
    assert "- share of delivered mail over TLS: 0.0% -> 100.0%" in markdown
    changed = [line for line in markdown.splitlines() if line.startswith("- ") and "->" in line and ":" in line]
    assert any(line.startswith("- oldsendmail.example: NDRs 0 -> 4334") and "no-starttls" in line for line in changed)
    assert any(line.startswith("- brokentls.example:") and "handshake" in line for line in changed)
    import csv

    rows = {row["metric"]: row for row in csv.DictReader((tmp_path / "compare.csv").open())}
    assert float(rows["out_ndr"]["difference"]) == 7286
    page = (tmp_path / "compare.html").read_text()
    assert page.count('<img src="data:image/png;base64,') == 2 and "https://" not in page


def test_compare_with_replications_gives_a_paired_interval(tmp_path):
    base = ROOT / "scenarios/article-baseline.yaml"
    whatif = ROOT / "scenarios/article-force-tls.yaml"
    args = ["compare", str(base), str(whatif), "--out", str(tmp_path), "--replications", "3"]
    assert runner.invoke(app, args).exit_code == 0
    import csv

    rows = {row["metric"]: row for row in csv.DictReader((tmp_path / "compare.csv").open())}
    assert float(rows["out_ndr"]["difference_ci95"]) > 0
    assert float(rows["out_messages"]["difference"]) == 0  # same arrivals in both: common random numbers
