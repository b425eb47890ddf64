"""Replica swap 25.7.2 -> 25.8.1 onto lkr-upgrade-c/d under writes and reads through the balancer:
every acknowledged write is on the promoted replica, the new nodes run 25.8.1, the schema was
migrated once, the old nodes are stopped and out of the balancer. Looker writes its database on
nearly every request, so while the old primary is read-only reads fail too, as writes do."""
import upgradelib as u

RESULT = {}


def test_replica_swap_loses_no_acknowledged_write():
    RESULT["out"] = u.upgrade_losing_nothing("replica_swap", "swap", "replica_swap", "25.8.1",
                                             "-e", "looker_upgrade_new_nodes_group=looker_nodes_new")[0]


def test_the_balancers_switch_once_the_first_new_node_serves():
    """The window ends with the migration and c's start: d starts after the switch."""
    out = u.text(RESULT["out"])
    first = out.index("PLAY [Cutover - migrate the schema and start the first new node]")
    migrate = out.index("TASK [lookerops.cluster.looker_node : Migrate the application database to 25.8.1]")
    switch = out.index("PLAY [Switch the load balancers to the new nodes]")
    others = out.index("PLAY [Start the other new nodes]")
    assert first < migrate < switch < others
    # In the first node's play, d neither migrates nor starts.
    play = out[first:out.index("PLAY [", first + 1)]
    assert "ok: [lkr-upgrade-d]" not in play and "changed: [lkr-upgrade-d]" not in play
    assert "changed: [lkr-upgrade-c]" in play
    assert "ok: [lkr-upgrade-d]" in out[others:out.index("PLAY [Put the other new nodes in the balancers]")]


def test_the_new_nodes_run_the_new_release_on_the_promoted_replica():
    for name in ("c", "d"):
        assert u.running_release(name) == "25.8.1"
        assert 'host: "lkr-upgrade-db2"' in u.HOSTS[name].file(u.INSTALL + "/looker-db.yml").content_string
    assert u.migrations("db2", "25.8") == ["lkr-upgrade-c"]
    assert u.sql("db2", "SELECT @@GLOBAL.read_only").strip() == "0"
    assert u.HOSTS["db2"].check_output("mariadb -N -B -e 'SHOW REPLICA STATUS'") == ""
    # The old primary stays read-only and never saw the migration.
    assert u.sql("db", "SELECT @@GLOBAL.read_only").strip() == "1"
    assert u.migrations("db", "25.8") == []


def test_the_old_nodes_are_stopped_and_out_of_the_balancer():
    for name in ("a", "b"):
        assert not u.HOSTS[name].service("looker").is_running
    state = u.HOSTS["lb"].check_output("echo 'show servers state looker_ui' | socat stdio UNIX-CONNECT:/run/haproxy/admin.sock")
    rows = {parts[3]: parts for parts in (line.split() for line in state.splitlines()) if len(parts) > 6 and parts[0].isdigit()}
    # srv_admin_state (column 7): 1 = forced maintenance (disabled); 0 = ready.
    assert rows["lkr-upgrade-a"][6] != "0" and rows["lkr-upgrade-b"][6] != "0"
    assert rows["lkr-upgrade-c"][6] == "0" and rows["lkr-upgrade-d"][6] == "0"
