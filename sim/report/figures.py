"""The figures of a run's report (PNG, matplotlib without a display).

Each figure answers one question an architect asks of a policy change, with time in
hours or days and every axis labelled with its unit: how deep do the queues get and
when, when do NDRs and delay notices come, which domains are hit, how long does mail
take.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # after choosing the backend
from matplotlib.ticker import NullLocator

from sim.files import write_atomic
from sim.model.sketch import BIN_RATIO
from sim.png import save_png
from sim.report.facts import by_day, losing_domains
from sim.report.sections import Drawing
from sim.wording import duration

# Labels come from users' files (axis values, sender names): a "$" is a dollar sign,
# never the start of mathtext, which fails on "$x" or typesets "$a$" (issue 21).
matplotlib.rcParams["text.parse_math"] = False

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from sim.results import RunResult

READABLE_TICKS = (0.1, 0.3, 1, 3, 10, 30, 60, 300, 600, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 86400,
                  2 * 86400, 4 * 86400, 7 * 86400, 14 * 86400, 30 * 86400)  # fmt: skip
SPARSE_TICKS = (0.1, 1, 10, 60, 600, 3600, 6 * 3600, 86400, 7 * 86400, 30 * 86400)  # for axes over many decades
TOP_QUEUES = 4
TOP_DOMAINS = 12
COLOURS = {
    "TLS": "#2e7d32",
    "plaintext": "#f9a825",
    "returned (NDR)": "#c62828",
    "queued, will be returned": "#ef9a9a",
    "queued, may arrive": "#1565c0",
    "returned to the sender": "#c62828",
    "queued at the sender, will be returned": "#ef9a9a",
    "queued at the sender, may arrive": "#1565c0",
}


def time_unit(horizon_s: float) -> tuple[float, str]:
    """Hours up to three days, days beyond."""
    return (86400.0, "days") if horizon_s > 3 * 86400 else (3600.0, "hours")


def changes(result: RunResult) -> list[float]:
    """The instants of the policy calendar's changes, in seconds."""
    return [float(c["at_s"]) for c in result.manifest_extra.get("changes", [])]


def trouble_starts(result: RunResult) -> dict[str, float]:
    """Each queue's first sample in Retry: when its trouble starts (its cohort's clock)."""
    starts: dict[str, float] = {}
    for time_s, queue, _, in_retry in result.queue_samples:
        if in_retry and queue not in starts and not queue.startswith("("):
            starts[queue] = time_s
    return starts


def cohort_starts(result: RunResult, horizon: float) -> list[float]:
    """The instants the first two troubles start, the second only if it is apart from the
    first on the time axis (by 2% of it): 15 minutes apart on a 4-day axis, their timer
    lines would be drawn, and labelled, on top of each other."""
    starts: list[float] = []
    for start in sorted(set(trouble_starts(result).values())):
        if not starts or start - starts[-1] > 0.02 * horizon:
            starts.append(start)
        if len(starts) == 2:
            break
    return starts


def _mark(ax: Axes, x: float, label: str, colour: str, style: str) -> None:
    """A vertical line at ``x`` and its label beside it, on a pale ground: 2 points clear
    of the line (the rotated letters' descenders otherwise touch it), readable where a
    plotted line crosses it."""
    ax.axvline(x, color=colour, linestyle=style, linewidth=1)
    ax.annotate(label, (x, 0.03), xycoords=("data", "axes fraction"), xytext=(-2, 0), textcoords="offset points",
                rotation=90, va="bottom", ha="right", fontsize=8, color=colour,
                bbox={"facecolor": "white", "alpha": 0.75, "edgecolor": "none", "pad": 1})  # fmt: skip


def _mark_time(ax: Axes, result: RunResult, scale: float, horizon: float) -> None:
    """The policy calendar's changes, and the delay-notice and expiry instants of the
    mail caught in the first trouble (from when it starts, not from t = 0)."""
    for at in changes(result):
        if 0 <= at <= horizon:
            _mark(ax, at / scale, f"policy change ({duration(at)})", "#1565c0", "--")
    for start in cohort_starts(result, horizon):
        for label, seconds in result.timers.items():
            if start + seconds < horizon:
                after = f", trouble from {duration(start)}" if start > 0 else ""
                _mark(ax, (start + seconds) / scale, f"{label} ({duration(seconds)}{after})", "dimgrey", ":")


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
    _mark_time(ax, result, scale, horizon)
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
        ax.plot(times, [e[2] for e in run.events], style, color=COLOURS["returned (NDR)"], label=f"NDRs{suffix}")
        ax.plot(times, [e[4] for e in run.events], style, color="#6a1b9a", label=f"delay notices{suffix}")
    _mark_time(ax, result, scale, horizon)
    ax.set_xlabel(f"simulated time ({unit})")
    ax.set_ylabel("messages so far")
    ax.set_title("NDRs and delay notices so far")
    ax.set_xlim(0, horizon / scale)
    ax.set_ylim(bottom=0)
    ax.legend(loc="upper left", fontsize=8)
    ax.grid(alpha=0.3)
    return figure


