"""Runs one molecule scenario (create, converge, idempotence, verify, destroy) on sandbox hosts, for
test_molecule.py, test_molecule_side_lane.py and test_molecule_wait_lane.py.

`tools/test integration` runs pytest with three workers and `--dist loadscope`: each test module is
one unit of work, so the scenarios of each of those modules run one at a time on a worker of their
own, three lanes side by side:
- test_molecule.py: the scenarios with a timing assertion (looker_node_cluster, bcp) and the short
  single-tier ones;
- test_molecule_side_lane.py: scenarios of about the same total time with no timing assertion a busy
  neighbour could break (cluster, upgrade and two short ones);
- test_molecule_wait_lane.py: looker_node_single, which mostly sleeps (the stand-in's realistic
  profile: minutes of start-up and migration), then the stand-in tests on the same worker.
The machine has two cores: the third lane pays because its scenario waits. Keep the first two lanes
about as long as each other (see the durations pytest prints at the end).
"""
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "molecule" / "shared"))
from secret_scan import declared_secrets, shown  # noqa: E402  pylint: disable=wrong-import-position
SIDE_LANE = ("nfs_share_nfs", "cluster", "load_balancer", "upgrade")
WAIT_LANE = ("looker_node_single",)
# The short single-tier scenarios first: no timing-sensitive assertion, and they run while the
# side lane is busiest; then the rest by name.
FIRST = ("smoke", "mysql_appdb", "nfs_share_glusterfs", "nfs_share_nfs", "load_balancer_pair")
ALL = sorted((p.parent.name for p in ROOT.glob("molecule/*/molecule.yml")),
             key=lambda name: (FIRST.index(name) if name in FIRST else len(FIRST), name))
SELECTED = os.environ.get("LOOKEROPS_SCENARIOS", "").split()


def run(scenario):
    """`molecule test -s SCENARIO`, its log in tests/output/molecule-SCENARIO.log; fails the test on error,
    or when the log shows a test secret of the scenario's inventory (molecule/shared/secret_scan.py)."""
    if SELECTED and scenario not in SELECTED:
        pytest.skip(f"not in LOOKEROPS_SCENARIOS={' '.join(SELECTED)}")
    log_dir = ROOT / "tests" / "output"
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"molecule-{scenario}.log"
    # molecule and ansible-playbook come from the same venv as this pytest.
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    env = dict(os.environ, PATH=path, NO_COLOR="1", ANSIBLE_NOCOLOR="1", PY_COLORS="0")
    with log_path.open("w") as log:
        result = subprocess.run(
            ["molecule", "test", "-s", scenario],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, check=False,
        )
    if result.returncode != 0:
        tail = log_path.read_text(errors="replace").splitlines()[-80:]
        pytest.fail(f"molecule test -s {scenario} failed (rc={result.returncode}), log {log_path}:\n" + "\n".join(tail))

    leaked = shown(declared_secrets(ROOT / "molecule" / scenario), log_path.read_text(errors="replace"))
    assert not leaked, f"the log of molecule test -s {scenario} ({log_path}) shows the test secrets of {leaked}"

    leftovers = _leftovers(scenario)
    assert leftovers == {"containers": [], "networks": []}, f"molecule test -s {scenario} left {leftovers} behind"


def _leftovers(scenario):
    """Containers and networks of the scenario that still exist after its destroy step."""
    platforms = yaml.safe_load((ROOT / "molecule" / scenario / "molecule.yml").read_text())["platforms"]
    networks = set()
    for platform in platforms:
        named = platform.get("network") or []
        networks.update(named.split(",") if isinstance(named, str) else named)

    def exists(kind, name):
        return subprocess.run(["podman", kind, "exists", name], check=False).returncode == 0

    return {"containers": [p["name"] for p in platforms if exists("container", p["name"])],
            "networks": sorted(n for n in networks if exists("network", n))}
