"""Plots of a sweep, written as PNG beside its tables (matplotlib, no display needed).

Design points are grouped by axis: one panel per value of the second axis (facets),
bars or lines coloured by the first, labelled with the axis values alone. Titles name
the experiment and the replications. What a policy costs is shown beside what it buys:
the outcome of the mail (TLS / plaintext / NDR / still queued) next to the TLS share,
and each point's paired difference from the baseline with its 95% interval.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # after choosing the backend
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from sim.experiment.analysis import half_width
from sim.files import write_atomic
from sim.png import save_png

# Labels come from users' files (axis values, sender names): a "$" is a dollar sign,
# never the start of mathtext, which fails on "$x" or typesets "$a$" (issue 21).
matplotlib.rcParams["text.parse_math"] = False

OUTCOMES = (
    ("TLS", "out_delivered_tls_mean", "#2e7d32"),
    ("plaintext", "out_delivered_plaintext_mean", "#f9a825"),
    ("returned (NDR)", "out_ndr_mean", "#c62828"),
    ("queued, will be returned", "out_doomed_mean", "#ef9a9a"),
    ("queued, may arrive", "out_pending_mean", "#1565c0"),
)


def _facets(summary: pd.DataFrame, axes: list[str]) -> list[tuple[str, pd.DataFrame]]:
    """(facet title, rows) per value of the second axis; one facet when there is none."""
    if len(axes) < 2:
        return [("", summary)]
    return [(f"{axes[1]} = {value}", rows) for value, rows in summary.groupby(axes[1], sort=False)]


def _labels(rows: pd.DataFrame, axes: list[str]) -> list[str]:
    """Short bar labels: the first axis's value (and any further axes', joined)."""
    if not axes:
        return [str(p) for p in rows["point"]]
    shown = [axes[0], *axes[2:]]
    return [" / ".join(str(row[a]) for a in shown) for _, row in rows.iterrows()]


def _panels(count: int, title: str) -> tuple[Figure, list[Axes]]:
    fig, axs = plt.subplots(1, count, figsize=(max(6.5, 4.2 * count), 4.6), squeeze=False, sharey=True,
                            layout="constrained")  # fmt: skip
    fig.suptitle(title)
    return fig, list(axs[0])


def bar_with_ci(summary: pd.DataFrame, axes: list[str], metric: str, title: str, ylabel: str, target: Path) -> Path:
    """One bar per design point with its 95% interval, grouped by axis."""
    facets = _facets(summary, axes)
    fig, panels = _panels(len(facets), title)
    for ax, (facet, rows) in zip(panels, facets, strict=True):
        positions = np.arange(len(rows))
        ax.bar(positions, rows[f"{metric}_mean"], yerr=rows[f"{metric}_ci95"].fillna(0), capsize=4, color="#4c72b0")
        ax.set_xticks(positions, _labels(rows, axes), rotation=20, ha="right", fontsize=9)
        ax.set_title(facet, fontsize=10)
        ax.grid(axis="y", alpha=0.3)
    panels[0].set_ylabel(ylabel)
    return _save(fig, target)


def outcomes(summary: pd.DataFrame, axes: list[str], title: str, target: Path) -> Path:
    """What became of the mail per point, as shares of all outbound messages."""
    facets = _facets(summary, axes)
    fig, panels = _panels(len(facets), title)
    for ax, (facet, rows) in zip(panels, facets, strict=True):
        positions = np.arange(len(rows))
        total = rows["out_messages_mean"].replace(0, np.nan).to_numpy()
        bottom = np.zeros(len(rows))
        for label, column, colour in OUTCOMES:
            if column not in rows:  # a store from before tlssim told doomed from pending mail
                continue
            share = np.nan_to_num(rows[column].to_numpy() / total)
            ax.bar(positions, share, bottom=bottom, color=colour, label=label)
            bottom += share
        ax.set_xticks(positions, _labels(rows, axes), rotation=20, ha="right", fontsize=9)
        ax.set_title(facet, fontsize=10)
        ax.set_ylim(0, 1.0)
        ax.grid(axis="y", alpha=0.3)
    panels[0].set_ylabel("share of outbound messages")
    panels[-1].legend(loc="lower right", fontsize=8, framealpha=0.9)
    return _save(fig, target)


def differences(summary: pd.DataFrame, axes: list[str], metric: str, title: str, ylabel: str, target: Path) -> Path:
    """Each point's paired difference from its baseline, with the 95% interval."""
    rows = summary[summary[f"{metric}_diff_mean"].notna()] if f"{metric}_diff_mean" in summary else summary[:0]
    facets = _facets(rows, axes) if len(rows) else [("no baseline comparison", rows)]
    fig, panels = _panels(len(facets), title)
    for ax, (facet, part) in zip(panels, facets, strict=True):
        positions = np.arange(len(part))
        means = part.get(f"{metric}_diff_mean", pd.Series(dtype=float))
        errors = part.get(f"{metric}_diff_ci95", pd.Series(dtype=float)).fillna(0)
        ax.bar(positions, means, yerr=errors, capsize=4, color="#8e24aa")
        ax.axhline(0, color="black", linewidth=0.8)
        ax.set_xticks(positions, _labels(part, axes), rotation=20, ha="right", fontsize=9)
        ax.set_title(facet, fontsize=10)
        ax.grid(axis="y", alpha=0.3)
    panels[0].set_ylabel(ylabel)
    return _save(fig, target)


def queue_depth(series: pd.DataFrame, axes: list[str], points: pd.DataFrame, title: str, target: Path) -> Path:
    """Mean total queue depth over time per design point, with a 95% band across
    replications; one panel per value of the second axis, the legend below the panels."""
    facets = _facets(points, axes)
    fig, panels = _panels(len(facets), title)
    for ax, (facet, rows) in zip(panels, facets, strict=True):
        for index, (label, point) in enumerate(zip(_labels(rows, axes), rows["point"], strict=True)):
            group = series[series["point"] == point]
            table = group.pivot_table(index="time_s", columns="replication", values="depth")
            if table.empty:
                continue
            hours = table.index.to_numpy() / 3600.0
            mean = table.mean(axis=1).to_numpy()
            band = np.array([half_width(row[~np.isnan(row)]) for row in table.to_numpy()])
            # Several policies may sit on the same line (all at zero): styles tell them apart.
            style = ("-", "--", ":", "-.")[index % 4]
            (line,) = ax.plot(hours, mean, label=label, linewidth=1.6, linestyle=style)
            if np.isfinite(band).any():
                ax.fill_between(hours, mean - np.nan_to_num(band), mean + np.nan_to_num(band), alpha=0.2,
                                color=line.get_color())  # fmt: skip
        ax.set_xlabel("simulated hours")
        ax.set_title(facet, fontsize=10)
        ax.grid(alpha=0.3)
    panels[0].set_ylabel("messages queued (all queues)")
    handles, labels = panels[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=min(4, max(len(labels), 1)), fontsize=8)
    return _save(fig, target)


def _save(fig: Figure, target: Path) -> Path:
    write_atomic(target, lambda p: save_png(fig, p, dpi=110))
    plt.close(fig)
    return target