def domains_figure(result: RunResult) -> Figure:
    """What became of the mail to the domains that lose it, most lost first (or, if none
    does, to the busiest)."""
    losing_all = losing_domains(result)
    busiest = sorted(result.per_domain_rows, key=lambda r: (-r["messages"], r["domain"]))
    rows = (losing_all or busiest)[:TOP_DOMAINS][::-1]
    losing = bool(losing_all)
    figure, ax = plt.subplots(figsize=(9, 0.45 * max(len(rows), 3) + 1.4), layout="constrained")
    names = [_short(str(r["domain"]), 34) for r in rows]
    left = [0.0] * len(rows)
    for part, key in (("TLS", "delivered_tls"), ("plaintext", "delivered_plaintext"), ("returned (NDR)", "ndr"),
                      ("queued, will be returned", "doomed"), ("queued, may arrive", "pending")):  # fmt: skip
        values = [float(r.get(key, 0)) for r in rows]
        if any(values):
            ax.barh(names, values, left=left, color=COLOURS[part], label=part)
        left = [a + b for a, b in zip(left, values, strict=True)]
    ax.set_xlabel("messages")
    if losing:
        total = len(losing_all)
        shown = f"the {len(rows)} of {total} that lose most" if total > len(rows) else f"all {total}"
        ax.set_title(f"Domains whose mail will not arrive ({shown})")
    else:
        ax.set_title(f"Outcome per recipient domain (the {len(rows)} busiest; none loses mail)")
    figure.legend(loc="outside lower center", ncol=5, fontsize=8, frameon=False)  # below the axis, never on a bar
    ax.tick_params(axis="y", labelsize=8)
    ax.grid(axis="x", alpha=0.3)
    return figure


def delay_figure(result: RunResult) -> Figure:
    """How long mail took: to delivery, and to its return (doomed mail at its expiry)."""
    figure, ax = plt.subplots(figsize=(9, 3.4), layout="constrained")
    delivered = [(edge, n) for edge, n in result.delay_histogram if edge > 0]
    returned = [(edge, n) for edge, n in result.return_histogram if edge > 0]
    doomed = result.summary_row.get("out_doomed", 0)
    expiry = result.timers.get("expiry")
    if doomed and expiry:
        returned.append((expiry, doomed))
    for bins, colour, name in ((delivered, "#455a64", "delivered"), (returned, COLOURS["returned (NDR)"],
                               "returned or to be returned (NDR)")):  # fmt: skip
        if bins:
            widths = [edge * (BIN_RATIO - 1) for edge, _ in bins]  # the sketch's log-spaced bins
            ax.bar([e for e, _ in bins], [c for _, c in bins], width=widths, align="edge", color=colour, label=name,
                   alpha=0.9)  # fmt: skip
    if delivered or returned:
        ax.set_xscale("log")
        # Ticks at the durations people think in (1 s, 1 min, 1 h, 1 d), labelled as such:
        # one axis spans a half-second delivery and a two-day expiry.
        lowest = min(edge for edge, _ in delivered + returned)
        highest = max(edge * BIN_RATIO for edge, _ in delivered + returned)
        choice = SPARSE_TICKS if highest / lowest > 1e4 else READABLE_TICKS
        ticks = [t for t in choice if lowest / 3 <= t <= highest * 3]
        ax.set_xticks(ticks, [duration(t) for t in ticks])
        # No minor ticks: they fall at 2-9 x 10^k s, between none of the durations
        # labelled, and drawing their ~50 tick objects took half the figure's time
        # (0.21 -> 0.09 s to save it, force-tls-2024; issue 22).
        ax.xaxis.set_minor_locator(NullLocator())
        ax.legend(loc="upper center", fontsize=8)
    ax.set_xlabel("time from arrival (log scale)")
    ax.set_ylabel("messages")
    ax.set_title("Time to delivery, and to the NDR of mail that will not arrive")
    ax.grid(alpha=0.3)
    return figure


