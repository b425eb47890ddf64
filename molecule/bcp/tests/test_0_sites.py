"""Both sites as site.yml deployed them (prepare.yml): each site's cluster firewall lets a Looker node
reach its own site's database and refuses it the other site's, although the nodes are on the networks
of both sites - the live form of the flow site.yml's port plan says must be refused."""
import shlex

import pytest

import bcp_testlib as t

CONNECT = ("import socket, sys\n"
           "try:\n"
           "    socket.create_connection((sys.argv[1], int(sys.argv[2])), 5).close()\n"
           "    print('open')\n"
           "except ConnectionRefusedError:\n"
           "    print('refused')\n"
           "except OSError as error:\n"
           "    print('unreachable: %s' % error)\n")


def connect(source, destination, port=3306):
    """What `source` gets connecting to `destination`'s address on its own site's network (eth0)."""
    address = t.HOSTS[destination].check_output("ip -4 -o addr show eth0 | awk '{print $4}' | cut -d/ -f1")
    return t.HOSTS[source].check_output("python3 -c %s %s %s" % (shlex.quote(CONNECT), address, port))


@pytest.mark.parametrize("node, own, other", [("lkr-bcp-a1", "a", "b"), ("lkr-bcp-a2", "a", "b"), ("lkr-bcp-b1", "b", "a")])
def test_a_node_reaches_its_own_sites_database_only(node, own, other):
    assert connect(node, t.SITE_DB[own]) == "open"
    # Routed over the node's interface on the other site's network; rejected by that database's firewall.
    assert connect(node, t.SITE_DB[other]) == "refused"
