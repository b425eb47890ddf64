"""What a user checks on the load_balancer scenario: the UI and the API answer through the
balancer, both nodes share the load, a dead node is left out within 6 s while requests keep
succeeding, a drained node gets no new connection, and the cluster ports are open between the
nodes only (live and as cluster_port_check reports it).

The tests drive every host themselves; they run once (verifier hosts: the outsider) and in file
order: the failover test kills node2 last and brings it back.
"""
import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import testinfra

SCENARIO = Path(__file__).resolve().parents[1]
# The failover measurement is shared with bench/failover.
_SPEC = importlib.util.spec_from_file_location("failover", SCENARIO / "files" / "failover.py")
failover = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(failover)
LB, NODE1, NODE2, OUTSIDER = "lkr-lb-lb1", "lkr-lb-node1", "lkr-lb-node2", "lkr-lb-outsider"
NODES = [NODE1, NODE2]
UI = f"https://{LB}/standin/whoami"
API = f"https://{LB}:19999/standin/whoami"


def host(name):
    return testinfra.get_host(f"podman://{name}")


def playbook(name, *args):
    """Run one of the scenario's playbooks against molecule's inventory; return the completed process."""
    bindir = Path(sys.executable).parent
    cmd = [str(bindir / "ansible-playbook"), "-i", os.environ["MOLECULE_INVENTORY_FILE"], str(SCENARIO / name), *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)


def fetch(url, count):
    """`count` requests from the outsider, one connection each; the nodes that answered."""
    out = host(OUTSIDER).check_output(
        f"for i in $(seq {count}); do curl -sk --max-time 5 -o /dev/null -D - {url} | tr -d '\\r' "
        "| sed -n 's/^X-Standin-Node: //Ip'; done")
    return out.split()


@pytest.fixture(scope="module", autouse=True)
def tools():
    failover.install_tools(LB, OUTSIDER)


def test_haproxy_runs_with_a_checked_configuration():
    lb = host(LB)
    assert lb.service("haproxy").is_running and lb.service("haproxy").is_enabled
    assert lb.run("haproxy -c -q -f /etc/haproxy/haproxy.cfg").rc == 0
    assert lb.socket("tcp://0.0.0.0:443").is_listening and lb.socket("tcp://0.0.0.0:19999").is_listening


def test_ui_and_api_answer_through_the_balancer():
    outsider = host(OUTSIDER)
    assert outsider.check_output(f"curl -sk -o /dev/null -w '%{{http_code}}' https://{LB}/alive") == "200"
    ui = json.loads(outsider.check_output(f"curl -sk {UI}"))
    api = json.loads(outsider.check_output(f"curl -sk {API}"))
    assert ui["hostname"] in NODES and ui["listener"] == "web"
    assert api["hostname"] in NODES and api["listener"] == "api"
    versions = json.loads(outsider.check_output(f"curl -sk https://{LB}:19999/api/4.0/versions"))
    assert versions["looker_release_version"] == "25.6.12"


def test_each_node_serves_a_share():
    answers = fetch(UI, 20) + fetch(API, 20)
    assert len(answers) == 40
    for node in NODES:
        assert answers.count(node) >= 10, answers


def test_cluster_ports_open_between_nodes_refused_from_the_outsider():
    def probe(src, dest, port):
        return host(src).run(f"timeout 3 bash -c 'exec 3<>/dev/tcp/{dest}/{port}' 2>&1")

    for dest, ports in ((NODE1, (1551, 61616, 3306)), (NODE2, (1551, 61616))):
        peer = NODE2 if dest == NODE1 else NODE1
        for port in ports:
            assert probe(peer, dest, port).rc == 0, (peer, dest, port)
            refused = probe(OUTSIDER, dest, port)
            assert refused.rc != 0 and "Connection refused" in refused.stdout, (dest, port, refused.stdout)


def test_ssh_is_accepted_before_any_restriction():
    for name in (NODE1, NODE2, LB):
        rules = [line.strip() for line in host(name).check_output("nft list chain inet lookerops_cluster input").splitlines()]
        ssh = rules.index('tcp dport 22 accept comment "SSH is never restricted"')
        assert all(ssh < i for i, rule in enumerate(rules) if "reject" in rule or "drop" in rule), rules


def test_node_web_ports_only_from_the_balancer():
    for port in (9999, 19999):
        assert host(LB).run(f"timeout 3 bash -c 'exec 3<>/dev/tcp/{NODE1}/{port}'").rc == 0
        assert "Connection refused" in host(OUTSIDER).run(f"timeout 3 bash -c 'exec 3<>/dev/tcp/{NODE1}/{port}' 2>&1").stdout


