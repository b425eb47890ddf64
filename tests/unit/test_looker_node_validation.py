"""Bad input to the looker_node role fails in tasks/validate.yml, before any host is changed,
with a message that names the variable, the bad value and the fix.

Each test builds a small cluster inventory on the controller (add_host, connection local) and runs
the role's validation on it; one good configuration passes, so a failure is the rule under test.
"""
import copy
import re

import pytest

from looker_node_inputs import BASE, NODES


def plays(nodes, extra_tasks=()):
    add = [
        {
            "name": f"Add {name}",
            "ansible.builtin.add_host": dict({"name": name, "groups": ["looker_nodes"], "ansible_connection": "local"}, **hostvars),
        }
        for name, hostvars in nodes.items()
    ]
    return [
        {"name": "Inventory", "hosts": "localhost", "gather_facts": False, "tasks": add},
        {
            "name": "Validate",
            "hosts": "looker_nodes",
            "gather_facts": False,
            "tasks": [
                {"name": "Validate", "ansible.builtin.include_role": {"name": "lookerops.cluster.looker_node", "tasks_from": "validate", "public": True}},
                *extra_tasks,
            ],
        },
    ]


class Result:
    """A play's result with its output on one line (Ansible wraps long messages)."""

    def __init__(self, result):
        self.failed = result.failed
        self.raw = result.output
        self.output = " ".join(result.output.split())

    @property
    def changed_nothing(self):
        """Every node of the recap has changed=0 (localhost only ran add_host, which changes no host)."""
        recap = re.findall(r"^(\S+)\s+: ok=\d+\s+changed=(\d+)", self.raw, re.M)
        nodes = [changed for host, changed in recap if host != "localhost"]
        return bool(nodes) and set(nodes) == {"0"}


def run(run_play, nodes=None, **overrides):
    extra = dict(BASE, **overrides)
    return Result(run_play(plays(copy.deepcopy(nodes or NODES)), extra))


def test_a_good_cluster_passes(run_play):
    result = run(run_play)
    assert not result.failed, result.output
    assert "ok=" in result.output


def test_an_option_of_the_wrong_type_is_refused_before_any_change(run_play):
    # site.yml's preflight runs this entry point: the types of the role's argument_specs hold there too.
    result = run(run_play, looker_node_uid="looker")
    assert result.failed
    assert "argument 'looker_node_uid' is of type" in result.output, result.output[-3000:]
    assert result.changed_nothing


def test_duplicate_cluster_address_is_refused(run_play):
    nodes = copy.deepcopy(NODES)
    nodes["node-b"]["looker_node_cluster_address"] = "10.1.2.3"
    result = run(run_play, nodes)
    assert result.failed
    assert ("node-a and node-b have the same -H address, 10.1.2.3: node-a's looker_node_cluster_address is 10.1.2.3, and"
            " node-b's looker_node_cluster_address is 10.1.2.3. Each node registers its -H address in the application"
            " database and the other nodes reach it there. Give each host its own: set looker_node_cluster_address (or"
            " looker_cluster_address) on node-b (or on node-a)") in result.output
    assert result.changed_nothing, result.raw


@pytest.mark.parametrize("address_a, address_b, shared, said", [
    # The case: node-b given node-a's IP, while node-a's name stands for that IP.
    ({"looker_node_cluster_address": "node-a", "ansible_host": "10.1.2.3"}, "10.1.2.3", "10.1.2.3",
     "node-a's looker_node_cluster_address is node-a, which resolves to 10.1.2.3 as the ansible_host of node-a"),
    # One name in two spellings (case, trailing dot), resolved on the controller.
    ({"looker_node_cluster_address": "127.0.0.1"}, "LOCALHOST.", "127.0.0.1",
     "node-b's looker_node_cluster_address is LOCALHOST., which resolves to 127.0.0.1 on the controller"),
])
def test_one_address_spelled_two_ways_is_refused(run_play, address_a, address_b, shared, said):
    nodes = copy.deepcopy(NODES)
    nodes["node-a"] = dict(nodes["node-a"], **address_a)
    nodes["node-b"]["looker_node_cluster_address"] = address_b
    result = run(run_play, nodes)
    assert result.failed
    assert f"node-a and node-b have the same -H address, {shared}:" in result.output
    assert said in result.output
    assert "set looker_node_cluster_address (or looker_cluster_address) on node-b" in result.output
    assert result.changed_nothing, result.raw


def test_a_cluster_address_that_does_not_resolve_is_refused(run_play):
    nodes = copy.deepcopy(NODES)
    nodes["node-b"]["looker_node_cluster_address"] = "lkr-demo-nosuch.invalid"
    result = run(run_play, nodes)
    assert result.failed
    assert ("node-b: looker_node_cluster_address is lkr-demo-nosuch.invalid, which does not resolve on the controller"
            in result.output)
    assert "names no host of the inventory, so node-b would have no -H address. Correct looker_node_cluster_address on node-b" in result.output
    assert result.changed_nothing, result.raw


