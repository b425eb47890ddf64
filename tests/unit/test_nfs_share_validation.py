"""Bad-input tests of the nfs_share role: its validation fails, with a message naming the variable,
the bad value and the fix, before any host is changed.

The plays run on the controller: a first play builds the inventory groups (storage peers that are
never contacted, and localhost as the one Looker node), a second runs the role's validate tasks on
localhost, which is where the per-host probes (getent, parents of the SSH directory) look.
"""
import grp
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
ROLE = "lookerops.cluster.nfs_share"


def validate_play(storage=("fs1", "fs2", "fs3"), nodes_vars=None, extra_hosts=()):
    """Plays: put hosts in looker_storage / looker_nodes, then run validate.yml on localhost."""
    add = [{"name": f"Storage peer {h}", "ansible.builtin.add_host": {"name": h, "groups": ["looker_storage"]}} for h in storage]
    add.append({"name": "localhost is a Looker node", "ansible.builtin.add_host": {"name": "localhost", "groups": ["looker_nodes"], **(nodes_vars or {})}})
    for host, host_vars in extra_hosts:
        add.append({"name": f"Node {host}", "ansible.builtin.add_host": {"name": host, "groups": ["looker_nodes"], **host_vars}})
    return [
        {"name": "Inventory", "hosts": "localhost", "gather_facts": False, "tasks": add},
        {
            "name": "Validate",
            "hosts": "localhost",
            "gather_facts": False,
            "vars": {"ansible_python_interpreter": sys.executable},
            "tasks": [{"name": "Run the role's validation", "ansible.builtin.include_role": {"name": ROLE, "tasks_from": "validate.yml"}}],
        },
    ]


def good_vars(**overrides):
    # A mount point whose parents on this controller are / and /mnt (root-owned, 0755).
    values = {"nfs_share_mount_point": "/mnt/lookerops-unit-test-share", "nfs_share_looker_user": "lookerops-unit-test"}
    values.update(overrides)
    return values


def test_good_input_passes_and_changes_nothing(run_play):
    result = run_play(validate_play(), good_vars())
    assert not result.failed, result.output
    validate_output = result.output.split("PLAY [Validate]", 1)[1]
    assert "\nchanged:" not in validate_output


def test_an_option_of_the_wrong_type_is_refused_before_any_change(run_play):
    # site.yml's preflight runs this entry point: the types of the role's argument_specs hold there too.
    result = run_play(validate_play(), good_vars(nfs_share_client_mount_timeout="soon"))
    assert result.failed
    assert "argument 'nfs_share_client_mount_timeout' is of type" in " ".join(result.output.split()), result.output[-3000:]
    assert "\nchanged:" not in result.output.split("PLAY [Validate]", 1)[1]


def test_share_path_not_absolute(run_play):
    result = run_play(validate_play(), good_vars(nfs_share_mount_point="mnt/looker-share"))
    assert result.failed
    assert 'nfs_share_mount_point is "mnt/looker-share": it must be an absolute path' in result.output
    assert "Set nfs_share_mount_point to such a path" in result.output


def test_export_path_with_dotdot_refused(run_play):
    result = run_play(validate_play(storage=("fs1",)), good_vars(nfs_share_backend="nfs", nfs_share_nfs_export_path="/srv/../etc"))
    assert result.failed
    assert 'nfs_share_nfs_export_path is "/srv/../etc"' in result.output


def test_even_peer_count_without_arbiter(run_play):
    result = run_play(validate_play(storage=("fs1", "fs2")), good_vars())
    assert result.failed
    assert "has 2 GlusterFS peers (fs1, fs2) and nfs_share_glusterfs_arbiter is false" in result.output
    assert "Add a third peer, or add a small third host and set nfs_share_glusterfs_arbiter: true" in result.output


def test_two_peers_with_arbiter_still_need_the_arbiter_host(run_play):
    result = run_play(validate_play(storage=("fs1", "fs2")), good_vars(nfs_share_glusterfs_arbiter=True))
    assert result.failed
    assert "with an arbiter (2 data peers + 1 arbiter per set)" in result.output
    assert "needs 3, 6, 9... storage hosts" in result.output


def test_three_peers_with_arbiter_pass(run_play):
    result = run_play(validate_play(), good_vars(nfs_share_glusterfs_arbiter=True))
    assert not result.failed, result.output


