"""The example inventory's variables (inventories/example/group_vars) wire looker_node completely:
run the role's validation on the example's nodes (on the controller, no host contacted) and check
what each node would be given, site by site.

The hosts are those of inventories/example/hosts.yml, laid out so that each site group holds only
its own hosts: a group such as looker_nodes listed as a child of both looker_site_a and
looker_site_b is one group, so there every host would belong to both sites (and get one
looker_site for all).
"""
import shutil
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "inventories" / "example"
SITES = {
    "a": {
        "looker_appdb_primary": ["db-a1.example.com"],
        "looker_appdb_replica": ["db-a2.example.com"],
        "looker_storage": ["fs-a1.example.com", "fs-a2.example.com", "fs-a3.example.com"],
        "looker_nodes": ["looker-a1.example.com", "looker-a2.example.com", "looker-a3.example.com"],
        "looker_lb": ["lb-a1.example.com", "lb-a2.example.com"],
    },
    "b": {
        "looker_appdb_primary": ["db-b1.example.com"],
        "looker_storage": ["fs-b1.example.com", "fs-b2.example.com", "fs-b3.example.com"],
        "looker_nodes": ["looker-b1.example.com"],
        "looker_lb": ["lb-b1.example.com"],
    },
}
NODE_ROLES = {
    "looker-a1.example.com": {"looker_node_scheduler": True, "looker_node_render": False},
    "looker-a2.example.com": {"looker_node_scheduler": False, "looker_node_render": False},
    "looker-a3.example.com": {"looker_node_scheduler": False, "looker_node_render": True},
    "looker-b1.example.com": {"looker_node_scheduler": True, "looker_node_render": True},
}


def inventory(tmp_path):
    """The example's hosts, one group per site holding only its hosts, and the example's group_vars."""
    children = {}
    for site, groups in SITES.items():
        children[f"looker_site_{site}"] = {"vars": {"looker_site": site},
                                           "hosts": {h: None for hosts in groups.values() for h in hosts}}
    for group in ("looker_appdb_primary", "looker_appdb_replica", "looker_storage", "looker_nodes", "looker_lb"):
        children[group] = {"hosts": {h: NODE_ROLES.get(h) for site in SITES.values() for h in site.get(group, [])}}
    directory = tmp_path / "inventory"
    directory.mkdir()
    (directory / "hosts.yml").write_text(yaml.safe_dump({"all": {"children": children}}))
    shutil.copytree(EXAMPLE / "group_vars", directory / "group_vars")
    return directory / "hosts.yml"


EXPECTED = {
    "looker-a1.example.com": {"db": "db-a1.example.com", "replica": "db-a2.example.com", "scheduler": 10, "render": 0,
                              "peers": ["looker-a1.example.com", "looker-a2.example.com", "looker-a3.example.com"]},
    "looker-a2.example.com": {"db": "db-a1.example.com", "replica": "db-a2.example.com", "scheduler": 0, "render": 0,
                              "peers": ["looker-a1.example.com", "looker-a2.example.com", "looker-a3.example.com"]},
    "looker-a3.example.com": {"db": "db-a1.example.com", "replica": "db-a2.example.com", "scheduler": 0, "render": 2,
                              "peers": ["looker-a1.example.com", "looker-a2.example.com", "looker-a3.example.com"]},
    "looker-b1.example.com": {"db": "db-b1.example.com", "replica": "", "scheduler": 10, "render": 2,
                              "peers": ["looker-b1.example.com"]},
}


def test_example_variables_give_every_node_its_sites_database_and_flags(run_play, tmp_path):
    check = {
        "name": "Check what the node would get",
        "ansible.builtin.assert": {
            "that": [
                "looker_node_db_host == expected[inventory_hostname].db",
                "looker_node_analytics_db_host == expected[inventory_hostname].replica",
                "__looker_node_peers == expected[inventory_hostname].peers",
                "'--scheduler-threads=' ~ expected[inventory_hostname].scheduler in __looker_node_looker_args",
                "'--concurrent-render-jobs=' ~ expected[inventory_hostname].render in __looker_node_looker_args",
                "__looker_node_looker_args[__looker_node_looker_args.index('-H') + 1] == inventory_hostname",
                "'--shared-storage-dir' in __looker_node_looker_args",
                "('--internal-analytics-connection-file' in __looker_node_looker_args) == (expected[inventory_hostname].replica != '')",
                "looker_node_uid | int == 9000",
            ],
            "fail_msg": "{{ inventory_hostname }}: db {{ looker_node_db_host }}, replica {{ looker_node_analytics_db_host }}, "
                        "peers {{ __looker_node_peers }}, args {{ __looker_node_looker_args }}",
        },
    }
    play = [{
        "name": "Validate the example inventory's nodes",
        "hosts": "looker_nodes",
        "gather_facts": False,
        "vars": {"expected": EXPECTED},
        "tasks": [
            {"name": "Validate", "ansible.builtin.include_role": {"name": "lookerops.cluster.looker_node", "tasks_from": "validate",
                                                                  "public": True}},
            check,
        ],
    }]
    extra = {
        # The example vault holds placeholders; a real key has this shape.
        # Referenced by group_vars/all/mysql_appdb.yml and looker_node.yml, not (yet) in the example vault.yml.
        "vault_looker_db_readonly_password": "example-readonly-password",
        "vault_looker_master_key": "bG9va2Vyb3BzLWV4YW1wbGUtaW52ZW50b3J5LWtleTE=",
        "looker_node_memory_mb": 65536,
        # The example's example.com names resolve on no host here; that rule has its own tests.
        "__looker_node_names_to_resolve": [],
    }
    result = run_play(play, extra, extra_args=("-i", str(inventory(tmp_path))))
    assert not result.failed, result.output
    for host in EXPECTED:
        assert f"ok: [{host}]" in result.output


def test_tls_at_the_load_balancer_moves_the_health_checks_there(run_play, tmp_path):
    check = {
        "name": "Check the health check host and the flags",
        "ansible.builtin.assert": {
            "that": [
                "looker_node_health_check_host == ('lb-b1.example.com' if inventory_hostname == 'looker-b1.example.com' else 'lb-a1.example.com')",
                "__looker_node_scheme == 'http'",
                "'--ssl-provided-externally-by=10.0.1.5' in __looker_node_looker_args",
            ],
            "fail_msg": "{{ inventory_hostname }}: {{ looker_node_health_check_host }} {{ __looker_node_looker_args }}",
        },
    }
    play = [{
        "name": "Validate the example inventory's nodes",
        "hosts": "looker_nodes",
        "gather_facts": False,
        "tasks": [
            {"name": "Validate", "ansible.builtin.include_role": {"name": "lookerops.cluster.looker_node", "tasks_from": "validate",
                                                                  "public": True}},
            check,
        ],
    }]
    extra = {
        "vault_looker_db_readonly_password": "example-readonly-password",
        "vault_looker_master_key": "bG9va2Vyb3BzLWV4YW1wbGUtaW52ZW50b3J5LWtleTE=",
        "looker_node_memory_mb": 65536,
        # The balancers' virtual IP (a name must resolve on the controller, and example.com's do not).
        "looker_node_ssl_provided_externally_by": "10.0.1.5",
        "__looker_node_names_to_resolve": [],
    }
    result = run_play(play, extra, extra_args=("-i", str(inventory(tmp_path))))
    assert not result.failed, result.output
    assert "WARNING: looker_node_ssl_provided_externally_by" not in result.output
