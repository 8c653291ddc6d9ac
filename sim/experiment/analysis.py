"""From runs to conclusions: per-point means with Student-t intervals, and paired
differences from a baseline under common random numbers."""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from sim.experiment.design import Experiment
from sim.results import KEY_METRICS

NOT_METRICS = {"point", "replication", "seed", "exception", "sim_hours"}


def half_width(values: np.ndarray, confidence: float = 0.95) -> float:
    """The Student-t confidence-interval half-width of the mean of ``values``."""
    n = len(values)
    if n < 2:
        return math.nan
    return float(_t_quantile(0.5 + confidence / 2, n - 1) * values.std(ddof=1) / math.sqrt(n))


@lru_cache(maxsize=256)
def _t_quantile(probability: float, dof: int) -> float:
    """Student's t quantile, once per sample size: scipy's call costs about 0.1 ms, and a
    summary asks it for every metric of every point with the same few sizes."""
    return float(stats.t.ppf(probability, dof))


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
        columns = mine[metrics].to_numpy(dtype=float)  # one conversion, not one a metric
        for index, metric in enumerate(metrics):
            values = columns[:, index]
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


# (metric, column label, kind): "share" as a percentage, "count" as a whole number.
SHOWN = (
    ("out_lost_rate", "will not arrive", "share"),
    ("out_ndr_rate", "returned (NDR)", "share"),
    ("out_tls_share", "delivered over TLS", "share"),
    ("peak_queue_depth", "peak queue", "count"),
    ("out_delay_dsn", "delay notices", "count"),
    ("in_lost", "inbound lost", "count"),
)
DIFFERENCES = (("out_lost_rate", "Δ will not arrive"), ("out_tls_share", "Δ over TLS"))


def summary_table(experiment: Experiment, summary: pd.DataFrame) -> tuple[list[str], list[list[str]], list[str]]:
    """(header, worded rows, sentences that explain them): the key metrics per point with
    95% intervals and the paired differences from the baseline, for summary.md and .html."""
    axes = list(experiment.axis_names)
    baseline = ", ".join(f"{k} = {v}" for k, v in experiment.spec.baseline.items()) or "none"
    intro = [
        "Means over replications with 95% Student-t half-widths (mean ± hw). Will not arrive: returned as NDR, "
        "or still queued at the end with no way out under the policy (returned at its expiry).",
        f"Baseline: {baseline}; differences (Δ, in percentage points) are paired by replication: every point ran "
        "on the same random streams.",
    ]
    shown = [s for s in SHOWN if f"{s[0]}_mean" in summary]
    differences = [d for d in DIFFERENCES if f"{d[0]}_mean" in summary]
    header = [*axes, "runs", *(label for _, label, _ in shown), *(label for _, label in differences)]
    rows = []
    for _, row in summary.iterrows():
        cells = [str(row[a]) for a in axes] + [str(int(row["runs"]))]
        cells += [_pm(row[f"{m}_mean"], row[f"{m}_ci95"], kind) for m, _, kind in shown]
        for metric, _ in differences:
            key = f"{metric}_diff_mean"
            if key in row and not pd.isna(row[key]):
                cells.append(_pm(row[key], row[f"{metric}_diff_ci95"], "points"))
            else:
                cells.append("baseline" if _is_baseline(experiment, row) else "-")
        rows.append(cells)
    # Said once instead of in a column: the same number of runs everywhere, a metric that is
    # zero at every point (inbound lost in an outbound sweep). The table then fits the page.
    dropped = []
    for i in reversed(range(len(axes), len(header))):
        values = {r[i] for r in rows}
        if header[i] == "runs" and len(values) == 1:
            intro.append(f"Every point ran {values.pop()} replication(s).")
        elif values <= {"0 ± 0", "0", "-"} and header[i] in {label for _, label, _ in shown}:
            dropped.append(header[i])
        else:
            continue
        del header[i]
        for r in rows:
            del r[i]
    if dropped:
        intro.append(f"Zero at every point: {', '.join(reversed(dropped))}.")
    return header, rows, intro


def markdown(experiment: Experiment, summary: pd.DataFrame) -> str:
    """A readable report: key metrics per point with 95% intervals, differences from the baseline."""
    header, rows, intro = summary_table(experiment, summary)
    lines = [f"# {experiment.spec.name}", "", experiment.spec.description.strip(), "", *intro, ""]
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "---|" * len(header))
    lines += ["| " + " | ".join(cells) + " |" for cells in rows]
    return "\n".join(lines).replace("\n\n\n", "\n\n") + "\n"


def _is_baseline(experiment: Experiment, row: pd.Series) -> bool:
    return bool(experiment.spec.baseline) and all(row.get(k) == v for k, v in experiment.spec.baseline.items())


def _pm(mean: float, hw: float, kind: str) -> str:
    """``12.7% ± 0.3%``, ``7,314 ± 52``, ``+12.7 ± 0.3`` (percentage points)."""
    if pd.isna(mean):
        return "-"
    if kind == "share":
        text, half = f"{100 * mean:.1f}%", f"{100 * hw:.1f}%"
    elif kind == "points":
        text, half = f"{100 * mean:+.1f}", f"{100 * hw:.1f}"
    else:
        text, half = f"{mean:,.0f}", f"{hw:,.0f}"
    return text if pd.isna(hw) else f"{text} ± {half}"
