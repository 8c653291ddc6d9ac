"""The README and docs/: short enough to start from, every link resolves, the commands they
give work as written."""

from __future__ import annotations

import re
from pathlib import Path

from typer.testing import CliRunner

from sim.cli import app

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def test_the_readme_starts_in_five_minutes():
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 150
    fences = re.findall(r"```sh\n(.*?)\n```", text, re.S)
    install_and_run, install_and_test = fences[0], fences[1]
    assert install_and_run.count("\n") == 0 and "tlssim run" in install_and_run
    # The test command is exactly the one .ci/run runs.
    ci = (ROOT / ".ci/run").read_text()
    assert install_and_test.split("&& ")[-1] in ci
    assert "chromium" in text.lower()


def test_every_relative_link_resolves():
    broken = []
    for page in PAGES:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text()):
            if target.startswith(("http://", "https://", "mailto:")):
                continue
            if not (page.parent / target).exists():
                broken.append(f"{page.relative_to(ROOT)}: {target}")
    assert not broken, broken


def test_a_bundled_name_stands_for_its_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # not the checkout: the name is found beside the package
    runner = CliRunner()
    listed = runner.invoke(app, ["scenarios"])
    assert listed.exit_code == 0 and "article-force-tls" in listed.stdout and "experiment" in listed.stdout
    assert runner.invoke(app, ["validate", "article-workaround"]).exit_code == 0
    missing = runner.invoke(app, ["validate", "no-such-what-if"])
    assert missing.exit_code == 2 and "no-such-what-if: file not found" in missing.output
