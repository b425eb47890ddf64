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
