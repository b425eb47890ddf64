"""The deployed cluster as a user sees it: everything goes through the load balancer's address,
from the controller (the nodes run the Looker stand-in, tests/standin, not Looker)."""
import json
import uuid

import pytest
import testinfra

import clusterlib as cl

LB = cl.address("lkr-cluster-lb1")
UI = f"https://{LB}"
API = f"https://{LB}:19999"


def test_the_ui_answers_through_the_balancer_from_every_node():
    assert cl.nodes_answering(f"{UI}/", tries=12) == set(cl.NODES)
    status, headers, body = cl.request(f"{UI}/")
    assert status == 200 and "release 25.6.12" in body, (status, body)
    assert headers["x-standin-node"] in cl.NODES


def test_the_api_answers_through_the_balancer():
    status, _headers, body = cl.request(f"{API}/api/4.0/versions")
    assert status == 200, body
    versions = json.loads(body)
    assert versions["looker_release_version"] == "25.6.12"
    assert cl.nodes_answering(f"{API}/api/4.0/versions", tries=12) == set(cl.NODES)


def test_a_record_written_through_one_node_is_read_through_another():
    uid = f"user-{uuid.uuid4().hex[:8]}"
    status, headers, body = cl.request(f"{UI}/standin/records", "POST",
                                       json.dumps({"uid": uid, "payload": "written through the balancer"}))
    assert status in (200, 201), body
    writer = headers["x-standin-node"]
    reader, status, body = cl.through_another_node(f"{UI}/standin/records", writer)
    assert reader != writer and status == 200
    assert uid in [r["uid"] for r in json.loads(body)["records"]]


def test_a_model_file_written_through_one_node_is_served_by_another():
    text = f"view: through_the_balancer_{uuid.uuid4().hex[:6]} {{ dimension: id {{}} }}\n"
    status, headers, body = cl.request(f"{UI}/standin/models/shop/users.view.lkml", "PUT", text)
    assert status == 201, body
    writer = headers["x-standin-node"]
    reader, status, body = cl.through_another_node(f"{UI}/standin/models/shop/users.view.lkml", writer)
    assert reader != writer and (status, body) == (200, text)


def test_every_node_is_registered_and_running_in_the_application_database():
    registry = cl.registry()
    assert {name: registry.get(name) for name in cl.NODES} == {name: "running" for name in cl.NODES}, registry
    assert cl.NEW_NODE not in registry


@pytest.mark.parametrize("name", cl.NODES)
def test_every_node_sees_the_other_as_a_reachable_peer(name):
    # TLS is terminated by the balancer (--ssl-provided-externally-by): a node answers plain HTTP
    # to the balancer only, so the balancer asks.
    assert cl.lib.http(cl.LB, f"http://{name}:9999/availability")["status"] == 200
    state = json.loads(cl.lib.http(cl.LB, f"http://{name}:9999/standin/state")["body"])  # test-only introspection
    assert state["clustered"] and state["healthy"], state
    other = [n for n in cl.NODES if n != name][0]
    peers = {p["hostname"]: p for p in state["peers"]}
    assert peers[other]["node_to_node"]["reachable"] and peers[other]["queue_broker"]["reachable"]
    # looker_node_node_port is moved in molecule.yml: the nodes use it and the firewall protects it, not 1551.
    assert peers[other]["node_to_node"]["port"] == 1561
    table = cl.testinfra.get_host(f"podman://{name}").check_output("nft list table inet lookerops_cluster")
    assert "1561" in table and "1551" not in table
    assert state["shared_storage"]["shared"] and state["shared_storage"]["writable"]


@pytest.mark.parametrize("name", cl.NODES)
def test_a_node_refuses_plain_http_from_any_source_but_the_balancer(name):
    node = cl.testinfra.get_host(f"podman://{name}")
    assert cl.lib.http(node, "http://127.0.0.1:9999/alive")["status"] == 403
    assert cl.lib.http(cl.LB, f"http://{name}:9999/alive")["status"] == 200


def test_only_the_balancer_reaches_the_nodes_web_port():
    # The firewall of site.yml: the nodes' 9999 is open to the balancer, not to other hosts.
    db2 = cl.testinfra.get_host("podman://lkr-cluster-db2")
    probe = "python3 -c \"import socket; socket.create_connection(('lkr-cluster-node1', 9999), 3)\""
    assert db2.run(probe).rc != 0
    assert cl.LB.run(probe).rc == 0


def test_the_balancer_checks_every_node():
    servers = cl.haproxy_servers()
    # srv_op_state 2 = running, srv_admin_state 0 = ready.
    assert servers == {name: (2, 0) for name in cl.NODES}, servers


@pytest.mark.parametrize("name", ["lkr-cluster-db1", "lkr-cluster-db2", "lkr-cluster-lb1", *cl.NODES])
def test_every_host_runs_chrony_with_the_inventory_s_sources(name):
    """time_sync on every host: in these containers chrony is configured and enabled, not started
    (the clock is the machine's; Debian's unit needs CAP_SYS_TIME), as the role says."""
    host = testinfra.get_host(f"podman://{name}")
    assert host.package("chrony").is_installed
    sources = [line for line in host.file("/etc/chrony/chrony.conf").content_string.splitlines()
               if line.split()[:1] in (["server"], ["pool"])]
    assert sources == ["server 192.0.2.123 iburst"]
    assert host.service("chrony").is_enabled


# Every TCP port of the given addresses, from a throw-away host: the open ones as JSON [[address, port]].
SCAN = r"""
import json, socket, sys
from concurrent.futures import ThreadPoolExecutor
def probe(target):
    sock = socket.socket()
    sock.settimeout(2)
    try:
        sock.connect(target)
        return target
    except OSError:
        return None
    finally:
        sock.close()
targets = [(address, port) for address in sys.argv[1:] for port in range(1, 65536)]
with ThreadPoolExecutor(256) as pool:
    print(json.dumps([t for t in pool.map(probe, targets, chunksize=512) if t]))
"""
HOSTS = ["lkr-cluster-db1", "lkr-cluster-db2", "lkr-cluster-lb1", *cl.NODES]


def test_an_outsider_on_the_network_reaches_only_the_balancer():
    """An attacker's host joined to the cluster's network scans every TCP port of every host: only the
    balancer's user ports answer (and SSH where sshd listens, which the firewall never restricts so that
    it cannot lock Ansible out; these hosts take Ansible through podman instead). The scan is kept in
    tests/output/outsider-scan-cluster.json. (It found GlusterFS's bricks, which take a random port of
    49152-60999, open above the 49152-49251 the firewall protected then.)"""
    addresses = {cl.address(name): name for name in HOSTS}
    proc = cl.subprocess.run(["podman", "run", "--rm", "--label", "io.lookerops.sandbox=1", "--network", "lkr-cluster",
                              "localhost/lookerops-sandbox:bookworm", "python3", "-c", SCAN, *addresses],
                             capture_output=True, text=True, timeout=900, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    reached = {name: [] for name in HOSTS}
    for address, port in json.loads(proc.stdout):
        reached[addresses[address]].append(port)
    report = cl.ROOT / "tests" / "output" / "outsider-scan-cluster.json"
    report.parent.mkdir(parents=True, exist_ok=True)
    report.write_text(json.dumps(reached, indent=2) + "\n")
    assert {name: [port for port in ports if port != 22] for name, ports in reached.items()} == \
        {**{name: [] for name in HOSTS}, "lkr-cluster-lb1": [443, 19999]}, reached
