"""Plots of a sweep, written as PNG beside its tables (matplotlib, no display needed)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from sim.experiment.analysis import half_width
from sim.results import write_atomic


def bar_with_ci(summary: pd.DataFrame, metric: str, title: str, ylabel: str, target: Path) -> Path:
    fig, ax = plt.subplots(figsize=(max(6.0, 0.9 * len(summary) + 2), 4.5))
    positions = np.arange(len(summary))
    ax.bar(positions, summary[f"{metric}_mean"], yerr=summary[f"{metric}_ci95"].fillna(0), capsize=4, color="#4c72b0")
    ax.set_xticks(positions, summary["point"], rotation=30, ha="right", fontsize=8)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return _save(fig, target)


def queue_depth(series: pd.DataFrame, target: Path) -> Path:
    """Mean total queue depth over time per design point, with a 95% band across replications."""
    fig, ax = plt.subplots(figsize=(9, 4.5))
    for point, group in series.groupby("point", sort=False):
        table = group.pivot_table(index="time_s", columns="replication", values="depth")
        hours = table.index.to_numpy() / 3600.0
        mean = table.mean(axis=1).to_numpy()
        band = np.array([half_width(row[~np.isnan(row)]) for row in table.to_numpy()])
        (line,) = ax.plot(hours, mean, label=str(point), linewidth=1.2)
        if np.isfinite(band).any():
            ax.fill_between(
                hours, mean - np.nan_to_num(band), mean + np.nan_to_num(band), alpha=0.2, color=line.get_color()
            )
    ax.set_xlabel("simulated hours")
    ax.set_ylabel("messages queued (all queues)")
    ax.set_title("Queue depth over time (mean, 95% band across replications)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    return _save(fig, target)


def _save(fig: Figure, target: Path) -> Path:
    write_atomic(target, lambda p: fig.savefig(p, dpi=110, format="png"))
    plt.close(fig)
    return target
