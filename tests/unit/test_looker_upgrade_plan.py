"""The upgrade plan: every refusal of lookerops.cluster.looker_upgrade_plan, and the plans it returns."""
import copy
import json

import pytest

from ansible_collections.lookerops.cluster.plugins.module_utils import looker_upgrade as up


def node(name, version="25.6.12", running=None, active=True, healthy=True, jar=None):
    return dict(name=name, installed_version=version, jar_version=version if jar is None else jar,
                running_version=version if running is None else running, active=active, healthy=healthy)


ROLLING = dict(strategy="rolling", target_version="25.7.2", nodes=[node("a"), node("b")],
               backup_available=True, backup_free_mb=1000, database_size_mb=100, backup_space_ratio=1.0)
SWAP = dict(strategy="replica_swap", target_version="25.7.2", nodes=[node("a"), node("b")],
            new_nodes=[node("c", version="", running="", active=False, healthy=False),
                       node("d", version="", running="", active=False, healthy=False)],
            replica=dict(host="db2", is_replica=True, io_running=True, sql_running=True, seconds_behind=0, last_error=""),
            max_replica_lag=5, lb_backends=["a", "b", "c", "d"])


def state(base, **changes):
    data = copy.deepcopy(base)
    data.update(changes)
    return data


def refusal(data):
    with pytest.raises(up.PlanRefused) as exc:
        up.plan(data)
    return " ".join(exc.value.reasons)


def test_rolling_plan_migrates_from_the_first_node_after_the_backup():
    result = up.plan(ROLLING)
    assert result["action"] == "upgrade" and result["migrates_schema"]
    assert (result["from_version"], result["to_version"], result["first_node"]) == ("25.6.12", "25.7.2", "a")
    steps = result["steps"]
    assert steps[0].startswith("install the 25.7.2 jars on every node") and "stop every node (a, b)" in steps[0]
    assert "back up" in steps[1] and "verify" in steps[1]
    assert steps[2] == "migrate the schema 25.6 -> 25.7 from a (looker.jar migrate_db_to_looker_version 25.7.2)"
    assert steps[3:5] == ["start a and wait for /alive", "start b and wait for /alive"]
    assert "restore the verified dump and the 25.6.12 jars" in steps[-1]


def test_a_patch_release_does_not_migrate_the_schema():
    assert not up.plan(state(ROLLING, target_version="25.6.14"))["migrates_schema"]


def test_same_release_is_a_rolling_restart_without_backup_check():
    result = up.plan(state(ROLLING, target_version="25.6.12", backup_free_mb=0))
    assert result["action"] == "restart"
    assert result["steps"][0].startswith("drain a on the load balancer")


def test_swap_plan():
    result = up.plan(SWAP)
    assert result["new_nodes"] == ["c", "d"] and result["replica"] == "db2"
    assert any("read-only" in step for step in result["steps"])
    assert any(step.startswith("promote db2") for step in result["steps"])
    assert result["swap_policy"] == "block"
    # The window ends when the first new node serves: the others start after the switch.
    steps = result["steps"]
    first = steps.index("migrate the schema 25.6 -> 25.7 from c (looker.jar migrate_db_to_looker_version 25.7.2), "
                        "then start c and wait for /alive")
    assert steps[first + 1] == "put c in the load balancers, drain and disable the old nodes, stop them"
    assert steps[first + 2] == "start d one at a time behind /alive and put each in the load balancers"


def test_swap_plan_with_the_capture_policy_keeps_the_primary_writable():
    result = up.plan(dict(SWAP, swap_policy="capture"))
    assert result["swap_policy"] == "capture"
    assert not any("read-only" in step for step in result["steps"])
    assert any(step.startswith("promote db2 at once") and "record the fork" in step for step in result["steps"])
    assert any(step.startswith("save every transaction the old primary committed after the fork") for step in result["steps"])


