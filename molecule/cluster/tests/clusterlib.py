"""Helpers of the cluster scenario's tests: requests through the load balancer as a user makes them
(from the controller, which reaches the containers' addresses), the scenario's hosts, HAProxy's view."""
import json
import re
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import testinfra

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "looker_node_shared"))
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "shared"))
import looker_node_testlib as lib  # noqa: E402,F401  pylint: disable=wrong-import-position,unused-import
import secret_scan  # noqa: E402,F401  pylint: disable=wrong-import-position,unused-import

ROOT = Path(__file__).resolve().parents[3]
DB1 = testinfra.get_host("podman://lkr-cluster-db1")
LB = testinfra.get_host("podman://lkr-cluster-lb1")
NODES = ["lkr-cluster-node1", "lkr-cluster-node2"]
NEW_NODE = "lkr-cluster-node3"
HAPROXY_SOCKET = "/run/haproxy/admin.sock"


def address(container):
    out = subprocess.run(["podman", "inspect", "--format", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", container],
                         capture_output=True, text=True, check=True).stdout.strip()
    assert out, f"{container} has no address"
    return out


def request(url, method="GET", body=None, timeout=20):
    """One HTTPS request on a new connection (the balancer may pick another node each time):
    (status, headers with lower-case names, body). The nodes' certificates are self-signed."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    data = body.encode() if isinstance(body, str) else body
    req = urllib.request.Request(url, data=data, method=method)
    if data is not None and method == "POST":
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=timeout) as resp:
            return resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, {k.lower(): v for k, v in err.headers.items()}, err.read().decode()


def through_another_node(url, not_node, tries=40):
    """GET url through the balancer until a node other than not_node answers; (node, status, body)."""
    seen = []
    for _try in range(tries):
        status, headers, body = request(url)
        node = headers.get("x-standin-node", "")
        seen.append(node)
        if node and node != not_node:
            return node, status, body
        time.sleep(0.2)
    raise AssertionError(f"the balancer sent {tries} requests only to {set(seen)}")


def nodes_answering(url, tries=60):
    """The nodes seen answering url through the balancer over `tries` new connections."""
    return {request(url)[1].get("x-standin-node") for _try in range(tries)}


def registry():
    """{hostname: state} of the node registry in the application database."""
    rows = DB1.check_output("mysql -N -B -e 'SELECT hostname, state FROM standin_nodes' looker")
    return dict(line.split("\t") for line in rows.splitlines() if line)


def haproxy_servers(backend="looker_ui"):
    """{server: (operational state, admin state)} from HAProxy's runtime API (show servers state)."""
    out = LB.check_output(f"echo 'show servers state {backend}' | socat stdio {HAPROXY_SOCKET}")
    result = {}
    for line in out.splitlines():
        fields = line.split()
        if len(fields) > 6 and fields[1] == backend:
            # be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state ...
            result[fields[3]] = (int(fields[5]), int(fields[6]))
    return result


def stats(output):
    return lib.recap(output)


# What a node added to or removed from the cluster may change on the other nodes: the address sets
# of their firewall (role cluster_firewall writes the table, its handler loads it), nothing of Looker.
FIREWALL_TASKS = {"Write this host's table, checked by nft before it is installed", "Load the lookerops nftables table"}


def changed_tasks(output):
    """{host: [task or handler names (without their role) that reported changed]} from ansible-playbook's output."""
    found, task = {}, None
    for line in output.splitlines():
        header = re.match(r"^(?:TASK|RUNNING HANDLER) \[(.*)\] \**$", line)
        if header:
            task = header.group(1).split(" : ", 1)[-1]
            continue
        changed = re.match(r"^changed: \[([^\]\s]+)", line)
        if changed:
            found.setdefault(changed.group(1), []).append(task)
    return found


def load(url, stop, results, limit_seconds=240, limit_requests=3000):
    """A bounded stream of requests (each on a new connection) into results: [(status or error, node)]."""
    started = time.monotonic()
    while not stop.is_set() and time.monotonic() - started < limit_seconds and len(results) < limit_requests:
        try:
            status, headers, _body = request(url, timeout=10)
            results.append((status, headers.get("x-standin-node")))
        except (OSError, urllib.error.URLError) as err:
            results.append((repr(err), None))
        time.sleep(0.05)


def json_body(body):
    return json.loads(body)


def run_playbook(name, *args):
    """ansible-playbook against the scenario's inventory; the whole output is kept in
    <ephemeral>/<name>.log. Returns the output; fails on a non-zero exit code."""
    rc, output = lib.run_playbook(*args, check=False)
    log = lib.EPHEMERAL / f"{name}.log"
    log.write_text(output)
    assert rc == 0, f"{name}: ansible-playbook exited {rc}, whole output in {log}:\n{output[-4000:]}"
    return output
