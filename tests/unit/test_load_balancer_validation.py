"""Bad input to the load_balancer role is refused before any host is changed, with a message that
names the variable, the bad value and the fix. Only the validation task files (and firewall_rules,
which changes nothing) run, on the controller."""
import json
import re

import pytest

NODES = [("lkr-node1", ["looker_nodes", "looker_appdb_primary"], "10.89.0.11"),
         ("lkr-node2", ["looker_nodes"], "10.89.0.12"),
         ("lkr-lb1", ["looker_lb"], "10.89.0.21")]
KEY = "-----BEGIN PRIVATE KEY-----\nTOPSECRETKEYMATERIAL\n-----END PRIVATE KEY-----"


def changed_nothing(output):
    """No host but localhost (which only ran add_host) changed anything."""
    recap = re.findall(r"^(\S+)\s+: ok=\d+\s+changed=(\d+)", output, re.M)
    return bool(recap) and all(changed == "0" for host, changed in recap if host != "localhost")


def plays(host, tasks_from, extra_hosts=()):
    add = [{"name": f"Add {name}", "ansible.builtin.add_host": {
        "name": name, "groups": groups, "looker_cluster_address": address, "ansible_connection": "local",
        "ansible_python_interpreter": "{{ ansible_playbook_python }}"}} for name, groups, address in NODES]
    add += [{"name": f"Add {name}", "ansible.builtin.add_host": {"name": name, "groups": groups, "ansible_connection": "local"}}
            for name, groups in extra_hosts]
    return [
        {"hosts": "localhost", "gather_facts": False, "tasks": add},
        {"hosts": host, "gather_facts": False, "tasks": [{
            "name": "Run the validation", "ansible.builtin.include_role": {
                "name": "lookerops.cluster.load_balancer", "tasks_from": tasks_from}}]},
    ]


@pytest.mark.parametrize("extra_vars, message", [
    ({"load_balancer_backend_hosts": []},
     "load_balancer_backend_hosts is empty: put the Looker nodes in the looker_nodes group"),
    ({"load_balancer_backend_hosts": ["lkr-node1", "lkr-node9"]},
     "load_balancer_backend_hosts has \"lkr-node9\": give the inventory name of a Looker node"),
    ({"load_balancer_backend_hosts": ["lkr-node1", {"name": "lkr-node1", "address": "10.0.0.1"}]},
     "each name must be unique"),
    ({"load_balancer_api_port": 443},
     "load_balancer_ui_port and load_balancer_api_port are both 443"),
    ({"load_balancer_health_path": "alive"},
     "load_balancer_health_path ('alive') must start with '/'"),
    ({"load_balancer_sticky_cookie": "my cookie"},
     "load_balancer_sticky_cookie is 'my cookie': use letters, digits, _ and - only"),
    ({"load_balancer_vip": "10.89.0.300"},
     "load_balancer_vip must be an IPv4 address (got '10.89.0.300')"),
    ({"load_balancer_vip": "10.89.0.250", "load_balancer_vrrp_password": "longerthan8"},
     "load_balancer_vrrp_password at most 8 characters"),
    # Issue 16: addresses are resolved on the controller and compared as addresses.
    ({"load_balancer_backend_hosts": ["lkr-node1", {"name": "lkr-node9", "address": "lkr-node9.nosuch.invalid"}]},
     "lkr-node9: load_balancer_backend_hosts is lkr-node9.nosuch.invalid, which does not resolve on the controller"),
    ({"load_balancer_backend_hosts": ["lkr-node1", {"name": "lkr-node9", "address": "LKR-NODE1."}]},
     "lkr-node1 and lkr-node9 have the same backend address, 10.89.0.11: lkr-node1's looker_cluster_address is"
     " 10.89.0.11, and lkr-node9's load_balancer_backend_hosts is LKR-NODE1., which resolves to 10.89.0.11 as the"
     " looker_cluster_address of lkr-node1"),
])
def test_balancer_options_are_refused_with_the_fix(run_play, extra_vars, message):
    result = run_play(plays("lkr-lb1", "validate"), extra_vars=extra_vars)
    assert result.failed
    assert message in " ".join(result.output.split()), result.output[-3000:]
    assert changed_nothing(result.output), result.output[-3000:]


def test_certificate_without_key_is_refused_without_showing_either(run_play):
    result = run_play(plays("lkr-lb1", "validate"), extra_args=["-vvv"], extra_vars={
        "load_balancer_tls_mode": "terminate", "load_balancer_tls_private_key": KEY})
    assert result.failed
    assert "certificate empty, key PEM" in result.output.replace("\n", " ")
    assert "TOPSECRETKEYMATERIAL" not in result.output


def test_timeouts_below_looker_s_advice_are_warned_about(run_play):
    result = run_play(plays("lkr-lb1", "validate"), extra_vars={"load_balancer_timeout_client": 60})
    assert result.rc == 0, result.output[-3000:]
    assert "Looker asks for at least 3600 s" in result.output


