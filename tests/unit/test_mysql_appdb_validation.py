"""Bad input to the mysql_appdb role fails in tasks/validate.yml, before any host is changed, with a
message that names the variable (and the bad value and the fix where there is one).

Each test writes a small inventory (primary, replica, Looker nodes; connection local), injects the
facts the role reads (set_fact ansible_facts) and runs the role's validation on the controller.
One good configuration passes, so each failure below is the rule under test.
"""
import copy
import re
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
ROLE = ROOT / "roles" / "mysql_appdb"

DB_FACTS = {
    "os_family": "Debian",
    "distribution": "Debian",
    "distribution_release": "bookworm",
    "service_mgr": "systemd",
    "memtotal_mb": 16384,
    "processor_vcpus": 4,
}
GOOD = {
    "mysql_appdb_looker_password": "looker-Password-unit-1",
    "mysql_appdb_readonly_password": "readonly-Password-unit-2",
    "mysql_appdb_replication_password": "replication-Password-unit-3",
}
# host -> (groups, facts); every host gets its facts injected (as gathered facts would be).
TOPOLOGY = {
    "db1": (["looker_appdb_primary"], {"default_ipv4": {"address": "10.0.0.5"}}),
    "db2": (["looker_appdb_replica"], {"default_ipv4": {"address": "10.0.0.6"}}),
    "node1": (["looker_nodes"], {"default_ipv4": {"address": "10.0.1.11"}}),
    "node2": (["looker_nodes"], {"default_ipv4": {"address": "10.0.1.12"}}),
}


def inventory(topology, hostvars=None):
    groups = {}
    for host, (host_groups, _facts) in topology.items():
        for group in host_groups:
            groups.setdefault(group, {"hosts": {}})["hosts"][host] = dict(
                {"ansible_connection": "local", "ansible_python_interpreter": sys.executable},
                **(hostvars or {}).get(host, {}))
    return {"all": {"children": groups}}


def plays(topology, db_facts, target, entry="validate", check=False, after=()):
    facts = {host: dict(facts, **(db_facts if host == target else {})) for host, (_g, facts) in topology.items()}
    role = {"name": "lookerops.cluster.mysql_appdb"}
    if entry != "main":
        role.update({"tasks_from": entry, "public": True})
    return [
        {
            "name": "Inject the facts a real run would have gathered",
            "hosts": "all:!localhost",
            "gather_facts": False,
            "tasks": [{"name": "Facts", "ansible.builtin.set_fact": {"ansible_facts": "{{ __unit_facts[inventory_hostname] }}"}}],
            "vars": {"__unit_facts": facts},
        },
        {
            "name": "Run the role",
            "hosts": target,
            "gather_facts": False,
            "check_mode": check,
            "tasks": [{"name": "Role", "ansible.builtin.include_role": role}, *after],
        },
    ]


class Result:
    """A play's result with its output on one line (Ansible wraps long messages)."""

    def __init__(self, result):
        self.failed = result.failed
        self.raw = result.output
        self.output = " ".join(result.output.split())


def run(run_play, tmp_path, overrides=None, topology=None, db_facts=None, hostvars=None, target="db1",
        drop=(), entry="validate", check=False, after=(), extra_args=()):
    topology = copy.deepcopy(topology or TOPOLOGY)
    extra = dict(GOOD, **(overrides or {}))
    for name in drop:
        extra.pop(name)
    inv = tmp_path / "inventory.yml"
    inv.write_text(yaml.safe_dump(inventory(topology, hostvars)))
    play = plays(topology, dict(DB_FACTS, **(db_facts or {})), target, entry, check, after)
    return Result(run_play(play, extra, extra_args=["-i", str(inv), *extra_args]))


def show(var):
    return {"name": f"Show {var}", "ansible.builtin.debug": {"msg": f"{var}=[{{{{ [{var}] | flatten | join(',') }}}}]"}}


