"""bcp_replication in TLS-terminating mode: a node run with --ssl-provided-externally-by answers
plain HTTP to its load balancer only (every other source, the node itself included, is refused),
so the bully election's and the preflight's health probes of such a node are made from that load
balancer (health_via), over the replication's SSH; other nodes are asked on themselves, over SSH."""
import importlib.util
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("lookerops_bcp", ROOT / "roles/bcp_replication/files/lookerops_bcp.py")
bcp = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bcp)

PRIVATE = ("-----BEGIN OPENSSH PRIVATE KEY-----\nTESTONLYBCPKEYMATERIAL0123456789\n-----END OPENSSH PRIVATE KEY-----\n")
PUBLIC = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJ8b0t1Z1m1kR6q2e4dF3x7Qv0n5yH2u8c9w0a1b2c3d bcp-test"
GOOD = {"bcp_replication_ssh_private_key": PRIVATE, "bcp_replication_ssh_public_key": PUBLIC}
TLS_A = {"looker_node_ssl_provided_externally_by": "10.0.1.5"}
HOSTS = [
    ("lkr-a-db", ["looker_appdb_primary", "looker_site_a"], "a", {}),
    ("lkr-a-n1", ["looker_nodes", "looker_site_a"], "a", dict(TLS_A, looker_cluster_address="10.0.1.11")),
    ("lkr-a-n2", ["looker_nodes", "looker_site_a"], "a", dict(TLS_A, looker_cluster_address="10.0.1.12")),
    ("lkr-a-lb", ["looker_lb", "looker_site_a"], "a", {"looker_cluster_address": "10.0.1.5"}),
    ("lkr-b-db", ["looker_appdb_primary", "looker_site_b"], "b", {}),
    ("lkr-b-n1", ["looker_nodes", "looker_site_b"], "b", {"looker_cluster_address": "10.0.2.11"}),
]


def plays(hosts=None, run_on="lkr-a-n1:lkr-a-lb"):
    hosts = HOSTS if hosts is None else hosts
    add = [{"name": f"Add {name}", "ansible.builtin.add_host": dict(
        name=name, groups=groups, looker_site=site, ansible_connection="local",
        ansible_python_interpreter="{{ ansible_playbook_python }}", **host_vars)} for name, groups, site, host_vars in hosts]
    return [
        {"hosts": "localhost", "gather_facts": False, "tasks": add},
        {"hosts": run_on, "gather_facts": False, "tasks": [
            {"name": "Run the validation", "ansible.builtin.include_role": {
                "name": "lookerops.cluster.bcp_replication", "tasks_from": "validate", "public": True}},
            {"name": "Show the nodes", "ansible.builtin.debug": {"msg": "NODES={{ __bcp_replication_nodes | to_json }}"},
             "run_once": True}]},
    ]


def nodes_of(output):
    return json.loads(re.search(r"NODES=(\{.*\})", output.replace('\\"', '"')).group(1))


def test_nodes_behind_a_tls_terminating_balancer_are_asked_from_it(run_play):
    result = run_play(plays(), extra_vars=GOOD)
    assert not result.failed, result.output[-3000:]
    nodes = nodes_of(result.output)
    a1 = next(n for n in nodes["a"] if n["name"] == "lkr-a-n1")
    assert a1["health_url"] == "http://10.0.1.11:9999/alive"
    assert a1["health_via"] == {"name": "lkr-a-lb", "address": "10.0.1.5"}
    # Site b's node serves its own TLS: asked directly over HTTPS, as before.
    assert nodes["b"] == [{"name": "lkr-b-n1", "id": "lkr-b-n1", "address": "10.0.2.11", "tls_provided_by": "",
                           "health_url": "https://10.0.2.11:9999/alive", "health_via": None}]


def test_node_addresses_are_normalised_in_the_health_urls(run_play):
    """Issue 16: a node's address in upper case or with a trailing dot is probed as the normalised name (a trailing
    dot breaks the TLS handshake)."""
    hosts = [h if h[0] != "lkr-b-n1" else (h[0], h[1], h[2], {"looker_cluster_address": "LKR-B-N1.Example.COM."})
             for h in HOSTS]
    result = run_play(plays(hosts), extra_vars=GOOD)
    assert not result.failed, result.output[-3000:]
    b1 = nodes_of(result.output)["b"][0]
    assert (b1["address"], b1["health_url"]) == ("lkr-b-n1.example.com", "https://lkr-b-n1.example.com:9999/alive")


