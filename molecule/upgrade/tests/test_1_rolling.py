"""Rolling upgrade 25.6.12 -> 25.7.2 under writes and reads through the balancer, to the release the
inventory names: one node migrates the schema, once; the dump taken after the stop is verified; every
acknowledged write is still there. The inventory is then the truth: the next converge changes
nothing, and with the inventory left on the old release it is refused. Then a downgrade is refused
before anything changes."""
import upgradelib as u

RESULT = {}
# looker_node_version: '25.7' - the operator's edit of the inventory before the upgrade.
EDITED = u.inventory_release("25.7")


def test_rolling_upgrade_loses_no_acknowledged_write():
    RESULT["out"] = u.upgrade_losing_nothing("rolling", "rolling", "rolling", None, *EDITED)[0]
    for name in ("a", "b"):
        assert u.running_release(name) == "25.7.2"
        assert u.installed_release(name) == "25.7.2"


def test_the_schema_was_migrated_once_by_the_first_node():
    assert u.migrations("db", "25.7") == ["lkr-upgrade-a"]
    assert u.migrations("db2", "25.7") == ["lkr-upgrade-a"]
    assert u.sql("db", "SELECT v FROM standin_meta WHERE k = 'schema_version'").strip() == "25.7"


def test_the_dump_was_taken_after_the_stop_and_verified():
    out = u.text(RESULT["out"])
    assert "restored into looker_restore_check, every table and row count identical to the live looker" in out, out[-4000:]
    install = out.index("PLAY [Rolling upgrade - install the new release, every node stopped for the swap]")
    stop = out.index("TASK [lookerops.cluster.looker_node : Stop the nodes of another release, all of them, before any jar is replaced]")
    dump = out.index("PLAY [Rolling upgrade - dump the stopped")
    assert install < stop < dump < out.index("TASK [lookerops.cluster.looker_node : Migrate the application database to 25.7.2]")
    record = u.json.loads(u.HOSTS["db"].check_output("cat /var/backups/mysql_appdb/last-backup.json"))
    assert record["checked"] is True and u.HOSTS["db"].file(record["dump"] + ".counts").exists


def test_after_the_upgrade_the_next_converge_changes_nothing():
    pids = {n: u.lib.main_pid(u.HOSTS[n]) for n in ("a", "b")}
    rc, out = u.lib.run_playbook("converge.yml", *EDITED, check=False)
    u.ok(rc, out)
    assert {name: r["changed"] for name, r in u.recap(out).items()} == {name: 0 for name in u.recap(out)}, out[-4000:]
    assert "Looker 25.7.2, the release the cluster runs" in u.text(out)
    assert {n: u.lib.main_pid(u.HOSTS[n]) for n in ("a", "b")} == pids


def test_a_node_rebuilt_after_the_upgrade_gets_the_upgraded_release():
    """A node that comes back without jars (rebuilt, or new) joins the cluster on 25.7.2, the release
    the cluster runs after the upgrade, although the download API names 25.7.x and 25.8.x releases too."""
    b = u.HOSTS["b"]
    b.check_output("systemctl stop looker && rm -f %s/looker.jar %s/looker-dependencies.jar %s/*.previous %s/.looker-jars.json"
                   % ((u.INSTALL,) * 4))
    rc, out = u.lib.run_playbook("converge.yml", *EDITED, check=False)
    u.ok(rc, out)
    assert u.installed_release("b") == "25.7.2"
    assert u.running_release("b") == "25.7.2"
    assert u.running_release("a") == "25.7.2"


def test_an_inventory_left_on_the_old_release_is_refused():
    rc, out = u.lib.run_playbook("converge.yml", check=False)
    assert rc != 0
    assert ("The cluster runs Looker 25.7.2 (lkr-upgrade-a, lkr-upgrade-b), and looker_node_version (looker_version in the "
            "inventory) asks for 25.6.12, an older release.") in u.text(out), out[-4000:]
    assert all(r["changed"] == 0 for r in u.recap(out).values()), u.recap(out)


def test_a_downgrade_is_refused_before_anything_changes():
    pids = {n: u.lib.main_pid(u.HOSTS[n]) for n in ("a", "b")}
    rc, out = u.upgrade("rolling", "25.6.12")
    assert rc != 0
    # Refused by the release rules the role applies, before the upgrade plan is made.
    assert ("The cluster runs Looker 25.7.2 (lkr-upgrade-a), and the upgrade asks for 25.6.12, an older release. "
            "Looker migrates its application database forward only") in u.text(out), out[-4000:]
    assert "PLAY [Plan the upgrade]" not in out
    assert {n: u.lib.main_pid(u.HOSTS[n]) for n in ("a", "b")} == pids