@pytest.mark.parametrize("extra_vars, message", [
    ({"load_balancer_firewall_cluster_ports": [1551, "20-25"]},
     "would restrict port 22, the SSH port (load_balancer_firewall_ssh_port), through rule(s) [\"looker_cluster\"]"),
    ({"load_balancer_firewall_appdb_ports": [3306, 70000]},
     "these are not: [\"70000\"] (in rules [\"appdb\"])"),
    ({"load_balancer_firewall_admin_networks": ["10.0.0.0/33"]},
     "load_balancer_firewall_admin_networks has \"10.0.0.0/33\", which is neither an inventory host nor an IP address or"
     " network (CIDR). Fix load_balancer_firewall_admin_networks: list IP addresses, networks such as 10.89.0.0/24, or"
     " inventory names."),
    # Issue 16: the refusal names the option that was set, not four others.
    ({"load_balancer_firewall_cluster_networks": ["10.89.0.0/24", "10.89.0.0/33"]},
     "load_balancer_firewall_cluster_networks has \"10.89.0.0/33\", which is neither an inventory host nor an IP"
     " address or network (CIDR). Fix load_balancer_firewall_cluster_networks:"),
    # Issue 18: a valid network that leaves a node out would cut it off from the others.
    ({"load_balancer_firewall_cluster_networks": ["10.89.0.0/29"]},
     "load_balancer_firewall_cluster_networks (10.89.0.0/29) leaves out lkr-node1 (10.89.0.11), a Looker node, which"
     " reaches the other nodes on the cluster ports from there: add its address or a network holding it."),
    ({"load_balancer_firewall_extra_rules": [{"name": "monitoring", "ports": [1552], "groups": ["looker_nodes"],
                                              "from": ["prometheus-nosuch"]}]},
     "load_balancer_firewall_extra_rules (rule 'monitoring', 'from') has \"prometheus-nosuch\""),
    ({"load_balancer_firewall_extra_rules": [{"name": "Monitoring", "ports": [1552], "groups": ["looker_nodes"]}]},
     "a rule (load_balancer_firewall_extra_rules) is a dict with 'name' (lower case letters"),
    ({"load_balancer_firewall_extra_rules": [{"name": "appdb", "ports": [1552], "groups": ["looker_nodes"]}]},
     "give each rule of load_balancer_firewall_extra_rules its own name"),
])
def test_firewall_options_are_refused_with_the_fix(run_play, extra_vars, message):
    result = run_play(plays("lkr-node1", "firewall_rules"), extra_vars=extra_vars)
    assert result.failed
    assert message in " ".join(result.output.split()), result.output[-3000:]
    assert changed_nothing(result.output), result.output[-3000:]


def test_cluster_networks_holding_every_node_pass(run_play):
    result = run_play(plays("lkr-node1", "firewall_rules"), extra_vars={"load_balancer_firewall_cluster_networks": ["10.89.0.0/24"]})
    assert result.rc == 0, result.output[-3000:]


def test_backend_addresses_are_normalised(run_play, tmp_path):
    out = tmp_path / "backends.json"
    play = plays("lkr-lb1", "validate")
    play[1]["tasks"][0]["ansible.builtin.include_role"]["public"] = True
    play[1]["tasks"].append({"name": "Save", "ansible.builtin.copy": {
        "content": "{{ __load_balancer_backends | map(attribute='address') | list | to_json }}", "dest": str(out),
        "mode": "0644"}, "delegate_to": "localhost"})
    result = run_play(play, extra_vars={"load_balancer_backend_hosts": [
        "lkr-node1", {"name": "n2", "address": "LOCALHOST."}, {"name": "n3", "address": "FD00:0::3"}]})
    assert result.rc == 0, result.output[-3000:]
    assert json.loads(out.read_text()) == ["10.89.0.11", "localhost", "fd00::3"]


def test_firewall_refuses_a_source_host_without_address(run_play):
    # A node known only by name, whose facts were never gathered.
    result = run_play(plays("lkr-node1", "firewall_rules", extra_hosts=[("lkr-node3", ["looker_nodes"])]))
    assert result.failed
    assert "cannot tell the address of [\"lkr-node3\"]" in result.output.replace("\n", " ").replace("  ", " ")


def test_node_state_refuses_nginx_and_unknown_nodes(run_play):
    result = run_play(plays("lkr-lb1", "node_state"), extra_vars={
        "load_balancer_engine": "nginx", "load_balancer_node_state_host": "lkr-node2"})
    assert result.failed and "nginx has no runtime API" in result.output.replace("\n", " ")
    result = run_play(plays("lkr-lb1", "node_state"), extra_vars={"load_balancer_node_state_host": "lkr-node7"})
    assert result.failed
    assert "load_balancer_node_state_host is 'lkr-node7': set it to one of the backends [\"lkr-node1\", \"lkr-node2\"]" in (
        result.output.replace("\n", " ").replace("  ", " "))