def test_world_writable_parent_of_ssh_dir(run_play, tmp_path):
    parent = tmp_path / "mnt"
    parent.mkdir()
    parent.chmod(0o777)
    result = run_play(validate_play(), good_vars(nfs_share_mount_point=str(parent / "looker-share")))
    assert result.failed
    assert str(parent) in result.output
    assert "group- or world-writable" in result.output
    assert f"above the shared SSH directory {parent}/looker-share/ssh-share" in result.output
    assert "Run chmod go-w on" in result.output


def test_existing_user_with_another_uid(run_play):
    # root exists on every controller, with uid 0 and gid 0.
    result = run_play(validate_play(), good_vars(nfs_share_looker_user="root", nfs_share_looker_uid=4242))
    assert result.failed
    assert "user root has uid 0 but nfs_share_looker_uid is 4242" in result.output
    assert "renumber the user on this host" in result.output


def test_wanted_gid_taken_by_another_group(run_play):
    daemon = grp.getgrnam("daemon")  # exists on every Debian/RHEL controller
    result = run_play(validate_play(), good_vars(nfs_share_looker_group="lookerops-unit-test", nfs_share_looker_gid=daemon.gr_gid))
    assert result.failed
    assert f"gid {daemon.gr_gid} (nfs_share_looker_gid) belongs to group daemon" in result.output


def test_root_ids_refused(run_play):
    result = run_play(validate_play(), good_vars(nfs_share_looker_uid=0))
    assert result.failed
    assert "nfs_share_looker_uid is 0 and nfs_share_looker_gid is 9000: the looker user must not be root" in result.output


def test_uids_differ_between_hosts(run_play):
    play = validate_play(extra_hosts=[("node2", {"nfs_share_looker_uid": 1001})])
    result = run_play(play, good_vars())
    assert result.failed
    assert "nfs_share_looker_uid is 1001 on node2 but 9000 on localhost" in result.output
    assert "(group_vars/all), not per host" in result.output


def test_nfs_export_open_to_everyone_refused(run_play):
    result = run_play(validate_play(storage=("fs1",)), good_vars(nfs_share_backend="nfs", nfs_share_client_addresses=["*"]))
    assert result.failed
    assert 'The NFS export would go to ["*"]' in result.output


def test_nfs_kernel_server_needs_exactly_one_host(run_play):
    result = run_play(validate_play(), good_vars(nfs_share_backend="nfs"))
    assert result.failed
    assert "A kernel or nfs-ganesha server needs exactly one storage host" in result.output


def test_logs_directory_never_on_the_share(run_play):
    result = run_play(validate_play(), good_vars(nfs_share_directories=["models", "log"]))
    assert result.failed
    assert 'nfs_share_directories holds "log"' in result.output


def test_looker_home_on_the_share_refused(run_play):
    result = run_play(validate_play(), good_vars(nfs_share_looker_home="/mnt/lookerops-unit-test-share/home"))
    assert result.failed
    assert "one is inside the other" in result.output


def test_missing_migration_source(run_play, tmp_path):
    result = run_play(validate_play(), good_vars(nfs_share_migrate_from=str(tmp_path / "nowhere")))
    assert result.failed
    assert f"nfs_share_migrate_from is {tmp_path / 'nowhere'}, which is not a directory on localhost" in result.output


def test_main_runs_validate_first():
    tasks = yaml.safe_load((ROOT / "roles" / "nfs_share" / "tasks" / "main.yml").read_text())
    first = tasks[0]
    assert first.get("ansible.builtin.include_tasks") == "validate.yml" or first.get("ansible.builtin.import_tasks") == "validate.yml"
    # Skipped only when site.yml ran it in its preflight (tests/unit/test_site_preflight.py).
    assert first.get("when", "not (__nfs_share_validated | default(false) | bool)") == "not (__nfs_share_validated | default(false) | bool)"
    # main.yml only includes named files (CONTRIBUTING).
    include_keys = {"ansible.builtin.include_tasks", "ansible.builtin.import_tasks", "ansible.builtin.include_vars"}
    assert all(include_keys & task.keys() for task in tasks), tasks


