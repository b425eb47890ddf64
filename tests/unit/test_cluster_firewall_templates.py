"""The cluster_firewall role's nftables table rendered with the role's own defaults and vars on an
inventory built in the play, and checked for what a user relies on.

When nft is installed on the machine running the tests, the rendered table is also checked by
`nft -c` (as the role's `validate:` does on the hosts).
"""
from role_templates import daemon_check, lines, render_role


def render(run_play, tmp_path, host, variants, extra_vars=None):
    # The role writes the table from the rules it publishes (tasks/publish.yml).
    published = {name: (template, {"cluster_firewall_rules": "{{ __cluster_firewall_rules }}", **variant})
                 for name, (template, variant) in variants.items()}
    return render_role("cluster_firewall", run_play, tmp_path, host, published, extra_vars)


def test_nftables_table_of_a_node_that_is_also_the_database(run_play, tmp_path):
    out = render(run_play, tmp_path, "lkr-node1", {"nft": ("lookerops-cluster.nft.j2", {})},
                 extra_vars={"looker_admin_networks": ["192.168.50.0/24"],
                             "cluster_firewall_appdb_extra_sources": ["10.89.0.40"]})
    nft = out["nft"]
    got = lines(nft)
    assert got[0].startswith("#") and "Ansible managed" in nft
    assert "table inet lookerops_cluster" in got and "delete table inet lookerops_cluster" in got
    assert 'tcp dport 22 accept comment "SSH is never restricted"' in got
    assert got.index('tcp dport 22 accept comment "SSH is never restricted"') < got.index(
        'meta l4proto tcp th dport { 1551, 61616, 9999, 19999, 3306 } reject with tcp reset comment "everyone else"')
    # Each set holds exactly the hosts allowed by the inventory.
    text = " ".join(got)
    assert "set looker_cluster_v4 { type ipv4_addr flags interval auto-merge elements = { 10.89.0.11, 10.89.0.12 } }" in text
    assert "set looker_web_v4 { type ipv4_addr flags interval auto-merge elements = { 10.89.0.21, 10.89.0.22, 192.168.50.0/24 } }" in text
    assert "set appdb_v4 { type ipv4_addr flags interval auto-merge elements = { 10.89.0.11, 10.89.0.12, 10.89.0.32, 10.89.0.40 } }" in text
    assert "set storage_v4" not in text  # node1 is no storage server
    assert 'meta l4proto { tcp, udp } th dport { 1551, 61616 } ip saddr @looker_cluster_v4 accept comment "looker_cluster"' in got
    assert 'meta l4proto { tcp, udp } th dport { 3306 } ip saddr @appdb_v4 accept comment "appdb"' in got
    daemon_check(["nft", "-c", "-f"], nft, tmp_path, "nft")


def test_nftables_storage_ipv6_and_drop(run_play, tmp_path):
    out = render(run_play, tmp_path, "lkr-fs1", {"nft": ("lookerops-cluster.nft.j2", {"cluster_firewall_action": "drop"})})
    text = " ".join(lines(out["nft"]))
    assert "set storage_v4 { type ipv4_addr flags interval auto-merge elements = { 10.89.0.11, 10.89.0.12 } }" in text
    assert "set storage_v6 { type ipv6_addr flags interval auto-merge elements = { fd00:89::41 } }" in text
    assert ("meta l4proto { tcp, udp } th dport { 111, 2049, 662, 20048, 32769, 32803, 24007-24008, 49152-60999 } drop "
            'comment "everyone else"') in text
    assert "reject" not in text


def test_nftables_of_a_balancer_restricts_nothing(run_play, tmp_path):
    out = render(run_play, tmp_path, "lkr-lb1", {"nft": ("lookerops-cluster.nft.j2", {})})
    got = lines(out["nft"])
    assert not [line for line in got if "reject" in line or "drop" in line or line.startswith("set ")]
    assert 'tcp dport 22 accept comment "SSH is never restricted"' in got


def test_deprecated_option_names_still_shape_the_table(run_play, tmp_path):
    """An inventory of the previous release (load_balancer_firewall_*) renders the same table through the new role."""
    out = render(run_play, tmp_path, "lkr-node1", {"nft": ("lookerops-cluster.nft.j2", {})},
                 extra_vars={"load_balancer_firewall_action": "drop", "load_balancer_firewall_cluster_networks": ["10.89.0.0/24"],
                             "load_balancer_firewall_ssh_port": 2222})
    text = " ".join(lines(out["nft"]))
    assert "set looker_cluster_v4 { type ipv4_addr flags interval auto-merge elements = { 10.89.0.0/24 } }" in text
    assert 'tcp dport 2222 accept comment "SSH is never restricted"' in text
    assert 'meta l4proto { tcp, udp } th dport { 1551, 61616, 9999, 19999, 3306 } drop comment "everyone else"' in text
    assert "reject" not in text
    daemon_check(["nft", "-c", "-f"], out["nft"], tmp_path, "nft")


def test_the_new_option_name_wins_over_the_deprecated_one(run_play, tmp_path):
    out = render(run_play, tmp_path, "lkr-fs1", {"nft": ("lookerops-cluster.nft.j2", {})},
                 extra_vars={"load_balancer_firewall_action": "drop", "cluster_firewall_action": "reject"})
    text = " ".join(lines(out["nft"]))
    assert "reject with tcp reset" in text and " drop " not in text
