"""Experiment files: a base scenario, sweep axes, a design, replications and a baseline.

An axis is either a set of named variants (each a set of overrides, and optionally
another ``topology`` or ``remotes`` file) or a dotted path with a list of values. The
design combines the axes as a full ``grid``, an explicit ``list`` of points, or a
Latin hypercube (``lhs``) over numeric ranges crossed with the named axes.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from sim.errors import NO_VALUE, ScenarioError
from sim.scenario.loader import read_yaml, scenario_from_raw, scenario_hash, validated
from sim.scenario.model import Scenario

Value = str | int | float | bool
FILE_KEYS = ("topology", "remotes")


class Replications(BaseModel):
    """Replicate until the metric's 95% CI half-width is at most ``half_width`` (or ``max``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    metric: str
    half_width: float = Field(gt=0, allow_inf_nan=False)
    min: int = Field(5, ge=2, le=10_000)
    max: int = Field(50, ge=2, le=10_000)

    @field_validator("metric")
    @classmethod
    def _known_metric(cls, value: str) -> str:
        from sim.results import SUMMARY_COLUMNS

        numeric = [c for c in SUMMARY_COLUMNS if c.startswith(("out_", "in_", "delay_", "peak_"))]
        if value not in numeric:
            raise ValueError(f"not a summary metric (accepted: {', '.join(numeric)})")
        return value


class LatinHypercube(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    samples: int = Field(ge=1)
    ranges: dict[str, tuple[float, float]] = Field(min_length=1)
    integer: list[str] = Field(default_factory=list, description="paths whose sampled values are rounded")


class ExperimentSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    description: str = ""
    base: str
    overrides: dict[str, Any] = Field(default_factory=dict, description="applied to every design point")
    axes: dict[str, dict[str, dict[str, Any]] | list[Value]] = Field(default_factory=dict)
    design: Literal["grid", "list", "lhs"] = "grid"
    points: list[dict[str, Value]] = Field(default_factory=list)
    lhs: LatinHypercube | None = None
    replications: int | Replications = 10
    baseline: dict[str, Value] = Field(default_factory=dict)
    seed: int = Field(1, ge=0)

    @model_validator(mode="after")
    def _consistent(self) -> ExperimentSpec:
        if self.design == "list" and not self.points:
            raise ValueError("design: list needs points")
        if self.design == "lhs" and self.lhs is None:
            raise ValueError("design: lhs needs an lhs section (samples, ranges)")
        if isinstance(self.replications, int) and self.replications < 1:
            raise ValueError("replications must be at least 1")
        return self


@dataclass(frozen=True)
class DesignPoint:
    """One combination of axis values, and the scenario it makes."""

    key: str  # "policy=force-tls,population=internet-2015": the join key in every table
    labels: dict[str, Value]
    scenario: Scenario = field(compare=False)
    run_key: str = ""  # content hash of what shapes a run: the store's key, so a sweep can grow


def run_key(scenario: Scenario) -> str:
    """A hash of everything that shapes a run of ``scenario`` and nothing else: its name,
    description and file are left out, so renaming a point or rewording it keeps its runs."""
    payload = scenario.model_dump(mode="json", exclude={"source", "name", "description"}, by_alias=True)
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:20]


@dataclass(frozen=True)
class Experiment:
    spec: ExperimentSpec
    path: Path
    points: tuple[DesignPoint, ...]
    digest: str

    @property
    def axis_names(self) -> list[str]:
        return list(self.points[0].labels) if self.points else []

    @property
    def run_keys(self) -> dict[str, str]:
        """Point key -> run key (the store's key for the point's runs)."""
        return {point.key: point.run_key for point in self.points}

    @property
    def first_replications(self) -> int:
        """Runs per point to begin with: the number, or an adaptive target's minimum."""
        target = self.spec.replications
        return target if isinstance(target, int) else target.min

    def baseline_of(self, point: DesignPoint) -> DesignPoint | None:
        """The point that differs from ``point`` only in taking the baseline's values."""
        if not self.spec.baseline:
            return None
        wanted = {**point.labels, **self.spec.baseline}
        for candidate in self.points:
            if candidate.labels == wanted:
                return candidate
        return None


