"""The cluster_firewall role's rules, computed on the controller (tasks_from: rules, which changes
nothing): bad input is refused before any host is changed, with a message that names the variable,
the bad value and the fix; the published rules follow the inventory; the deprecated names of the
options (load_balancer_firewall_*) and load_balancer's deprecated entry points still work."""
import json
import re

import pytest

NODES = [("lkr-node1", ["looker_nodes", "looker_appdb_primary"], "10.89.0.11"),
         ("lkr-node2", ["looker_nodes"], "10.89.0.12"),
         ("lkr-lb1", ["looker_lb"], "10.89.0.21")]


def changed_nothing(output):
    """No host but localhost (which only ran add_host) changed anything."""
    recap = re.findall(r"^(\S+)\s+: ok=\d+\s+changed=(\d+)", output, re.M)
    return bool(recap) and all(changed == "0" for host, changed in recap if host != "localhost")


def plays(host, role="lookerops.cluster.cluster_firewall", tasks_from="rules", extra_hosts=(), save=None, fact="cluster_firewall_rules"):
    """Add the inventory, then run `role` (`tasks_from`) on `host`; with `save` (a path), write the fact there."""
    add = [{"name": f"Add {name}", "ansible.builtin.add_host": {
        "name": name, "groups": groups, "looker_cluster_address": address, "ansible_connection": "local",
        "ansible_python_interpreter": "{{ ansible_playbook_python }}"}} for name, groups, address in NODES]
    add += [{"name": f"Add {name}", "ansible.builtin.add_host": {"name": name, "groups": groups, "ansible_connection": "local"}}
            for name, groups in extra_hosts]
    tasks = [{"name": "Run the validation", "ansible.builtin.include_role": {"name": role, "tasks_from": tasks_from}}]
    if save:
        tasks.append({"name": "Save", "ansible.builtin.copy": {
            "content": "{{ " + fact + " | to_json }}", "dest": str(save), "mode": "0644"}, "delegate_to": "localhost"})
    return [
        {"hosts": "localhost", "gather_facts": False, "tasks": add},
        {"hosts": host, "gather_facts": False, "tasks": tasks},
    ]


def saved_rules(path):
    return {r["name"]: r for r in json.loads(path.read_text())}


@pytest.mark.parametrize("extra_vars, message", [
    ({"cluster_firewall_cluster_ports": [1551, "20-25"]},
     "would restrict port 22, the SSH port (cluster_firewall_ssh_port), through rule(s) [\"looker_cluster\"]"),
    ({"cluster_firewall_appdb_ports": [3306, 70000]},
     "these are not: [\"70000\"] (in rules [\"appdb\"])"),
    ({"cluster_firewall_admin_networks": ["10.0.0.0/33"]},
     "cluster_firewall_admin_networks has \"10.0.0.0/33\", which is neither an inventory host nor an IP address or"
     " network (CIDR). Fix cluster_firewall_admin_networks: list IP addresses, networks such as 10.89.0.0/24, or"
     " inventory names."),
    # Issue 16: the refusal names the option that was set, not four others.
    ({"cluster_firewall_cluster_networks": ["10.89.0.0/24", "10.89.0.0/33"]},
     "cluster_firewall_cluster_networks has \"10.89.0.0/33\", which is neither an inventory host nor an IP"
     " address or network (CIDR). Fix cluster_firewall_cluster_networks:"),
    # Issue 18: a valid network that leaves a node out would cut it off from the others.
    ({"cluster_firewall_cluster_networks": ["10.89.0.0/29"]},
     "cluster_firewall_cluster_networks (10.89.0.0/29) leaves out lkr-node1 (10.89.0.11), a Looker node, which"
     " reaches the other nodes on the cluster ports from there: add its address or a network holding it."),
    ({"cluster_firewall_extra_rules": [{"name": "monitoring", "ports": [1552], "groups": ["looker_nodes"],
                                        "from": ["prometheus-nosuch"]}]},
     "cluster_firewall_extra_rules (rule 'monitoring', 'from') has \"prometheus-nosuch\""),
    ({"cluster_firewall_extra_rules": [{"name": "Monitoring", "ports": [1552], "groups": ["looker_nodes"]}]},
     "a rule (cluster_firewall_extra_rules) is a dict with 'name' (lower case letters"),
    ({"cluster_firewall_extra_rules": [{"name": "appdb", "ports": [1552], "groups": ["looker_nodes"]}]},
     "give each rule of cluster_firewall_extra_rules its own name"),
    # A deprecated name is still checked, as the option it is the default of.
    ({"load_balancer_firewall_cluster_networks": ["10.89.0.0/29"]},
     "cluster_firewall_cluster_networks (10.89.0.0/29) leaves out lkr-node1 (10.89.0.11)"),
    # An option of the main entry point only (the preflight runs `rules`): its type is checked too.
    ({"cluster_firewall_persist": "maybe"}, "argument 'cluster_firewall_persist' is of type"),
])
def test_firewall_options_are_refused_with_the_fix(run_play, extra_vars, message):
    result = run_play(plays("lkr-node1"), extra_vars=extra_vars)
    assert result.failed
    assert message in " ".join(result.output.split()), result.output[-3000:]
    assert changed_nothing(result.output), result.output[-3000:]


