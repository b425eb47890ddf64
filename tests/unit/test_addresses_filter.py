"""lookerops.cluster's address filters (plugins/filter/addresses.py): one normalisation of names, one
owner of a host's address, and addresses compared as resolved addresses, not as text (issue 16)."""
import socket

import pytest

from ansible_collections.lookerops.cluster.plugins.filter import addresses as f

# What the controller's resolver knows in these tests.
DNS = {
    "lkr-demo-node1": ["10.89.0.10"],
    "node1.example.com": ["10.89.0.10"],
    "db.example.com": ["10.89.0.30", "fd00:89::30"],
}


def resolver(name):
    if name in DNS:
        return DNS[name]
    raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")


def problems(entries, hostvars=None, **kwargs):
    return f.address_problems(entries, hostvars or {}, resolver=resolver, **kwargs)


def entry(host, value, variable="looker_node_cluster_address", scope=""):
    return {"host": host, "variable": variable, "value": value, "scope": scope}


@pytest.mark.parametrize("given, normalised", [
    ("LKR-Demo-Node1", "lkr-demo-node1"),
    ("lkr-demo-node1.", "lkr-demo-node1"),
    ("Node1.Example.COM.", "node1.example.com"),
    ("  node1 ", "node1"),
    ("10.89.0.10", "10.89.0.10"),
    ("FD00:89:0:0::10", "fd00:89::10"),
    (None, ""),
])
def test_hostname_normalises_case_trailing_dot_and_ip_text(given, normalised):
    assert f.hostname(given) == normalised


def test_host_address_owns_the_precedence_and_normalises():
    hostvars = {
        "n1": {"looker_node_cluster_address": "N1.Example.COM.", "looker_cluster_address": "10.0.0.1"},
        "n2": {"looker_cluster_address": "10.0.0.2", "ansible_host": "192.0.2.2"},
        "n3": {"ansible_host": "Node3.Example.Com"},
        "N4.example.com.": {},
    }
    assert f.host_address("n1", hostvars, "looker_node_cluster_address") == "n1.example.com"
    assert f.host_address("n1", hostvars) == "10.0.0.1"
    assert f.host_address("n2", hostvars, "looker_node_cluster_address") == "10.0.0.2"
    assert f.host_address("n3", hostvars) == "node3.example.com"
    assert f.host_address("N4.example.com.", hostvars) == "n4.example.com"
    assert f.host_address("n3", hostvars, detail=True) == {
        "host": "n3", "variable": "ansible_host", "value": "Node3.Example.Com", "address": "node3.example.com"}
    assert f.host_address("N4.example.com.", hostvars, detail=True)["variable"] == "inventory name"
    # A role's internal copy is reported as the option a user sets.
    hostvars["n5"] = {"__looker_node_address": "n5.example.com"}
    assert f.host_address("n5", hostvars, "__looker_node_address", "looker_node_cluster_address", detail=True) == {
        "host": "n5", "variable": "looker_node_cluster_address", "value": "n5.example.com", "address": "n5.example.com"}


def test_good_addresses_have_no_problem():
    assert problems([entry("n1", "10.89.0.10"), entry("n2", "10.89.0.11"), entry("n3", "DB.example.com.")]) == []


def test_a_second_name_for_a_nodes_address_is_a_duplicate_naming_both_hosts_and_the_variable():
    # The case: node2 given node1's IP while node1's name resolves to it.
    found = problems([entry("lkr-demo-node1", "lkr-demo-node1", variable="inventory name"),
                      entry("lkr-demo-node2", "10.89.0.10")],
                     what="-H address", why="Each node registers its -H address.",
                     setting="looker_node_cluster_address (or looker_cluster_address)")
    assert found == [
        "lkr-demo-node1 and lkr-demo-node2 have the same -H address, 10.89.0.10: lkr-demo-node1 has no address set, so "
        "its inventory name lkr-demo-node1 is used, which resolves to 10.89.0.10 on the controller, and "
        "lkr-demo-node2's looker_node_cluster_address is 10.89.0.10. Each node registers its -H address. Give each "
        "host its own: set looker_node_cluster_address (or looker_cluster_address) on lkr-demo-node2 (or on "
        "lkr-demo-node1) to an address of that host only."]


@pytest.mark.parametrize("first, second", [
    ("node1.example.com", "NODE1.EXAMPLE.COM."),  # one name, two spellings
    ("node1.example.com", "lkr-demo-node1"),  # two names of one address
    ("fd00:89::30", "db.example.com"),  # an IPv6 address and a name that has it among others
    ("10.89.0.10", "10.89.0.10"),  # the same text
])
def test_duplicates_are_found_by_address_not_spelling(first, second):
    found = problems([entry("n1", first), entry("n2", second)])
    assert len(found) == 1 and found[0].startswith("n1 and n2 have the same address"), found