def load_experiment(path: str | Path, *, replications: int | None = None) -> Experiment:
    path = Path(path)
    raw = read_yaml(path)
    if not isinstance(raw, dict):
        raise ScenarioError(path, "", NO_VALUE, "an experiment file must be a mapping (name, base, axes, ...)")
    spec = validated(ExperimentSpec, raw, path)
    if replications is not None:
        spec = spec.model_copy(update={"replications": replications})
    base_path = (path.parent / spec.base).resolve()
    if not base_path.exists():
        raise ScenarioError(path, "base", spec.base, f"file not found (looked for {base_path})")
    base_raw = read_yaml(base_path)
    if not isinstance(base_raw, dict):
        raise ScenarioError(base_path, "", NO_VALUE, "a scenario file must be a mapping")
    points = []
    for labels, variant in _combinations(spec, path):
        key = ",".join(f"{axis}={value}" for axis, value in labels.items()) or "base"
        raw_point = _apply_variant(base_raw, {**spec.overrides, **variant}, base_path, path)
        suffix = "--".join(re.sub(r"[^A-Za-z0-9._-]", "_", str(value)) for value in labels.values())
        raw_point["name"] = f"{base_raw.get('name', 'scenario')}--{suffix}" if labels else base_raw.get("name")
        raw_point.setdefault("run", {})
        raw_point["run"] = {**raw_point["run"], "seed": spec.seed}
        scenario = scenario_from_raw(raw_point, base_path, error_file=path)
        points.append(DesignPoint(key, labels, scenario, run_key(scenario)))
    _check_baseline(spec, points, path)
    digest = hashlib.sha256(
        json.dumps(
            {"spec": spec.model_dump(mode="json"), "points": [(p.key, scenario_hash(p.scenario)) for p in points]},
            sort_keys=True,
        ).encode()
    ).hexdigest()
    return Experiment(spec, path, tuple(points), digest)


def _combinations(spec: ExperimentSpec, path: Path) -> list[tuple[dict[str, Value], dict[str, Any]]]:
    """Every design point as (labels, overrides)."""
    axes: dict[str, list[tuple[Value, dict[str, Any]]]] = {}
    for axis, values in spec.axes.items():
        if isinstance(values, dict):
            axes[axis] = [(name, overrides) for name, overrides in values.items()]
        else:
            axes[axis] = [(value, {axis: value}) for value in values]
    if spec.design == "list":
        out = []
        for i, point in enumerate(spec.points):
            labels: dict[str, Value] = {}
            merged: dict[str, Any] = {}
            for axis, value in point.items():
                options = dict(axes.get(axis, []))
                if axis not in axes or value not in options:
                    accepted = ", ".join(map(str, options)) if axis in axes else ", ".join(axes)
                    raise ScenarioError(
                        path, f"points[{i}].{axis}", value, f"not a value of that axis (accepted: {accepted})"
                    )
                labels[axis] = value
                merged.update(options[value])
            out.append((labels, merged))
        return out
    grid = [
        (dict(zip(axes, (label for label, _ in combo), strict=True)), _merge(overrides for _, overrides in combo))
        for combo in itertools.product(*axes.values())
    ]
    if spec.design == "grid":
        return grid
    assert spec.lhs is not None
    samples = latin_hypercube(spec.lhs, spec.seed)
    return [({**labels, **sample}, {**overrides, **sample}) for labels, overrides in grid for sample in samples]


def latin_hypercube(lhs: LatinHypercube, seed: int) -> list[dict[str, Value]]:
    """``samples`` points, one in each of ``samples`` equal slices of every range (seeded)."""
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(0x1A5,)))
    n = lhs.samples
    columns = {}
    for name, (low, high) in lhs.ranges.items():
        cuts = (rng.permutation(n) + rng.random(n)) / n
        values = low + cuts * (high - low)
        columns[name] = [round(float(v)) if name in lhs.integer else round(float(v), 6) for v in values]
    return [{name: columns[name][i] for name in columns} for i in range(n)]


def _merge(parts: Any) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for part in parts:
        merged.update(part)
    return merged


def _apply_variant(base: dict[str, Any], variant: dict[str, Any], base_path: Path, experiment: Path) -> dict[str, Any]:
    raw = copy.deepcopy(base)
    overrides = dict(raw.get("overrides") or {})
    for key, value in variant.items():
        if key in FILE_KEYS:
            # File references in an experiment are relative to the experiment file.
            target = (experiment.parent / str(value)).resolve()
            raw[key] = (
                str(target.relative_to(base_path.parent)) if target.is_relative_to(base_path.parent) else str(target)
            )
        else:
            overrides[key] = copy.deepcopy(value)
    raw["overrides"] = overrides
    return raw


def _check_baseline(spec: ExperimentSpec, points: list[DesignPoint], path: Path) -> None:
    for axis, value in spec.baseline.items():
        values = {p.labels.get(axis) for p in points}
        if value not in values:
            accepted = ", ".join(sorted(map(str, values - {None}))) or "no such axis"
            raise ScenarioError(path, f"baseline.{axis}", value, f"not a value of that axis (accepted: {accepted})")