@pytest.mark.parametrize("variable, extra", [
    ("looker_node_db_host", {}),
    ("looker_node_analytics_db_host", {"looker_node_analytics_db_password": "ro-password-unit"}),
    ("looker_node_ssl_provided_externally_by", {}),
])
def test_a_database_or_balancer_name_that_does_not_resolve_is_refused(run_play, variable, extra):
    result = run(run_play, **{variable: "db-nosuch.invalid"}, **extra)
    assert result.failed
    assert f"node-a: {variable} is db-nosuch.invalid, which does not resolve on the controller" in result.output
    assert f"Correct {variable} on node-a" in result.output
    assert result.changed_nothing, result.raw


def test_cluster_addresses_in_upper_case_or_with_a_trailing_dot_are_normalised(run_play):
    nodes = copy.deepcopy(NODES)
    nodes["node-a"]["looker_node_cluster_address"] = "LOCALHOST."
    nodes["node-b"]["looker_node_cluster_address"] = "FD00:0:0::4"
    check = {"name": "Check the -H address", "ansible.builtin.assert": {"that": [
        "__looker_node_looker_args[__looker_node_looker_args.index('-H') + 1] == ('localhost' if inventory_hostname == 'node-a' else 'fd00::4')",
        "__looker_node_url_host == ('localhost' if inventory_hostname == 'node-a' else '[fd00::4]')",
        "__looker_node_peer_addresses == {'node-a': 'localhost', 'node-b': 'fd00::4'}"]}}
    result = Result(run_play(plays(nodes, [check]), dict(BASE)))
    assert not result.failed, result.output


def test_heap_larger_than_ram_is_refused(run_play):
    result = run(run_play, looker_node_heap_mb=20000)
    assert result.failed
    assert "looker_node_heap_mb is 20000 MB but node-a has 16384 MB of RAM" in result.output
    assert "the heap would be larger than the RAM" in result.output


def test_missing_license_without_offline_jars_is_refused(run_play):
    result = run(run_play, looker_node_license_key="")
    assert result.failed
    assert 'looker_node_jar_source is "api" (Looker\'s download API) but looker_node_license_key is not set' in result.output
    assert 'looker_node_jar_source "url" (an internal mirror) or "file"' in result.output


def test_offline_jars_need_no_license(run_play):
    result = run(
        run_play,
        looker_node_license_key="",
        looker_node_license_email="",
        looker_node_jar_source="file",
        looker_node_jar_src="/srv/jars/looker.jar",
        looker_node_dependencies_src="/srv/jars/looker-dependencies.jar",
        looker_node_jar_sha256="a" * 64,
        looker_node_dependencies_sha256="b" * 64,
    )
    assert not result.failed, result.output


def test_offline_jars_need_an_exact_release(run_play):
    result = run(
        run_play,
        looker_node_jar_source="url",
        looker_node_version="25.6",
        looker_node_jar_src="https://mirror.example/looker.jar",
        looker_node_dependencies_src="https://mirror.example/looker-dependencies.jar",
        looker_node_jar_sha256="a" * 64,
        looker_node_dependencies_sha256="b" * 64,
    )
    assert result.failed
    assert 'an exact looker_node_version such as "25.6.12" (now "25.6")' in result.output


@pytest.mark.parametrize("version", ["25.x", "v25.6", "25.6.12.1", "newest"])
def test_unknown_version_format_is_refused(run_play, version):
    result = run(run_play, looker_node_version=version)
    assert result.failed
    assert f'looker_node_version is "{version}", which is not a Looker release' in result.output
    assert 'an exact release such as "25.6.12"' in result.output


def test_different_releases_in_one_cluster_are_refused(run_play):
    nodes = copy.deepcopy(NODES)
    nodes["node-b"]["looker_node_version"] = "25.8.1"
    result = Result(run_play(plays(nodes), {k: v for k, v in BASE.items() if k != "looker_node_version"} | {"looker_version": "25.6.12"}))
    assert result.failed
    assert "The nodes of one cluster ask for different releases: node-a: 25.6.12, node-b: 25.8.1" in result.output


def test_cluster_needs_the_master_key(run_play):
    result = run(run_play, looker_node_master_key="")
    assert result.failed
    assert "looker_node_clustered is true but looker_node_master_key is not set" in result.output


def test_master_key_must_be_32_bytes(run_play):
    result = run(run_play, looker_node_master_key="c2hvcnQ=")
    assert result.failed
    assert "looker_node_master_key is not a base64-encoded 32-byte key" in result.output
    assert "c2hvcnQ=" not in result.output