def test_cluster_networks_holding_every_node_pass(run_play):
    result = run_play(plays("lkr-node1"), extra_vars={"cluster_firewall_cluster_networks": ["10.89.0.0/24"]})
    assert result.rc == 0, result.output[-3000:]


def test_firewall_refuses_a_source_host_without_address(run_play):
    # A node known only by name, whose facts were never gathered.
    result = run_play(plays("lkr-node1", extra_hosts=[("lkr-node3", ["looker_nodes"])]))
    assert result.failed
    assert "cannot tell the address of [\"lkr-node3\"]" in result.output.replace("\n", " ").replace("  ", " ")


def test_firewall_rules_are_published_from_the_inventory(run_play, tmp_path):
    out = tmp_path / "rules.json"
    result = run_play(plays("lkr-node1", save=out), extra_vars={"cluster_firewall_admin_networks": ["192.168.50.0/24"]})
    assert result.rc == 0, result.output[-3000:]
    rules = saved_rules(out)
    assert sorted(rules) == ["appdb", "looker_cluster", "looker_web"]
    assert rules["looker_cluster"]["ports"] == ["1551", "61616"]
    assert rules["looker_cluster"]["sources"] == ["10.89.0.11", "10.89.0.12"]
    assert rules["looker_web"]["sources"] == ["10.89.0.21", "192.168.50.0/24"]
    assert rules["looker_web"]["ports"] == ["9999", "19999"]
    assert rules["appdb"]["sources"] == ["10.89.0.11", "10.89.0.12"]
    assert "Deprecated" not in result.output


def test_the_firewall_ports_follow_the_tiers_port_options(run_play, tmp_path):
    """Moving a port in the inventory (looker_node_*_port, mysql_appdb_port) moves its rule: the port the
    service listens on stays protected, and the plan's checks (which read the same options) agree."""
    out = tmp_path / "rules.json"
    result = run_play(plays("lkr-node1", save=out), extra_vars={
        "looker_node_node_port": 1661, "looker_node_queue_port": 61717,
        "looker_node_web_port": 8443, "looker_node_api_port": 18443, "mysql_appdb_port": 3307})
    assert result.rc == 0, result.output[-3000:]
    rules = saved_rules(out)
    assert rules["looker_cluster"]["ports"] == ["1661", "61717"]
    assert rules["looker_web"]["ports"] == ["8443", "18443"]
    assert rules["appdb"]["ports"] == ["3307"]


def test_the_web_ports_follow_the_load_balancer_s_node_ports(run_play, tmp_path):
    """The balancer forwards to load_balancer_node_*_port when the inventory sets them: the firewall of the
    nodes opens those ports, although cluster_firewall never loads the load_balancer role's defaults."""
    out = tmp_path / "rules.json"
    result = run_play(plays("lkr-node1", save=out), extra_vars={
        "looker_node_web_port": 8443, "load_balancer_node_web_port": 9443, "load_balancer_node_api_port": 19443})
    assert result.rc == 0, result.output[-3000:]
    assert saved_rules(out)["looker_web"]["ports"] == ["9443", "19443"]


