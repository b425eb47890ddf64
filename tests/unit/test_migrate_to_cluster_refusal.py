"""migrate_to_cluster.yml refuses to migrate a single node into a MySQL database that already holds
data, before it stops or moves anything (Looker's migrate_internal_data copies into an empty database
only). The looker_node steps refuse on their own too: migrate_stop checks first."""
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
PLAYBOOK = yaml.safe_load((ROOT / "playbooks" / "migrate_to_cluster.yml").read_text())


def migrate_stop_play(install_dir, tables):
    target = {"database": "looker", "host": "db1", "tables": tables}
    return [{"name": "the single node's stop step", "hosts": "localhost", "gather_facts": False, "tasks": [
        {"name": "Stop and back up the single node",
         "ansible.builtin.include_role": {"name": "lookerops.cluster.looker_node", "tasks_from": "migrate_stop"},
         "vars": {"looker_node_migrate_target": target, "looker_node_install_dir": str(install_dir),
                  "looker_node_service_name": "lookerops-test-no-such-service"}}]}]


def recap_line(output):
    return [line for line in output.splitlines() if line.startswith("localhost") and "changed=" in line][-1]


def test_a_database_holding_tables_is_refused_before_anything_is_stopped(run_play, tmp_path):
    install = tmp_path / "looker"
    (install / ".db").mkdir(parents=True)
    (install / ".db" / "looker.script").write_text("{}\n")
    result = run_play(migrate_stop_play(install, ["dashboard", "user"]))
    text = " ".join(result.output.split())
    assert result.failed
    assert "the MySQL database 'looker' on db1 already holds 2 table(s) (dashboard, user)" in text
    assert "DROP DATABASE `looker`" in text and "Nothing was stopped or moved." in text
    assert "changed=0" in recap_line(result.output) and "failed=1" in recap_line(result.output)
    # Nothing was touched: no .deploying, no backup, the embedded database where it was.
    assert sorted(p.name for p in install.iterdir()) == [".db"]


def test_an_empty_database_passes_the_check(run_play):
    play = [{"name": "check", "hosts": "localhost", "gather_facts": False, "tasks": [
        {"name": "Check", "ansible.builtin.include_role": {"name": "lookerops.cluster.looker_node", "tasks_from": "migrate_check"},
         "vars": {"looker_node_migrate_target": {"database": "looker", "host": "db1", "tables": []}}}]}]
    result = run_play(play)
    assert not result.failed, result.output


def test_the_playbook_checks_before_it_stops_or_moves_anything():
    names = [play["name"] for play in PLAYBOOK]

    def first_play(predicate):
        return next(i for i, play in enumerate(PLAYBOOK) if predicate(play))

    def includes(play, tasks_from):
        return any((task.get("ansible.builtin.include_role") or {}).get("tasks_from") == tasks_from for task in play.get("tasks", []))

    listed = first_play(lambda play: includes(play, "database_tables"))
    checked = first_play(lambda play: includes(play, "migrate_check"))
    stopped = first_play(lambda play: includes(play, "migrate_stop"))
    moved = first_play(lambda play: any(role.get("role") == "lookerops.cluster.nfs_share" for role in play.get("roles", [])))
    assert listed < checked < stopped < moved, names
    assert PLAYBOOK[listed]["any_errors_fatal"] and PLAYBOOK[checked]["any_errors_fatal"] and PLAYBOOK[stopped]["any_errors_fatal"]
