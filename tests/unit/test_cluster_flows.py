"""The flows site.yml's preflight checks against the firewall rules and verify.yml probes live
(playbooks/templates/cluster_flows.yml.j2): every node reaches every node on the node-to-node and
queue ports, the balancers reach every node's web and API ports, the nodes reach the database -
each on the port the inventory configures (the roles' options), not on fixed numbers."""
import json
import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def render(run_play, tmp_path, node_vars=None, bridge=None):
    """The flows of a one-site inventory whose hosts are known by name (their addresses from their facts).
    bridge: hosts that also have 172.17.0.1 (docker0's address on every machine that runs Docker)."""
    hosts = {"n1": "10.0.0.11", "n2": "10.0.0.12", "n3": "10.0.0.13", "lb1": "10.0.0.5", "db1": "10.0.0.20"}
    all_addresses = {name: [address] + (["172.17.0.1"] if name in (bridge or ()) else []) for name, address in hosts.items()}
    groups = {"looker_nodes": {"hosts": {n: dict((node_vars or {}).get(n, {})) for n in ("n1", "n2", "n3")}},
              "looker_lb": {"hosts": {"lb1": {}}}, "looker_appdb_primary": {"hosts": {"db1": {"mysql_appdb_port": 3307}}}}
    inv = tmp_path / "hosts.yml"
    inv.write_text(yaml.safe_dump({"all": {"vars": {"ansible_connection": "local"}, "children": groups}}))
    address = {"default_ipv4": {"address": "{{ __addresses[inventory_hostname] }}"},
               "all_ipv4_addresses": "{{ __all_addresses[inventory_hostname] }}", "cacheable": True}
    play = [
        {"name": "facts", "hosts": "all:!localhost", "gather_facts": False, "tasks": [
            {"name": "An address per host", "ansible.builtin.set_fact": address,
             "vars": {"__addresses": hosts, "__all_addresses": all_addresses}}]},
        {"name": "render", "hosts": "localhost", "gather_facts": False, "tasks": [
            {"name": "Render", "ansible.builtin.debug": {
                "msg": "FLOWS={{ lookup('ansible.builtin.template', '" + str(ROOT / "playbooks/templates/cluster_flows.yml.j2")
                       + "') | from_yaml | to_json }}"}}]}]
    result = run_play(play, extra_args=["-i", str(inv)])
    assert not result.failed, result.output[-3000:]
    return json.loads(re.search(r"FLOWS=(\[.*\])", result.output.replace('\\"', '"')).group(1))


def allowed(flows):
    return [f for f in flows if f["expect"] == "allowed"]


def test_every_node_reaches_every_node_on_the_node_to_node_and_queue_ports(run_play, tmp_path):
    flows = allowed(render(run_play, tmp_path))
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
    to_n2 = {f["source"]: f["ports"] for f in allowed(flows) if f["destination"] == "n2"}
    assert to_n2 == {"looker_nodes": [1661, 61717], "looker_lb": [8443, 18443]}


SITES = {"a": {"a-node1": ("looker_nodes", "10.1.0.11"), "a-node2": ("looker_nodes", "10.1.0.12"),
               "a-lb1": ("looker_lb", "10.1.0.21"), "a-db1": ("looker_appdb_primary", "10.1.0.31")},
         "b": {"b-node1": ("looker_nodes", "10.2.0.11"), "b-lb1": ("looker_lb", "10.2.0.21"),
               "b-db1": ("looker_appdb_primary", "10.2.0.31")}}


