"""The flows site.yml's preflight checks against the firewall rules and verify.yml probes live
(playbooks/templates/cluster_flows.yml.j2): every node reaches every node on the node-to-node and
queue ports, the balancers reach every node's web and API ports, the nodes reach the database -
each on the port the inventory configures (the roles' options), not on fixed numbers."""
import json
import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def render(run_play, tmp_path, node_vars=None):
    hosts = {"n1": "10.0.0.11", "n2": "10.0.0.12", "n3": "10.0.0.13", "lb1": "10.0.0.5", "db1": "10.0.0.20"}
    groups = {"looker_nodes": {"hosts": {n: dict((node_vars or {}).get(n, {})) for n in ("n1", "n2", "n3")}},
              "looker_lb": {"hosts": {"lb1": {}}}, "looker_appdb_primary": {"hosts": {"db1": {"mysql_appdb_port": 3307}}}}
    inv = tmp_path / "hosts.yml"
    inv.write_text(yaml.safe_dump({"all": {"vars": {"ansible_connection": "local"}, "children": groups}}))
    address = {"default_ipv4": {"address": "{{ __addresses[inventory_hostname] }}"}, "cacheable": True}
    play = [
        {"name": "facts", "hosts": "all:!localhost", "gather_facts": False, "tasks": [
            {"name": "An address per host", "ansible.builtin.set_fact": address, "vars": {"__addresses": hosts}}]},
        {"name": "render", "hosts": "localhost", "gather_facts": False, "tasks": [
            {"name": "Render", "ansible.builtin.debug": {
                "msg": "FLOWS={{ lookup('ansible.builtin.template', '" + str(ROOT / "playbooks/templates/cluster_flows.yml.j2")
                       + "') | from_yaml | to_json }}"}}]}]
    result = run_play(play, extra_args=["-i", str(inv)])
    assert not result.failed, result.output[-3000:]
    return json.loads(re.search(r"FLOWS=(\[.*\])", result.output.replace('\\"', '"')).group(1))


def test_every_node_reaches_every_node_on_the_node_to_node_and_queue_ports(run_play, tmp_path):
    flows = render(run_play, tmp_path)
    links = [f for f in flows if f["source"] == "looker_nodes" and f["destination"].startswith("n")]
    assert sorted(f["destination"] for f in links) == ["n1", "n2", "n3"]
    for flow in links:
        assert flow["ports"] == [1551, 61616] and flow["expect"] == "allowed"
        assert flow["source_hosts"] == ["n1", "n2", "n3"]
        assert flow["source_addresses"] == ["10.0.0.11", "10.0.0.12", "10.0.0.13"]
    lb = [f for f in flows if f["source"] == "looker_lb"]
    assert sorted(f["destination"] for f in lb) == ["n1", "n2", "n3"] and all(f["ports"] == [9999, 19999] for f in lb)
    db = [f for f in flows if f["destination"] == "db1"]
    assert len(db) == 1 and db[0]["ports"] == [3307]


def test_the_ports_follow_the_options(run_play, tmp_path):
    ports = {"looker_node_node_port": 1661, "looker_node_queue_port": 61717, "looker_node_web_port": 8443, "looker_node_api_port": 18443}
    flows = render(run_play, tmp_path, node_vars={"n2": ports})
    to_n2 = {f["source"]: f["ports"] for f in flows if f["destination"] == "n2"}
    assert to_n2 == {"looker_nodes": [1661, 61717], "looker_lb": [8443, 18443]}