def test_a_good_configuration_passes(run_play, tmp_path):
    result = run(run_play, tmp_path, after=[show("__mysql_appdb_looker_hosts"), show("__mysql_appdb_replica_hosts")])
    assert not result.failed, result.output
    # The accounts are restricted to the Looker nodes' and the replica's gathered addresses.
    assert '__mysql_appdb_looker_hosts=[10.0.1.11,10.0.1.12]' in result.output
    assert '__mysql_appdb_replica_hosts=[10.0.0.6]' in result.output
    assert "WARNING" not in result.output


def test_an_option_of_the_wrong_type_is_refused_before_any_change(run_play, tmp_path):
    # site.yml's preflight runs this entry point: the types of the role's argument_specs hold there too.
    result = run(run_play, tmp_path, {"mysql_appdb_max_connections": "many"})
    assert result.failed
    assert "argument 'mysql_appdb_max_connections' is of type" in result.output, result.output[-3000:]
    assert re.search(r"db1\s+: ok=\d+\s+changed=0", result.raw), result.raw[-2000:]


def test_replica_validates_too(run_play, tmp_path):
    result = run(run_play, tmp_path, target="db2", after=[show("__mysql_appdb_source_address")])
    assert not result.failed, result.output
    assert "__mysql_appdb_source_address=[db1]" in result.output


def test_looker_hosts_come_from_the_same_site_only(run_play, tmp_path):
    topology = dict(TOPOLOGY, node3=(["looker_nodes"], {"default_ipv4": {"address": "10.9.9.9"}}))
    hostvars = {h: {"looker_site": "a"} for h in TOPOLOGY}
    hostvars["node3"] = {"looker_site": "b"}
    result = run(run_play, tmp_path, topology=topology, hostvars=hostvars, after=[show("__mysql_appdb_looker_hosts")])
    assert not result.failed, result.output
    assert '__mysql_appdb_looker_hosts=[10.0.1.11,10.0.1.12]' in result.output


def test_mariadb_warns_that_looker_does_not_support_it_for_clusters(run_play, tmp_path):
    result = run(run_play, tmp_path, {"mysql_appdb_flavour": "mariadb"})
    assert not result.failed, result.output
    assert "WARNING: mysql_appdb_flavour is 'mariadb'. Looker does not support MariaDB for clustered instances" in result.output


