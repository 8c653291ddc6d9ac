"""Figures saved by ``sim.png.save_png`` hold the pixels matplotlib's own ``savefig`` writes."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sim.report import figures
from sim.report.sections import Drawing

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def results():
    from sim.scenario.loader import load_scenario
    from sim.simulate import run

    # force-tls-2024 draws the outbound figures; mta-sts-testing-to-enforce the inbound
    # and TLS-RPT ones.
    return [
        run(load_scenario(ROOT / f"scenarios/{name}.yaml")) for name in ("force-tls-2024", "mta-sts-testing-to-enforce")
    ]


def test_every_report_figure_has_savefigs_pixels_as_rgb(results, tmp_path):
    from sim.report.sections import sections

    drawn = set()
    for result in results:
        for chart in (chart for section in sections(result) for chart in section.charts):
            theirs = figures.DRAWERS[chart.drawing](result)
            buffer = io.BytesIO()
            theirs.savefig(buffer, dpi=110, format="png")
            figures.plt.close(theirs)
            figures.save(figures.DRAWERS[chart.drawing](result), tmp_path / chart.name)
            reference = Image.open(io.BytesIO(buffer.getvalue()))
            saved = Image.open(tmp_path / chart.name)
            assert reference.mode == "RGBA" and saved.mode == "RGB"
            expected = np.asarray(reference)
            assert (expected[..., 3] == 255).all()  # opaque: dropping alpha changes nothing seen
            assert np.array_equal(np.asarray(saved), expected[..., :3]), chart.name
            assert saved.info["dpi"] == pytest.approx(reference.info["dpi"])
            assert saved.info["Software"] == reference.info["Software"]
            drawn.add(chart.drawing)
    assert drawn == set(Drawing)  # every kind of figure a report draws


def test_a_figure_that_is_not_opaque_is_refused(tmp_path):
    import matplotlib.pyplot as plt

    from sim.png import save_png

    figure, ax = plt.subplots()
    figure.patch.set_alpha(0.0)
    ax.patch.set_alpha(0.0)
    with pytest.raises(ValueError, match="not opaque"):
        save_png(figure, tmp_path / "clear.png")
    plt.close(figure)
