"""report.md and report.html of one run: the answer in words, then one section per kind
of data the run has (:mod:`sim.report.sections`), each with its figures and tables.

The HTML page is one self-contained file (figures inlined as PNG data, no network, no
script), so it opens from disk and can be mailed.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from sim.files import write_text_atomic
from sim.htmlpage import STYLE, image, worded_table
from sim.parallel import Background, in_turn, shared_out
from sim.report.sections import Chart, Section, Table, headline, sections

if TYPE_CHECKING:
    from sim.report.painter import Painter
    from sim.results import RunResult

__all__ = ["headline", "write_report"]


def write_report(
    result: RunResult,
    folder: Path,
    extra: Sequence[Section] | Callable[[], Sequence[Section]] = (),
    *,
    helpers: int = 0,
    painter: Painter | None = None,
) -> list[Path]:
    """The figures as PNGs, report.md and report.html in ``folder``; ``extra`` sections
    (the decision packet) follow the run's own. Given as a call, ``extra`` is asked for
    once the run's own figures are under way (its what-ifs run meanwhile).

    The figures are drawn by ``painter`` (a process that imported matplotlib while the
    run was simulated) when there is one, else here; every other one on ``helpers``
    forked workers (a figure takes 0.1-0.2 s, mostly rendering)."""
    chosen = sections(result)
    charts = _charts(chosen)
    if painter is not None and painter.available:
        painter.start(result, [(chart.drawing, folder / chart.name) for chart in charts], helpers)
        later = list(extra() if callable(extra) else extra)
        if _charts(later):
            painter.start(result, [(chart.drawing, folder / chart.name) for chart in _charts(later)])
        written = painter.finish()
    else:
        written = _draw_here(result, folder, charts, helpers)
        later = list(extra() if callable(extra) else extra)
        written += _draw_here(result, folder, _charts(later), 0)
    chosen += later
    title = f"tlssim: {result.scenario_name}"
    lines = headline(result)
    written.append(write_text_atomic(folder / "report.md", markdown(title, lines, chosen)))
    written.append(write_text_atomic(folder / "report.html", page(title, lines, chosen, folder)))
    return written


def _draw_here(result: RunResult, folder: Path, charts: list[Chart], helpers: int) -> list[Path]:
    """Draw ``charts`` in this process, every other one on ``helpers`` forked workers."""
    if not charts:
        return []
    from sim.report.figures import write_figure  # matplotlib: only when drawn here

    pool = Background(helpers)
    try:
        mine, theirs = shared_out(charts)
        elsewhere = [pool.submit(write_figure, c.drawing, result, folder / c.name) for c in theirs]
        here = [write_figure(c.drawing, result, folder / c.name) for c in mine]
        return in_turn(here, [drawn.result() for drawn in elsewhere])
    finally:
        pool.close()


def _charts(chosen: Sequence[Section]) -> list[Chart]:
    return [chart for section in chosen for chart in section.charts]


def markdown(title: str, lines: list[str], chosen: Sequence[Section]) -> str:
    parts = [f"# {title}", "", *(f"- {s}" for s in lines), ""]
    if chosen:
        parts += ["Sections: " + ", ".join(f"[{s.title}](#{s.id})" for s in chosen), ""]
    for section in chosen:
        parts += [f'<a id="{section.id}"></a>', f"## {section.title}", "", *section.sentences, ""]
        for chart in section.charts:
            parts += [f"![{chart.caption}]({chart.name})", ""]
        for table in section.tables:
            parts += [f"### {table.title}", "", *_markdown_table(table), ""]
            if table.note:
                parts += [table.note, ""]
        for name, text in section.preformatted:
            parts += [f"`{name}`:", "", "```", text.rstrip("\n"), "```", ""]
    return "\n".join(parts)


def _markdown_table(table: Table) -> list[str]:
    def cell(text: str) -> str:
        return text.replace("|", "\\|").replace("\n", " ")

    align = ["---:" if c in table.numeric else "---" for c in table.columns]
    rows = [
        "| " + " | ".join(cell(c) for c in table.columns) + " |",
        "| " + " | ".join(align) + " |",
    ]
    rows += ["| " + " | ".join(cell(row.get(c, "")) for c in table.columns) + " |" for row in table.rows]
    return rows


def page(title: str, lines: list[str], chosen: Sequence[Section], folder: Path) -> str:
    parts = [
        "<!doctype html><html lang=en><head><meta charset=utf-8>",
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        "<ul>" + "".join(f"<li>{html.escape(s)}</li>" for s in lines) + "</ul>",
    ]
    if chosen:
        links = " · ".join(f'<a href="#{s.id}">{html.escape(s.title)}</a>' for s in chosen)
        parts.append(f"<nav>Sections: {links}</nav>")
    for section in chosen:
        parts.append(f'<section id="{section.id}"><h2>{html.escape(section.title)}</h2>')
        parts += [f"<p>{html.escape(s)}</p>" for s in section.sentences]
        parts += [image(folder / chart.name, chart.caption) for chart in section.charts]
        for table in section.tables:
            parts.append(f"<h3>{html.escape(table.title)}</h3>")
            parts.append(worded_table(table.rows, table.columns, table.numeric))
            if table.note:
                parts.append(f'<p class="note">{html.escape(table.note)}</p>')
        for name, text in section.preformatted:
            parts.append(f"<h3>{html.escape(name)}</h3><pre>{html.escape(text)}</pre>")
        parts.append("</section>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
