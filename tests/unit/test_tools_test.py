"""tools/test, the driver behind `make test` and .ci/run: its exit status and its clean-up."""
import glob
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_a_stage_that_passes_exits_0_and_leaves_no_layout_behind():
    """The EXIT trap once failed under `set -e` (kill with no background job) and made a passing run
    exit 2 with its layout left in /var/tmp."""
    before = set(glob.glob("/var/tmp/lookerops-layout.*"))
    proc = subprocess.run([str(ROOT / "tools" / "test"), "layout"], cwd=ROOT, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert set(glob.glob("/var/tmp/lookerops-layout.*")) - before == set()