def plan_check(run_play, tmp_path, extra_vars=None, second_address=None, flows_out=None):
    """site.yml's static port check on a two-site inventory: each host's firewall rules (cluster_firewall
    tasks_from rules) against the flows of cluster_flows.yml.j2, both directions. second_address: host ->
    an address on another network, where its default route goes (a node on the networks of both sites).
    flows_out: a file to write the flows to."""
    groups = {}
    for site, hosts in SITES.items():
        for name, (host_groups, address) in hosts.items():
            for group in [host_groups] if isinstance(host_groups, str) else host_groups:
                host = {"looker_site": site, "looker_cluster_address": address}
                if name in (second_address or {}):
                    host["test_second_address"] = second_address[name]
                groups.setdefault(group, {"hosts": {}})["hosts"][name] = host
    inv = tmp_path / "hosts.yml"
    inv.write_text(yaml.safe_dump({"all": {"vars": {"ansible_connection": "local",
                                                    "ansible_python_interpreter": "{{ ansible_playbook_python }}"},
                                           "children": groups}}))
    facts = {"default_ipv4": {"address": "{{ test_second_address | default(looker_cluster_address) }}"},
             "all_ipv4_addresses": "{{ [looker_cluster_address] + ([test_second_address] if test_second_address is defined else []) }}"}
    save = [{"name": "Save the flows", "run_once": True, "delegate_to": "localhost", "ansible.builtin.copy": {
        "content": "{{ lookup('ansible.builtin.template', '" + str(ROOT / "playbooks/templates/cluster_flows.yml.j2") + "') }}",
        "dest": str(flows_out), "mode": "0644"}}] if flows_out else []
    play = [
        {"name": "facts", "hosts": "all:!localhost", "gather_facts": False, "tasks": [
            {"name": "Addresses", "ansible.builtin.set_fact": {"ansible_facts": facts}}]},
        {"name": "rules", "hosts": "all:!localhost", "gather_facts": False, "tasks": [
            {"name": "Rules", "ansible.builtin.include_role": {"name": "lookerops.cluster.cluster_firewall", "tasks_from": "rules"}},
            {"name": "Check the plan", "run_once": True, "delegate_to": "localhost",
             "lookerops.cluster.cluster_port_check": {
                 "live": False,
                 "flows": "{{ lookup('ansible.builtin.template', '" + str(ROOT / "playbooks/templates/cluster_flows.yml.j2") + "') | from_yaml }}",
                 "rules": "{{ dict(ansible_play_hosts_all | zip(ansible_play_hosts_all | map('extract', hostvars, 'cluster_firewall_rules'))) }}"}},
            *save]}]
    return run_play(play, extra_vars, extra_args=["-i", str(inv)])


def test_the_plan_of_two_sites_passes_in_both_directions(run_play, tmp_path):
    result = plan_check(run_play, tmp_path)
    assert not result.failed, result.output[-4000:]


def test_a_flow_that_must_be_refused_and_is_open_fails_the_plan(run_play, tmp_path):
    result = plan_check(run_play, tmp_path, {"cluster_firewall_appdb_extra_sources": ["10.0.0.0/8"]})
    output = " ".join(result.output.split())
    assert result.failed
    assert "forbidden looker_lb -> a-db1:3306: rule 'appdb' lets in 10.1.0.21/32" in output, output[-4000:]
    assert "forbidden looker_nodes -> a-db1:3306: rule 'appdb' lets in 10.2.0.11/32" in output


def test_forbidden_flows_name_outsiders_balancers_and_the_other_site(run_play, tmp_path):
    flows = [f for f in render(run_play, tmp_path) if f["expect"] == "forbidden"]
    by_source = {}
    for flow in flows:
        by_source.setdefault((flow["source"], flow["destination"]), flow)
    assert by_source[("outsider", "n1")]["ports"] == [1551, 61616]
    assert by_source[("outsider", "n1")]["source_addresses"] == ["203.0.113.7"]
    assert by_source[("looker_lb", "n1")]["source_hosts"] == ["lb1"] and by_source[("looker_lb", "n1")]["ports"] == [1551, 61616]
    assert by_source[("outsider", "db1")]["ports"] == [3307] and by_source[("looker_lb", "db1")]["ports"] == [3307]