def test_the_balancer_must_be_in_the_play(run_play):
    result = run_play(plays(run_on="lkr-a-n1"), extra_vars=GOOD)
    assert result.failed
    assert "The health probes run on lkr-a-lb, which this play does not include" in " ".join(result.output.split())


def test_a_site_without_a_balancer_to_ask_from_is_refused(run_play):
    hosts = [h for h in HOSTS if h[0] != "lkr-a-lb"]
    result = run_play(plays(hosts, run_on="lkr-a-n1"), extra_vars=GOOD)
    assert result.failed
    assert ("Looker on lkr-a-n1, lkr-a-n2 serves plain HTTP to its load balancer only (looker_node_ssl_provided_externally_by), "
            "and its site has no host in looker_lb") in " ".join(result.output.split())


CFG = {"host": "lkr-a-n1", "ssh_connect_timeout": 5,
       "nodes": {"a": [{"name": "lkr-a-n2", "id": "2", "address": "10.0.1.12", "health_url": "http://10.0.1.12:9999/alive",
                        "health_via": {"name": "lkr-a-lb", "address": "10.0.1.5"}}],
                 "b": [{"name": "lkr-b-n1", "id": "1", "address": "10.0.2.11", "health_url": "https://10.0.2.11:9999/alive",
                        "health_via": None}]}}


@pytest.fixture
def over_ssh(monkeypatch):
    """The remote actions asked (address, action, args...); a direct request to a health URL fails the test."""
    calls = []
    monkeypatch.setattr(bcp, "http_ok", lambda url, timeout=5: pytest.fail(f"asked {url} directly"))
    monkeypatch.setattr(bcp, "remote_json", lambda cfg, address, action, *args, **kw: calls.append((address, action) + args)
                        or {"ok": True, "reason": "HTTP 200"})
    return calls


def test_the_probe_of_a_node_behind_its_balancer_runs_on_the_balancer(over_ssh):
    assert bcp.node_alive(CFG, CFG["nodes"]["a"][0]) == (True, "HTTP 200 (asked from lkr-a-lb)")
    assert over_ssh == [("10.0.1.5", "alive", "--node", "lkr-a-n2")]


def test_an_unreachable_balancer_makes_the_node_unhealthy(monkeypatch):
    def fail(*_args, **_kw):
        raise bcp.CycleError("ssh: connect to host 10.0.1.5 port 22: Connection refused")
    monkeypatch.setattr(bcp, "remote_json", fail)
    ok, reason = bcp.node_alive(CFG, CFG["nodes"]["a"][0])
    assert not ok and "Connection refused" in reason


def test_a_node_serving_its_own_tls_is_asked_on_itself(over_ssh):
    """The cluster firewall lets a node's web port in from the load balancers only: a peer asks the node
    over SSH, which asks its own health URL (through its loopback)."""
    assert bcp.node_alive(CFG, CFG["nodes"]["b"][0]) == (True, "HTTP 200")
    assert over_ssh == [("10.0.2.11", "alive", "--node", "lkr-b-n1")]


def test_this_node_asks_its_own_health_url(monkeypatch):
    monkeypatch.setattr(bcp, "http_ok", lambda url, timeout=5: (True, f"HTTP 200 from {url}"))
    monkeypatch.setattr(bcp, "remote_json", lambda *args, **kw: pytest.fail("asked over SSH"))
    assert bcp.node_alive(dict(CFG, host="lkr-b-n1"), CFG["nodes"]["b"][0]) == (True, "HTTP 200 from https://10.0.2.11:9999/alive")


def test_the_balancer_asks_only_urls_of_its_configuration(monkeypatch, capsys):
    asked = []
    monkeypatch.setattr(bcp, "http_ok", lambda url, timeout=5: asked.append(url) or (True, "HTTP 200"))
    bcp.r_alive(dict(CFG, host="lkr-a-lb"), type("Args", (), {"node": "lkr-a-n2"})())
    assert json.loads(capsys.readouterr().out) == {"ok": True, "reason": "HTTP 200"}
    assert asked == ["http://10.0.1.12:9999/alive"]
    with pytest.raises(bcp.CycleError, match="lkr-x is not a Looker node"):
        bcp.r_alive(dict(CFG, host="lkr-a-lb"), type("Args", (), {"node": "lkr-x"})())
