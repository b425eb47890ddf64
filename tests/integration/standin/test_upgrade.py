"""Upgrades: the schema migration (one node, under a lock, /alive 503 meanwhile), the separate
migrate_db_to_looker_version step, an older jar against a newer schema, a failing migration that
leaves the database as it was, and which registered nodes count as live."""
import signal

import pytest

from standin_helpers import BUILT_IN, PLAIN_HTTP, START_BOUND, master_key, run_jar, wait_for

EXTERNAL_TLS = [PLAIN_HTTP]


@pytest.fixture
def seeded(mariadb, jars, nodes, tmp_path):
    """A database created by a 25.6.12 node with 5 records; the node is stopped."""
    db = mariadb.database("upgrade")
    shared = tmp_path / "shared"
    shared.mkdir()
    key = master_key()
    first = nodes.clustered(jars["25.6.12"], db, shared, key, extra=EXTERNAL_TLS).start().wait_alive()
    for n in range(5):
        assert first.post("/standin/records", {"payload": f"before {n}"})[0] == 201
    assert first.stop() == 0
    return {"db": db, "shared": shared, "key": key}


def non_migration_tables(db):
    snap = db.snapshot()
    snap.pop("standin_nodes")
    return snap


def test_upgrade_migrates_once_then_older_release_refused(seeded, jars, nodes):
    db, shared, key = seeded["db"], seeded["shared"], seeded["key"]
    # Two nodes of the new release start at once, with the jar's own timings (start-up 5 s, migration
    # 3 s): one migrates, the other waits for the lock; /alive answers 503 all along.
    new = [nodes.clustered(jars["25.8.3"], db, shared, key, extra=EXTERNAL_TLS, timing=BUILT_IN) for dummy in range(2)]
    for n in new:
        n.start()
    seen = set()

    def both_alive():
        states = [n.state() for n in new]
        seen.update((s or {}).get("state") for s in states)
        return all(n.alive_status() == 200 for n in new)

    wait_for(both_alive, timeout=START_BOUND, interval=0.2, what="both 25.8.3 nodes to serve")
    assert {"starting", "migrating"} <= seen, f"states seen during the upgrade: {seen}"
    assert db.query("SELECT from_schema, to_schema, release_version FROM standin_migrations ORDER BY id") == (
        (None, "25.6", "25.6.12"), ("25.6", "25.8", "25.8.3"))
    logs = [n.log() for n in new]
    assert sum("migrating the application database schema from 25.6" in log for log in logs) == 1
    assert sum("already 25.8 (migrated by another node)" in log for log in logs) == 1
    assert db.scalar("SELECT v FROM standin_meta WHERE k = 'schema_version'") == "25.8"
    assert {r[0] for r in db.query("SELECT schema_version FROM standin_records")} == {"25.8"}
    assert new[0].get("/api/4.0/versions", port="api")[1]["looker_release_version"] == "25.8.3"
    status, listing = new[1].get("/standin/records")
    assert listing["count"] == 5
    for n in new:
        assert n.stop() == 0

    # With every new node stopped, the old jar is still refused: the schema is newer than it.
    old = nodes.clustered(jars["25.6.12"], db, shared, key, extra=EXTERNAL_TLS).start()
    assert old.wait_exit() == 1
    assert "the application database schema is 25.8 (written by release 25.8.3), newer than this release 25.6.12" in old.output()
    assert db.scalar("SELECT v FROM standin_meta WHERE k = 'schema_version'") == "25.8"


def test_failed_migration_leaves_database_unchanged(seeded, jars, nodes):
    db, shared, key = seeded["db"], seeded["shared"], seeded["key"]
    before = non_migration_tables(db)
    # 25.9.0 was built with --fail-migration.
    bad = nodes.clustered(jars["25.9.0"], db, shared, key, extra=EXTERNAL_TLS).start()
    assert bad.wait_exit() == 1
    out = bad.output()
    assert "schema migration failed" in out and "rolled back" in out and "unchanged at schema 25.6" in out
    assert non_migration_tables(db) == before
    # The failed node left the registry as stopped, not live.
    assert db.scalar("SELECT state FROM standin_nodes WHERE hostname = %s", (bad.address,)) == "stopped"
    # The run-time property overrides the baked-in failure: the same jar then migrates.
    fixed = nodes.clustered(jars["25.9.0"], db, shared, key, extra=EXTERNAL_TLS,
                            java_args=["-Dstandin.migration.fail=false"]).start().wait_alive()
    assert db.scalar("SELECT v FROM standin_meta WHERE k = 'schema_version'") == "25.9"
    assert fixed.stop() == 0


def test_failed_migration_on_empty_database_creates_nothing(mariadb, jars, nodes, tmp_path):
    db = mariadb.database("emptyfail")
    bad = nodes.clustered(jars["25.8.3"], db, tmp_path, master_key(), extra=EXTERNAL_TLS,
                          java_args=["-Dstandin.migration.fail=true", "-Dstandin.migration.seconds=0"]).start()
    assert bad.wait_exit() == 1
    assert "nothing was written, the application database is unchanged" in bad.output()
    assert db.tables() == []


