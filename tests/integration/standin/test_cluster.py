"""Cluster mode against a real MariaDB: two nodes that see each other, shared records and model
files, the node registry, the scheduler, the refusals, a database restart and a clean stop."""
import os
import signal
import socket
import uuid

import pytest

from standin_helpers import APP_PASSWORD, PLAIN_HTTP, http, master_key, wait_for


@pytest.fixture(scope="module")
def cluster(mariadb, jars, module_nodes, tmp_path_factory):
    """Node a (scheduler on, fake Chromium, analytics replica file) and node b (no scheduler, no
    rendering, master key from a file), both 25.6.12, on one database and one shared directory."""
    base = tmp_path_factory.mktemp("cluster")
    db = mariadb.database("cluster")
    shared = base / "shared"
    shared.mkdir()
    key = master_key()
    bin_dir = base / "bin"
    bin_dir.mkdir()
    (bin_dir / "chromium").write_text("#!/bin/sh\nexit 0\n")
    os.chmod(bin_dir / "chromium", 0o755)
    key_file = base / "master.key"
    key_file.write_text(key + "\n")
    analytics = db.write_yml(base / "analytics-db.yml")
    fast = ["-Dstandin.scheduler.seconds=1"]
    a = module_nodes.clustered(jars["25.6.12"], db, shared, key, java_args=fast,
                               env={"PATH": f"{bin_dir}:{os.environ['PATH']}"},
                               extra=[PLAIN_HTTP, "--internal-analytics-connection-file", str(analytics),
                                      "--monitoring-port", "1552", "--apply-db-migrations", "--log-format", "text"])
    b = module_nodes.node(jars["25.6.12"], java_args=fast, env={"LKR_MASTER_KEY_FILE": str(key_file)})
    b.workdir.mkdir(parents=True)
    b.args += ["--clustered", "--hostname", b.address, "--internal-db-creds", str(db.write_yml(b.workdir / "looker-db.yml")),
               "--shared-storage-dir", str(shared), "--scheduler-threads", "0", "--concurrent-render-jobs", "0",
               PLAIN_HTTP]
    a.start()
    b.start()
    a.wait_alive()
    b.wait_alive()
    return {"a": a, "b": b, "db": db, "shared": shared, "key": key, "nodes": module_nodes, "jars": jars}


def test_schema_created_once_and_nodes_registered(cluster):
    db, a, b = cluster["db"], cluster["a"], cluster["b"]
    assert db.query("SELECT from_schema, to_schema, release_version FROM standin_migrations") == ((None, "25.6", "25.6.12"),)
    rows = {r[0]: r[1:] for r in db.query(
        "SELECT hostname, version, state, web_port, api_port, node_port, queue_port FROM standin_nodes")}
    assert rows[a.address] == ("25.6.12", "running", a.ports["web"], a.ports["api"], a.ports["node"], a.ports["queue"])
    assert rows[b.address] == ("25.6.12", "running", b.ports["web"], b.ports["api"], b.ports["node"], b.ports["queue"])
    # Heartbeats move on; the key is stored as a salted hash only.
    before = db.scalar("SELECT heartbeat_at FROM standin_nodes WHERE hostname = %s", (a.address,))
    wait_for(lambda: db.scalar("SELECT heartbeat_at FROM standin_nodes WHERE hostname = %s", (a.address,)) > before,
             what="a newer heartbeat")
    check = db.scalar("SELECT v FROM standin_meta WHERE k = 'master_key_check'")
    assert check.startswith("v1:") and cluster["key"] not in check


def test_nodes_see_each_other_on_1551_and_61616(cluster):
    a, b = cluster["a"], cluster["b"]
    for me, peer in ((a, b), (b, a)):
        state = me.state()
        assert [p["hostname"] for p in state["peers"]] == [peer.address]
        seen = state["peers"][0]
        assert seen["node_to_node"] == {"port": peer.ports["node"], "reachable": True}
        assert seen["queue_broker"] == {"port": peer.ports["queue"], "reachable": True}
        assert state["database"]["status"] == "ok" and state["shared_storage"]["writable"] is True
        assert state["healthy"] is True, state
        assert http("GET", me.url("/availability"))[0] == 200
        # The peer's own probes arrived on this node's listeners.
        inbound = wait_for(lambda: {(i["hostname"], i["port"]) for i in me.state()["inbound_peers"]} or None,
                           what="inbound peer connections")
        assert {(peer.address, "node"), (peer.address, "queue")} <= inbound


