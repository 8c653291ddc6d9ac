"""From runs to conclusions: per-point means with Student-t intervals, and paired
differences from a baseline under common random numbers."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from sim.experiment.design import Experiment

# The metrics a policy comparison turns on; differences from the baseline are reported for these.
KEY_METRICS = (
    "out_ndr_rate",
    "out_ndr",
    "out_expired",
    "out_tls_share",
    "out_delivered_tls",
    "out_delay_dsn",
    "peak_queue_depth",
    "delay_p95_s",
    "in_accepted",
    "in_lost",
)
NOT_METRICS = {"point", "replication", "seed", "exception", "sim_hours"}


def half_width(values: np.ndarray, confidence: float = 0.95) -> float:
    """The Student-t confidence-interval half-width of the mean of ``values``."""
    n = len(values)
    if n < 2:
        return math.nan
    return float(stats.t.ppf(0.5 + confidence / 2, n - 1) * values.std(ddof=1) / math.sqrt(n))


def metric_columns(runs: pd.DataFrame, axes: list[str]) -> list[str]:
    return [
        c for c in runs.columns if c not in NOT_METRICS and c not in axes and pd.api.types.is_numeric_dtype(runs[c])
    ]


def summarise(experiment: Experiment, runs: pd.DataFrame) -> pd.DataFrame:
    """One row per design point: n, and mean, std, ci95 of each metric; then paired
    differences from the baseline point for the key metrics."""
    axes = experiment.axis_names
    ok = runs[runs["exception"].fillna("") == ""]
    metrics = metric_columns(ok, axes)
    rows = []
    for point in experiment.points:
        mine = ok[ok["point"] == point.key].sort_values("replication")
        row: dict[str, Any] = {
            "point": point.key,
            **point.labels,
            "runs": len(mine),
            "failed": int((runs["point"] == point.key).sum() - len(mine)),
        }
        for metric in metrics:
            values = mine[metric].astype(float).to_numpy()
            values = values[~np.isnan(values)]
            row[f"{metric}_mean"] = float(values.mean()) if len(values) else math.nan
            row[f"{metric}_std"] = float(values.std(ddof=1)) if len(values) > 1 else math.nan
            row[f"{metric}_ci95"] = half_width(values)
        baseline = experiment.baseline_of(point)
        if baseline is not None and baseline.key != point.key:
            theirs = ok[ok["point"] == baseline.key].set_index("replication")
            paired = mine.merge(theirs.reset_index(), on="replication", suffixes=("", "_base"), how="inner")
            for metric in KEY_METRICS:
                if metric in mine and f"{metric}_base" in paired:
                    diff = (paired[metric] - paired[f"{metric}_base"]).astype(float).dropna().to_numpy()
                    row[f"{metric}_diff_mean"] = float(diff.mean()) if len(diff) else math.nan
                    row[f"{metric}_diff_ci95"] = half_width(diff)
        rows.append(row)
    return pd.DataFrame(rows)


def markdown(experiment: Experiment, summary: pd.DataFrame) -> str:
    """A readable report: key metrics per point with 95% intervals, differences from the baseline."""
    axes = experiment.axis_names
    baseline = ", ".join(f"{k} = {v}" for k, v in experiment.spec.baseline.items()) or "none"
    lines = [
        f"# {experiment.spec.name}",
        "",
        experiment.spec.description.strip(),
        "",
        f"Means over replications with 95% Student-t half-widths (mean ± hw). Baseline: {baseline};",
        "differences (Δ) are paired by replication: every point ran on the same random streams.",
        "",
    ]
    shown = [
        ("out_ndr_rate", "NDR rate", 4),
        ("out_tls_share", "TLS share", 3),
        ("peak_queue_depth", "peak queue", 0),
        ("out_delay_dsn", "delay DSNs", 0),
        ("in_lost", "inbound lost", 0),
    ]
    shown = [s for s in shown if f"{s[0]}_mean" in summary]
    header = [*axes, "runs", *(label for _, label, _ in shown), "Δ NDR rate", "Δ TLS share"]
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "---|" * len(header))
    for _, row in summary.iterrows():
        cells = [str(row[a]) for a in axes] + [str(int(row["runs"]))]
        cells += [_pm(row[f"{m}_mean"], row[f"{m}_ci95"], digits) for m, _, digits in shown]
        for metric in ("out_ndr_rate", "out_tls_share"):
            key = f"{metric}_diff_mean"
            cells.append(
                _pm(row[key], row[f"{metric}_diff_ci95"], 4, signed=True)
                if key in row and not pd.isna(row[key])
                else "baseline"
                if _is_baseline(experiment, row)
                else "-"
            )
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines).replace("\n\n\n", "\n\n") + "\n"


def _is_baseline(experiment: Experiment, row: pd.Series) -> bool:
    return bool(experiment.spec.baseline) and all(row.get(k) == v for k, v in experiment.spec.baseline.items())


def _pm(mean: float, hw: float, digits: int, *, signed: bool = False) -> str:
    if pd.isna(mean):
        return "-"
    sign = "+" if signed else ""
    text = f"{mean:{sign},.{digits}f}"
    return text if pd.isna(hw) else f"{text} ± {hw:,.{digits}f}"