def test_duplicates_only_count_within_a_scope_and_between_hosts():
    assert problems([entry("n1", "10.0.0.1", scope="site a"), entry("n2", "10.0.0.1", scope="site b")]) == []
    assert problems([entry("n1", "10.0.0.1"), entry("n1", "10.0.0.1", variable="other")]) == []
    assert problems([entry("n1", "10.0.0.1"), entry("n2", "10.0.0.1")], unique=False) == []


def test_a_name_that_does_not_resolve_is_refused_naming_host_variable_value_and_fix():
    found = problems([entry("lkr-demo-node2", "lkr-demo-nosuch.invalid")], what="-H address")
    assert found == [
        "lkr-demo-node2: looker_node_cluster_address is lkr-demo-nosuch.invalid, which does not resolve on the "
        "controller (Name or service not known) and names no host of the inventory, so lkr-demo-node2 would have no "
        "-H address. Correct looker_node_cluster_address on lkr-demo-node2, make the name resolve on the controller "
        "and on every host (DNS or /etc/hosts), or use an IP address."]


def test_an_empty_address_is_refused():
    found = problems([entry("n1", "", scope="Looker nodes of site a")])
    assert found == ["Looker nodes of site a: n1: looker_node_cluster_address is empty, so n1 has no address. "
                     "Set looker_node_cluster_address on n1 to its host name or IP address."]


def test_a_name_of_an_inventory_host_resolves_through_its_facts():
    # The controller cannot resolve container names; the hosts can. Their facts say the address.
    hostvars = {
        "lkr-cluster-node1": {"ansible_facts": {"hostname": "lkr-cluster-node1", "default_ipv4": {"address": "10.89.1.11"}}},
        "lkr-cluster-node2": {"ansible_facts": {"default_ipv4": {"address": "10.89.1.12"}}},
        "lkr-cluster-db1": {},
    }
    assert problems([entry("lkr-cluster-node1", "LKR-CLUSTER-NODE1."), entry("lkr-cluster-node2", "lkr-cluster-node2"),
                     entry("lkr-cluster-db1", "lkr-cluster-db1")], hostvars) == []
    found = problems([entry("lkr-cluster-node1", "lkr-cluster-node1"), entry("lkr-cluster-node2", "10.89.1.11")], hostvars)
    assert len(found) == 1
    assert "lkr-cluster-node1's looker_node_cluster_address is lkr-cluster-node1, which resolves to 10.89.1.11 from the facts of lkr-cluster-node1" in found[0]
    # Without facts, two names of one inventory host still meet.
    found = problems([entry("a", "lkr-cluster-db1"), entry("b", "LKR-Cluster-DB1")], hostvars)
    assert len(found) == 1 and "have the same address, lkr-cluster-db1" in found[0], found


def test_unknown_names_are_refused_even_with_an_inventory():
    hostvars = {"lkr-demo-node1": {"ansible_facts": {"default_ipv4": {"address": "10.89.0.10"}}}}
    found = problems([entry("lkr-demo-node2", "lkr-demo-nosuch.invalid")], hostvars)
    assert len(found) == 1 and "does not resolve on the controller" in found[0]


def test_entries_must_have_a_host_and_a_value():
    with pytest.raises(f.AnsibleFilterError):
        f.address_problems([{"value": "x"}])
    with pytest.raises(f.AnsibleFilterError):
        f.address_problems("n1")


def test_the_controller_resolver_answers_for_loopback():
    assert "127.0.0.1" in f._controller_resolve("localhost")  # pylint: disable=protected-access


@pytest.fixture(name="asked")
def fixture_asked(monkeypatch, tmp_path):
    """The names getaddrinfo is asked for, with a run's local temporary directory of its own."""
    from ansible import constants  # pylint: disable=import-outside-toplevel

    monkeypatch.setattr(constants, "DEFAULT_LOCAL_TMP", str(tmp_path))
    names = []
    answers = {"db.example.com": "10.89.0.30"}

    def getaddrinfo(name, *_args):
        names.append(name)
        if name == "flaky.example.com":
            raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")
        if name not in answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (answers[name], 0))]

    monkeypatch.setattr(f.socket, "getaddrinfo", getaddrinfo)
    return names


def test_each_name_is_resolved_once_per_run_whichever_host_asks(asked):
    # Every host's validation asks for the same names in a worker of its own: a resolver that limits
    # its rate (this machine's drops about one query in 25, for 5 s each) made one task take 11 s.
    entries = [entry("n1", "db.example.com"), entry("n2", "gone.example.com")]
    first = f.address_problems(entries, {}, unique=False)
    assert f.address_problems(entries, {}, unique=False) == first
    assert len(first) == 1 and "gone.example.com" in first[0] and "Name or service not known" in first[0]
    assert sorted(asked) == ["db.example.com", "gone.example.com"]