def inbound_figure(result: RunResult) -> Figure:
    """What became of each sending organisation's mail to us."""
    rows = sorted(result.inbound_rows, key=lambda r: (r["messages"], r["sender"]))
    figure, ax = plt.subplots(figsize=(9, 0.45 * max(len(rows), 3) + 1.4), layout="constrained")
    senders = Counter(r["sender"] for r in rows)  # a sender named once needs no receiver beside it
    names = [_short(r["sender"] if senders[r["sender"]] == 1 else f"{r['sender']} -> {r['receiver']}", 40)
             for r in rows]  # fmt: skip
    left = [0.0] * len(rows)
    for part, key in (("TLS", "accepted_tls"), ("plaintext", "accepted_plaintext"),
                      ("returned to the sender", "lost"), ("queued at the sender, will be returned", "doomed"),
                      ("queued at the sender, may arrive", "pending")):  # fmt: skip
        values = [float(r.get(key, 0)) for r in rows]
        if any(values):
            ax.barh(names, values, left=left, color=COLOURS[part], label=part)
        left = [a + b for a, b in zip(left, values, strict=True)]
    ax.set_xlabel("messages sent to us")
    ax.set_title("Inbound mail per sending organisation")
    figure.legend(loc="outside lower center", ncol=5, fontsize=8, frameon=False)  # below the axis, never on a bar
    ax.tick_params(axis="y", labelsize=8)
    ax.grid(axis="x", alpha=0.3)
    return figure


def tlsrpt_figure(result: RunResult) -> Figure:
    """Sessions with our published policies per day, as the senders' TLS-RPT reports say."""
    days = by_day(result)
    ordered = sorted(days)
    figure, ax = plt.subplots(figsize=(9, 3.4), layout="constrained")
    positions = [(dt.date.fromisoformat(d) - dt.date.fromisoformat(ordered[0])).days for d in ordered]
    ok = [days[d]["ok"] for d in ordered]
    failed = [days[d]["failed"] for d in ordered]
    ax.bar(positions, ok, color=COLOURS["TLS"], label="successful sessions")
    ax.bar(positions, failed, bottom=ok, color=COLOURS["returned (NDR)"], label="failed sessions")
    ax.set_xticks(positions, ordered)
    # The run's reports start on its first day: bar i covers run days [i, i + 1), so a
    # change at t falls at t / 1 d - 0.5 between the bars.
    for at in changes(result):
        _mark(ax, at / 86400.0 - 0.5, f"policy change ({duration(at)})", "#1565c0", "--")
    ax.set_xlabel("day (UTC) the reports cover")
    ax.set_ylabel("sessions reported")
    ax.set_title("Sessions with our MTA-STS/DANE policy, per day (all reporting organisations)")
    ax.tick_params(axis="x", labelsize=8, rotation=30)
    ax.legend(loc="upper left", fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    return figure


# The function that draws each figure a report names (sim.report.sections.Drawing).
DRAWERS: dict[Drawing, Callable[[RunResult], Figure]] = {
    Drawing.QUEUES: queue_figure,
    Drawing.EVENTS: events_figure,
    Drawing.DOMAINS: domains_figure,
    Drawing.DELAYS: delay_figure,
    Drawing.INBOUND: inbound_figure,
    Drawing.TLSRPT: tlsrpt_figure,
}


def draw(drawing: Drawing, result: RunResult, path: Path) -> Path:
    """Draw ``drawing`` of ``result`` and save it as ``path``."""
    return save(DRAWERS[drawing](result), path)


def write_figure(drawing: Drawing, result: RunResult, path: Path) -> Path:
    """Draw ``drawing`` of ``result`` into ``path``, whole or not at all."""
    return write_atomic(path, partial(draw, drawing, result))


def save(figure: Figure, path: Path) -> Path:
    save_png(figure, path, dpi=110)  # the path may be a temporary name
    plt.close(figure)
    return path


def _queue_label(queue: str) -> str:
    """``VS|connector|next hop`` -> ``next hop via connector``."""
    parts = queue.split("|")
    return _short(f"{parts[2]} via {parts[1]}" if len(parts) == 3 and parts[2] else queue)


def _short(text: str, limit: int = 48) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
