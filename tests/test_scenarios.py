"""Every bundled scenario is valid, says what it shows, and the two populations compare."""

from __future__ import annotations

from pathlib import Path

import pytest

import sim
from sim.experiment.design import load_experiment
from sim.scenario.loader import read_yaml

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = sorted((ROOT / "scenarios").glob("*.yaml"))


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_bundled_scenario_is_valid_and_opens_with_a_comment(path):
    assert path.read_text().startswith("#"), "each scenario opens with a comment saying what it shows"
    if "base" in read_yaml(path):  # an experiment file
        experiment = load_experiment(path)
        assert experiment.spec.name == path.stem and len(experiment.points) > 1
        return
    scenario = sim.load_scenario(path)
    assert scenario.name == path.stem


@pytest.mark.slow
def test_forcing_tls_cost_more_ndrs_in_2015_than_in_2024():
    rates = {
        year: sim.run(sim.load_scenario(ROOT / f"scenarios/force-tls-{year}.yaml")).summary_row for year in (2015, 2024)
    }
    assert rates[2015]["out_ndr_rate"] > 2 * rates[2024]["out_ndr_rate"] > 0
    assert rates[2015]["out_messages"] == rates[2024]["out_messages"]  # same traffic, same seed
    for row in rates.values():
        assert row["out_delivered_plaintext"] == 0
