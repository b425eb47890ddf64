"""playbooks/upgrade.yml runs one procedure playbook on the plan it made. A procedure playbook run
alone is refused before any host is contacted, and no play of the upgrade reads a script's output:
each step is an entry point of its role that publishes a fact."""
import re
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
PLAYBOOKS = ROOT / "playbooks"
PROCEDURES = ["upgrade_restart.yml", "upgrade_rolling.yml", "upgrade_replica_swap.yml"]


@pytest.mark.parametrize("procedure", PROCEDURES)
def test_a_procedure_alone_is_refused_before_any_change(run_play, tmp_path, procedure):
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(yaml.safe_dump({"all": {
        "vars": {"ansible_connection": "local", "ansible_python_interpreter": sys.executable},
        "children": {"looker_nodes": {"hosts": {"n1": {}, "n2": {}}}, "looker_appdb_primary": {"hosts": {"db1": {}}},
                     "looker_appdb_replica": {"hosts": {"db2": {}}}, "looker_lb": {"hosts": {"lb1": {}}},
                     "looker_nodes_new": {"hosts": {"n3": {}}}}}}))
    result = run_play([{"ansible.builtin.import_playbook": str(PLAYBOOKS / procedure)}], extra_args=["-i", str(inventory)])
    output = " ".join(result.output.split())
    assert result.failed
    assert "This procedure runs on the plan of playbooks/upgrade.yml" in output, output[-2000:]
    # The guard is the only play that ran.
    assert re.findall(r"^PLAY \[(.+?)\]", result.output, re.M) == ["Refuse a procedure that upgrade.yml did not plan"]


def test_upgrade_yml_runs_each_procedure_on_its_own_plan():
    entries = yaml.safe_load((PLAYBOOKS / "upgrade.yml").read_text())
    imports = {e["ansible.builtin.import_playbook"]: e["when"] for e in entries if "ansible.builtin.import_playbook" in e}
    assert set(imports) == set(PROCEDURES)
    assert imports["upgrade_restart.yml"] == "looker_upgrade_plan.action == 'restart'"
    for procedure, strategy in (("upgrade_rolling.yml", "rolling"), ("upgrade_replica_swap.yml", "replica_swap")):
        assert "looker_upgrade_plan.action == 'upgrade'" in imports[procedure]
        assert f"looker_upgrade_plan.strategy == '{strategy}'" in imports[procedure]


def _strings(node):
    if isinstance(node, dict):
        for key, value in node.items():
            yield str(key)
            yield from _strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from _strings(value)
    elif node is not None:
        yield str(node)


@pytest.mark.parametrize("playbook", ["upgrade.yml", "upgrade_guard.yml"] + PROCEDURES)
def test_no_play_of_the_upgrade_reads_a_script_or_a_role_internal(playbook):
    text = list(_strings(yaml.safe_load((PLAYBOOKS / playbook).read_text())))
    assert not [s for s in text if "stdout" in s or "regex_search" in s], playbook
    assert not [s for s in text if "/usr/local/sbin" in s or "ansible.builtin.command" in s or "ansible.builtin.shell" in s]


def _rescued_blocks(tasks):
    for task in tasks or []:
        if "block" in task:
            if any("tasks/upgrade_failed.yml" in str(t.get("ansible.builtin.include_tasks", "")) for t in task.get("rescue", [])):
                yield task
            yield from _rescued_blocks(task["block"])


def test_a_failed_step_of_the_replica_swap_is_noted_on_every_host():
    # tasks/upgrade_failed.yml tells every host in a loop of delegated set_fact. A rescue inherits the
    # when of its block: with `looker_upgrade_failed | length == 0` there, the loop stopped after the
    # first host, the later steps ran on as if nothing had failed and the swap reported success.
    plays = yaml.safe_load((PLAYBOOKS / "upgrade_replica_swap.yml").read_text())
    blocks = [block for play in plays for block in _rescued_blocks(play.get("tasks"))]
    assert len(blocks) >= 5
    assert [block["name"] for block in blocks if "when" in block] == []


def test_upgrade_failed_reaches_every_host(run_play, tmp_path):
    # The step's condition on an inner block, as upgrade_replica_swap.yml has it: the rescue tells every host.
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(yaml.safe_dump({"all": {"vars": {"ansible_connection": "local", "ansible_python_interpreter": sys.executable},
                                                 "hosts": {"h1": {}, "h2": {}, "h3": {}}}}))
    play = [
        {"hosts": "all", "gather_facts": False, "tasks": [
            {"name": "Nothing failed yet", "ansible.builtin.set_fact": {"looker_upgrade_failed": ""}},
            {"name": "A step", "block": [{"name": "The step on h2, unless a step failed",
                                          "when": ["looker_upgrade_failed | length == 0", "inventory_hostname == 'h2'"],
                                          "block": [{"name": "Fail", "ansible.builtin.fail": {"msg": "boom"}}]}],
             "rescue": [{"name": "Note the failure", "ansible.builtin.include_tasks": str(PLAYBOOKS / "tasks/upgrade_failed.yml")}]}]},
        {"hosts": "all", "gather_facts": False, "tasks": [
            {"name": "Show", "ansible.builtin.debug": {"msg": "failed on {{ inventory_hostname }}: [{{ looker_upgrade_failed }}]"}}]},
    ]
    result = run_play(play, extra_args=["-i", str(inventory)])
    for host in ("h1", "h2", "h3"):
        assert f"failed on {host}: [Fail: boom]" in result.output, result.output[-3000:]
