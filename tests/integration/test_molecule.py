"""Every molecule scenario but those of the side and wait lanes (see molecule_scenarios.py), one test each, so
that `make test` ends in one pytest summary; each full log is kept in tests/output/."""
import pytest

from molecule_scenarios import ALL, SIDE_LANE, WAIT_LANE, run


@pytest.mark.parametrize("scenario", [s for s in ALL if s not in SIDE_LANE + WAIT_LANE])
def test_molecule_scenario(scenario):
    run(scenario)
