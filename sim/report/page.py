"""report.md and report.html of one run: the headline numbers in words, and the figures.

The HTML page is one self-contained file (figures inlined as PNG data, no network, no
script), so it opens from disk and can be mailed.
"""

from __future__ import annotations

import html
from collections import Counter
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from sim.files import write_atomic, write_text_atomic
from sim.htmlpage import STYLE, image, table
from sim.report import figures

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from sim.results import RunResult

FIGURES = (
    ("queues.png", "Queue depth over time", figures.queue_figure),
    ("events.png", "NDRs and delay notices over time", figures.events_figure),
    ("domains.png", "Outcome per recipient domain", figures.domains_figure),
    ("delays.png", "Delivery delay", figures.delay_figure),
)


def when(seconds: float) -> str:
    """``2 d 2 h``, ``5 h 30 min``, ``12 min``: simulated time for people."""
    days, rest = divmod(int(seconds), 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    if days:
        return f"{days} d {hours} h" if hours else f"{days} d"
    if hours:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    return f"{minutes} min"


def headline(result: RunResult) -> list[str]:
    """The run's answer in a few sentences."""
    row = result.summary_row
    lines = []
    messages = row["out_messages"]
    if messages:
        share = row["out_tls_share"]
        encrypted = f", {share:.1%} of them over TLS" if share == share else ""
        lines.append(
            f"{messages:,} outbound messages in {when(row['sim_hours'] * 3600)}: "
            f"{row['out_delivered']:,} delivered{encrypted}."
        )
    if row["out_ndr"]:
        statuses = Counter[str]()
        domains = set()
        for ndr in result.ndr_rows:
            statuses[ndr["status"]] += ndr["count"]
            domains.add(ndr["domain"])
        first = next((t for t, _, ndrs, _, _ in result.events if ndrs), None)
        codes = ", ".join(code for code, _ in statuses.most_common(3))
        start = f" from {when(first)}" if first is not None else ""
        lines.append(
            f"{row['out_ndr']:,} messages ({row['out_ndr_rate']:.1%}) to {len(domains)} domain(s) return as "
            f"NDR {codes}{start}."
        )
    if row["peak_queue_depth"]:
        lines.append(f"The queue peaks at {row['peak_queue_depth']:,} messages after {when(row['peak_queue_time_s'])}.")
    if row["out_delay_dsn"]:
        lines.append(f"{row['out_delay_dsn']:,} delay notices go out to senders.")
    if row["out_queued_at_end"]:
        lines.append(f"{row['out_queued_at_end']:,} messages are still queued when the run ends.")
    if row["in_messages"]:
        lines.append(
            f"{row['in_messages']:,} inbound messages: {row['in_accepted']:,} accepted, "
            f"{row['in_lost']:,} lost at the senders, {row['in_queued_remote_at_end']:,} still queued there."
        )
    return lines


def _draw(draw: Callable[[RunResult], Figure], result: RunResult, path: Path) -> None:
    figures.save(draw(result), path)


def write_report(result: RunResult, folder: Path) -> list[Path]:
    """The figures as PNGs, report.md and report.html in ``folder``."""
    written = []
    for name, _, draw in FIGURES:
        written.append(write_atomic(folder / name, partial(_draw, draw, result)))
    sentences = headline(result)
    title = f"tlssim: {result.scenario_name}"
    markdown = "\n".join([f"# {title}", "", *(f"- {s}" for s in sentences), ""])
    written.append(write_text_atomic(folder / "report.md", markdown))
    page = _page(title, sentences, [(folder / name, caption) for name, caption, _ in FIGURES], result)
    written.append(write_text_atomic(folder / "report.html", page))
    return written


def _page(title: str, sentences: list[str], images: list[tuple[Path, str]], result: RunResult) -> str:
    domains = sorted(result.per_domain_rows, key=lambda r: -r["messages"])[:20]
    columns = ["domain", "route", "tls_level", "messages", "delivered_tls", "delivered_plaintext", "ndr",
               "queued_at_end", "last_status"]  # fmt: skip
    ndr = sorted(result.ndr_rows, key=lambda r: -r["count"])[:20]
    parts = [
        "<!doctype html><html lang=en><head><meta charset=utf-8>",
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        "<ul>" + "".join(f"<li>{html.escape(s)}</li>" for s in sentences) + "</ul>",
        *(image(path, caption) for path, caption in images),
        "<h2>Busiest recipient domains</h2>",
        table(domains, columns) if domains else "<p>No outbound mail.</p>",
        "<h2>NDRs</h2>",
        table(ndr, ["domain", "status", "count", "reason"]) if ndr else "<p>None.</p>",
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"