def test_argument_specs_refuse_an_unknown_engine(run_play):
    result = run_play(plays("lkr-lb1", "node_state"), extra_vars={
        "load_balancer_engine": "traefik", "load_balancer_node_state_host": "lkr-node2"})
    assert result.failed
    assert "load_balancer_engine" in result.output and "traefik" in result.output


def test_firewall_rules_are_published_from_the_inventory(run_play, tmp_path):
    out = tmp_path / "rules.json"
    play = plays("lkr-node1", "firewall_rules")
    play[1]["tasks"].append({"name": "Save", "ansible.builtin.copy": {
        "content": "{{ load_balancer_firewall_rules | to_json }}", "dest": str(out), "mode": "0644"}, "delegate_to": "localhost"})
    result = run_play(play, extra_vars={"load_balancer_firewall_admin_networks": ["192.168.50.0/24"]})
    assert result.rc == 0, result.output[-3000:]
    rules = {r["name"]: r for r in json.loads(out.read_text())}
    assert sorted(rules) == ["appdb", "looker_cluster", "looker_web"]
    assert rules["looker_cluster"]["ports"] == ["1551", "61616"]
    assert rules["looker_cluster"]["sources"] == ["10.89.0.11", "10.89.0.12"]
    assert rules["looker_web"]["sources"] == ["10.89.0.21", "192.168.50.0/24"]
    assert rules["looker_web"]["ports"] == ["9999", "19999"]
    assert rules["appdb"]["sources"] == ["10.89.0.11", "10.89.0.12"]


def test_the_firewall_ports_follow_the_tiers_port_options(run_play, tmp_path):
    """Moving a port in the inventory (looker_node_*_port, mysql_appdb_port) moves its rule: the port the
    service listens on stays protected, and the plan's checks (which read the same options) agree."""
    out = tmp_path / "rules.json"
    play = plays("lkr-node1", "firewall_rules")
    play[1]["tasks"].append({"name": "Save", "ansible.builtin.copy": {
        "content": "{{ load_balancer_firewall_rules | to_json }}", "dest": str(out), "mode": "0644"}, "delegate_to": "localhost"})
    result = run_play(play, extra_vars={"looker_node_node_port": 1661, "looker_node_queue_port": 61717,
                                        "looker_node_web_port": 8443, "looker_node_api_port": 18443, "mysql_appdb_port": 3307})
    assert result.rc == 0, result.output[-3000:]
    rules = {r["name"]: r for r in json.loads(out.read_text())}
    assert rules["looker_cluster"]["ports"] == ["1661", "61717"]
    assert rules["looker_web"]["ports"] == ["8443", "18443"]
    assert rules["appdb"]["ports"] == ["3307"]


def test_a_site_s_firewall_lets_in_its_own_nodes_and_every_database_host(run_play, tmp_path):
    """Two sites: the database of site a takes its own nodes and the database hosts of both sites
    (replication), never site b's nodes; the nodes of site a take only site a's nodes and balancers."""
    hosts = [("a-node1", ["looker_nodes"], "10.1.0.11", "a"), ("a-lb1", ["looker_lb"], "10.1.0.21", "a"),
             ("a-db1", ["looker_appdb_primary"], "10.1.0.31", "a"), ("b-node1", ["looker_nodes"], "10.2.0.11", "b"),
             ("b-lb1", ["looker_lb"], "10.2.0.21", "b"), ("b-db1", ["looker_appdb_primary"], "10.2.0.31", "b")]
    add = [{"name": f"Add {name}", "ansible.builtin.add_host": {
        "name": name, "groups": groups, "looker_cluster_address": address, "looker_site": site, "ansible_connection": "local",
        "ansible_python_interpreter": "{{ ansible_playbook_python }}"}} for name, groups, address, site in hosts]
    rules = {}
    for host in ("a-db1", "a-node1"):
        out = tmp_path / f"{host}.json"
        play = [{"hosts": "localhost", "gather_facts": False, "tasks": add},
                {"hosts": host, "gather_facts": False, "tasks": [
                    {"name": "Rules", "ansible.builtin.include_role": {"name": "lookerops.cluster.load_balancer",
                                                                       "tasks_from": "firewall_rules"}},
                    {"name": "Save", "ansible.builtin.copy": {"content": "{{ load_balancer_firewall_rules | to_json }}",
                                                              "dest": str(out), "mode": "0644"}, "delegate_to": "localhost"}]}]
        result = run_play(play)
        assert result.rc == 0, result.output[-3000:]
        rules[host] = {r["name"]: sorted(r["sources"]) for r in json.loads(out.read_text())}
    assert rules["a-db1"] == {"appdb": ["10.1.0.11", "10.1.0.31", "10.2.0.31"]}
    assert rules["a-node1"] == {"looker_cluster": ["10.1.0.11"], "looker_web": ["10.1.0.21"]}