def test_a_temporary_resolver_failure_is_asked_again(asked):
    for _run in range(2):
        found = f.address_problems([entry("n1", "flaky.example.com")], {}, unique=False)
        assert "Temporary failure in name resolution" in found[0]
    assert asked == ["flaky.example.com"] * 2


def test_a_name_of_an_inventory_host_without_facts_stands_for_its_declared_ip():
    hostvars = {"lkr-node1": {"looker_cluster_address": "10.89.0.11"}, "lkr-node9": {}}
    found = problems([entry("lkr-node1", "10.89.0.11", variable="looker_cluster_address"),
                      entry("lkr-node9", "LKR-NODE1.", variable="load_balancer_backend_hosts")], hostvars)
    assert len(found) == 1
    assert "which resolves to 10.89.0.11 as the looker_cluster_address of lkr-node1" in found[0]


class Untemplatable(dict):
    """A host whose looker_cluster_address cannot be templated yet (its facts are missing)."""

    def get(self, key, default=None):
        if key == "looker_cluster_address":
            raise f.AnsibleFilterError("'ansible_facts' is undefined")
        return super().get(key, default)


def test_another_hosts_variable_that_cannot_be_templated_does_not_break_the_lookup():
    hostvars = {"lkr-bcp-a1": Untemplatable(ansible_facts={"default_ipv4": {"address": "10.0.3.11"}}),
                "lkr-bcp-a2": Untemplatable()}
    assert problems([entry("n1", "lkr-bcp-a1"), entry("n2", "lkr-bcp-a2")], hostvars) == []
    found = problems([entry("n1", "lkr-bcp-a1"), entry("n2", "10.0.3.11")], hostvars)
    assert len(found) == 1 and "from the facts of lkr-bcp-a1" in found[0]


# --- access_list_problems: allow-list options (issue 18) -------------------------------------------

NODES = {"lkr-node-a": "10.89.0.11", "lkr-node-b": "10.89.0.12"}


@pytest.mark.parametrize("entries", [["10.89.0.11", "10.89.0.12"], ["10.89.0.0/24"], ["10.89.0.0/255.255.255.0"],
                                     ["10.0.0.0/8", "fd00::/8"], ["0.0.0.0/0"]])
def test_an_access_list_admitting_every_node_passes(entries):
    assert f.access_list_problems(entries, "mysql_appdb_looker_hosts", required=NODES, form="mysql") == []


@pytest.mark.parametrize("entry, reason", [
    ("10.0.0.0/33", "not an IP address or network"),
    ("10.89.0.300", "not an IP address or network"),
    ("10.89.0.5/24", "a network with host bits set: the server would match nothing; 10.89.0.0/24 is meant"),
    ("10.89.0.0/255.0.255.0", "not an IP address or network"),
    ("lkr-node-a", "not an IP address or network"),
    ("", "not an IP address or network"),
])
def test_an_entry_that_is_no_address_or_network_is_refused_naming_option_and_value(entry, reason):
    said = " ".join(f.access_list_problems(["10.89.0.0/24", entry], "mysql_appdb_looker_hosts", form="mysql"))
    assert "mysql_appdb_looker_hosts has %r, which is %s" % (entry, reason) in said, said
    assert "10.89.0.0/255.255.255.0" in said and "Nothing was changed" in said


@pytest.mark.parametrize("entry", ["%", "10.89.0.%", "10.89.0._"])
def test_mysql_wildcards_are_refused(entry):
    said = " ".join(f.access_list_problems([entry], "mysql_appdb_looker_hosts", form="mysql"))
    assert "which is a wildcard" in said


def test_an_access_list_that_leaves_a_node_out_names_the_node():
    said = f.access_list_problems(["10.89.0.11"], "mysql_appdb_looker_hosts", required=NODES,
                                  why="a Looker node that connects to the application database", form="mysql")
    assert said == ["mysql_appdb_looker_hosts (10.89.0.11) leaves out lkr-node-b (10.89.0.12), a Looker node that connects "
                    "to the application database: add its address or a network holding it. Nothing was changed."]


def test_a_host_is_admitted_by_any_of_its_addresses():
    nodes = {"lkr-node-a": ["10.88.0.11", "10.89.0.11"]}
    assert f.access_list_problems(["10.89.0.0/24"], "mysql_appdb_looker_hosts", required=nodes, form="mysql") == []
    said = " ".join(f.access_list_problems(["10.90.0.0/24"], "mysql_appdb_looker_hosts", required=nodes, form="mysql"))
    assert "leaves out lkr-node-a (10.88.0.11, 10.89.0.11)" in said


def test_a_host_of_unknown_address_is_a_problem_not_a_pass():
    said = " ".join(f.access_list_problems(["10.89.0.0/24"], "cluster_firewall_cluster_networks",
                                           required={"lkr-node-c": ""}))
    assert "cannot be checked against lkr-node-c: its address is unknown" in said


