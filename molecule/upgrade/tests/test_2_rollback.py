"""A rolling upgrade to 25.8.0, whose migration (migrate_db_to_looker_version) fails: the verified dump and the 25.7.2 jars come
back, 25.7.2 serves again with every acknowledged write, and the play fails saying so. The download
API is down throughout (the controller holds 25.8.0 from an earlier download): the rollback needs
nothing from it, the nodes kept their previous jars."""
import upgradelib as u


def test_a_failed_migration_is_rolled_back_with_all_data():
    before = int(u.sql("db", "SELECT COUNT(*) FROM standin_records"))
    u.seed_jar_cache("25.8.0")
    with u.lib.download_api_down():
        rc, out, run = u.upgrade_under_load("rollback", "rolling", "25.8.0")
    assert rc != 0
    said = u.text(out)
    assert "The upgrade from 25.7.2 to 25.8.0 failed" in said and "was rolled back: the cluster runs 25.7.2 again" in said
    # Looker's migration command failed, by its exit status: no start waited for /alive in vain.
    assert "lkr-upgrade-a: Migrate the application database to 25.8.0" in said, said[-3000:]
    missing = run.missing()
    figures = u.record_figures("rolling, failed migration", run, missing)
    assert missing == []
    assert int(u.sql("db", "SELECT COUNT(*) FROM standin_records")) >= before + figures["acked_writes"]
    for name in ("a", "b"):
        assert u.running_release(name) == "25.7.2"
        assert u.installed_release(name) == "25.7.2"
        assert not u.HOSTS[name].file(u.INSTALL + "/.deploying").exists
    assert u.sql("db", "SELECT v FROM standin_meta WHERE k = 'schema_version'").strip() == "25.7"
    assert u.migrations("db", "25.8") == []
    assert u.log_has("a", r"migration .*fail|rolled back")


def test_a_failure_before_the_stop_changes_nothing():
    """b cannot stage the new jars (a file where its staging directory goes): no node is stopped,
    nothing is rolled back, and the play says so."""
    pids = {n: u.lib.main_pid(u.HOSTS[n]) for n in ("a", "b")}
    blocker = u.INSTALL + "/.staging"
    u.HOSTS["b"].check_output("rm -rf %s && touch %s" % (blocker, blocker))
    try:
        rc, out = u.upgrade("rolling", "25.8.0")
    finally:
        u.HOSTS["b"].check_output("rm -f %s" % blocker)
    assert rc != 0
    said = u.text(out)
    assert "The upgrade from 25.7.2 to 25.8.0 failed before any node was stopped (" in said, said[-3000:]
    assert "lkr-upgrade-b: Create the staging directory: /home/looker/looker/.staging already exists as a file" in said
    assert ("lkr-upgrade-a: its pass was ended by another node's failure" in said
            or "lkr-upgrade-a: unreachable, or its pass was ended by another node's failure" in said)
    assert "nothing was changed, every node serves 25.7.2" in said
    # Every node's pass ended before the stop; no rollback step ran.
    assert "Stop the nodes of another release" not in said
    assert "PLAY [Rolling upgrade, rollback - restore the proven dump]" not in said
    assert {n: u.lib.main_pid(u.HOSTS[n]) for n in ("a", "b")} == pids
    for name in ("a", "b"):
        assert u.running_release(name) == "25.7.2" and u.installed_release(name) == "25.7.2"
