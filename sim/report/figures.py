"""The figures of a run's report (PNG, matplotlib without a display).

Each figure answers one question an architect asks of a policy change, with time in
hours or days and every axis labelled with its unit: how deep do the queues get and
when, when do NDRs and delay notices come, which domains are hit, how long does mail
take.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # after choosing the backend
from matplotlib.ticker import FuncFormatter

from sim.model.sketch import BIN_RATIO

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from sim.results import RunResult

TOP_QUEUES = 4
TOP_DOMAINS = 12
COLOURS = {"TLS": "#2e7d32", "plaintext": "#f9a825", "NDR": "#c62828", "still queued": "#1565c0"}


def time_unit(horizon_s: float) -> tuple[float, str]:
    """Hours up to three days, days beyond."""
    return (86400.0, "days") if horizon_s > 3 * 86400 else (3600.0, "hours")


def _mark_timers(ax: Axes, timers: dict[str, float], scale: float, horizon: float) -> None:
    for label, seconds in timers.items():
        if 0 < seconds < horizon:
            ax.axvline(seconds / scale, color="grey", linestyle=":", linewidth=1)
            ax.annotate(
                f"{label} ({seconds / 3600:g} h)",
                (seconds / scale, 0.03),
                xycoords=("data", "axes fraction"),
                rotation=90,
                va="bottom",
                ha="right",
                fontsize=8,
                color="dimgrey",
            )


def queue_figure(result: RunResult, *, label: str | None = None, other: RunResult | None = None) -> Figure:
    """Queue depth over time: the total, the deepest queues, the delay-notice and expiry instants."""
    horizon = result.summary_row["sim_hours"] * 3600.0
    scale, unit = time_unit(horizon)
    figure, ax = plt.subplots(figsize=(9, 4.2), layout="constrained")
    series: dict[str, list[tuple[float, int]]] = defaultdict(list)
    for time_s, queue, depth, _ in result.queue_samples:
        if not queue.startswith("(change"):
            series[queue].append((time_s, depth))
    total = series.pop("(total)", [])
    ax.plot(
        [t / scale for t, _ in total], [d for _, d in total], color="black", linewidth=2, label=label or "all queues"
    )
    if other is not None:
        other_total = [(t, d) for t, q, d, _ in other.queue_samples if q == "(total)"]
        ax.plot([t / scale for t, _ in other_total], [d for _, d in other_total], color="grey", linewidth=2,
                linestyle="--", label="baseline: all queues")  # fmt: skip
    else:
        peaks = sorted(series, key=lambda q: -max(d for _, d in series[q]))[:TOP_QUEUES]
        for queue in peaks:
            points = series[queue]
            ax.plot([t / scale for t, _ in points], [d for _, d in points], linewidth=1, label=_queue_label(queue))
    _mark_timers(ax, result.timers, scale, horizon)
    ax.set_xlabel(f"simulated time ({unit})")
    ax.set_ylabel("messages queued")
    ax.set_title("Queue depth over time (deepest queues by peak)" if other is None else "Total queue depth")
    ax.set_xlim(0, horizon / scale)
    ax.set_ylim(bottom=0)
    ax.legend(loc="upper left", fontsize=8, framealpha=0.9)
    ax.grid(alpha=0.3)
    return figure


def events_figure(result: RunResult, other: RunResult | None = None) -> Figure:
    """NDRs and delay notices so far, over time."""
    horizon = result.summary_row["sim_hours"] * 3600.0
    scale, unit = time_unit(horizon)
    figure, ax = plt.subplots(figsize=(9, 3.6), layout="constrained")
    for run, style, suffix in ((result, "-", ""), (other, "--", " (baseline)")):
        if run is None:
            continue
        times = [e[0] / scale for e in run.events]
        ax.plot(times, [e[2] for e in run.events], style, color=COLOURS["NDR"], label=f"NDRs{suffix}")
        ax.plot(times, [e[4] for e in run.events], style, color="#6a1b9a", label=f"delay notices{suffix}")
    _mark_timers(ax, result.timers, scale, horizon)
    ax.set_xlabel(f"simulated time ({unit})")
    ax.set_ylabel("messages so far")
    ax.set_title("NDRs and delay notices so far")
    ax.set_xlim(0, horizon / scale)
    ax.set_ylim(bottom=0)
    ax.legend(loc="upper left", fontsize=8)
    ax.grid(alpha=0.3)
    return figure


def domains_figure(result: RunResult) -> Figure:
    """What became of the mail to the busiest domains."""
    rows = sorted(result.per_domain_rows, key=lambda r: -r["messages"])[:TOP_DOMAINS][::-1]
    figure, ax = plt.subplots(figsize=(9, 0.45 * max(len(rows), 3) + 1.4), layout="constrained")
    names = [_short(r["domain"], 34) for r in rows]
    left = [0.0] * len(rows)
    for part, key in (("TLS", "delivered_tls"), ("plaintext", "delivered_plaintext"), ("NDR", "ndr"),
                      ("still queued", "queued_at_end")):  # fmt: skip
        values = [float(r[key]) for r in rows]
        ax.barh(names, values, left=left, color=COLOURS[part], label=part)
        left = [a + b for a, b in zip(left, values, strict=True)]
    ax.set_xlabel("messages")
    ax.set_title(f"Outcome per recipient domain (the {len(rows)} busiest)")
    ax.legend(loc="lower right", fontsize=8)
    ax.tick_params(axis="y", labelsize=8)
    ax.grid(axis="x", alpha=0.3)
    return figure


def delay_figure(result: RunResult) -> Figure:
    """How long delivered mail took, arrival to delivery."""
    figure, ax = plt.subplots(figsize=(9, 3.4), layout="constrained")
    bins = [(edge, count) for edge, count in result.delay_histogram if edge > 0]
    longest = max((edge for edge, _ in bins), default=0.0)
    scale, unit = (1.0, "seconds") if longest < 120 else (60.0, "minutes") if longest < 7200 else (3600.0, "hours")
    if bins:
        edges = [edge / scale for edge, _ in bins]
        widths = [e * (BIN_RATIO - 1) for e in edges]  # the sketch's log-spaced bins
        ax.bar(edges, [c for _, c in bins], width=widths, align="edge", color="#455a64")
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
        # Label 2 and 5 between the powers of ten too: a short axis spans one decade.
        ax.xaxis.set_minor_formatter(FuncFormatter(lambda value, _: f"{value:g}" if f"{value:.0e}"[0] in "25" else ""))
    ax.set_xlabel(f"delivery delay ({unit}, log scale)")
    ax.set_ylabel("messages")
    ax.set_title("Delivery delay of delivered mail")
    ax.grid(alpha=0.3)
    return figure


def save(figure: Figure, path: Path) -> Path:
    figure.savefig(path, dpi=110, format="png")  # the path may be a temporary name
    plt.close(figure)
    return path


def _queue_label(queue: str) -> str:
    """``VS|connector|next hop`` -> ``next hop via connector``."""
    parts = queue.split("|")
    return _short(f"{parts[2]} via {parts[1]}" if len(parts) == 3 and parts[2] else queue)


def _short(text: str, limit: int = 48) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
