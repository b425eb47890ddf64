"""What the stand-in shows of itself: Looker's documented surfaces only (/availability is a status
code), plain HTTP only to the TLS terminator, and a session write in the application database on
every request, so that a read-only database fails reads as Looker's would."""
from http.client import HTTPConnection, IncompleteRead

import pytest

from standin_helpers import APP_USER, PLAIN_HTTP, TEST_CLIENT, http

QUIET = ["--scheduler-threads", "0", "--concurrent-render-jobs", "0"]
PATHS = ["/alive", "/availability", "/", "/api/4.0/versions", "/standin/state", "/standin/whoami", "/standin/records"]


def test_availability_is_a_status_code_with_an_opaque_body(jars, nodes):
    healthy = nodes.node(jars["25.6.12"], args=[PLAIN_HTTP, *QUIET]).start().wait_alive()
    status, headers, body = http("GET", healthy.url("/availability"))
    assert (status, body) == (200, b"ok\n") and headers["Content-Type"].startswith("text/plain")
    assert http("GET", healthy.url("/availability?mode=pod-liveness"))[0] == 200
    # The introspection the tests need lives under /standin/, with the fields /availability once had.
    state = healthy.state()
    assert {"hostname", "version", "state", "clustered", "healthy", "database", "shared_storage", "peers", "inbound_peers",
            "scheduler", "render"} <= set(state)
    # Not healthy (render jobs without Chromium): 503, and still nothing to parse.
    sick = nodes.node(jars["25.6.12"], args=[PLAIN_HTTP, "--scheduler-threads", "0", "--concurrent-render-jobs", "1"],
                      env={"PATH": "/nonexistent"}).start().wait_alive()
    if sick.state()["render"]["status"] == "ok":
        pytest.skip("/usr/bin/chromium exists here")
    status, dummy, body = http("GET", sick.url("/availability"))
    assert (status, body) == (503, b"unavailable\n")
    assert sick.alive_status() == 200  # /alive: the web server answers


@pytest.mark.parametrize("terminator", ["127.0.0.77", "localhost"])
def test_plain_http_only_from_the_tls_terminator(jars, nodes, terminator):
    """--ssl-provided-externally-by=HOST: HOST's addresses (an IP literal is itself; localhost is
    127.0.0.1 in /etc/hosts) get plain HTTP on every path of both ports; every other source 403."""
    accepted = "127.0.0.77" if terminator == "127.0.0.77" else TEST_CLIENT
    refused = [TEST_CLIENT, "127.0.0.78"] if terminator == "127.0.0.77" else ["127.0.0.78"]
    node = nodes.node(jars["25.6.12"], args=[f"--ssl-provided-externally-by={terminator}", *QUIET],
                      client_source=accepted).start().wait_alive()
    for port in ("web", "api"):
        for path in PATHS:
            assert http("GET", node.url(path, port), source=accepted)[0] == 200, (port, path)
        for source in refused:
            for path in PATHS:
                status, dummy, body = http("GET", node.url(path, port), source=source)
                text = body.decode()
                assert status == 403, (port, path, source, text)
                assert f"TLS is provided externally by {terminator}" in text and f"this source ({source}) is refused" in text
            assert http("POST", node.url("/standin/records", port), {"payload": "refused"}, source=source)[0] == 403
    status, listing = node.get("/standin/records")
    assert listing["count"] == 0
    assert f"this source ({refused[0]}) is refused" in node.log()


def test_every_request_but_health_checks_writes_a_session(jars, nodes, mariadb):
    db = mariadb.database("sessions")
    node = nodes.node(jars["25.6.12"], env={"LOOKER_DB": db.env()}, args=[PLAIN_HTTP, *QUIET]).start().wait_alive()
    for path in ("/alive", "/availability", "/standin/state") * 3:
        assert http("GET", node.url(path))[0] == 200
    assert db.query("SELECT client, hits FROM standin_sessions") == ()
    assert node.get("/api/4.0/versions", port="api")[0] == 200
    status, who = node.get("/standin/whoami")
    assert status == 200
    assert node.post("/standin/records", {"payload": "x"})[0] == 201
    assert db.query("SELECT client, node, hits FROM standin_sessions") == ((TEST_CLIENT, who["hostname"], 3),)
    assert http("GET", node.url("/standin/whoami"), source="127.0.0.79")[0] == 403  # refused before touching the database
    assert db.scalar("SELECT COUNT(*) FROM standin_sessions") == 1
    assert node.stop() == 0


def test_read_only_database_fails_reads_too(jars, nodes, mariadb):
    """Looker writes on nearly every request: with the database read-only, a GET fails (503 with the
    reason), and works again once it is writable."""
    grants = mariadb.app_user_grants()
    assert "ON *.*" not in grants.replace(f"GRANT USAGE ON *.* TO `{APP_USER}`", ""), grants  # no SUPER, no READ ONLY ADMIN
    db = mariadb.database("readonly")
    node = nodes.node(jars["25.6.12"], env={"LOOKER_DB": db.env()}, args=[PLAIN_HTTP, *QUIET]).start().wait_alive()
    assert node.post("/standin/records", {"payload": "before"})[0] == 201
    assert node.get("/standin/records")[0] == 200
    mariadb.set_read_only(True)
    try:
        status, answer = node.get("/standin/records")
        assert status == 503 and "application database unavailable" in answer["error"] and "read-only" in answer["error"], answer
        assert node.get("/api/4.0/versions", port="api")[0] == 503
        assert node.post("/standin/records", {"payload": "while read-only"})[0] == 503
        assert node.alive_status() == 200  # the web server answers
    finally:
        mariadb.set_read_only(False)
    status, listing = node.get("/standin/records")
    assert status == 200 and [r["payload"] for r in listing["records"]] == ["before"]
    assert node.stop() == 0


def _open_hold(node, seconds):
    """GET /standin/hold: returns (response, connection) once the headers are in."""
    conn = HTTPConnection(node.address, node.ports["web"], timeout=30)
    conn.request("GET", f"/standin/hold?seconds={seconds}")
    return conn.getresponse(), conn


def test_a_hold_stays_open_until_released_and_a_stop_cuts_it(jars, nodes):
    """The test-only long answer the drain tests hold open: the headers (with the node) at once, a
    line a second, "done" only when it completes (its time, or a release); a stop cuts it short."""
    node = nodes.node(jars["25.6.12"], args=[PLAIN_HTTP, *QUIET]).start().wait_alive()
    assert http("GET", node.url("/standin/hold?seconds=0"))[0] == 400
    status, dummy, body = http("GET", node.url("/standin/hold?seconds=1"))
    assert status == 200 and body.decode().splitlines()[-1] == "done"
    resp, conn = _open_hold(node, 600)
    assert resp.status == 200 and resp.headers["X-Standin-Node"]
    assert resp.readline().decode().startswith("held by ")
    assert node.post("/standin/hold/release", {})[0] == 200
    assert resp.read().decode().splitlines()[-1] == "done"
    conn.close()
    resp, conn = _open_hold(node, 600)
    resp.readline()
    node.stop()
    try:
        rest = resp.read().decode()
    except (OSError, IncompleteRead):
        rest = ""
    assert "done" not in rest
    conn.close()
