"""cluster_port_check: the static analysis (netaddr), the live probes (loopback only) and the messages."""
import json
import socket

import pytest

from ansible_collections.lookerops.cluster.plugins.module_utils import port_rules as pr

NODE1, NODE2, LB, DB, OUTSIDER = "10.89.0.11", "10.89.0.12", "10.89.0.21", "10.89.0.31", "10.89.0.99"

# What the load_balancer role renders for a node and the database host.
RULES = {
    "node1": [
        {"name": "looker_cluster", "ports": [1551, 61616], "sources": [NODE1, NODE2]},
        {"name": "looker_web", "ports": [9999, 19999], "sources": [LB, "192.168.50.0/24"]},
    ],
    "db": [{"name": "appdb", "ports": [3306], "sources": [NODE1, NODE2, "10.89.0.40"]}],
}


def flow(source, addresses, destination, ports, expect, hosts=()):
    return {"source": source, "source_addresses": addresses, "source_hosts": list(hosts), "destination": destination,
            "ports": ports, "expect": expect}


def run(flows, rules=None, **kwargs):
    parsed, parsed_rules = pr.load(flows, RULES if rules is None else rules)
    return pr.check(parsed, parsed_rules, **kwargs)


def rows_by_port(rows):
    return {(r["destination"], r["port"]): r for r in rows}


def test_allowed_peers_covered_and_outsider_kept_out():
    rows, violations = run([
        flow("looker_nodes", [NODE1, NODE2], "node1", [1551, 61616], "allowed"),
        flow("outsiders", [OUTSIDER], "node1", [1551, 61616, 9999], "forbidden"),
        flow("looker_nodes", [NODE1, NODE2], "db", [3306], "allowed"),
        flow("outsiders", [OUTSIDER], "db", [3306], "forbidden"),
    ], live=False)
    assert violations == []
    assert [(r["source"], r["destination"], r["port"], r["static"], r["ok"]) for r in rows] == [
        ("looker_nodes", "node1", "1551", "covered", True),
        ("looker_nodes", "node1", "61616", "covered", True),
        ("outsiders", "node1", "1551", "not covered", True),
        ("outsiders", "node1", "9999", "not covered", True),
        ("outsiders", "node1", "61616", "not covered", True),
        ("looker_nodes", "db", "3306", "covered", True),
        ("outsiders", "db", "3306", "not covered", True),
    ]
    assert all(r["live"] == "not run" for r in rows)


def test_peer_missing_from_the_rule_is_named_with_the_rule():
    rows, violations = run([flow("looker_nodes", [NODE1, NODE2, "10.89.0.13"], "node1", [1551], "allowed")], live=False)
    assert rows[0]["static"] == "partly covered" and not rows[0]["ok"]
    assert violations == [
        "static: allowed looker_nodes -> node1:1551: 10.89.0.13/32 not let in by the rules for port 1551 on node1 "
        "('looker_cluster' [10.89.0.11, 10.89.0.12])"
    ]


def test_admin_network_overlapping_an_outsider_is_reported_with_the_rule():
    rows, violations = run([flow("outsiders", ["192.168.50.7", "192.168.60.0/24"], "node1", [9999, 1551], "forbidden")], live=False)
    by_port = rows_by_port(rows)
    assert by_port[("node1", "9999")]["static"] == "partly covered"
    assert by_port[("node1", "1551")]["ok"]
    assert violations == ["static: forbidden outsiders -> node1:9999: rule 'looker_web' lets in 192.168.50.7/32"]


def test_forbidden_port_that_no_rule_restricts_is_a_violation():
    rows, violations = run([flow("outsiders", [OUTSIDER], "node1", [1552], "forbidden")], live=False)
    assert rows[0]["static"] == "unrestricted"
    assert violations == ["static: forbidden outsiders -> node1:1552: no firewall rule on node1 restricts port 1552, "
                          "so every address (10.89.0.99/32 among them) can connect"]


def test_allowed_flow_to_an_unrestricted_port_holds():
    rows, violations = run([flow("looker_nodes", [NODE1], "node1", [1552], "allowed")], live=False)
    assert rows[0]["static"] == "unrestricted" and violations == []


def test_networks_ranges_and_ipv6():
    rules = {"fs1": [{"name": "storage", "ports": ["24007-24008", "49152-49251"], "sources": ["10.89.0.0/28", "fd00::/64"]}]}
    rows, violations = run([
        flow("clients", ["10.89.0.0/29", "fd00::5"], "fs1", ["24007-24008", 49160], "allowed"),
        flow("others", ["10.89.0.16/28", "fd00:1::1"], "fs1", [49152], "forbidden"),
    ], rules=rules, live=False)
    assert violations == []
    assert [r["static"] for r in rows] == ["covered", "covered", "not covered"]


