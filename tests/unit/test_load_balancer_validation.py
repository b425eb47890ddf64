"""Bad input to the load_balancer role is refused before any host is changed, with a message that
names the variable, the bad value and the fix. Only the validation task files run, on the controller.
The firewall (role cluster_firewall) is tested in test_cluster_firewall_validation.py."""
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
    # A type the role's argument_specs refuse, and no other check looks at: refused here too.
    ({"load_balancer_maxconn": "many"}, "argument 'load_balancer_maxconn' is of type"),
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
