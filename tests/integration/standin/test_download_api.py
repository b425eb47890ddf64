"""The download API stand-in: answers as described in looker-facts.md, expiring links, the jars
built by build.sh, and each failure mode."""
import hashlib
import http.client as httplib
import time
import urllib.parse

import pytest

from standin_helpers import DOWNLOAD_API, http, http_json, start_download_api, wait_for

LIC = {"lic": "LKR-TEST-LICENSE", "email": "ops@example.com"}


@pytest.fixture(scope="module")
def api(jars_dir, free_port):
    server = start_download_api(jars_dir, free_port())
    yield server
    server.proc.terminate()
    server.proc.wait(10)


@pytest.fixture(autouse=True)
def normal_mode(request):
    yield
    if "api" in request.fixturenames:
        request.getfixturevalue("api").control(mode="ok", ttl=600, reset=True)


def sha(data):
    return hashlib.sha256(data).hexdigest()


def test_latest(api, jars):
    status, answer = api.download({**LIC, "latest": "latest"})
    assert status == 200
    newest = max(jars, key=lambda v: tuple(map(int, v.split("."))))
    assert answer["version_text"] == f"looker-{newest}.jar"
    assert set(answer) == {"url", "depUrl", "version_text", "sha256", "depSha256"}
    core = http("GET", answer["url"])[2]
    deps = http("GET", answer["depUrl"])[2]
    assert core == (jars[newest] / "looker.jar").read_bytes()
    assert deps == (jars[newest] / "looker-dependencies.jar").read_bytes()
    assert sha(core) == answer["sha256"] and sha(deps) == answer["depSha256"]
    assert answer["url"] != answer["depUrl"]
    status, control = http_json("GET", api.base + "/_control")
    assert control["fetched"] == [f"looker-{newest}.jar", f"looker-dependencies-{newest}.jar"]


@pytest.mark.parametrize("specific,version", [
    ("looker-25.6.jar", "25.6.10"),
    ("looker-25.6-latest.jar", "25.6.12"),
    ("looker-25.6.12.jar", "25.6.12"),
    ("looker-25.8-latest.jar", "25.8.3"),
])
def test_specific(api, jars, specific, version):
    status, answer = api.download({**LIC, "latest": "specific", "specific": specific})
    assert status == 200 and answer["version_text"] == f"looker-{version}.jar"
    assert answer["sha256"] == sha((jars[version] / "looker.jar").read_bytes())


@pytest.mark.parametrize("body,status", [
    ({**LIC, "latest": "specific", "specific": "looker-24.0.jar"}, 404),
    ({**LIC, "latest": "specific", "specific": "looker-25.6.99.jar"}, 404),
    ({**LIC, "latest": "specific", "specific": "looker.jar"}, 400),
    ({**LIC, "latest": "newest"}, 400),
    ({"lic": "WRONG", "email": "ops@example.com", "latest": "latest"}, 403),
    ({"lic": "LKR-TEST-LICENSE", "email": "other@example.com", "latest": "latest"}, 403),
])
def test_refused_requests(api, body, status):
    got, answer = api.download(body)
    assert got == status and answer["error"] and "url" not in answer


def test_links_expire(api):
    api.control(ttl=1)
    status, answer = api.download({**LIC, "latest": "latest"})
    time.sleep(2.1)
    status, dummy, body = http("GET", answer["depUrl"])
    assert status == 403 and b"Request has expired" in body
    # A tampered link is refused as well.
    status, answer = api.download({**LIC, "latest": "latest"})
    tampered = answer["url"].replace("Expires=", "Expires=9")
    assert http("GET", tampered)[0] == 403


def test_mode_eula(api):
    api.control(mode="eula")
    status, answer = api.download({**LIC, "latest": "latest"})
    assert status == 200 and "EULA" in answer["eulaMessage"] and "url" not in answer


def test_mode_bad_license(api):
    api.control(mode="bad_license")
    status, answer = api.download({**LIC, "latest": "latest"})
    assert status == 403 and "Invalid license" in answer["error"]


def test_mode_expired_link(api):
    api.control(mode="expired_link")
    status, answer = api.download({**LIC, "latest": "latest"})
    assert status == 200
    assert http("GET", answer["url"])[0] == 403


def test_mode_truncated(api, jars):
    status, answer = api.download({**LIC, "latest": "specific", "specific": "looker-25.6.12.jar"})
    api.control(mode="truncated")
    url = urllib.parse.urlsplit(answer["depUrl"])
    conn = httplib.HTTPConnection(url.hostname, url.port, timeout=10)
    conn.request("GET", f"{url.path}?{url.query}")
    resp = conn.getresponse()
    expected = (jars["25.6.12"] / "looker-dependencies.jar").stat().st_size
    assert resp.status == 200 and int(resp.headers["Content-Length"]) == expected
    with pytest.raises(httplib.IncompleteRead) as cut:
        resp.read()
    assert 0 < len(cut.value.partial) < expected
    conn.close()


def test_mode_bad_checksum(api):
    api.control(mode="bad_checksum")
    status, answer = api.download({**LIC, "latest": "latest"})
    assert status == 200
    assert sha(http("GET", answer["url"])[2]) != answer["sha256"]
    assert sha(http("GET", answer["depUrl"])[2]) != answer["depSha256"]


def test_mode_down(api):
    api.control(mode="down")
    assert api.download({**LIC, "latest": "latest"})[0] == 503
    api.control(mode="ok")
    assert api.download({**LIC, "latest": "latest"})[0] == 200


def test_mode_closed(api):
    api.control(mode="closed")
    with pytest.raises(OSError):
        http("POST", api.base + "/download", {**LIC, "latest": "latest"}, timeout=5)


def test_unknown_mode_refused(api):
    status, answer = api.control(mode="flaky")
    assert status == 400 and "mode must be one of" in answer["error"]


def test_mode_from_the_command_line(jars_dir, free_port):
    server = start_download_api(jars_dir, free_port(), "--mode", "eula")
    try:
        assert "eulaMessage" in server.download({**LIC, "latest": "latest"})[1]
    finally:
        server.proc.terminate()
        server.proc.wait(10)


def test_runs_inside_a_sandbox_host(mariadb, jars):
    """The same script serves from a container (stdlib python3 only); the controller downloads from it."""
    host = mariadb.host
    host.run("mkdir -p /srv/jars/25.6.12")
    host.copy_in(DOWNLOAD_API, "/srv/download_api.py")
    for name in ("looker.jar", "looker-dependencies.jar"):
        host.copy_in(jars["25.6.12"] / name, f"/srv/jars/25.6.12/{name}")
    host.run("systemd-run --unit standin-download-api python3 /srv/download_api.py --jars-dir /srv/jars --license L --email e@x"
             " --bind 0.0.0.0 --port 8080 --ttl 60")
    try:
        base = f"http://{host.ip}:8080"

        def answer_once_listening():
            try:
                return http_json("POST", base + "/download", {"lic": "L", "email": "e@x", "latest": "latest"}, timeout=10)
            except OSError:
                return None

        try:
            status, answer = wait_for(answer_once_listening, timeout=120, what="the download API in the sandbox host")
        except AssertionError as exc:
            raise AssertionError(host.run("journalctl -u standin-download-api --no-pager", check=False).stdout) from exc
        assert status == 200 and answer["url"].startswith(base + "/files/looker-25.6.12.jar?")
        assert sha(http("GET", answer["url"])[2]) == answer["sha256"]
    finally:
        host.run("systemctl stop standin-download-api", check=False)
