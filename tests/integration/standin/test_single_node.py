"""Single-node mode: embedded .db/ store, self-signed TLS, logs, signals, the start-up time, and
migrate_internal_data into MySQL."""
import json
import os
import shutil
import signal
import subprocess
import time

import pytest

from standin_helpers import APP_PASSWORD, BUILT_IN, EXIT_BOUND, PLAIN_HTTP, http, ignore_sigint, run_jar, wait_for


def served_certificate(node, port="web"):
    """Subject and issuer of the certificate a node serves (read with openssl)."""
    proc = subprocess.run(
        f"openssl s_client -connect {node.address}:{node.ports[port]} </dev/null 2>/dev/null | openssl x509 -noout -subject -issuer",
        shell=True, capture_output=True, text=True, timeout=60, check=False)
    return proc.stdout


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is needed to read the served certificate")
def test_embedded_single_node(jars, nodes):
    node = nodes.node(jars["25.6.12"]).start().wait_alive()
    # Default TLS: a self-signed certificate for self-signed.looker.com on the web and the API port.
    for port in ("web", "api"):
        cert = served_certificate(node, port)
        assert "CN = self-signed.looker.com" in cert or "CN=self-signed.looker.com" in cert, cert
        assert cert.count("self-signed.looker.com") == 2  # subject == issuer
    status, versions = node.get("/api/4.0/versions", port="api")
    assert status == 200 and versions["looker_release_version"] == "25.6.12"
    for n in range(3):
        status, rec = node.post("/standin/records", {"payload": f"single {n}"})
        assert status == 201 and rec["id"] == n + 1
    state = node.state()
    assert state["database"]["kind"] == "embedded" and state["database"]["records"] == 3
    assert state["clustered"] is False and state["peers"] == []
    if not os.path.exists("/usr/bin/chromium"):
        # --concurrent-render-jobs defaults to 2 and there is no Chromium here: not healthy.
        assert state["render"]["status"] == "chromium missing" and state["healthy"] is False
        assert http("GET", node.url("/availability"))[0] == 503
    script = (node.workdir / ".db" / "looker.script").read_text()
    assert script.startswith("-- lookerops.cluster Looker stand-in embedded store")
    assert script.count('"type":"record"') == 3
    # Every request but /alive, /availability and /standin/state wrote the client's session first.
    sessions = [json.loads(line) for line in script.splitlines() if '"type":"session"' in line]
    assert sessions and sessions[-1]["client"] == "127.0.0.1" and sessions[-1]["hits"] == 4

    # A second process on the same working directory is refused: the store is locked.
    twin = nodes.node(jars["25.6.12"], workdir=node.workdir, args=[PLAIN_HTTP]).start()
    assert twin.wait_exit() == 1
    assert "is locked by another process" in twin.output()

    assert node.stop() == 0
    assert "Looker stand-in stopped cleanly" in node.log()
    # Restarted: the data is still there and ids continue.
    again = nodes.node(jars["25.6.12"], workdir=node.workdir).start().wait_alive()
    status, listing = again.get("/standin/records")
    assert listing["count"] == 3 and [r["payload"] for r in listing["records"]] == ["single 0", "single 1", "single 2"]
    assert again.post("/standin/records", {"payload": "after restart"})[1]["id"] == 4
    assert again.stop() == 0
    log = again.log()
    assert "Looker STAND-IN (a test double, not Looker) release 25.6.12" in log


def test_json_logs_and_plain_http(jars, nodes):
    node = nodes.node(jars["25.6.12"], args=[PLAIN_HTTP, "--log-format=json", "--scheduler-threads", "0",
                                             "--concurrent-render-jobs", "0"]).start().wait_alive()
    assert node.url("/alive").startswith("http://")
    status, who = node.get("/standin/whoami")
    assert status == 200 and who["version"] == "25.6.12" and "stand-in" in who["standin"]
    state = node.state()
    assert state["render"]["status"] == "disabled" and state["scheduler"]["status"] == "disabled"
    assert state["healthy"] is True
    # The helpers start every node with SIGINT at its default, whatever the test runner ignores.
    assert state["ignored_signals"] == []
    assert node.stop(signal.SIGINT) == 0
    lines = [json.loads(line) for line in node.log().splitlines()]
    assert lines and all({"timestamp", "level", "message"} <= set(line) for line in lines)
    assert any("STAND-IN" in line["message"] for line in lines)
    assert any("SIGINT received" in line["message"] for line in lines)