def test_destination_without_rules_is_not_checked_statically():
    rows, violations = run([flow("outsiders", [OUTSIDER], "elsewhere", [22], "forbidden")], live=False)
    assert rows[0]["static"] == "not checked" and violations == []


@pytest.mark.parametrize("bad, message", [
    ({"source": "x", "destination": "d", "ports": [0], "expect": "allowed"}, "flows[0] (x -> d): port 0 is outside 1-65535"),
    ({"source": "x", "destination": "d", "ports": ["61616-1551"], "expect": "allowed"}, "its range is reversed"),
    ({"source": "x", "destination": "d", "ports": ["ssh"], "expect": "allowed"}, "port 'ssh' is not a number"),
    ({"source": "x", "destination": "d", "ports": [22], "expect": "open"}, "expect must be allowed or forbidden, got 'open'"),
    ({"source": "x", "destination": "d", "ports": [22], "expect": "allowed", "source_addresses": ["10.0.0.300"]},
     "'10.0.0.300' is not an IP address or network"),
    ({"source": "x", "destination": "d", "ports": [], "expect": "allowed"}, "ports is empty"),
    ({"source": "x", "ports": [22], "expect": "allowed"}, "flows[0]: destination is missing"),
    ({"source": "x", "destination": "d", "ports": [22], "expect": "allowed", "port": 22}, "unknown key(s) port"),
])
def test_bad_flows_are_refused_with_the_reason(bad, message):
    with pytest.raises(pr.FlowError) as exc:
        pr.load([bad], {})
    assert message in str(exc.value)


def test_bad_rules_are_refused_with_the_reason():
    with pytest.raises(pr.FlowError) as exc:
        pr.load([flow("x", [], "d", [22], "allowed")], {"d": [{"name": "web", "ports": [443], "sources": ["lb1"]}]})
    assert str(exc.value) == "rules[d][0] (web): 'lb1' is not an IP address or network (CIDR)"