def test_cluster_port_check_reports_exactly_the_matrix():
    proc = playbook("port_check.yml")
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    seen = json.loads((Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "port_matrix.json").read_text())
    live = sorted((src, row["destination"], row["port"], row["expect"], row["live"], row["static"])
                  for src, rows in seen.items() for row in rows if row["live"] != "not run")
    assert live == sorted([
        (NODE1, NODE2, "1551", "allowed", "open", "covered"),
        (NODE1, NODE2, "61616", "allowed", "open", "covered"),
        (NODE2, NODE1, "1551", "allowed", "open", "covered"),
        (NODE2, NODE1, "61616", "allowed", "open", "covered"),
        (NODE2, NODE1, "3306", "allowed", "open", "covered"),
        (OUTSIDER, NODE1, "1551", "forbidden", "refused", "not covered"),
        (OUTSIDER, NODE1, "61616", "forbidden", "refused", "not covered"),
        (OUTSIDER, NODE1, "3306", "forbidden", "refused", "not covered"),
        (OUTSIDER, NODE2, "1551", "forbidden", "refused", "not covered"),
        (OUTSIDER, NODE2, "61616", "forbidden", "refused", "not covered"),
    ])
    assert all(row["ok"] for rows in seen.values() for row in rows)


def test_check_mode_shows_the_firewall_diff_and_changes_nothing():
    before = host(NODE1).file("/etc/nftables.d/lookerops-cluster.nft").content_string
    proc = playbook("firewall.yml", "--check", "--diff", "-e", '{"cluster_firewall_admin_networks": ["192.0.2.0/24"]}')
    assert proc.returncode == 0, proc.stdout[-4000:]
    assert "+\t\telements = { 10." in proc.stdout and "192.0.2.0/24 }" in proc.stdout, proc.stdout[-4000:]
    assert host(NODE1).file("/etc/nftables.d/lookerops-cluster.nft").content_string == before
    assert "192.0.2.0" not in host(NODE1).check_output("nft list table inet lookerops_cluster")


def test_a_drained_node_gets_no_new_connection():
    before = failover.stats(LB)
    proc = playbook("node_state.yml", "-e", f"node={NODE2}", "-e", "state=drain")
    assert proc.returncode == 0, proc.stdout[-3000:]
    try:
        drained = failover.stats(LB)
        assert drained[f"looker_ui/{NODE2}"]["status"] == "DRAIN" and drained[f"looker_api/{NODE2}"]["status"] == "DRAIN"
        answers = fetch(UI, 10) + fetch(API, 10)
        after = failover.stats(LB)
        assert answers == [NODE1] * 20
        for backend in ("looker_ui", "looker_api"):
            assert after[f"{backend}/{NODE2}"]["stot"] == drained[f"{backend}/{NODE2}"]["stot"]
        # The drain survives a reload of HAProxy.
        host(LB).check_output("systemctl reload haproxy")
        time.sleep(1)
        assert failover.stats(LB)[f"looker_ui/{NODE2}"]["status"] == "DRAIN"
    finally:
        proc = playbook("node_state.yml", "-e", f"node={NODE2}", "-e", "state=enabled")
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert failover.stats(LB)[f"looker_ui/{NODE2}"]["status"] == "UP"
    assert NODE2 in fetch(UI, 6)
    assert before[f"looker_ui/{NODE2}"]["status"] == "UP"


def test_a_dead_node_is_left_out_within_6_s_and_requests_keep_succeeding():
    failover.wait_status(LB, f"looker_ui/{NODE2}", "UP")
    try:
        result = failover.measure(LB, OUTSIDER, NODE2, UI, rate=20, before=3, after=9, how="kill")
    finally:
        failover.revive(NODE2, "kill")
    print(json.dumps(result, indent=1))
    assert result["samples"] > 50 and result["requests"] == 240
    assert result["last_request_after_death_s"] <= 6, result
    assert result["marked_down_after_death_s"] is not None and result["marked_down_after_death_s"] <= 6, result
    # A request that was in flight when the node died may fail; every request sent after it succeeds.
    assert result["failed_started_after_death"] == 0, result
    assert result["failed"] <= result["in_flight_at_death"], result
    assert result["answered_by_victim_after_death"] == 0, result
    # node2 comes back into the pool.
    failover.wait_status(LB, f"looker_ui/{NODE2}", "UP", timeout=90)
