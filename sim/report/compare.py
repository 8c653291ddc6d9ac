"""``tlssim compare BASE WHATIF``: today's policy beside the proposed one, on the same
random streams (common random numbers), with every summary metric side by side, what
changed per domain and why, and the figures overlaid."""

from __future__ import annotations

import csv
import html
import io
import math
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from sim.experiment.analysis import half_width
from sim.files import write_atomic, write_text_atomic
from sim.htmlpage import STYLE, image, worded_table
from sim.report import figures
from sim.report.sections import headline
from sim.results import KEY_METRICS, SUMMARY_COLUMNS, RunResult
from sim.scenario.model import Scenario
from sim.simulate import run
from sim.wording import metric


@dataclass
class Comparison:
    base: list[RunResult]
    whatif: list[RunResult]

    def metric_rows(self) -> list[dict[str, Any]]:
        """Every numeric summary metric: base, what-if, difference, and the paired 95%
        half-width of the difference when replicated."""
        rows = []
        for name in SUMMARY_COLUMNS:
            base = [r.summary_row[name] for r in self.base]
            whatif = [r.summary_row[name] for r in self.whatif]
            if not all(isinstance(v, (int, float)) for v in base + whatif) or name in ("seed", "replication"):
                continue
            diffs = [w - b for b, w in zip(base, whatif, strict=True)]
            row = {"metric": name, "base": _mean(base), "whatif": _mean(whatif), "difference": _mean(diffs)}
            if len(diffs) > 1:
                row["difference_ci95"] = half_width(np.asarray(diffs, dtype=float))
            rows.append(row)
        return rows

    def domain_changes(self) -> list[dict[str, Any]]:
        """The domains whose outcome changed (first replication), and why."""
        base = {r["domain"]: r for r in self.base[0].per_domain_rows}
        whatif = {r["domain"]: r for r in self.whatif[0].per_domain_rows}
        changes = []
        for domain in sorted(set(base) | set(whatif)):
            b, w = base.get(domain), whatif.get(domain)
            if b is None or w is None:
                continue
            keys = ("delivered_tls", "delivered_plaintext", "ndr", "queued_at_end")
            if all(b[k] == w[k] for k in keys) and b["route"] == w["route"] and b["tls_level"] == w["tls_level"]:
                continue
            changes.append(
                {
                    "domain": domain,
                    "messages": w["messages"],
                    "ndr": f"{b['ndr']} -> {w['ndr']}",
                    "tls": f"{b['delivered_tls']} -> {w['delivered_tls']}",
                    "plaintext": f"{b['delivered_plaintext']} -> {w['delivered_plaintext']}",
                    "queued": f"{b['queued_at_end']} -> {w['queued_at_end']}",
                    "why": _why(b, w),
                }
            )
        return sorted(changes, key=lambda c: -int(c["messages"]))


def _why(base: dict[str, Any], whatif: dict[str, Any]) -> str:
    reasons = []
    if base["route"] != whatif["route"]:
        reasons.append(f"route {base['route']} -> {whatif['route']}")
    if base["tls_level"] != whatif["tls_level"]:
        reasons.append(f"TLS level {base['tls_level'] or '-'} -> {whatif['tls_level'] or '-'}")
    if whatif["last_status"] and whatif["last_status"] != base["last_status"]:
        reasons.append(f"{whatif['last_failure'] or 'failure'}: {whatif['last_status']}")
    return "; ".join(reasons) or "timing"


def _mean(values: list[Any]) -> float:
    finite = [float(v) for v in values if not (isinstance(v, float) and math.isnan(v))]
    return sum(finite) / len(finite) if finite else math.nan


def compare(base: Scenario, whatif: Scenario, replications: int = 1) -> Comparison:
    """Run both ``replications`` times; replication r of each uses the same streams."""
    return Comparison(
        [run(base, r) for r in range(replications)],
        [run(whatif, r) for r in range(replications)],
    )