@pytest.mark.parametrize("target", ["25.5.9", "25.6.11", "24.12.1"])
def test_downgrade_is_refused(target):
    text = refusal(state(ROLLING, target_version=target))
    assert "downgrade from 25.6.12 to %s" % target in text and "restoring the backup" in text


def test_mixed_installed_versions_are_refused():
    text = refusal(state(ROLLING, nodes=[node("a"), node("b", version="25.7.2")]))
    assert "mixed-version cluster (a on 25.6.12, b on 25.7.2)" in text


def test_new_jars_not_started_are_refused():
    text = refusal(state(ROLLING, nodes=[node("a"), node("b", version="25.7.2", running="25.6.12")]))
    assert "b runs Looker 25.6.12 but has 25.7.2 installed" in text
    assert "mixed-version cluster" in text


def test_a_stopped_node_is_refused():
    text = refusal(state(ROLLING, nodes=[node("a"), node("b", running="", active=False, healthy=False)]))
    assert "b is not running (Looker 25.6.12 installed)" in text


def test_an_unhealthy_node_is_refused():
    assert "a runs but does not answer /alive" in refusal(state(ROLLING, nodes=[node("a", healthy=False), node("b")]))


def test_a_node_without_looker_is_refused():
    assert "a has no Looker installed" in refusal(state(ROLLING, nodes=[node("a", version="", running=""), node("b")]))


def test_no_nodes_is_refused():
    assert "no Looker nodes were inspected" in refusal(state(ROLLING, nodes=[]))


@pytest.mark.parametrize("target", ["25.7", "latest", ""])
def test_target_must_be_exact(target):
    assert "is not an exact release X.Y.Z" in refusal(state(ROLLING, target_version=target))


def test_unknown_strategy_is_refused():
    assert "unknown strategy 'blue_green'" in refusal(state(ROLLING, strategy="blue_green"))


def test_a_jar_replaced_by_hand_is_refused():
    # The manifest of the jar on disk says another release than the one recorded as installed.
    text = refusal(state(ROLLING, nodes=[node("a"), node("b", jar="25.7.2")]))
    assert "b: its looker.jar is Looker 25.7.2 (manifest) but 25.6.12 is recorded as installed" in text


def test_a_jar_without_a_release_in_its_manifest_is_refused():
    text = refusal(state(ROLLING, nodes=[node("a"), node("b", jar="")]))
    assert "b: the manifest of its looker.jar names no release (Implementation-Version)" in text


def test_a_manifest_version_with_a_build_suffix_is_its_release():
    assert up.plan(state(ROLLING, nodes=[node("a", jar="25.6.12-b3"), node("b")]))["action"] == "upgrade"


def test_a_node_that_does_not_report_its_release_is_refused():
    text = refusal(state(ROLLING, nodes=[node("a", running=""), node("b")]))
    assert "a answers /alive but not which release it runs" in text


def test_the_plan_reads_no_schema():
    # A schema check is the user's own query (docs/upgrade.md): the module has no such option.
    from ansible_collections.lookerops.cluster.plugins.modules import looker_upgrade_plan
    assert "schema_version" not in looker_upgrade_plan.DOCUMENTATION
    assert up.plan(state(ROLLING, schema_version="99.9"))["action"] == "upgrade"


def test_the_cutover_step_says_that_reads_fail_too():
    cutover = [step for step in up.plan(SWAP)["steps"] if step.startswith("cutover")][0]
    assert "reads included" in cutover and "reads still served" not in cutover


def test_no_backup_space_is_refused():
    text = refusal(state(ROLLING, backup_free_mb=120, database_size_mb=100, backup_space_ratio=1.5))
    assert "no backup space: 120 MB free in the backup directory, 150 MB needed" in text


def test_no_backup_command_is_refused():
    assert "mysql_appdb_backup_enabled: true" in refusal(state(ROLLING, backup_available=False))