@pytest.fixture
def listener():
    """A listening socket on loopback, and a loopback port where nothing listens."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    free_port = closed.getsockname()[1]
    closed.close()
    yield server.getsockname()[1], free_port
    server.close()


def test_live_probe_from_this_host_only(listener):
    open_port, closed_port = listener
    flows = [
        dict(flow("looker_nodes", ["127.0.0.0/8"], "peer", [open_port], "allowed"), address="127.0.0.1"),
        dict(flow("outsiders", [], "peer", [closed_port], "forbidden", hosts=["probe"]), address="127.0.0.1"),
        dict(flow("others", ["10.0.0.0/8"], "peer", [open_port], "allowed"), address="127.0.0.1"),
    ]
    rows, violations = run(flows, rules={}, host="probe", host_addresses=["127.0.0.2"], timeout=1)
    assert [(r["source"], r["live"]) for r in rows] == [("looker_nodes", "open"), ("outsiders", "refused"), ("others", "not run")]
    assert violations == []


def test_live_violations_say_what_was_seen_and_expected(listener):
    open_port, closed_port = listener
    flows = [
        dict(flow("outsiders", [], "peer", [open_port], "forbidden", hosts=["probe"]), address="127.0.0.1"),
        dict(flow("looker_nodes", [], "peer", [closed_port], "allowed", hosts=["probe"]), address="127.0.0.1"),
    ]
    _rows, violations = run(flows, rules={}, host="probe", timeout=1)
    assert violations == [
        "live from probe: forbidden outsiders -> 127.0.0.1:%d: connection succeeded (expected refused or timed out)" % open_port,
        "live from probe: allowed looker_nodes -> 127.0.0.1:%d: connection refused (expected open)" % closed_port,
    ]


def test_flows_to_this_host_itself_are_not_probed(listener):
    open_port, _closed = listener
    rows, _violations = run([flow("looker_nodes", [], "probe", [open_port], "allowed", hosts=["probe"])], rules={}, host="probe")
    assert rows[0]["live"] == "not run"


def test_probes_run_in_parallel():
    calls = []

    def slow(address, port, timeout):
        import time
        calls.append(port)
        time.sleep(0.3)
        return pr.TIMEOUT, "no answer", 0.3

    import time
    started = time.time()
    rows, violations = run([flow("outsiders", [], "d", list(range(2000, 2010)), "forbidden", hosts=["h"])],
                           rules={}, host="h", prober=slow)
    assert time.time() - started < 1.5 and sorted(calls) == list(range(2000, 2010))
    assert violations == [] and {r["live"] for r in rows} == {"timeout"}


def test_module_fails_listing_each_violated_flow(run_play, listener):
    open_port, closed_port = listener
    play = [{
        "hosts": "localhost", "gather_facts": False,
        "vars": {"ansible_python_interpreter": "{{ ansible_playbook_python }}"},
        "tasks": [{
            "name": "Check", "register": "out", "ignore_errors": True,
            "lookerops.cluster.cluster_port_check": {
                "host": "probe", "timeout": 1,
                "rules": {"peer": [{"name": "looker_cluster", "ports": [open_port], "sources": ["10.1.0.0/24"]}]},
                "flows": [
                    {"source": "outsiders", "source_hosts": ["probe"], "source_addresses": ["10.1.0.9"], "destination": "peer",
                     "address": "127.0.0.1", "ports": [open_port], "expect": "forbidden"},
                    {"source": "looker_nodes", "source_hosts": ["probe"], "destination": "peer", "address": "127.0.0.1",
                     "ports": [closed_port], "expect": "allowed"},
                ],
            },
        }, {"name": "Show", "ansible.builtin.debug": {"msg": "{{ out | to_json }}"}}],
    }]
    result = run_play(play)
    assert "3 flow check(s) violated:" in result.output
    assert "- static: forbidden outsiders -> peer:%d: rule 'looker_cluster' lets in 10.1.0.9/32" % open_port in result.output
    assert "- live from probe: forbidden outsiders -> 127.0.0.1:%d: connection succeeded (expected refused or timed out)" % open_port in result.output
    assert "- live from probe: allowed looker_nodes -> 127.0.0.1:%d: connection refused (expected open)" % closed_port in result.output


def test_module_reports_the_matrix_without_failing(run_play, listener, tmp_path):
    open_port, _closed = listener
    out = tmp_path / "matrix.json"
    play = [{
        "hosts": "localhost", "gather_facts": False,
        "vars": {"ansible_python_interpreter": "{{ ansible_playbook_python }}"},
        "tasks": [
            {"name": "Check", "register": "out", "check_mode": True,
             "lookerops.cluster.cluster_port_check": {
                 "host": "probe", "fail_on_violation": False,
                 "flows": [{"source": "looker_nodes", "source_hosts": ["probe"], "destination": "peer", "address": "127.0.0.1",
                            "ports": [open_port], "expect": "allowed"}]}},
            {"name": "Save", "ansible.builtin.copy": {"content": "{{ out | to_json }}", "dest": str(out), "mode": "0644"}},
        ],
    }]
    result = run_play(play)
    assert result.rc == 0, result.output
    data = json.loads(out.read_text())
    assert data["changed"] is False and data["probed"] == 1 and data["violations"] == []
    assert data["matrix"][0]["live"] == "open" and data["matrix"][0]["static"] == "not checked"


def test_module_refuses_bad_input_with_the_entry(run_play):
    play = [{
        "hosts": "localhost", "gather_facts": False,
        "vars": {"ansible_python_interpreter": "{{ ansible_playbook_python }}"},
        "tasks": [{"name": "Check", "lookerops.cluster.cluster_port_check": {
            "flows": [{"source": "x", "destination": "d", "ports": ["1551-"], "expect": "allowed"}]}}],
    }]
    result = run_play(play)
    assert result.failed
    assert "invalid flows or rules: flows[0] (x -> d): port '1551-' is not a number or a range" in result.output


@pytest.mark.parametrize("result", [pr.REFUSED, pr.TIMEOUT, pr.UNREACHABLE])
def test_a_flow_that_must_be_refused_holds_when_nothing_connects(result):
    """Isolated sites: from one site the other site's database is not even routed (or its name does not
    resolve) - no path at all keeps it out as surely as a refusal does."""
    rows, violations = run([flow("other site", [], "db-b", [3306], "forbidden", hosts=["h"])], rules={}, host="h",
                           prober=lambda address, port, timeout: (result, "seen", 0.0))
    assert violations == [] and rows[0]["live"] == result


def test_a_flow_that_must_be_refused_and_connects_is_a_violation():
    rows, violations = run([flow("other site", [], "db-b", [3306], "forbidden", hosts=["h"])], rules={}, host="h",
                           prober=lambda address, port, timeout: (pr.OPEN, None, 0.0))
    assert rows[0]["live"] == pr.OPEN and len(violations) == 1


def test_a_flow_naming_its_sources_is_probed_from_those_hosts_only():
    """A node with a container bridge (docker0 172.17.0.1, as the balancer has too) is not a source of
    the balancer's flows: probed from there, "balancer to node links (must be refused)" connected
    node to node and was reported as a violation."""
    flows = [flow("looker_lb", ["10.89.0.21", "172.17.0.1"], "node1", [1551], "forbidden", hosts=["lb1"])]
    seen = []

    def prober(address, port, timeout):
        seen.append((address, port))
        return pr.OPEN, None, 0.0

    rows, violations = run(flows, rules={}, host="node2", host_addresses=["10.89.0.12", "172.17.0.1"], prober=prober)
    assert seen == [] and violations == [] and rows[0]["live"] == "not run"