def test_a_balancer_inside_the_cluster_networks_is_not_expected_refused(run_play, tmp_path):
    flows = render(run_play, tmp_path, node_vars={n: {"cluster_firewall_cluster_networks": ["10.0.0.0/24"]}
                                                  for n in ("n1", "n2", "n3")})
    assert not [f for f in flows if f["expect"] == "forbidden" and f["source"] == "looker_lb" and f["destination"].startswith("n")]


def test_the_deprecated_cluster_networks_name_still_shapes_the_plan(run_play, tmp_path):
    """An inventory of the previous release (load_balancer_firewall_cluster_networks) is read as the new option."""
    flows = render(run_play, tmp_path, node_vars={n: {"load_balancer_firewall_cluster_networks": ["10.0.0.0/24"]}
                                                  for n in ("n1", "n2", "n3")})
    assert not [f for f in flows if f["expect"] == "forbidden" and f["source"] == "looker_lb" and f["destination"].startswith("n")]


def test_the_deprecated_appdb_extra_sources_name_still_checks_the_plan(run_play, tmp_path):
    result = plan_check(run_play, tmp_path, {"load_balancer_firewall_appdb_extra_sources": ["10.0.0.0/8"]})
    assert result.failed
    assert "forbidden looker_lb -> a-db1:3306: rule 'appdb' lets in 10.1.0.21/32" in " ".join(result.output.split())


def test_a_node_colocated_with_its_site_s_database_passes_the_plan(run_play, tmp_path, monkeypatch):
    """The database hosts of every site are let in (replication): a node on its site's database host is
    not expected refused by the other site's database."""
    monkeypatch.setitem(SITES, "b", {"b-node1": (["looker_nodes", "looker_appdb_primary"], "10.2.0.11"),
                                     "b-lb1": ("looker_lb", "10.2.0.21")})
    result = plan_check(run_play, tmp_path)
    assert not result.failed, result.output[-4000:]


def test_nodes_on_the_networks_of_both_sites_pass_the_plan(run_play, tmp_path):
    """molecule/bcp's nodes: on their own site's network (their looker_cluster_address) and on the other
    site's, where their default route goes. They reach their peers from their own address, which the
    firewall lets in: the plan once took the default route's address and failed site.yml's preflight, and
    the postflight's live probes connected to their names."""
    flows_out = tmp_path / "flows.yml"
    result = plan_check(run_play, tmp_path, second_address={"a-node1": "10.2.0.51", "a-node2": "10.2.0.52", "a-lb1": "10.2.0.53"},
                        flows_out=flows_out)
    assert not result.failed, result.output[-4000:]
    flows = yaml.safe_load(flows_out.read_text())
    links = [f for f in flows if f["name"].startswith("node links") and f["destination"] == "a-node1"]
    assert links[0]["source_addresses"] == ["10.1.0.11", "10.1.0.12"]
    # The live probes connect where the tiers do: the cluster address, not the name (which the node's
    # resolver may answer with its address on the other network, or not at all).
    assert links[0]["address"] == "10.1.0.11"
    assert {f["address"] for f in flows if f["destination"] == "b-db1"} == {"10.2.0.31"}
    # Refused from every address a node of site a has: the other site's database is on its second network.
    strangers = [f for f in flows if f["destination"] == "b-db1" and f["name"].startswith("another site")]
    assert sorted(strangers[0]["source_addresses"]) == ["10.1.0.11", "10.1.0.12", "10.2.0.51", "10.2.0.52"]


def test_an_address_several_hosts_have_is_no_source_of_a_flow_that_must_be_refused(run_play, tmp_path):
    """Docker's bridge has 172.17.0.1 on every machine: the node links let it in (a node has it), so the
    balancer's flow that must be refused, checked from it, failed the plan although no balancer sends
    from there to a node."""
    flows = render(run_play, tmp_path, bridge=("n1", "lb1"))
    refused = [f for f in flows if f["expect"] == "forbidden" and f["source"] == "looker_lb"]
    assert refused and all(f["source_addresses"] == ["10.0.0.5"] for f in refused), refused