def test_a_sigint_ignored_by_the_parent_is_reported(jars, nodes):
    """The flake of issue 15: run from a background job of a non-interactive shell, the JVM inherits
    SIGINT ignored and cannot handle it. The node says so at start and still stops on SIGTERM."""
    node = nodes.node(jars["25.6.12"], args=[PLAIN_HTTP, "--scheduler-threads", "0", "--concurrent-render-jobs", "0"])
    node.start(preexec_fn=ignore_sigint).wait_alive()
    assert node.state()["ignored_signals"] == ["SIGINT"]
    assert "SIGINT ignored" in node.log() and "will NOT stop this node; stop it with SIGTERM" in node.log()
    assert node.stop(signal.SIGTERM) == 0
    assert "Looker stand-in stopped cleanly" in node.log()


def test_start_up_takes_the_built_in_time(jars, nodes):
    """build.sh's default start-up (5 s): bound to its ports at once, but /alive 503 until then."""
    node = nodes.node(jars["25.6.12"], timing=BUILT_IN, args=[PLAIN_HTTP, "--scheduler-threads", "0", "--concurrent-render-jobs", "0"])
    started = time.monotonic()
    node.start()
    state = wait_for(node.state, timeout=120, interval=0.1, what="the node's listeners")
    assert state["state"] == "starting"
    status, dummy, body = http("GET", node.url("/alive"))
    assert (status, body) == (503, b"starting\n")
    assert http("GET", node.url("/availability"))[0] == 503
    assert node.get("/api/4.0/versions", port="api")[0] == 503
    node.wait_alive()
    assert time.monotonic() - started >= 5
    assert "stand-in start-up time 5 s" in node.log()
    assert node.stop() == 0


@pytest.mark.skipif(shutil.which("keytool") is None, reason="keytool is needed to make a keystore")
def test_own_keystore(jars, nodes, tmp_path):
    ks = tmp_path / "custom.p12"
    subprocess.run(["keytool", "-genkeypair", "-alias", "x", "-keyalg", "EC", "-dname", "CN=looker.example.com", "-storetype", "PKCS12",
                    "-keystore", str(ks), "-storepass", "kspass123", "-keypass", "kspass123"], check=True, capture_output=True)
    (tmp_path / "ks.pass").write_text("kspass123\n")
    node = nodes.node(jars["25.6.12"], args=["--ssl-keystore", str(ks), "--ssl-keystore-pass-file", str(tmp_path / "ks.pass"),
                                             "--concurrent-render-jobs", "0"]).start().wait_alive()
    assert "looker.example.com" in served_certificate(node)
    assert not (node.workdir / ".ssl").exists()
    assert "kspass123" not in node.log()


def test_migrate_internal_data(jars, nodes, mariadb):
    db = mariadb.database("hsql")
    node = nodes.node(jars["25.6.12"], args=[PLAIN_HTTP]).start().wait_alive()
    uids = [node.post("/standin/records", {"payload": f"p{n}"})[1]["uid"] for n in range(5)]
    yml = db.write_yml(node.workdir / "looker-db.yml")
    # Refused while the embedded store is in use.
    rc, out = run_jar(node.jar_dir, ["migrate_internal_data", str(yml)], cwd=node.workdir)
    assert rc == 1 and "stop Looker before migrating" in out
    assert node.stop() == 0

    rc, out = run_jar(node.jar_dir, ["migrate_internal_data", str(yml)], cwd=node.workdir)
    assert rc == 0, out
    assert "copied 5 records" in out and f"'{db.name}'" in out
    assert APP_PASSWORD not in out and APP_PASSWORD not in node.log()
    rows = db.query("SELECT uid, payload, origin FROM standin_records ORDER BY id")
    assert [r[0] for r in rows] == uids and {r[2] for r in rows} == {"embedded"}
    assert db.scalar("SELECT v FROM standin_meta WHERE k = 'schema_version'") == "25.6"
    # A second run finds Looker data in the target: refused, nothing copied.
    before = db.snapshot()
    rc, out = run_jar(node.jar_dir, ["migrate_internal_data", str(yml)], cwd=node.workdir)
    assert rc == 1, out
    assert f"the target database '{db.name}' on {db.host}:3306 already holds Looker data" in out
    assert "standin_records: 5 rows" in out and "nothing was copied" in out
    assert db.snapshot() == before

    # The same directory now runs on MySQL, here given by LOOKER_DB instead of -d.
    on_mysql = nodes.node(jars["25.6.12"], workdir=node.workdir, env={"LOOKER_DB": db.env()}, args=[PLAIN_HTTP]).start().wait_alive()
    state = on_mysql.state()
    assert state["database"]["kind"] == "mysql" and state["database"]["database"] == db.name
    status, listing = on_mysql.get("/standin/records")
    assert listing["count"] == 5
    assert on_mysql.post("/standin/records", {"payload": "on mysql"})[0] == 201
    assert db.scalar("SELECT COUNT(*) FROM standin_records") == 6
    assert on_mysql.stop() == 0