def write_comparison(comparison: Comparison, folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    metrics = comparison.metric_rows()
    changes = comparison.domain_changes()
    base, whatif = comparison.base[0], comparison.whatif[0]
    buffer = io.StringIO()
    columns = ["metric", "base", "whatif", "difference", "difference_ci95"]
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    writer.writerows(metrics)
    written = [write_text_atomic(folder / "compare.csv", buffer.getvalue())]
    sentences = _story(metrics, whatif)
    title = f"tlssim: {whatif.scenario_name} against {base.scenario_name}"
    lines = [f"# {title}", "", *(f"- {s}" for s in sentences), "", "## Domains whose outcome changed", ""]
    lines += [f"- {c['domain']}: NDRs {c['ndr']}, TLS {c['tls']}, queued {c['queued']} ({c['why']})" for c in changes]
    markdown = "\n".join(lines) + "\n"
    written.append(write_text_atomic(folder / "compare.md", markdown))
    images = []
    for name, caption, figure in (
        ("compare-queues.png", "Total queue depth: what-if (solid) against baseline (dashed)",
         figures.queue_figure(whatif, label="what-if: all queues", other=base)),
        ("compare-events.png", "NDRs and delay notices: what-if against baseline", figures.events_figure(whatif, base)),
    ):  # fmt: skip
        written.append(write_atomic(folder / name, partial(figures.save, figure)))
        images.append((folder / name, caption))
    key = [r for r in metrics if r["metric"] in KEY_METRICS]
    page = "\n".join(
        [
            "<!doctype html><html lang=en><head><meta charset=utf-8>",
            f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>",
            f"<h1>{html.escape(title)}</h1>",
            "<ul>" + "".join(f"<li>{html.escape(s)}</li>" for s in sentences) + "</ul>",
            *(image(path, caption) for path, caption in images),
            "<h2>Key metrics</h2>",
            worded_table(*_worded_metrics(key)),
            "<h2>Domains whose outcome changed</h2>",
            worded_table(
                [{k: str(v) if k == "why" else _text(v) for k, v in c.items()} for c in changes],
                CHANGE_COLUMNS,
                frozenset(CHANGE_COLUMNS[1:-1]),
            )
            if changes
            else "<p>None.</p>",
            "</body></html>",
        ]
    )
    written.append(write_text_atomic(folder / "compare.html", page + "\n"))
    return written


CHANGE_COLUMNS = ["domain", "messages", "ndr", "tls", "plaintext", "queued", "why"]


def _worded_metrics(key: list[dict[str, Any]]) -> tuple[list[dict[str, str]], list[str], frozenset[str]]:
    """Key metrics in the units people read (percentages, durations); compare.csv keeps the raw numbers."""
    columns = [c for c in ("metric", "base", "whatif", "difference", "difference_ci95") if any(c in r for r in key)]
    rows = [{c: str(r[c]) if c == "metric" else metric(str(r["metric"]), r[c]) for c in columns if c in r} for r in key]
    return rows, columns, frozenset(columns[1:])


def _text(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) else str(value)


def _story(metrics: list[dict[str, Any]], whatif: RunResult) -> list[str]:
    by_name = {r["metric"]: r for r in metrics}
    sentences = []
    for name, label in (("out_lost", "outbound mail that will not arrive"), ("out_ndr", "NDRs"),
                        ("out_delay_dsn", "delay notices"), ("out_queued_at_end", "still queued"),
                        ("peak_queue_depth", "peak queue"), ("in_lost", "inbound mail lost")):  # fmt: skip
        row = by_name.get(name)
        if row and row["base"] != row["whatif"]:
            ci = f" (±{row['difference_ci95']:,.0f})" if "difference_ci95" in row else ""
            sentences.append(f"{label}: {row['base']:,.0f} -> {row['whatif']:,.0f}{ci}")
    share = by_name.get("out_tls_share")
    if share and share["base"] == share["base"] and share["whatif"] == share["whatif"]:
        sentences.append(f"share of delivered mail over TLS: {share['base']:.1%} -> {share['whatif']:.1%}")
    sentences += [f"What-if: {s}" for s in headline(whatif)[:1]]
    return sentences or ["No difference in the summary metrics."]