BAD = [
    pytest.param({}, ["mysql_appdb_looker_password"], None,
                 "mysql_appdb_looker_password is missing, not a string or shorter than 12 characters", id="password-missing"),
    pytest.param({"mysql_appdb_looker_password": "short-pw"}, [], None,
                 "mysql_appdb_looker_password is missing, not a string or shorter than 12 characters", id="password-short"),
    pytest.param({"mysql_appdb_flavour": "postgres"}, [], None,
                 "mysql_appdb_flavour is 'postgres': use 'mysql'", id="flavour"),
    pytest.param({"mysql_appdb_mysql_version": "9.1"}, [], None,
                 "mysql_appdb_mysql_version is '9.1': MySQL 9.0 removed the mysql_native_password plugin", id="mysql-9"),
    pytest.param({"mysql_appdb_mysql_version": "5.7"}, [], None,
                 "mysql_appdb_mysql_version is '5.7': supported series are 8.0, 8.4", id="mysql-5.7"),
    pytest.param({}, [], {"os_family": "RedHat", "distribution": "Rocky"},
                 "runs Rocky (RedHat): mysql_appdb supports Debian and Ubuntu hosts", id="os-family"),
    pytest.param({"mysql_appdb_buffer_pool_size_mb": 20000}, [], None,
                 "mysql_appdb_buffer_pool_size_mb is 20000 MB but db1 has 16384 MB of RAM: the buffer pool may take at most 80% (13107 MB)",
                 id="buffer-pool-larger-than-ram"),
    pytest.param({"mysql_appdb_buffer_pool_ratio": 0.9}, [], None,
                 "mysql_appdb_buffer_pool_ratio is 0.9: on a dedicated database host the buffer pool should take 0.5 to 0.7", id="ratio"),
    pytest.param({"mysql_appdb_memory_mb": 256}, [], None,
                 "db1 has 256 MB of RAM for the database (mysql_appdb_memory_mb 256", id="too-little-ram"),
    pytest.param({"mysql_appdb_buffer_pool_instances": 16, "mysql_appdb_buffer_pool_size_mb": 4096}, [], None,
                 "mysql_appdb_buffer_pool_instances is 16 for a", id="pool-instances-under-1gb"),
    pytest.param({"mysql_appdb_redo_log_size_mb": 4}, [], None,
                 "mysql_appdb_redo_log_size_mb (4) must be 0 (25% of the pool) or at least 8", id="redo-too-small"),
    pytest.param({"mysql_appdb_io_capacity": 3000}, [], None,
                 "innodb_io_capacity would be 3000 and innodb_io_capacity_max 2000", id="io-capacity-above-max"),
    pytest.param({"mysql_appdb_thread_concurrency": 5000}, [], None,
                 "mysql_appdb_thread_concurrency is 5000", id="thread-concurrency"),
    pytest.param({"mysql_appdb_looker_hosts": ["%"]}, [], None,
                 "mysql_appdb_looker_hosts has '%', which is a wildcard: the accounts are restricted to addresses",
                 id="looker-hosts-wildcard"),
    pytest.param({"mysql_appdb_looker_hosts": ["10.0.1.%"]}, [], None,
                 "mysql_appdb_looker_hosts has '10.0.1.%', which is a wildcard", id="looker-hosts-partial-wildcard"),
    pytest.param({"mysql_appdb_looker_hosts": ["10.0.1.11", "10.0.1.12", ""]}, [], None,
                 "mysql_appdb_looker_hosts has '', which is not an IP address or network", id="looker-hosts-blank"),
    pytest.param({"mysql_appdb_looker_hosts": ["looker-a1.example.com"]}, [], None,
                 "mysql_appdb_looker_hosts has 'looker-a1.example.com', which is not an IP address or network",
                 id="looker-hosts-hostname"),
    # The typo that took the demo's nodes off their database (issue 18).
    pytest.param({"mysql_appdb_looker_hosts": ["10.0.0.0/33"]}, [], None,
                 "mysql_appdb_looker_hosts has '10.0.0.0/33', which is not an IP address or network", id="looker-hosts-prefix-33"),
    pytest.param({"mysql_appdb_looker_hosts": ["10.0.1.5/24"]}, [], None,
                 "mysql_appdb_looker_hosts has '10.0.1.5/24', which is a network with host bits set: the server would match "
                 "nothing; 10.0.1.0/24 is meant", id="looker-hosts-host-bits"),
    pytest.param({"mysql_appdb_looker_hosts": ["10.0.1.11"]}, [], None,
                 "mysql_appdb_looker_hosts (10.0.1.11) leaves out node2 (10.0.1.12), a Looker node of looker_site",
                 id="looker-hosts-leave-out-a-node"),
    pytest.param({"mysql_appdb_replica_hosts": ["%"]}, [], None,
                 "mysql_appdb_replica_hosts has '%', which is a wildcard", id="replica-hosts-wildcard"),
    pytest.param({"mysql_appdb_replica_hosts": ["10.0.0.7"]}, [], None,
                 "mysql_appdb_replica_hosts (10.0.0.7) leaves out db2 (10.0.0.6), a replica of looker_site",
                 id="replica-hosts-leave-out-the-replica"),
    pytest.param({}, ["mysql_appdb_replication_password"], None,
                 "mysql_appdb_replication_password is missing, not a string, shorter than 12 characters, or contains a quote",
                 id="replication-password-missing"),
    pytest.param({"mysql_appdb_replication_password": "it's-a-long-password"}, [], None,
                 "mysql_appdb_replication_password is missing, not a string, shorter than 12 characters, or contains a quote",
                 id="replication-password-quote"),
    pytest.param({}, ["mysql_appdb_readonly_password"], None,
                 "mysql_appdb_readonly_password is missing, not a string or shorter than 12 characters; it is required because",
                 id="readonly-password-missing"),
    pytest.param({"mysql_appdb_tls": True}, [], None,
                 "mysql_appdb_tls is true, so mysql_appdb_tls_ca_file ('')", id="tls-without-files"),
    pytest.param({"mysql_appdb_database": "looker-db"}, [], None,
                 "mysql_appdb_database ('looker-db')", id="database-name"),
    pytest.param({"mysql_appdb_readonly_user": "looker"}, [], None,
                 "mysql_appdb_readonly_user ('looker') and mysql_appdb_replication_user ('looker_repl') distinct names", id="same-user-twice"),
    pytest.param({"mysql_appdb_collation": "latin1_swedish_ci"}, [], None,
                 "mysql_appdb_collation is 'latin1_swedish_ci': Looker requires utf8mb4", id="collation"),
    pytest.param({"mysql_appdb_server_id": -1}, [], None,
                 "mysql_appdb_server_id is -1", id="server-id"),
    pytest.param({"mysql_appdb_backup_retention_days": 0}, [], None,
                 "mysql_appdb_backup_retention_days (0) and mysql_appdb_backup_keep_min (3) at least 1", id="backup-retention"),
    pytest.param({"mysql_appdb_backup_dir": "/var"}, [], None,
                 "mysql_appdb_backup_dir ('/var') must be a dedicated absolute directory", id="backup-dir"),
]