def test_unknown_space_is_not_checked():
    assert up.plan(state(ROLLING, backup_free_mb=-1, database_size_mb=-1))["action"] == "upgrade"


def test_every_reason_is_listed_at_once():
    with pytest.raises(up.PlanRefused) as exc:
        up.plan(state(ROLLING, target_version="25.5.1", backup_free_mb=1, nodes=[node("a", jar=""), node("b")]))
    assert len(exc.value.reasons) == 3


def test_swap_without_replica_is_refused():
    assert "needs a replica of the application database" in refusal(state(SWAP, replica={}))


def test_swap_with_stopped_replication_is_refused():
    replica = dict(SWAP["replica"], sql_running=False, seconds_behind=None, last_error="Duplicate entry '7'")
    text = refusal(state(SWAP, replica=replica))
    assert "replica db2 is not in sync: IO thread running, SQL thread stopped (Duplicate entry '7')" in text


def test_swap_with_a_lagging_replica_is_refused():
    text = refusal(state(SWAP, replica=dict(SWAP["replica"], seconds_behind=42)))
    assert "replica db2 is 42 s behind the primary (at most 5 allowed)" in text


def test_swap_with_a_host_that_is_no_replica_is_refused():
    assert "db2 does not replicate from the primary" in refusal(state(SWAP, replica=dict(SWAP["replica"], is_replica=False)))


def test_swap_without_new_nodes_is_refused():
    assert "needs the hosts of the new cluster" in refusal(state(SWAP, new_nodes=[]))


def test_swap_onto_the_old_nodes_is_refused():
    assert "a would be in both the old and the new cluster" in refusal(state(SWAP, new_nodes=[node("a")]))


def test_swap_onto_nodes_running_looker_is_refused():
    new = [SWAP["new_nodes"][0], node("d", version="25.5.1")]
    assert "new node d already runs Looker (25.5.1)" in refusal(state(SWAP, new_nodes=new))


def test_swap_onto_nodes_the_balancer_does_not_know_is_refused():
    assert "the load balancer does not know c, d" in refusal(state(SWAP, lb_backends=["a", "b"]))


def test_swap_to_the_same_release_is_refused():
    assert "there is nothing to swap" in refusal(state(SWAP, target_version="25.6.12"))


def test_the_module_fails_with_every_reason(monkeypatch, capsys):
    from ansible.module_utils import basic
    from ansible.module_utils.common.text.converters import to_bytes
    from ansible_collections.lookerops.cluster.plugins.modules import looker_upgrade_plan

    args = state(ROLLING, target_version="25.5.1")
    monkeypatch.setattr(basic, "_ANSIBLE_ARGS", to_bytes(json.dumps({"ANSIBLE_MODULE_ARGS": args})))
    monkeypatch.setattr(basic, "_ANSIBLE_PROFILE", "legacy", raising=False)
    with pytest.raises(SystemExit):
        looker_upgrade_plan.main()
    out = json.loads(capsys.readouterr().out)
    assert out["failed"] and out["msg"].startswith("Upgrade refused, nothing was changed: downgrade from 25.6.12 to 25.5.1")
    assert len(out["reasons"]) == 1


def test_the_module_returns_the_plan_unchanged(monkeypatch, capsys):
    from ansible.module_utils import basic
    from ansible.module_utils.common.text.converters import to_bytes
    from ansible_collections.lookerops.cluster.plugins.modules import looker_upgrade_plan

    monkeypatch.setattr(basic, "_ANSIBLE_ARGS", to_bytes(json.dumps({"ANSIBLE_MODULE_ARGS": SWAP})))
    monkeypatch.setattr(basic, "_ANSIBLE_PROFILE", "legacy", raising=False)
    with pytest.raises(SystemExit):
        looker_upgrade_plan.main()
    out = json.loads(capsys.readouterr().out)
    assert not out["changed"] and out["plan"]["strategy"] == "replica_swap"
