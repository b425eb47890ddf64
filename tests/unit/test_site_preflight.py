"""site.yml's cross-tier preflight refuses bad inventories before any host is changed."""
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


def inventory(nodes=("n1", "n2"), lbs=("lb1",), primaries=("db1",), node_vars=None, extra=None):
    groups = {
        "looker_nodes": {"hosts": {n: dict((node_vars or {}).get(n, {})) for n in nodes}},
        "looker_lb": {"hosts": {h: {} for h in lbs}},
        "looker_appdb_primary": {"hosts": {h: {} for h in primaries}},
    }
    groups.update(extra or {})
    return {"all": {"vars": {"ansible_connection": "local"}, "children": groups}}


def preflight(run_play, tmp_path, inv):
    inv_file = tmp_path / "hosts.yml"
    inv_file.write_text(yaml.safe_dump(inv))
    play = [{"name": "preflight", "hosts": "localhost", "gather_facts": False,
             "tasks": [{"name": "Inventory rules", "ansible.builtin.include_tasks": str(ROOT / "playbooks/tasks/preflight_inventory.yml")}]}]
    return run_play(play, extra_args=["-i", str(inv_file)])


def test_a_sound_inventory_passes(run_play, tmp_path):
    result = preflight(run_play, tmp_path, inventory())
    assert not result.failed, result.output


@pytest.mark.parametrize("inv, message", [
    (inventory(lbs=()), "looker_lb has no host in site (no looker_site) while looker_nodes has n1, n2"),
    (inventory(primaries=("db1", "db2")), "looker_appdb_primary has 2 hosts"),
    (inventory(primaries=("n1",)), "n1 is both a Looker node and an application database host"),
    (inventory(node_vars={"n1": {"looker_cluster_address": "10.0.0.5"}, "n2": {"ansible_host": "10.0.0.5"}}),
     "Two Looker nodes of site (no looker_site) share an address (10.0.0.5)"),
    (inventory(extra={"looker_site_a": {"hosts": {"n1": {}}}, "looker_site_b": {"hosts": {"n1": {}}}}),
     "n1 is in both looker_site_a and looker_site_b"),
])
def test_bad_inventories_fail_with_the_fix(run_play, tmp_path, inv, message):
    result = preflight(run_play, tmp_path, inv)
    assert result.failed
    assert message in " ".join(result.output.split()), result.output


def test_colocated_database_can_be_allowed_explicitly(run_play, tmp_path):
    inv = inventory(primaries=("n1",))
    inv["all"]["vars"]["looker_allow_colocated_appdb"] = True
    assert not preflight(run_play, tmp_path, inv).failed