@pytest.mark.parametrize("overrides, drop, db_facts, message", BAD)
def test_bad_input_is_refused(run_play, tmp_path, overrides, drop, db_facts, message):
    result = run(run_play, tmp_path, overrides, drop=drop, db_facts=db_facts)
    assert result.failed, result.output
    assert message in result.output
    # Nothing after the validation ran (include_role stops at the first failed check).
    assert "Install the database server" not in result.output


def test_ip_netmask_and_ipv6_account_hosts_are_accepted(run_play, tmp_path):
    result = run(run_play, tmp_path, {"mysql_appdb_looker_hosts": ["10.0.1.0/255.255.255.0", "10.0.2.7", "fd00::17"]})
    assert not result.failed, result.output


def test_no_looker_node_in_the_site_is_refused(run_play, tmp_path):
    topology = {h: v for h, v in TOPOLOGY.items() if not h.startswith("node")}
    result = run(run_play, tmp_path, topology=topology)
    assert result.failed
    assert "The Looker accounts would be allowed from no address" in result.output
    assert "add hosts to looker_nodes" in result.output and "set mysql_appdb_looker_hosts" in result.output


def test_two_primaries_in_one_site_are_refused(run_play, tmp_path):
    topology = dict(TOPOLOGY, db3=(["looker_appdb_primary"], {"default_ipv4": {"address": "10.0.0.7"}}))
    result = run(run_play, tmp_path, topology=topology)
    assert result.failed
    assert "its site must have exactly one primary; found primaries ['db1', 'db3']" in result.output


def test_no_replica_means_no_replica_passwords_needed(run_play, tmp_path):
    topology = {h: v for h, v in TOPOLOGY.items() if h != "db2"}
    result = run(run_play, tmp_path, topology=topology,
                 drop=["mysql_appdb_readonly_password", "mysql_appdb_replication_password"])
    assert not result.failed, result.output


def test_passwords_never_appear_in_the_output_even_with_vvv(run_play, tmp_path):
    secret = "Sekrit-4-unit-tests-only"
    good = run(run_play, tmp_path, {"mysql_appdb_looker_password": secret}, extra_args=["-vvv"])
    assert not good.failed, good.output
    bad = run(run_play, tmp_path, {"mysql_appdb_replication_password": secret + "'"}, extra_args=["-vvv"])
    assert bad.failed
    for result in (good, bad):
        assert secret not in result.raw


def test_the_full_role_stops_at_validation(run_play, tmp_path):
    """main.yml (check mode as a safety net) fails in validation and reaches no install task."""
    result = run(run_play, tmp_path, {"mysql_appdb_buffer_pool_ratio": 0.95}, entry="main", check=True)
    assert result.failed
    assert "mysql_appdb_buffer_pool_ratio is 0.95" in result.output
    assert "Validate the options, the inventory and the facts" in result.output
    assert "Install the database server" not in result.output
    assert "Add Oracle's MySQL APT repository" not in result.output


