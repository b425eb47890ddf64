"""The molecule scenario that mostly sleeps (the stand-in's realistic profile): a module of its own,
so that `--dist loadscope` runs it on a third worker beside the other two lanes (see
molecule_scenarios.py)."""
import pytest

from molecule_scenarios import ALL, WAIT_LANE, run


@pytest.mark.parametrize("scenario", [s for s in ALL if s in WAIT_LANE])
def test_molecule_scenario(scenario):
    run(scenario)