def test_link_handshake_needs_the_cluster_secret(cluster):
    a = cluster["a"]
    with socket.create_connection((a.address, a.ports["node"]), timeout=5) as sock:
        stream = sock.makefile("rw")
        banner = stream.readline().split()
        assert banner[:5] == ["STANDIN-LINK", "1", "node", a.address, "25.6.12"]
        stream.write("HELLO intruder " + "0" * 64 + "\n")
        stream.flush()
        assert stream.readline().startswith("DENIED")
    with socket.create_connection((a.address, a.ports["queue"]), timeout=5) as sock:
        assert sock.makefile().readline().split()[2] == "queue"


def test_records_are_shared_and_acknowledged_after_commit(cluster):
    a, b, db = cluster["a"], cluster["b"], cluster["db"]
    start = db.scalar("SELECT COUNT(*) FROM standin_records")
    written = []
    for n in range(20):
        node = (a, b)[n % 2]
        status, rec = node.post("/standin/records", {"payload": f"r{n}"})
        assert status == 201 and rec["answered_by"] == node.address and rec["node"] == node.address
        written.append(rec["uid"])
    status, listing = b.get("/standin/records")
    assert listing["count"] == start + 20
    assert set(written) <= {r["uid"] for r in listing["records"]}
    assert db.scalar("SELECT COUNT(*) FROM standin_records") == start + 20
    # A retried write (same uid) is not duplicated.
    status, again = a.post("/standin/records", {"uid": written[0], "payload": "retry"})
    assert status == 200 and again["created"] is False and again["payload"] == "r0"
    assert db.scalar("SELECT COUNT(*) FROM standin_records") == start + 20


def test_model_files_on_shared_storage(cluster):
    a, b = cluster["a"], cluster["b"]
    body = f"view: orders {{ sql_table_name: orders ;; }} # {uuid.uuid4()}\n".encode()
    status, dummy, data = http("PUT", a.url("/standin/models/ecommerce/orders.view.lkml"), body)
    assert status == 201
    assert (cluster["shared"] / "models" / "ecommerce" / "orders.view.lkml").read_bytes() == body
    status, headers, data = http("GET", b.url("/standin/models/ecommerce/orders.view.lkml"))
    assert status == 200 and data == body and headers["X-Standin-Node"] == b.address


def test_which_node_answered_and_versions(cluster):
    a, b = cluster["a"], cluster["b"]
    assert a.get("/standin/whoami")[1]["hostname"] == a.address
    assert b.get("/standin/whoami", port="api")[1]["hostname"] == b.address
    for node in (a, b):
        status, versions = node.get("/api/4.0/versions", port="api")
        assert status == 200 and versions["looker_release_version"] == "25.6.12"


def test_scheduler_and_render(cluster):
    a, b, db = cluster["a"], cluster["b"], cluster["db"]
    wait_for(lambda: db.scalar("SELECT COUNT(*) FROM standin_scheduler_runs WHERE node = %s", (a.address,)) >= 2,
             what="scheduler runs of node a")
    assert db.scalar("SELECT COUNT(*) FROM standin_scheduler_runs WHERE node = %s", (b.address,)) == 0
    av_a, av_b = a.state(), b.state()
    assert av_a["scheduler"]["status"] == "ok" and av_a["scheduler"]["runs"] >= 2
    assert av_b["scheduler"] == {**av_b["scheduler"], "threads": 0, "status": "disabled", "runs": 0}
    assert av_a["render"]["status"] == "ok" and av_a["render"]["chromium"].endswith("/bin/chromium")
    assert av_b["render"]["status"] == "disabled"
    assert av_a["analytics_database"]["status"] == "ok"


def test_another_release_refused_while_nodes_live(cluster):
    db = cluster["db"]
    before = db.snapshot()
    other = cluster["nodes"].clustered(cluster["jars"]["25.6.10"], db, cluster["shared"], cluster["key"],
                                       extra=[PLAIN_HTTP]).start()
    assert other.wait_exit() == 1
    assert "a live node of another release is registered" in other.output()
    assert "runs 25.6.12" in other.output() and "Never run two Looker versions" in other.output()
    after = db.snapshot()
    assert after["standin_records"] == before["standin_records"] and after["standin_meta"] == before["standin_meta"]
    assert other.address not in {r[0] for r in db.query("SELECT hostname FROM standin_nodes")}