def test_validate_changes_no_host():
    """validate.yml only asserts and probes: no module that writes, commands are read-only probes."""
    read_only = {"ansible.builtin.assert", "ansible.builtin.stat", "ansible.builtin.include_tasks", "ansible.builtin.setup",
                 "ansible.builtin.validate_argument_spec"}
    for name in ("validate.yml", "check_ssh_parents.yml"):
        tasks = yaml.safe_load((ROOT / "roles" / "nfs_share" / "tasks" / name).read_text())
        flat = []
        for task in tasks:
            flat.extend(task.get("block", [task]))
        for task in flat:
            modules = {k for k in task if k.startswith("ansible.")}
            if "ansible.builtin.command" in modules:
                assert task.get("changed_when") is False and task.get("check_mode") is False, task["name"]
                modules.discard("ansible.builtin.command")
            assert modules <= read_only, (name, task["name"], modules - read_only)


def refused_unchanged(result, message):
    """The play failed with message, and the validation play changed nothing."""
    output = " ".join(result.output.split())
    return result.failed and message in output and " changed: " not in output.split("PLAY [Validate]", 1)[1]


def test_two_peers_at_one_address_spelled_two_ways_are_refused(run_play):
    # Issue 16: duplicates are found by address, not by spelling.
    result = run_play(validate_play(), good_vars(nfs_share_server_addresses=["127.0.0.1", "LOCALHOST.", "10.0.0.3"]))
    assert refused_unchanged(result, (
        "storage peers of looker_storage: fs1 and fs2 have the same storage address, 127.0.0.1: fs1's"
        " nfs_share_server_addresses[0] is 127.0.0.1, and fs2's nfs_share_server_addresses[1] is LOCALHOST., which"
        " resolves to 127.0.0.1 on the controller.")), result.output
    assert "set nfs_share_server_addresses on fs2 (or on fs1)" in " ".join(result.output.split())


def test_a_peer_address_that_does_not_resolve_is_refused(run_play):
    result = run_play(validate_play(storage=("fs1", "fs2", "fs3")),
                      good_vars(nfs_share_server_addresses=["fs-nosuch.invalid", "10.0.0.2", "10.0.0.3"]))
    assert refused_unchanged(result, (
        "storage peers of looker_storage: fs1: nfs_share_server_addresses[0] is fs-nosuch.invalid, which does not"
        " resolve on the controller")), result.output


def test_a_peer_whose_looker_cluster_address_does_not_resolve_is_refused(run_play):
    play = validate_play()
    play[0]["tasks"][1]["ansible.builtin.add_host"]["looker_cluster_address"] = "FS2.nosuch.invalid."
    result = run_play(play, good_vars())
    assert refused_unchanged(result, "fs2: looker_cluster_address is FS2.nosuch.invalid., which does not resolve"), result.output


def test_a_client_address_or_nfs_host_that_does_not_resolve_is_refused(run_play):
    result = run_play(validate_play(), good_vars(nfs_share_client_addresses=["10.0.0.0/24", "node-nosuch.invalid"]))
    assert refused_unchanged(result, "nfs_share_client_addresses has 'node-nosuch.invalid', which is a name that does not"
                                     " resolve on the controller"), result.output
    result = run_play(validate_play(storage=()), good_vars(nfs_share_backend="nfs", nfs_share_nfs_server="external",
                                                           nfs_share_nfs_host="nas-nosuch.invalid"))
    assert refused_unchanged(result, "localhost: nfs_share_nfs_host is nas-nosuch.invalid, which does not resolve"), result.output


# nfs_share_client_addresses is an access list: a typo must not lock a Looker node out of the share.
def test_a_client_access_list_with_an_impossible_network_is_refused(run_play):
    result = run_play(validate_play(), good_vars(nfs_share_client_addresses=["10.0.0.0/33"]))
    assert refused_unchanged(result, "nfs_share_client_addresses has '10.0.0.0/33', which is not an IP address or network"), \
        result.output


def test_a_client_access_list_that_leaves_out_a_node_names_it(run_play):
    result = run_play(validate_play(storage=("fs1",)), good_vars(nfs_share_backend="nfs", nfs_share_client_addresses=["198.51.100.240/28"]))
    assert refused_unchanged(result, "nfs_share_client_addresses (198.51.100.240/28) leaves out localhost ("), result.output
    assert "a Looker node of looker_site (none) (looker_nodes), which mounts the share" in " ".join(result.output.split())