def test_migrate_internal_data_refuses_any_looker_data_in_the_target(jars, nodes, mariadb):
    """Even a database where a node only ran (schema, registry, sessions; no records) is refused."""
    db = mariadb.database("used")
    source = nodes.node(jars["25.6.12"], args=[PLAIN_HTTP]).start().wait_alive()
    source.post("/standin/records", {"payload": "embedded"})
    assert source.stop() == 0
    used = nodes.node(jars["25.6.12"], env={"LOOKER_DB": db.env()}, args=[PLAIN_HTTP]).start().wait_alive()
    assert used.stop() == 0
    before = db.snapshot()
    rc, out = run_jar(source.jar_dir, ["migrate_internal_data", str(db.write_yml(source.workdir / "looker-db.yml"))],
                      cwd=source.workdir)
    assert rc == 1 and "already holds Looker data (standin_meta:" in out and "standin_nodes: 1 row" in out
    assert db.snapshot() == before


def test_migrate_internal_data_needs_an_embedded_store(jars, mariadb, tmp_path):
    yml = mariadb.database("nohsql").write_yml(tmp_path / "looker-db.yml")
    rc, out = run_jar(jars["25.6.12"], ["migrate_internal_data", str(yml)], cwd=tmp_path)
    assert rc == 1 and "no embedded database to migrate" in out


def test_http_rejects_bad_requests(jars, nodes):
    node = nodes.node(jars["25.6.12"], args=[PLAIN_HTTP, "--concurrent-render-jobs", "0"]).start().wait_alive()
    assert http("POST", node.url("/standin/records"), b"not json")[0] == 400
    assert http("PUT", node.url("/standin/models/../../etc/passwd"), b"x")[0] in (400, 404)
    assert http("GET", node.url("/standin/models/missing.lkml"))[0] == 404
    assert http("GET", node.url("/nope"))[0] == 404


def test_without_no_daemonize_goes_to_background(jars, tmp_path, free_port):
    """The command returns while the node it started in the background is still starting."""
    ports = [str(free_port()) for dummy in range(4)]
    rc, out = run_jar(jars["25.6.12"], ["start", "-p", ports[0], "--core-port", ports[1], "-n", ports[2], "-q", ports[3],
                                        PLAIN_HTTP, "--concurrent-render-jobs", "0"], cwd=tmp_path,
                      java_args=["-Dstandin.startup.seconds=600"])
    assert rc == 0 and "started in the background" in out
    url = f"http://127.0.0.1:{ports[0]}/standin/state"

    def state():
        try:
            status, dummy, body = http("GET", url, timeout=5)
        except OSError:
            return None
        return json.loads(body) if status == 200 else None

    pid = None
    try:
        seen = wait_for(state, timeout=120, what=f"the background node ({tmp_path / 'log' / 'looker.out'})")
        pid = seen["pid"]
        assert seen["state"] == "starting"  # the command did not wait for it
        assert "--no-daemonize" in open(f"/proc/{pid}/cmdline").read().split("\0")
    finally:
        if pid:
            os.kill(pid, signal.SIGTERM)
            wait_for(lambda: not os.path.exists(f"/proc/{pid}"), timeout=EXIT_BOUND, what=f"pid {pid} to exit")
    assert "stopped cleanly" in (tmp_path / "log" / "looker.log").read_text()


def test_unreachable_database_refused_after_waiting(jars, nodes, free_port):
    node = nodes.node(jars["25.6.12"], java_args=["-Dstandin.db.wait.seconds=2"], args=[PLAIN_HTTP],
                      env={"LOOKER_DB": f"dialect=mysql&host=127.0.0.1&port={free_port()}&username=u&password=pw-not-logged&database=d"})
    node.start()
    assert node.alive_status() in (None, 503)
    assert node.wait_exit() == 1
    assert "application database mysql://u@127.0.0.1" in node.output() and "unreachable for 2 s" in node.output()
    assert "pw-not-logged" not in node.output()