def test_wrong_master_key_refused(cluster):
    other = cluster["nodes"].clustered(cluster["jars"]["25.6.12"], cluster["db"], cluster["shared"], master_key(),
                                       extra=[PLAIN_HTTP]).start()
    assert other.wait_exit() == 1
    assert "does not match the one this application database was set up with" in other.output()


def test_missing_master_key_refused_by_keyed_database(cluster):
    # A single node (no --clustered, so no key needed by the flags) against the cluster's database.
    other = cluster["nodes"].node(cluster["jars"]["25.6.12"], env={"LOOKER_DB": cluster["db"].env()},
                                  args=[PLAIN_HTTP]).start()
    assert other.wait_exit() == 1
    assert "encrypted with a master key but neither LKR_MASTER_KEY_ENV nor LKR_MASTER_KEY_FILE is set" in other.output()


def test_duplicate_hostname_refused(cluster):
    a = cluster["a"]
    other = cluster["nodes"].clustered(cluster["jars"]["25.6.12"], cluster["db"], cluster["shared"], cluster["key"],
                                       address=a.address, extra=[PLAIN_HTTP]).start()
    assert other.wait_exit() == 1
    assert f"hostname {a.address} is already registered by a live node" in other.output()


def test_unreachable_peer_reported(cluster, free_port):
    a, db = cluster["a"], cluster["db"]
    ghost = "127.0.0.254"
    db.query("INSERT INTO standin_nodes (hostname, instance_id, version, web_port, api_port, node_port, queue_port, state, started_at,"
             " heartbeat_at) VALUES (%s, 'ghost', '25.6.12', 1, 2, %s, %s, 'running', NOW(3), NOW(3) + INTERVAL 1 MINUTE)",
             (ghost, free_port(), free_port()))
    try:
        state = a.state()
        ghost_view = [p for p in state["peers"] if p["hostname"] == ghost][0]
        assert ghost_view["node_to_node"]["reachable"] is False and ghost_view["queue_broker"]["reachable"] is False
        assert "refused" in ghost_view["node_to_node"]["error"].lower()
        assert state["healthy"] is False
        assert http("GET", a.url("/availability"))[0] == 503
    finally:
        db.query("DELETE FROM standin_nodes WHERE hostname = %s", (ghost,))
    assert a.state()["healthy"] is True
    assert http("GET", a.url("/availability"))[0] == 200


def test_database_restart(cluster, mariadb):
    a, db = cluster["a"], cluster["db"]
    acked = []
    mariadb.systemctl("stop")
    try:
        status, answer = a.post("/standin/records", {"payload": "while down"})
        assert status == 503 and "application database unavailable" in answer["error"]
        assert a.get("/standin/records")[0] == 503  # reads too: every request writes its session
        state = a.state()
        assert state["database"]["status"] == "error" and state["healthy"] is False
        assert http("GET", a.url("/availability"))[0] == 503
        assert a.alive_status() == 200  # the web server still answers
        wait_for(lambda: "application database unreachable (heartbeat)" in a.log(), what="a failed heartbeat")
    finally:
        mariadb.systemctl("start")

    def write():
        status, rec = a.post("/standin/records", {"payload": "after restart"})
        if status == 201:
            acked.append(rec["uid"])
        return status == 201

    wait_for(write, timeout=120, interval=1, what="a write after the database restart")
    assert db.scalar("SELECT COUNT(*) FROM standin_records WHERE uid = %s", (acked[0],)) == 1
    assert db.scalar("SELECT COUNT(*) FROM standin_records WHERE payload = 'while down'") == 0
    # Heartbeats resume on new connections.
    beat = "SELECT heartbeat_at FROM standin_nodes WHERE hostname = %s"
    last = db.scalar(beat, (a.address,))
    wait_for(lambda: db.scalar(beat, (a.address,)) > last, what="heartbeats after the restart")
    wait_for(lambda: "application database reachable again" in a.log(), what="the recovery in the log")


def test_sigterm_stops_cleanly(cluster):
    a, b, db = cluster["a"], cluster["b"], cluster["db"]
    assert b.stop(signal.SIGTERM) == 0
    assert db.scalar("SELECT state FROM standin_nodes WHERE hostname = %s", (b.address,)) == "stopped"
    assert a.state()["peers"] == []
    assert a.stop(signal.SIGTERM) == 0
    for node in (a, b):
        log = node.log()
        assert "Looker STAND-IN (a test double, not Looker)" in log and "stopped cleanly" in log
        assert APP_PASSWORD not in log and cluster["key"] not in log and APP_PASSWORD not in node.output()
