"""Helpers for the bcp scenario's tests and for bench/bcp: the sites' hosts, writes and reads through
each site's load balancer, replication cycles started as the timer starts them."""
import json
import os
import subprocess  # noqa: F401  (also used by the tests as t.subprocess)
import sys
import time
from pathlib import Path

import testinfra

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "looker_node_shared"))
import looker_node_testlib as lib  # noqa: E402  pylint: disable=wrong-import-position,unused-import

NAMES = ["lkr-bcp-adb", "lkr-bcp-a1", "lkr-bcp-a2", "lkr-bcp-bdb", "lkr-bcp-b1", "lkr-bcp-bfs"]
HOSTS = {name: testinfra.get_host(f"podman://{name}") for name in NAMES}
SITE_NODES = {"a": ["lkr-bcp-a1", "lkr-bcp-a2"], "b": ["lkr-bcp-b1"]}
SITE_LB = {"a": "lkr-bcp-a2", "b": "lkr-bcp-b1"}
SITE_DB = {"a": "lkr-bcp-adb", "b": "lkr-bcp-bdb"}
SHARE = "/mnt/looker-share"
STATUS = "/var/lib/lookerops-bcp/status.json"
PROGRAM = "/usr/local/sbin/lookerops-bcp"


def http_json(host, method, path, body=""):
    """(status, body) of a request to the balancer on HOST; status 0 when nothing answered."""
    result = HOSTS[host].run("python3 -c %s %s %s %s", lib.HTTP, method, f"https://127.0.0.1:443{path}", body)
    if result.rc != 0:
        return 0, result.stderr[-300:]
    answer = json.loads(result.stdout)
    return answer["status"], answer["body"]


def wait_serving(site, timeout=90):
    """After a restart the balancer routes again once its health checks pass (rise 2 x 1 s)."""
    wait_for(lambda: alive(site), timeout=timeout, what=f"site {site} serving through its load balancer")


def write_record(site, uid, payload="bcp test"):
    wait_serving(site)
    status, body = http_json(SITE_LB[site], "POST", "/standin/records", json.dumps({"uid": uid, "payload": payload}))
    assert status in (200, 201), (status, body)
    return json.loads(body)


def records(site):
    """{uid: record} of every record the site's load balancer serves."""
    wait_serving(site)
    status, body = http_json(SITE_LB[site], "GET", "/standin/records?limit=100000")
    assert status == 200, (status, body)
    return {r["uid"]: r for r in json.loads(body)["records"]}


def put_model(site, path, content):
    wait_serving(site)
    status, body = http_json(SITE_LB[site], "PUT", f"/standin/models/{path}", content)
    assert status == 201, (status, body)


def model(site, path):
    wait_serving(site)
    status, body = http_json(SITE_LB[site], "GET", f"/standin/models/{path}")
    return body if status == 200 else None


def alive(site):
    return http_json(SITE_LB[site], "GET", "/alive")[0] == 200


def start_cycle(site, nodes=None):
    """Start lookerops-bcp.service on every (given) node of the site at once, as the timer does;
    returns {node: (exit status, output)} once all have finished (oneshot: systemctl waits)."""
    procs = {n: subprocess.Popen(["podman", "exec", n, "systemctl", "start", "lookerops-bcp.service"],
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for n in (nodes or SITE_NODES[site])}
    return {n: (p.wait(timeout=600), p.stdout.read()) for n, p in procs.items()}


def status(node):
    return json.loads(HOSTS[node].check_output(f"cat {STATUS}"))


def journal_since(node, since):
    return HOSTS[node].check_output(f"journalctl -u lookerops-bcp.service --no-pager -o cat --since @{int(since)}")


def run_playbook(*args, check=True, watch=None):
    return lib.run_playbook(*args, check=check, watch=watch)


def wait_for(predicate, timeout=120, interval=0.3, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def env_file(name):
    return Path(os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY", "/nonexistent")) / name


ALIVE = ("import ssl, sys, urllib.request\n"
         "try:\n"
         "    r = urllib.request.urlopen('https://127.0.0.1:9999/alive', context=ssl._create_unverified_context(), timeout=3)\n"
         "    sys.exit(0 if r.status == 200 else 1)\n"
         "except Exception:\n"
         "    sys.exit(1)\n")


# One-message alert receivers, started on a node with systemd-run by the tests. The SMTP one uses
# smtpd, deprecated but still in Debian 12's Python 3.11 (the hosts' python3).
WEBHOOK_RECEIVER = (
    "import http.server, os, time\n"
    "class H(http.server.BaseHTTPRequestHandler):\n"
    "    def do_POST(self):\n"
    "        open('/tmp/webhook.part', 'wb').write(self.rfile.read(int(self.headers['Content-Length'])))\n"
    "        os.rename('/tmp/webhook.part', '/tmp/webhook.json')\n"
    "        self.send_response(200); self.end_headers()\n"
    "s = http.server.HTTPServer(('127.0.0.1', 18080), H); s.timeout = 5; end = time.time() + 300\n"
    "while time.time() < end and not os.path.exists('/tmp/webhook.json'):\n"
    "    s.handle_request()\n")
SMTP_RECEIVER = (
    "import asyncore, email, email.policy, json, os, smtpd, time\n"
    "class S(smtpd.SMTPServer):\n"
    "    def process_message(self, peer, mailfrom, rcpttos, data, **kwargs):\n"
    "        msg = email.message_from_bytes(data, policy=email.policy.default)\n"
    "        text = msg['Subject'] + '\\n' + msg.get_content()\n"
    "        with open('/tmp/alert-mail.part', 'w') as out:\n"
    "            json.dump({'from': mailfrom, 'to': rcpttos, 'message': text}, out)\n"
    "        os.rename('/tmp/alert-mail.part', '/tmp/alert-mail.json')\n"
    "S(('127.0.0.1', 25), None); end = time.time() + 300\n"
    "while time.time() < end and not os.path.exists('/tmp/alert-mail.json'):\n"
    "    asyncore.loop(timeout=1, count=1)\n")


def node_alive(node):
    """True when the node's Looker answers /alive with 200 (asked from inside the node)."""
    return HOSTS[node].run("python3 -c %s", ALIVE).rc == 0
