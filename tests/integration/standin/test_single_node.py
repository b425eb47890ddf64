"""Single-node mode: embedded .db/ store, self-signed TLS, logs, and migrate_internal_data into MySQL."""
import json
import os
import shutil
import signal
import subprocess
import time

import pytest

from standin_helpers import APP_PASSWORD, http, run_jar


def served_certificate(node, port="web"):
    """Subject and issuer of the certificate a node serves (read with openssl)."""
    proc = subprocess.run(
        f"openssl s_client -connect {node.address}:{node.ports[port]} </dev/null 2>/dev/null | openssl x509 -noout -subject -issuer",
        shell=True, capture_output=True, text=True, timeout=30, check=False)
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
    status, avail = node.get("/availability")
    assert avail["database"]["kind"] == "embedded" and avail["database"]["records"] == 3
    assert avail["clustered"] is False and avail["peers"] == []
    if not os.path.exists("/usr/bin/chromium"):
        # --concurrent-render-jobs defaults to 2 and there is no Chromium here: not healthy.
        assert avail["render"]["status"] == "chromium missing" and avail["healthy"] is False
    script = (node.workdir / ".db" / "looker.script").read_text()
    assert script.startswith("-- lookerops.cluster Looker stand-in embedded store")
    assert script.count('"type":"record"') == 3

    # A second process on the same working directory is refused: the store is locked.
    twin = nodes.node(jars["25.6.12"], workdir=node.workdir, args=["--ssl-provided-externally-by=lb"]).start()
    assert twin.wait_exit(30) == 1
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
    node = nodes.node(jars["25.6.12"], args=["--ssl-provided-externally-by=lb.example.com", "--log-format=json",
                                             "--scheduler-threads", "0", "--concurrent-render-jobs", "0"]).start().wait_alive()
    assert node.url("/alive").startswith("http://")
    status, who = node.get("/standin/whoami")
    assert status == 200 and who["version"] == "25.6.12" and "stand-in" in who["standin"]
    status, avail = node.get("/availability")
    assert avail["render"]["status"] == "disabled" and avail["scheduler"]["status"] == "disabled"
    assert avail["healthy"] is True
    assert node.stop(signal.SIGINT) == 0
    lines = [json.loads(line) for line in node.log().splitlines()]
    assert lines and all({"timestamp", "level", "message"} <= set(line) for line in lines)
    assert any("STAND-IN" in line["message"] for line in lines)


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
    node = nodes.node(jars["25.6.12"], args=["--ssl-provided-externally-by=lb"]).start().wait_alive()
    uids = [node.post("/standin/records", {"payload": f"p{n}"})[1]["uid"] for n in range(5)]
    yml = db.write_yml(node.workdir / "looker-db.yml")
    # Refused while the embedded store is in use.
    rc, out = run_jar(node.jar_dir, ["migrate_internal_data", str(yml)], cwd=node.workdir)
    assert rc == 1 and "stop Looker before migrating" in out
    assert node.stop() == 0

    rc, out = run_jar(node.jar_dir, ["migrate_internal_data", str(yml)], cwd=node.workdir)
    assert rc == 0, out
    assert "copied 5 of 5 records" in out
    assert APP_PASSWORD not in out and APP_PASSWORD not in node.log()
    rows = db.query("SELECT uid, payload, origin FROM standin_records ORDER BY id")
    assert [r[0] for r in rows] == uids and {r[2] for r in rows} == {"embedded"}
    assert db.scalar("SELECT v FROM standin_meta WHERE k = 'schema_version'") == "25.6"
    # Idempotent.
    rc, out = run_jar(node.jar_dir, ["migrate_internal_data", str(yml)], cwd=node.workdir)
    assert rc == 0 and "copied 0 of 5 records" in out and "(5 already present)" in out
    assert db.scalar("SELECT COUNT(*) FROM standin_records") == 5

    # The same directory now runs on MySQL, here given by LOOKER_DB instead of -d.
    on_mysql = nodes.node(jars["25.6.12"], workdir=node.workdir, env={"LOOKER_DB": db.env()},
                          args=["--ssl-provided-externally-by=lb"]).start().wait_alive()
    status, avail = on_mysql.get("/availability")
    assert avail["database"]["kind"] == "mysql" and avail["database"]["database"] == db.name
    status, listing = on_mysql.get("/standin/records")
    assert listing["count"] == 5
    assert on_mysql.post("/standin/records", {"payload": "on mysql"})[0] == 201
    assert db.scalar("SELECT COUNT(*) FROM standin_records") == 6
    assert on_mysql.stop() == 0


def test_migrate_internal_data_needs_an_embedded_store(jars, mariadb, tmp_path):
    yml = mariadb.database("nohsql").write_yml(tmp_path / "looker-db.yml")
    rc, out = run_jar(jars["25.6.12"], ["migrate_internal_data", str(yml)], cwd=tmp_path)
    assert rc == 1 and "no embedded database to migrate" in out


def test_http_rejects_bad_requests(jars, nodes):
    node = nodes.node(jars["25.6.12"], args=["--ssl-provided-externally-by=lb", "--concurrent-render-jobs", "0"]).start().wait_alive()
    assert http("POST", node.url("/standin/records"), b"not json")[0] == 400
    assert http("PUT", node.url("/standin/models/../../etc/passwd"), b"x")[0] in (400, 404)
    assert http("GET", node.url("/standin/models/missing.lkml"))[0] == 404
    assert http("GET", node.url("/nope"))[0] == 404


def test_without_no_daemonize_goes_to_background(jars, tmp_path, free_port):
    ports = [str(free_port()) for dummy in range(4)]
    started = time.time()
    rc, out = run_jar(jars["25.6.12"], ["start", "-p", ports[0], "--core-port", ports[1], "-n", ports[2], "-q", ports[3],
                                        "--ssl-provided-externally-by=lb", "--concurrent-render-jobs", "0"], cwd=tmp_path)
    assert rc == 0 and "started in the background" in out
    assert time.time() - started < 15
    pid = None
    try:
        deadline = time.time() + 30
        while pid is None:
            try:
                status, dummy, body = http("GET", f"http://127.0.0.1:{ports[0]}/standin/whoami", timeout=2)
                pid = json.loads(body)["pid"] if status == 200 else None
            except OSError:
                pass
            assert pid or time.time() < deadline, (tmp_path / "log" / "looker.out").read_text()
            time.sleep(0.2)
        assert "--no-daemonize" in open(f"/proc/{pid}/cmdline").read().split("\0")
    finally:
        if pid:
            os.kill(pid, signal.SIGTERM)
            while os.path.exists(f"/proc/{pid}") and "stopped cleanly" not in (tmp_path / "log" / "looker.log").read_text():
                time.sleep(0.1)


def test_unreachable_database_refused_after_waiting(jars, nodes, free_port):
    node = nodes.node(jars["25.6.12"], java_args=["-Dstandin.db.wait.seconds=2"], args=["--ssl-provided-externally-by=lb"],
                      env={"LOOKER_DB": f"dialect=mysql&host=127.0.0.1&port={free_port()}&username=u&password=pw-not-logged&database=d"})
    node.start()
    assert node.alive_status() in (None, 503)
    assert node.wait_exit(30) == 1
    assert "application database mysql://u@127.0.0.1" in node.output() and "unreachable for 2 s" in node.output()
    assert "pw-not-logged" not in node.output()
