"""Replica swap with the capture policy, 25.8.1 -> 25.9.1 from c and d (on db2, the primary since
test_3) back onto a and b, under writes and reads through the balancer. db, rebuilt as db2's
replica, is promoted at once; c and d serve on db2 until the balancers switch. Afterwards every
write the old cluster acknowledged is on db or in the saved capture of db2's binary logs, whose
transactions are counted in the run's output and in the report beside the file."""
import upgradelib as u

RESULT = {}


def test_capture_swap_loses_no_acknowledged_write_silently():
    u.rebuild_as_replica("db", "db2")
    inventory = u.swapped_inventory("25.8.1")
    rc, out, run = u.upgrade_under_load("capture", "replica_swap", "25.9.1", "-e", "looker_upgrade_swap_policy=capture",
                                        inventory=inventory)
    u.ok(rc, out)
    report, captured = u.capture_report("db2")
    not_on_db = run.missing()
    # The stand-in stores a record's uid in a row of its own: the capture decodes rows in comments.
    lost = [uid for uid in not_on_db if "'%s'" % uid not in captured]
    figures = u.record_figures("replica_swap capture", run, lost)
    RESULT.update(out=out, report=report, not_on_db=not_on_db, figures=figures)
    assert figures["acked_writes"] > 0
    assert lost == []


def test_the_capture_is_counted_reported_and_root_only():
    report, out = RESULT["report"], u.text(RESULT["out"])
    # The old cluster served on db2 while the new nodes started and migrated: it wrote after the fork.
    assert report["transactions"] > 0 and report["transactions"] >= len(RESULT["not_on_db"])
    assert ("Capture: the old primary lkr-upgrade-db2 committed %d transactions after the fork (%s)"
            % (report["transactions"], report["fork"])) in out
    assert report["file"] in out and report["sha256"] in out
    capture = u.HOSTS["db2"].file(report["file"])
    assert capture.mode == 0o600 and capture.user == "root"
    assert u.HOSTS["db2"].check_output("sha256sum %s" % report["file"]).split()[0] == report["sha256"]


def test_the_new_cluster_runs_on_the_promoted_replica_and_the_old_primary_is_read_only():
    for name in ("a", "b"):
        assert u.running_release(name) == "25.9.1"
        assert 'host: "lkr-upgrade-db"' in u.HOSTS[name].file(u.INSTALL + "/looker-db.yml").content_string
    assert u.migrations("db", "25.9") == ["lkr-upgrade-a"]
    assert u.sql("db", "SELECT @@GLOBAL.read_only").strip() == "0"
    assert u.sql("db2", "SELECT @@GLOBAL.read_only").strip() == "1"
    for name in ("c", "d"):
        assert not u.HOSTS[name].service("looker").is_running
