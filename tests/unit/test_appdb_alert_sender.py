"""mysql_appdb's alert sender (files/lookerops_appdb_alert.py), run as the daily backup check runs it:
python3 SENDER CONF_DIR SUBJECT < BODY. It posts the payload of the BCP alerts to the webhook, reports
a route that did not take the alert by its exit status, and never prints the webhook URL (it may
carry a token)."""
import http.server
import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest

SENDER = Path(__file__).resolve().parents[2] / "roles" / "mysql_appdb" / "files" / "lookerops_appdb_alert.py"
TOKEN = "tok-3f9a1c7e"


@pytest.fixture
def receiver():
    received = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - the http.server API
            length = int(self.headers["Content-Length"])
            received.append((self.path, json.loads(self.rfile.read(length))))
            self.send_response(204 if "fail" not in self.path else 500)
            self.end_headers()

        def log_message(self, *args):  # keep the test output clean
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield "http://127.0.0.1:%d" % server.server_address[1], received
    server.shutdown()


def send(conf_dir, subject="[lookerops-appdb-backup] 1 unusable dump(s)", body="looker-x.sql.gz: checksum mismatch"):
    return subprocess.run([sys.executable, str(SENDER), str(conf_dir), subject], input=body, capture_output=True,
                          text=True, timeout=60, check=False)


def route(tmp_path, url=None, config=None):
    (tmp_path / "alert.json").write_text(json.dumps(config or {}))
    if url:
        (tmp_path / "alert-webhook-url").write_text(url + "\n")
    return tmp_path


def test_the_webhook_gets_the_bcp_payload_and_the_url_is_never_printed(tmp_path, receiver):
    base, received = receiver
    done = send(route(tmp_path, base + "/hook?token=" + TOKEN))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "posted to the webhook (HTTP 204)" in done.stdout
    path, payload = received[0]
    assert path == "/hook?token=" + TOKEN
    assert payload["subject"] == "[lookerops-appdb-backup] 1 unusable dump(s)"
    assert payload["body"] == "looker-x.sql.gz: checksum mismatch"
    assert payload["text"] == payload["subject"] + "\n" + payload["body"] and payload["host"]
    assert TOKEN not in done.stdout + done.stderr


@pytest.mark.parametrize("url", ["/fail?token=" + TOKEN, "http://127.0.0.1:1/x?token=" + TOKEN, "not a url " + TOKEN,
                                 "http://127.0.0.1:1/x y?token=" + TOKEN, "http://127.0.0.1:99999/x?token=" + TOKEN])
def test_a_webhook_that_does_not_take_the_alert_fails_without_the_url(tmp_path, receiver, url):
    base, _received = receiver
    done = send(route(tmp_path, base + url if url.startswith("/") else url))
    assert done.returncode == 1
    assert "NOT SENT to the webhook" in done.stdout
    assert TOKEN not in done.stdout + done.stderr


def test_an_unreachable_relay_fails_naming_it(tmp_path):
    done = send(route(tmp_path, config={"email_to": ["dba@example.com"], "smtp_host": "127.0.0.1", "smtp_port": 1}))
    assert done.returncode == 1
    assert "NOT SENT by e-mail through 127.0.0.1:1" in done.stdout


def test_no_route_is_said_and_a_broken_route_fails(tmp_path):
    done = send(route(tmp_path))
    assert done.returncode == 0 and "no alert route" in done.stdout
    (tmp_path / "alert.json").write_text("{not json")
    broken = send(tmp_path)
    assert broken.returncode == 1 and "alert.json is not JSON" in broken.stdout


def test_the_usage_names_the_configuration_directory(tmp_path):
    done = subprocess.run([sys.executable, str(SENDER), "subject only"], input="", capture_output=True, text=True,
                          check=False)
    assert done.returncode == 2 and "CONF_DIR SUBJECT" in done.stderr
