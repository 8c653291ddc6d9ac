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


def _open(page: Path, tmp_path: Path) -> tuple[str, str, Path]:
    """(DOM after load, browser log, screenshot) of ``page``."""
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr", "--v=0",
             f"--user-data-dir={tmp_path / 'profile'}"]  # fmt: skip
    shot = tmp_path / f"{page.stem}.png"
    dom = subprocess.run([CHROMIUM, *flags, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120)
    subprocess.run([CHROMIUM, *flags, f"--screenshot={shot}", "--window-size=1100,1600", page.as_uri()],
                   capture_output=True, text=True, timeout=120, check=True)  # fmt: skip
    return dom.stdout, dom.stderr, shot


@pytest.fixture(scope="module")
def pages(tmp_path_factory):
    out = tmp_path_factory.mktemp("pages")
    run = ["run", str(ROOT / "scenarios/article-force-tls.yaml"), "--out", str(out / "run"), "-q"]
    assert CliRunner().invoke(app, run).exit_code == 0
    compare = ["compare", str(ROOT / "scenarios/article-baseline.yaml"), str(ROOT / "scenarios/article-force-tls.yaml")]
    assert CliRunner().invoke(app, [*compare, "--out", str(out / "compare")]).exit_code == 0
    return {"report": (out / "run/report.html", 4), "compare": (out / "compare/compare.html", 2)}


@pytest.mark.parametrize("name", ["report", "compare"])
def test_page_renders_without_console_errors_and_with_every_figure(pages, name, tmp_path):
    page, figures = pages[name]
    dom, log, shot = _open(page, tmp_path)
    assert "<h1>" in dom and "</table>" in dom
    images = re.findall(r'<img src="data:image/png;base64,([^"]+)"', dom)
    assert len(images) == figures
    for data in images:
        assert base64.b64decode(data)[:8] == b"\x89PNG\r\n\x1a\n"
    console = [line for line in log.splitlines() if "CONSOLE" in line or "Uncaught" in line]
    assert not console, console
    assert shot.stat().st_size > 20_000  # a rendered page, not a blank one
