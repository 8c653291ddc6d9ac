"""The report and the comparison as a person sees them: in a real browser (headless Chromium).

Skipped with a message where Chromium is absent on a developer's machine; in CI
(``CI=true``, where ``.ci/run`` installs Debian's ``chromium``) it always runs.
"""

from __future__ import annotations

import base64
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sim.cli import app

pytestmark = pytest.mark.slow  # a whole module of long runs: CI runs it, the quick check does not

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

if CHROMIUM is None:
    if os.environ.get("CI"):
        raise RuntimeError("CI must run the browser test: install Debian's chromium (see .ci/run)")
    pytest.skip("headless Chromium not installed: apt-get install chromium", allow_module_level=True)


def _flags(tmp_path: Path) -> list[str]:
    return ["--headless", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr", "--v=0",
            f"--user-data-dir={tmp_path / 'profile'}"]  # fmt: skip


def _dom(page: Path, tmp_path: Path) -> tuple[str, str]:
    """(DOM after load, browser log) of ``page``."""
    dom = subprocess.run([CHROMIUM, *_flags(tmp_path), "--dump-dom", page.as_uri()], capture_output=True, text=True,
                         timeout=120)  # fmt: skip
    return dom.stdout, dom.stderr


WHAT_IFS = sorted(p.stem for p in (ROOT / "scenarios").glob("*.yaml") if "\nbase:" not in p.read_text())


@pytest.fixture(scope="module")
def pages(tmp_path_factory):
    import sys
    from concurrent.futures import ThreadPoolExecutor

    out = tmp_path_factory.mktemp("pages")

    def run(name: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "sim", "run", name, "--out", str(out / name), "-q"]
        return subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=ROOT)

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:  # one run per core: a minute, not two
        for name, result in zip(WHAT_IFS, pool.map(run, WHAT_IFS), strict=True):
            assert result.returncode == 0, (name, result.stderr)
    compare = ["compare", str(ROOT / "scenarios/article-baseline.yaml"), str(ROOT / "scenarios/article-force-tls.yaml")]
    assert CliRunner().invoke(app, [*compare, "--out", str(out / "compare")]).exit_code == 0
    return out


def _figures_on_disk(folder: Path) -> int:
    return len([p for p in folder.glob("*.png")])


@pytest.mark.parametrize("name", WHAT_IFS)
def test_every_bundled_what_if_has_a_report_that_renders(pages, name, tmp_path):
    """Every figure the run wrote is on the page, with a caption that says what it shows
    (not the same caption twice), no chart is empty, the browser logs no error."""
    page = pages / name / "report.html"
    dom, log = _dom(page, tmp_path)
    assert "<h1>" in dom and "</table>" in dom and "<section" in dom
    images = re.findall(r'<img src="data:image/png;base64,([^"]+)" alt="([^"]+)"', dom)
    assert images and len(images) == _figures_on_disk(pages / name)
    captions = [alt for _, alt in images]
    assert len(set(captions)) == len(captions)
    assert all(any(ch.isdigit() for ch in alt) or "none loses" in alt for alt in captions), captions
    for data, _ in images:
        png = base64.b64decode(data)
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 15_000  # drawn, not an empty frame
    console = [line for line in log.splitlines() if "CONSOLE" in line or "Uncaught" in line]
    assert not console, console


@pytest.mark.parametrize("name", WHAT_IFS)
def test_the_headline_loss_is_what_the_per_domain_table_adds_up_to(pages, name):
    """returned + doomed over messages, from per_domain.csv, is the share the first line says."""
    import csv

    from sim.wording import share_of

    rows = list(csv.DictReader((pages / name / "per_domain.csv").open()))
    messages = sum(int(r["messages"]) for r in rows)
    lost = sum(int(r["ndr"]) + int(r["doomed"]) for r in rows)
    first = (pages / name / "report.md").read_text().splitlines()[2]
    if not messages:
        assert "outbound" not in first
    elif lost:
        assert first.startswith(f"- {share_of(lost, messages)} of outbound mail will not arrive ({lost:,} of")
    else:
        assert "outbound messages arrive" in first or "No outbound mail is returned" in first


@pytest.mark.parametrize("name", ["article-force-tls/report.html", "mta-sts-testing-to-enforce/report.html",
                                  "compare/compare.html"])  # fmt: skip
def test_page_looks_like_a_page_at_1100_pixels(pages, name, tmp_path):
    shot = tmp_path / "shot.png"
    subprocess.run([CHROMIUM, *_flags(tmp_path), f"--screenshot={shot}", "--window-size=1100,1600",
                    (pages / name).as_uri()], capture_output=True, text=True, timeout=120, check=True)  # fmt: skip
    assert shot.stat().st_size > 20_000  # a rendered page, not a blank one