def test_an_access_list_that_is_no_list_is_refused():
    said = " ".join(f.access_list_problems("10.89.0.0/24", "cluster_firewall_cluster_networks"))
    assert "cluster_firewall_cluster_networks is '10.89.0.0/24': it must be a list" in said


def test_the_addresses_of_inventory_hosts_come_from_their_facts():
    hostvars = {"lkr-node-a": {"ansible_facts": {"default_ipv4": {"address": "10.88.0.11"},
                                                 "all_ipv4_addresses": ["10.88.0.11", "10.89.0.11"]}},
                "lkr-node-b": {}}
    said = f.access_list_problems(["10.89.0.0/24"], "cluster_firewall_cluster_networks",
                                  required=["lkr-node-a", "lkr-node-b"], hostvars=hostvars)
    assert said == ["cluster_firewall_cluster_networks cannot be checked against lkr-node-b: its address is unknown "
                    "([]; gather its facts)."]


# form export (nfs_share_client_addresses): host names too, resolved as the other address options are.
def _resolver(table):
    def resolve(name):
        if name not in table:
            raise socket.gaierror(-2, "Name or service not known")
        return table[name]
    return resolve


def test_an_export_list_admits_nodes_by_name_address_or_network():
    resolve = _resolver({"node-a.example.com": ["10.89.0.11"]})
    hostvars = {"lkr-node-b": {"ansible_facts": {"default_ipv4": {"address": "10.89.0.12"}}}}
    for entries in (["node-a.example.com", "lkr-node-b"], ["10.89.0.11", "10.89.0.12"], ["10.89.0.0/24"]):
        assert f.access_list_problems(entries, "nfs_share_client_addresses", required=NODES, form="export",
                                      hostvars=hostvars, resolver=resolve) == [], entries


@pytest.mark.parametrize("entry, reason", [
    ("10.0.0.0/33", "not an IP address or network"),
    ("10.89.0.300", "not an IP address or network"),
    ("10.89.0.5/24", "a network with host bits set"),
    ("*", "a wildcard or a netgroup"),
    ("*.example.com", "a wildcard or a netgroup"),
    ("@looker-nodes", "a wildcard or a netgroup"),
    ("nosuch.example.com", "a name that does not resolve on the controller (Name or service not known)"),
])
def test_an_export_entry_that_admits_nothing_checkable_is_refused(entry, reason):
    said = " ".join(f.access_list_problems(["10.89.0.0/24", entry], "nfs_share_client_addresses", form="export",
                                           resolver=_resolver({})))
    assert "nfs_share_client_addresses has %r, which is %s" % (entry, reason) in said, said


def test_an_export_list_that_leaves_a_node_out_by_name_names_the_node():
    said = " ".join(f.access_list_problems(["node-a.example.com"], "nfs_share_client_addresses", required=NODES,
                                           form="export", resolver=_resolver({"node-a.example.com": ["10.89.0.11"]})))
    assert "nfs_share_client_addresses (node-a.example.com) leaves out lkr-node-b (10.89.0.12)" in said, said


TWO_NETWORKS = {"a1": {"looker_cluster_address": "10.1.0.11",
                       "ansible_facts": {"default_ipv4": {"address": "10.2.0.51"},
                                         "all_ipv4_addresses": ["10.1.0.11", "10.2.0.51"],
                                         "all_ipv6_addresses": ["fe80::1", "FD00::51"]}},
                "named": {"looker_cluster_address": "a1.example.com",
                          "ansible_facts": {"all_ipv4_addresses": ["10.1.0.12"], "all_ipv6_addresses": ["fe80::2"]}},
                "bare": {}}


def test_source_addresses_is_the_declared_ip_else_the_facts():
    assert f.source_addresses("a1", TWO_NETWORKS) == ["10.1.0.11"]
    assert f.source_addresses("named", TWO_NETWORKS) == ["10.1.0.12"]
    assert f.source_addresses("bare", TWO_NETWORKS) == []


def test_every_source_address_adds_the_other_networks_but_no_link_local():
    assert f.source_addresses("a1", TWO_NETWORKS, every=True) == ["10.1.0.11", "10.2.0.51", "fd00::51"]


class FactsNotGathered(dict):
    """A host whose looker_cluster_address is built from its facts, which were not gathered (--limit)."""

    def __getitem__(self, key):
        if key == "looker_cluster_address":
            raise f.AnsibleFilterError("'ansible_facts' is undefined")
        return super().__getitem__(key)


def test_source_addresses_of_a_host_whose_address_cannot_be_templated_yet_is_empty():
    hostvars = {"b1": FactsNotGathered(looker_cluster_address="{{ ansible_facts['eth0']['ipv4']['address'] }}")}
    assert f.source_addresses("b1", hostvars) == []
