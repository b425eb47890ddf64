"""site.yml's cross-tier preflight refuses bad inventories before any host is changed."""
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


def inventory(nodes=("n1", "n2"), lbs=("lb1",), primaries=("db1",), node_vars=None, extra=None):
    groups = {
        "looker_nodes": {"hosts": {n: dict((node_vars or {}).get(n, {})) for n in nodes}},
        "looker_lb": {"hosts": {h: {} for h in lbs}},
        "looker_appdb_primary": {"hosts": {h: {} for h in primaries}},
    }
    groups.update(extra or {})
    return {"all": {"vars": {"ansible_connection": "local"}, "children": groups}}


def preflight(run_play, tmp_path, inv):
    inv_file = tmp_path / "hosts.yml"
    inv_file.write_text(yaml.safe_dump(inv))
    play = [{"name": "preflight", "hosts": "localhost", "gather_facts": False,
             "tasks": [{"name": "Inventory rules", "ansible.builtin.include_tasks": str(ROOT / "playbooks/tasks/preflight_inventory.yml")}]}]
    return run_play(play, extra_args=["-i", str(inv_file)])


def changed_nothing(output):
    """Every host of the recap has changed=0 (and the recap is there)."""
    recap = re.findall(r"^(\S+)\s+: ok=\d+\s+changed=(\d+)", output, re.M)
    return bool(recap) and all(changed == "0" for _host, changed in recap)


def test_a_sound_inventory_passes(run_play, tmp_path):
    result = preflight(run_play, tmp_path, inventory())
    assert not result.failed, result.output


@pytest.mark.parametrize("inv, message", [
    (inventory(lbs=()), "looker_lb has no host in site (no looker_site) while looker_nodes has n1, n2"),
    (inventory(primaries=("db1", "db2")), "looker_appdb_primary has 2 hosts"),
    (inventory(primaries=("n1",)), "n1 is both a Looker node and an application database host"),
    (inventory(node_vars={"n1": {"looker_cluster_address": "10.0.0.5"}, "n2": {"ansible_host": "10.0.0.5"}}),
     "Looker nodes of site (no looker_site): n1 and n2 have the same -H address, 10.0.0.5: n1's looker_cluster_address"
     " is 10.0.0.5, and n2's ansible_host is 10.0.0.5. Each node registers its -H address in the application database"
     " and the other nodes reach it there. Give each host its own: set looker_node_cluster_address (or"
     " looker_cluster_address) on n2 (or on n1)"),
    # Issue 16: one address, two spellings - n1's name stands for its ansible_host, and n2 is given that name.
    (inventory(node_vars={"n1": {"ansible_host": "10.0.0.5"}, "n2": {"looker_node_cluster_address": "N1."}}),
     "n1 and n2 have the same -H address, 10.0.0.5: n1's ansible_host is 10.0.0.5, and n2's looker_node_cluster_address"
     " is N1., which resolves to 10.0.0.5 as the ansible_host of n1"),
    # A name and an address the controller resolves to the same thing.
    (inventory(node_vars={"n1": {"looker_node_cluster_address": "LOCALHOST."}, "n2": {"looker_cluster_address": "127.0.0.1"}}),
     "n1 and n2 have the same -H address, 127.0.0.1: n1's looker_node_cluster_address is LOCALHOST., which resolves to"),
    (inventory(node_vars={"n2": {"looker_node_cluster_address": "lkr-demo-nosuch.invalid"}}),
     "n2: looker_node_cluster_address is lkr-demo-nosuch.invalid, which does not resolve on the controller"),
    (inventory(extra={"looker_site_a": {"hosts": {"n1": {}}}, "looker_site_b": {"hosts": {"n1": {}}}}),
     "n1 is in both looker_site_a and looker_site_b"),
])
def test_bad_inventories_fail_with_the_fix(run_play, tmp_path, inv, message):
    result = preflight(run_play, tmp_path, inv)
    assert result.failed
    assert message in " ".join(result.output.split()), result.output
    assert changed_nothing(result.output), result.output


def test_cluster_addresses_in_upper_case_or_with_a_trailing_dot_pass(run_play, tmp_path):
    inv = inventory(node_vars={"n1": {"looker_node_cluster_address": "N1.", "ansible_host": "10.0.0.1"},
                               "n2": {"looker_cluster_address": "LOCALHOST."}})
    result = preflight(run_play, tmp_path, inv)
    assert not result.failed, result.output


def test_colocated_database_can_be_allowed_explicitly(run_play, tmp_path):
    inv = inventory(primaries=("n1",))
    inv["all"]["vars"]["looker_allow_colocated_appdb"] = True
    assert not preflight(run_play, tmp_path, inv).failed


def test_a_tier_skips_only_the_validation_the_preflight_ran_on_its_hosts():
    # Each role's validation runs once per site.yml: the preflight runs it on every host (before any
    # change) and the tier play tells the role so with __ROLE_validated. A tier that skipped a check
    # the preflight did not run, or ran on fewer hosts, would let bad input reach its hosts.
    plays = yaml.safe_load((ROOT / "playbooks/site.yml").read_text())
    validated = {}  # role -> host pattern the preflight validated it on
    skipping = []
    for play in plays:
        if "hosts" not in play:
            continue
        for task in play.get("tasks", []):
            include = task.get("ansible.builtin.include_role") or {}
            if include.get("tasks_from") in ("validate", "rules"):
                assert not task.get("when") or include["name"].endswith("load_balancer"), task
                validated[include["name"].rsplit(".", 1)[1]] = play["hosts"]
        for name in play.get("vars", {}):
            match = re.fullmatch(r"__(\w+)_validated", name)
            if match:
                skipping.append((match.group(1), play["hosts"]))
    roles = {"cluster_firewall", "time_sync", "mysql_appdb", "nfs_share", "looker_node", "load_balancer"}
    assert {role for role, _hosts in skipping} == roles
    for role, hosts in skipping:
        assert role in validated, f"site.yml skips {role}'s validation, which its preflight does not run"
        assert set(hosts.split(":")) <= set(validated[role].split(":")), (role, hosts, validated[role])
    for role in validated:
        main = (ROOT / "roles" / role / "tasks/main.yml").read_text()
        assert f"when: not (__{role}_validated | default(false) | bool)" in main, role


def test_the_preflight_checks_the_type_of_every_role_option():
    # The roles' argument_specs apply by themselves only when a role starts (its main entry point), after
    # the tiers before it changed their hosts: each validation the preflight runs ends with them.
    plays = yaml.safe_load((ROOT / "playbooks/site.yml").read_text())
    roles = {task["ansible.builtin.include_role"]["name"].rsplit(".", 1)[1]
             for play in plays for task in play.get("tasks", [])
             if (task.get("ansible.builtin.include_role") or {}).get("tasks_from") in ("validate", "rules")}
    assert len(roles) == 6, roles
    for role in roles:
        tasks = yaml.safe_load((ROOT / "roles" / role / "tasks/validate.yml").read_text())
        spec = tasks[-1].get("ansible.builtin.validate_argument_spec", {}).get("argument_spec", "")
        assert "meta/argument_specs.yml" in spec and "['main']['options']" in spec, (role, tasks[-1])