def test_render_jobs_that_leave_no_heap_are_refused(run_play):
    nodes = copy.deepcopy(NODES)
    nodes["node-b"]["looker_node_render_jobs"] = 6
    result = run(run_play, nodes)
    assert result.failed
    assert "node-b has 16384 MB of RAM; after 20% for the OS and 6 render job(s) of 2048 MB, the heap would be 819 MB" in result.output


def test_embedded_database_cannot_be_clustered(run_play):
    result = run(run_play, looker_node_app_db="embedded")
    assert result.failed
    assert 'looker_node_clustered is true but looker_node_app_db is "embedded"' in result.output


def test_shared_storage_inside_install_dir_is_refused(run_play):
    result = run(run_play, looker_node_shared_storage_dir="/home/looker/looker/share")
    assert result.failed
    assert "one is inside the other" in result.output


def test_scheduler_threads_above_twice_the_cpus_warn(run_play):
    nodes = copy.deepcopy(NODES)
    nodes["node-a"]["looker_node_scheduler_threads"] = 64
    nodes["node-a"]["looker_node_cpus"] = 4
    result = run(run_play, nodes)
    assert not result.failed, result.output
    assert "WARNING: looker_node_scheduler_threads is 64 on node-a, more than twice its 4 CPUs (looker_node_cpus)" in result.output


def test_memory_warning_names_the_variables_to_change(run_play):
    nodes = copy.deepcopy(NODES)
    nodes["node-a"]["looker_node_heap_mb"] = 16000
    result = run(run_play, nodes)
    assert not result.failed, result.output
    assert "WARNING: on node-a the heap (16000 MB), metaspace (800 MB) and the render budget (0 MB)" in result.output
    assert ("Lower looker_node_heap_mb (16000; 0 sizes the heap by the 60% rule), looker_node_metaspace_mb (0; 0 picks"
            " 800 or 1024 MB) or looker_node_render_jobs (2), or set looker_node_memory_mb (16384) to the RAM the node"
            " really has") in result.output


@pytest.mark.parametrize(
    "memory, render, jobs, heap",
    [
        (8192, False, 2, 4915),  # 60% of 8 GB
        (65536, True, 6, 39321),  # 64 GB, 6 render jobs: the 60% rule holds (seed example)
        (65536, True, 16, 19660),  # dedicated render node: about 30% (20 GB) (seed example)
        (16384, True, 2, 9011),  # 80% of 16 GB less 2 x 2 GB is below 60%
    ],
)
def test_heap_follows_the_60_percent_rule_less_the_render_budget(run_play, memory, render, jobs, heap):
    nodes = {"node-a": {"looker_node_cluster_address": "10.1.2.3", "looker_node_render": render, "looker_node_render_jobs": jobs}}
    check = {
        "name": "Check the heap",
        "ansible.builtin.assert": {
            "that": [f"__looker_node_heap | int == {heap}", f"'-Xmx{heap}m' in __looker_node_java_args"],
            "fail_msg": "heap {{ __looker_node_heap }}",
        },
    }
    result = run_play(plays(nodes, [check]), dict(BASE, looker_node_memory_mb=memory))
    assert not result.failed, result.output


def test_tls_at_a_load_balancer_outside_the_inventory_warns_about_health_checks(run_play):
    result = run(run_play, looker_node_ssl_provided_externally_by="10.9.9.9")
    assert not result.failed, result.output
    assert ("WARNING: looker_node_ssl_provided_externally_by is 10.9.9.9 but looker_node_health_check_host is empty"
            in result.output)


def test_a_peer_name_the_node_itself_cannot_resolve_is_refused(run_play):
    # The controller accepts the name (it names a host of the inventory, whose address it knows), but
    # the node resolves names through its own resolver: there the name does not exist.
    nodes = {"node-a": dict(NODES["node-a"]),
             "lkr-unit-node-b.invalid": dict(NODES["node-b"], looker_node_cluster_address="LKR-Unit-Node-B.invalid.",
                                             ansible_host="10.1.2.4")}
    result = run(run_play, nodes)
    assert result.failed
    assert ("node-a cannot resolve lkr-unit-node-b.invalid, the -H address of lkr-unit-node-b.invalid "
            "(looker_node_cluster_address): Looker on node-a would not reach it") in result.output, result.output[-3000:]
    assert "or set that variable to an IP address. Nothing was changed." in result.output
    assert result.changed_nothing, result.raw


def test_names_the_node_itself_resolves_pass(run_play):
    result = run(run_play, looker_node_db_host="LOCALHOST.")
    assert not result.failed, result.output[-2000:]
    assert "TASK [lookerops.cluster.looker_node : The node resolves them itself]" in result.raw
    assert "(item=localhost)" in result.raw