def test_deprecated_option_names_still_take_effect(run_play, tmp_path):
    """load_balancer_firewall_* set in an inventory of the previous release keep working (and are said to be
    deprecated); the new name wins when both are set."""
    out = tmp_path / "rules.json"
    result = run_play(plays("lkr-node1", save=out), extra_vars={
        "load_balancer_firewall_cluster_networks": ["10.89.0.0/24"],
        "load_balancer_firewall_admin_networks": ["192.168.60.0/24"],
        "load_balancer_firewall_appdb_ports": [3307],
        "load_balancer_firewall_appdb_extra_sources": ["10.89.0.40"], "cluster_firewall_appdb_extra_sources": ["10.89.0.41"]})
    assert result.rc == 0, result.output[-3000:]
    rules = saved_rules(out)
    assert rules["looker_cluster"]["sources"] == ["10.89.0.0/24"]
    assert rules["looker_web"]["sources"] == ["10.89.0.21", "192.168.60.0/24"]
    assert rules["appdb"]["ports"] == ["3307"]
    assert "10.89.0.41" in rules["appdb"]["sources"] and "10.89.0.40" not in rules["appdb"]["sources"]
    said = " ".join(result.output.split())
    assert ("Deprecated: load_balancer_firewall_admin_networks, load_balancer_firewall_appdb_extra_sources,"
            " load_balancer_firewall_appdb_ports, load_balancer_firewall_cluster_networks still set.") in said, said[-3000:]
    assert "cluster_firewall_admin_networks, cluster_firewall_appdb_extra_sources" in said


def test_load_balancer_s_deprecated_firewall_rules_entry_point_still_publishes_the_rules(run_play, tmp_path):
    """Playbooks of the previous release run load_balancer's tasks_from: firewall_rules and read the fact
    load_balancer_firewall_rules: both still work, and the new fact is there too."""
    old, new = tmp_path / "old.json", tmp_path / "new.json"
    play = plays("lkr-node1", role="lookerops.cluster.load_balancer", tasks_from="firewall_rules", save=old,
                 fact="load_balancer_firewall_rules")
    play[1]["tasks"].append({"name": "Save the new fact", "ansible.builtin.copy": {
        "content": "{{ cluster_firewall_rules | to_json }}", "dest": str(new), "mode": "0644"}, "delegate_to": "localhost"})
    result = run_play(play, extra_vars={"load_balancer_firewall_action": "drop",
                                        "load_balancer_firewall_admin_networks": ["192.168.50.0/24"]})
    assert result.rc == 0, result.output[-3000:]
    rules = saved_rules(old)
    assert rules == saved_rules(new)
    assert sorted(rules) == ["appdb", "looker_cluster", "looker_web"]
    assert rules["looker_web"]["sources"] == ["10.89.0.21", "192.168.50.0/24"]
    assert rules["looker_web"]["ports"] == ["9999", "19999"]


def test_load_balancer_s_deprecated_firewall_rules_entry_point_still_validates(run_play):
    result = run_play(plays("lkr-node1", role="lookerops.cluster.load_balancer", tasks_from="firewall_rules"),
                      extra_vars={"load_balancer_firewall_cluster_networks": ["10.89.0.0/29"]})
    assert result.failed
    assert "cluster_firewall_cluster_networks (10.89.0.0/29) leaves out lkr-node1" in " ".join(result.output.split())
    assert changed_nothing(result.output), result.output[-3000:]


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
                    {"name": "Rules", "ansible.builtin.include_role": {"name": "lookerops.cluster.cluster_firewall",
                                                                       "tasks_from": "rules"}},
                    {"name": "Save", "ansible.builtin.copy": {"content": "{{ cluster_firewall_rules | to_json }}",
                                                              "dest": str(out), "mode": "0644"}, "delegate_to": "localhost"}]}]
        result = run_play(play)
        assert result.rc == 0, result.output[-3000:]
        rules[host] = {r["name"]: sorted(r["sources"]) for r in json.loads(out.read_text())}
    assert rules["a-db1"] == {"appdb": ["10.1.0.11", "10.1.0.31", "10.2.0.31"]}
    assert rules["a-node1"] == {"looker_cluster": ["10.1.0.11"], "looker_web": ["10.1.0.21"]}