def test_sigterm_during_migration_rolls_back(seeded, jars, nodes):
    db, shared, key = seeded["db"], seeded["shared"], seeded["key"]
    before = non_migration_tables(db)
    node = nodes.clustered(jars["25.8.3"], db, shared, key, extra=EXTERNAL_TLS, java_args=["-Dstandin.migration.seconds=600"]).start()

    def migrating():
        assert node.proc.poll() is None, node.output()
        return "migrating the application database schema" in node.log()

    wait_for(migrating, timeout=START_BOUND, interval=0.2, what="the migration to begin")
    assert node.alive_status() == 503
    assert node.stop(signal.SIGTERM) == 0
    assert "stopped during a schema migration" in node.log()
    # The open transaction died with the connection.
    wait_for(lambda: non_migration_tables(db) == before, what="the migration's rollback")


def test_only_fresh_heartbeats_count_as_live(seeded, jars, nodes):
    db, shared, key = seeded["db"], seeded["shared"], seeded["key"]
    node = nodes.clustered(jars["25.6.12"], db, shared, key, extra=EXTERNAL_TLS).start().wait_alive()
    node.stop(signal.SIGKILL)  # no chance to mark itself stopped
    assert db.scalar("SELECT state FROM standin_nodes WHERE hostname = %s", (node.address,)) == "running"
    patch = nodes.clustered(jars["25.6.10"], db, shared, key, extra=EXTERNAL_TLS).start()
    assert patch.wait_exit() == 1
    assert f"{node.address} runs 25.6.12" in patch.output()
    # Once its heartbeat is older than the stale limit (10 s), the dead node no longer blocks.
    db.query("UPDATE standin_nodes SET heartbeat_at = NOW(3) - INTERVAL 1 MINUTE WHERE hostname = %s", (node.address,))
    again = nodes.clustered(jars["25.6.10"], db, shared, key, extra=EXTERNAL_TLS).start().wait_alive()
    assert again.get("/standin/whoami")[1]["version"] == "25.6.10"
    assert again.stop() == 0


def migrate_db(jar_dir, version, db, key, cwd, java_args=("-Dstandin.migration.seconds=1",)):
    """java -jar looker.jar migrate_db_to_looker_version VERSION, as Google's reference chart runs it
    (LOOKER_DB, the start flags after the version)."""
    return run_jar(jar_dir, ["migrate_db_to_looker_version", version, "--no-daemonize", "--no-log-to-file", "--log-format=json"],
                   cwd=cwd, env={"LOOKER_DB": db.env(), "LKR_MASTER_KEY_ENV": key}, java_args=list(java_args))


def test_migrate_db_to_looker_version(seeded, jars, nodes, tmp_path):
    db, shared, key = seeded["db"], seeded["shared"], seeded["key"]
    # Another release than the jar's, or a downgrade, is refused before anything is written.
    before = db.snapshot()
    rc, out = migrate_db(jars["25.8.3"], "25.9", db, key, tmp_path)
    assert rc == 1 and "this looker.jar is release 25.8.3" in out and "run the looker.jar of release 25.9" in out
    assert db.snapshot() == before

    rc, out = migrate_db(jars["25.8.3"], "25.8.3", db, key, tmp_path)
    assert rc == 0, out
    assert "migrated to 25.8.3 (schema 25.8)" in out and f"'{db.name}'" in out
    assert db.scalar("SELECT v FROM standin_meta WHERE k = 'schema_version'") == "25.8"
    assert {r[0] for r in db.query("SELECT schema_version FROM standin_records")} == {"25.8"}
    assert db.query("SELECT from_schema, to_schema FROM standin_migrations ORDER BY id") == ((None, "25.6"), ("25.6", "25.8"))
    assert not (tmp_path / "log" / "looker.log").exists()  # --no-log-to-file
    # Once more: nothing to do.
    rc, out = migrate_db(jars["25.8.3"], "25.8", db, key, tmp_path)
    assert rc == 0 and "is already at schema 25.8: nothing to do" in out
    # A node of the new release then starts without migrating.
    node = nodes.clustered(jars["25.8.3"], db, shared, key, extra=EXTERNAL_TLS).start().wait_alive()
    assert "migrating the application database schema" not in node.log()
    assert node.stop() == 0
    # The old jar cannot take the database back.
    before = db.snapshot()
    rc, out = migrate_db(jars["25.6.12"], "25.6.12", db, key, tmp_path)
    assert rc == 1 and "newer than this release 25.6.12" in out and "a database cannot be downgraded" in out
    assert db.snapshot() == before


def test_migrate_db_to_looker_version_failure_changes_nothing(seeded, jars, tmp_path):
    db, key = seeded["db"], seeded["key"]
    before = non_migration_tables(db)
    rc, out = migrate_db(jars["25.9.0"], "25.9.0", db, key, tmp_path)
    assert rc == 1 and "rolled back" in out and "unchanged at schema 25.6" in out
    assert non_migration_tables(db) == before