def test_the_role_argument_spec_requires_the_looker_password(run_play, tmp_path):
    result = run(run_play, tmp_path, drop=["mysql_appdb_looker_password"], entry="main", check=True)
    assert result.failed
    assert "mysql_appdb_looker_password" in result.output
    assert "Install the database server" not in result.output


def test_main_includes_validate_first():
    tasks = yaml.safe_load((ROLE / "tasks" / "main.yml").read_text())
    assert tasks[0]["ansible.builtin.include_tasks"] == "validate.yml"
    # Skipped only when site.yml ran it in its preflight (tests/unit/test_site_preflight.py).
    assert tasks[0].get("when", "not (__mysql_appdb_validated | default(false) | bool)") == "not (__mysql_appdb_validated | default(false) | bool)"
    # main.yml only includes named files.
    assert all(set(task) - {"name", "when"} == {"ansible.builtin.include_tasks"} for task in tasks)


def test_validate_changes_nothing():
    """validate.yml only reads: asserts, messages, fact gathering, a read-only probe, then the
    argument_specs check (an action on the controller)."""
    *block, spec = yaml.safe_load((ROLE / "tasks" / "validate.yml").read_text())
    assert len(block) == 1 and block[0]["any_errors_fatal"] is True
    assert "ansible.builtin.validate_argument_spec" in spec
    read_only = {"ansible.builtin.assert", "ansible.builtin.debug", "ansible.builtin.setup", "ansible.builtin.set_fact"}
    for task in block[0]["block"]:
        modules = [k for k in task if k.startswith("ansible.") or k.startswith("community.")]
        assert len(modules) == 1, task["name"]
        if modules[0] == "ansible.builtin.command":
            assert task["changed_when"] is False and task["check_mode"] is False, task["name"]
        else:
            assert modules[0] in read_only, task["name"]


def test_every_task_handling_a_secret_hides_it():
    """Tasks that pass a password or key to a module have no_log: true."""
    for path in sorted((ROLE / "tasks").glob("*.yml")):
        for task in _tasks(yaml.safe_load(path.read_text())):
            modules = {k: v for k, v in task.items() if k.startswith("community.") or k.startswith("ansible.builtin.copy")}
            args = yaml.safe_dump(modules)
            if any(s in args for s in ("_password", "tls_key")):
                assert task.get("no_log") is True, f"{path.name}: {task['name']}"


def _tasks(items):
    for item in items or []:
        if "block" in item:
            yield from _tasks(item["block"])
        else:
            yield item


@pytest.mark.parametrize("addresses, message", [
    # Issue 16: the replica given the primary's address in another spelling.
    ({"db1": {"mysql_appdb_address": "127.0.0.1"}, "db2": {"mysql_appdb_address": "LOCALHOST."}},
     "db1 and db2 have the same database address, 127.0.0.1: db1's mysql_appdb_address is 127.0.0.1, and db2's"
     " mysql_appdb_address is LOCALHOST., which resolves to 127.0.0.1 on the controller. The Looker nodes connect to"
     " the primary there and the replicas replicate from it. Give each host its own: set mysql_appdb_address (or"
     " looker_cluster_address) on db2 (or on db1)"),
    ({"db1": {"looker_cluster_address": "db1-nosuch.invalid"}},
     "db1: looker_cluster_address is db1-nosuch.invalid, which does not resolve on the controller"),
])
@pytest.mark.parametrize("target", ["db1", "db2"])
def test_database_addresses_resolve_and_differ(run_play, tmp_path, addresses, message, target):
    result = run(run_play, tmp_path, hostvars=addresses, target=target)
    assert result.failed
    assert message in result.output, result.output[-3000:]
    assert re.search(r"db[12]\s+: ok=\d+\s+changed=0 ", result.raw), result.raw[-2000:]


def test_the_replica_follows_the_primary_at_its_normalised_address(run_play, tmp_path):
    result = run(run_play, tmp_path, hostvars={"db1": {"mysql_appdb_address": "LOCALHOST."}}, target="db2",
                 after=[show("__mysql_appdb_source_address")])
    assert not result.failed, result.output
    assert "__mysql_appdb_source_address=[localhost]" in result.output
