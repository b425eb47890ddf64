"""The molecule scenarios with no timing assertion: a module of their own, so that `--dist loadscope`
runs them beside test_molecule.py (see molecule_scenarios.py)."""
import pytest

from molecule_scenarios import ALL, SIDE_LANE, run


@pytest.mark.parametrize("scenario", [s for s in ALL if s in SIDE_LANE])
def test_molecule_scenario(scenario):
    run(scenario)
