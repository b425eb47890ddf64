"""playbooks/upgrade.yml refuses a bad request in its first play, before it contacts or changes any host,
each with its own message: the strategy and the release, and (replica_swap) the group of the new nodes."""
import json
import re
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
PLAYBOOK = ROOT / "playbooks" / "upgrade.yml"


def upgrade(run_play, tmp_path, extra_vars, extra_groups=None):
    groups = {"looker_nodes": {"hosts": {"n1": {}, "n2": {}}}, "looker_appdb_primary": {"hosts": {"db1": {}}},
              "looker_appdb_replica": {"hosts": {"db2": {}}}}
    groups.update(extra_groups or {})
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(yaml.safe_dump({"all": {"vars": {"ansible_connection": "local",
                                                          "ansible_python_interpreter": sys.executable},
                                                 "children": groups}}))
    play = yaml.safe_load(PLAYBOOK.read_text())[:1]
    # The play's vars_files and task files, found beside the play as beside upgrade.yml.
    for shared in ("vars", "tasks"):
        if not (tmp_path / shared).exists():
            (tmp_path / shared).symlink_to(PLAYBOOK.parent / shared)
    result = run_play(play, extra_vars, extra_args=["-i", str(inventory)])
    return result.failed, " ".join(result.output.split()), result.output


def changed_nothing(raw):
    recap = re.findall(r"^(\S+)\s+: ok=\d+\s+changed=(\d+)", raw, re.M)
    return bool(recap) and {changed for _host, changed in recap} == {"0"}


@pytest.mark.parametrize("extra_groups, group, state", [
    (None, "looker_nodes_new", "does not exist"),
    ({"looker_nodes_new": {"hosts": {}}}, "looker_nodes_new", "has no hosts"),
    ({"green": {"children": {"empty_child": {}}}}, "green", "has no hosts"),
])
def test_replica_swap_without_new_nodes_gets_its_own_message(run_play, tmp_path, extra_groups, group, state):
    extra = {"looker_upgrade_strategy": "replica_swap", "looker_upgrade_version": "25.8"}
    if group != "looker_nodes_new":
        extra["looker_upgrade_new_nodes_group"] = group
    failed, output, raw = upgrade(run_play, tmp_path, extra, extra_groups)
    assert failed
    assert (f"looker_upgrade_strategy is replica_swap, but the inventory group {group} (looker_upgrade_new_nodes_group)"
            f" {state}: replica_swap installs the new release on new nodes") in output, output[-2000:]
    assert f"Put the new nodes (hosts that are not in looker_nodes) in the group {group}" in output
    assert "Nothing was changed." in output and "Set looker_upgrade_strategy to rolling or replica_swap" not in output
    assert changed_nothing(raw), raw[-2000:]


def test_an_unknown_strategy_keeps_its_message(run_play, tmp_path):
    failed, output, raw = upgrade(run_play, tmp_path, {"looker_upgrade_strategy": "blue_green", "looker_upgrade_version": "25.8"})
    assert failed
    assert "Set looker_upgrade_strategy to rolling or replica_swap (it is 'blue_green')" in output
    assert "looker_nodes_new" not in output
    assert changed_nothing(raw), raw[-2000:]


def test_replica_swap_with_new_nodes_passes_the_request_check(run_play, tmp_path):
    failed, output, _raw = upgrade(run_play, tmp_path, {"looker_upgrade_strategy": "replica_swap", "looker_upgrade_version": "25.8"},
                                   {"looker_nodes_new": {"hosts": {"n3": {}}}})
    assert not failed, output[-2000:]


def test_an_unknown_swap_policy_is_refused_naming_both(run_play, tmp_path):
    failed, output, raw = upgrade(run_play, tmp_path, {"looker_upgrade_strategy": "replica_swap", "looker_upgrade_version": "25.8",
                                                       "looker_upgrade_swap_policy": "fast"},
                                  {"looker_nodes_new": {"hosts": {"n3": {}}}})
    assert failed
    assert "looker_upgrade_swap_policy is 'fast': use block (the primary read-only during the cutover" in output
    assert "or capture (the old cluster serves until the switch" in output and "Nothing was changed." in output
    assert changed_nothing(raw), raw[-2000:]


@pytest.mark.parametrize("timeout", ["5m", -1])
def test_a_drain_timeout_that_is_not_seconds_is_refused(run_play, tmp_path, timeout):
    failed, output, raw = upgrade(run_play, tmp_path, {"looker_upgrade_strategy": "rolling", "looker_upgrade_version": "25.8",
                                                       "looker_drain_timeout": timeout})
    assert failed
    assert f"looker_drain_timeout is {json.dumps(timeout)}: give the seconds the balancers may wait" in output, output[-2000:]
    assert "Nothing was changed." in output
    assert changed_nothing(raw), raw[-2000:]
