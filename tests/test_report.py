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
