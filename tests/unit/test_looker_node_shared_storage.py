"""The shared storage of a Looker cluster must be shared (issue 16).

- In preflight (tasks/validate.yml): when roles/nfs_share serves the nodes, looker_node_shared_storage_dir
  must lie on the share it mounts (nfs_share_mount_point); the message names the expected value.
- Before Looker starts (tasks/plan.yml, entry point `shared_storage_check`): a marker written by the
  first node of each cluster is read by every other node through looker_node_shared_storage_dir; two
  nodes whose directories differ (each its own local tmpfs, say) are refused, naming the nodes, the
  path and the fix. The marker is removed and nothing reports a change.

The nodes are fake hosts on the controller (connection local); "their" directories are temporary
directories, so two nodes with different directories are two nodes that do not share.
"""
import copy
import os
import re
import shutil
import tempfile

import pytest

from looker_node_inputs import BASE, NODES


def one_line(result):
    return " ".join(result.output.split())


def recap(output):
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\S+)\s+: ok=\d+\s+changed=(\d+)", output, re.M)}


def validate_plays(nodes, storage=()):
    add = [{"name": f"Add {name}", "ansible.builtin.add_host": dict({"name": name, "groups": ["looker_nodes"], "ansible_connection": "local"}, **hv)}
           for name, hv in nodes.items()]
    add += [{"name": f"Add {name}", "ansible.builtin.add_host": {"name": name, "groups": ["looker_storage"], "ansible_connection": "local"}}
            for name in storage]
    return [
        {"name": "Inventory", "hosts": "localhost", "gather_facts": False, "tasks": add},
        {"name": "Validate", "hosts": "looker_nodes", "gather_facts": False, "tasks": [
            {"name": "Validate", "ansible.builtin.include_role": {"name": "lookerops.cluster.looker_node", "tasks_from": "validate"}}]},
    ]


def validate(run_play, nodes=None, storage=(), **overrides):
    return run_play(validate_plays(copy.deepcopy(nodes or NODES), storage), dict(BASE, **overrides))


# --- preflight: the path must lie on the share nfs_share mounts ----------------------------------

def test_a_local_tmpfs_instead_of_the_share_is_refused_naming_the_expected_value(run_play):
    result = validate(run_play, storage=["fs-1"], looker_node_shared_storage_dir="/dev/shm")
    assert result.failed
    text = one_line(result)
    assert ('node-a: looker_node_shared_storage_dir is "/dev/shm", which is not on the share that roles/nfs_share '
            "mounts on this node at /mnt/looker-share (nfs_share_mount_point)") in text
    assert "Set looker_node_shared_storage_dir to /mnt/looker-share (or a directory under it)" in text
    changed = recap(result.output)
    assert changed["node-a"] == 0 and changed["node-b"] == 0, changed


def test_the_expected_value_follows_nfs_share_mount_point(run_play):
    result = validate(run_play, storage=["fs-1"], nfs_share_mount_point="/srv/looker", looker_node_shared_storage_dir="/srv/other")
    assert result.failed
    assert "mounts on this node at /srv/looker (nfs_share_mount_point)" in one_line(result)


@pytest.mark.parametrize("path", ["/srv/looker", "/srv/looker/cluster-a"])
def test_the_share_or_a_directory_under_it_passes(run_play, path):
    result = validate(run_play, storage=["fs-1"], nfs_share_mount_point="/srv/looker", looker_node_shared_storage_dir=path)
    assert not result.failed, one_line(result)


def test_a_sibling_with_the_same_prefix_is_not_under_the_share(run_play):
    result = validate(run_play, storage=["fs-1"], looker_node_shared_storage_dir="/mnt/looker-share2")
    assert result.failed
    assert 'looker_node_shared_storage_dir is "/mnt/looker-share2", which is not on the share' in one_line(result)


def test_an_external_nfs_server_counts_as_the_share(run_play):
    result = validate(run_play, nfs_share_backend="nfs", nfs_share_nfs_host="filer.example.com",
                      looker_node_shared_storage_dir="/dev/shm")
    assert result.failed
    assert "mounts on this node at /mnt/looker-share" in one_line(result)


def test_without_nfs_share_the_path_is_not_compared(run_play):
    # No storage host: the share comes from elsewhere; the marker check proves it before Looker starts.
    result = validate(run_play, looker_node_shared_storage_dir="/srv/own-share")
    assert not result.failed, one_line(result)


# --- before Looker starts: a marker written on one node is read on every other ------------------

@pytest.fixture
def share_dirs():
    """Directories the looker uid (9000) may write, outside root's private pytest directory."""
    made = []

    def _make(mode=0o777):
        path = tempfile.mkdtemp(prefix="lookerops-share-", dir="/tmp")
        os.chmod(path, mode)
        made.append(path)
        return path
    yield _make
    for path in made:
        shutil.rmtree(path, ignore_errors=True)


def marker_plays(nodes, storage=()):
    """validate (records each node's cluster), then the shared storage probes, on fake nodes."""
    plays = validate_plays(nodes, storage)
    plays[1]["tasks"].append({"name": "Shared storage", "ansible.builtin.include_role": {
        "name": "lookerops.cluster.looker_node", "tasks_from": "shared_storage"}})
    return plays


def check_markers(run_play, dirs, sites=None):
    nodes = copy.deepcopy(NODES)
    if sites:
        nodes["node-c"] = {"looker_node_cluster_address": "10.9.9.9", "looker_node_scheduler": True, "looker_node_render": False}
    for name, hv in nodes.items():
        hv["looker_node_shared_storage_dir"] = dirs[name]
        if sites:
            hv["looker_site"] = sites[name]
    if sites:
        # Each site is a group holding its hosts (inventories/example): add_host puts them there.
        plays = marker_plays(nodes)
        for task in plays[0]["tasks"]:
            host = task["ansible.builtin.add_host"]
            host["groups"] = host["groups"] + ["looker_site_" + sites[host["name"]]]
    else:
        plays = marker_plays(nodes)
    # The test directories are not mount points; the mount rule has its own message in plan.yml.
    return run_play(plays, dict(BASE, looker_node_shared_storage_require_mount=False))


def test_nodes_that_share_the_directory_pass_and_leave_nothing(run_play, share_dirs):
    shared = share_dirs()
    result = check_markers(run_play, {"node-a": shared, "node-b": shared})
    assert not result.failed, one_line(result)
    assert os.listdir(shared) == []
    changed = recap(result.output)
    assert changed["node-a"] == 0 and changed["node-b"] == 0, changed


def test_a_directory_from_the_role_defaults_or_role_vars_works(run_play, share_dirs):
    # As in site.yml, where the directory is usually the role's default: such a value is no hostvar of
    # the node, so the messages must not read it through hostvars.
    shared = share_dirs()
    plays = marker_plays(copy.deepcopy(NODES))
    for task in plays[1]["tasks"]:
        task["vars"] = {"looker_node_shared_storage_dir": shared}
    result = run_play(plays, dict(BASE, looker_node_shared_storage_require_mount=False))
    assert not result.failed, one_line(result)[-3000:]
    assert os.listdir(shared) == []


def test_nodes_with_their_own_directories_are_refused_naming_nodes_paths_and_fix(run_play, share_dirs):
    a_dir, b_dir = share_dirs(), share_dirs()
    result = check_markers(run_play, {"node-a": a_dir, "node-b": b_dir})
    assert result.failed
    text = one_line(result)
    assert (f"The nodes of the cluster of node-b do not share looker_node_shared_storage_dir: node-a wrote a marker "
            f"into {a_dir}, and node-b did not find it ({b_dir}/.lookerops-shared-storage-check-") in text
    assert ": No such file or directory)" in text
    assert "Set looker_node_shared_storage_dir of every node to the one share they all mount" in text
    assert "not to a directory local to each node such as /dev/shm" in text
    # The marker was removed from node-a's directory, nothing was written into node-b's.
    assert os.listdir(a_dir) == [] and os.listdir(b_dir) == []
    changed = recap(result.output)
    assert changed["node-a"] == 0 and changed["node-b"] == 0, changed


def test_a_directory_the_looker_user_cannot_write_is_refused(run_play, share_dirs):
    private = share_dirs(mode=0o755)  # owned by root: uid 9000 may not write
    result = check_markers(run_play, {"node-a": private, "node-b": private})
    assert result.failed
    text = one_line(result)
    assert f"On node-a, the looker user (uid 9000, gid 9000) cannot write into {private} (looker_node_shared_storage_dir)" in text
    assert "Permission denied" in text and "Give the share to uid 9000" in text


def test_each_cluster_of_the_play_proves_its_own_share(run_play, share_dirs):
    """Two sites in one play (site.yml deploys both): each site's first node writes, its nodes read."""
    site_a, site_b = share_dirs(), share_dirs()
    result = check_markers(run_play, {"node-a": site_a, "node-b": site_a, "node-c": site_b},
                           sites={"node-a": "a", "node-b": "a", "node-c": "b"})
    assert not result.failed, one_line(result)
    assert os.listdir(site_a) == [] and os.listdir(site_b) == []


def test_the_check_can_be_turned_off_for_clusters_without_shared_storage(run_play, share_dirs):
    plays = marker_plays({name: dict(hv, looker_node_shared_storage_dir=share_dirs()) for name, hv in NODES.items()})
    result = run_play(plays, dict(BASE, looker_node_shared_storage_require_mount=False, looker_node_shared_storage_check_shared=False))
    assert not result.failed, one_line(result)


# --- the mount check names the value it expects --------------------------------------------------

def test_a_missing_directory_is_refused_naming_the_share_nfs_share_mounts(run_play, tmp_path):
    missing = str(tmp_path / "looker-share")
    plays = marker_plays(copy.deepcopy(NODES), storage=["fs-1"])
    result = run_play(plays, dict(BASE, nfs_share_mount_point=missing, looker_node_shared_storage_dir=missing))
    assert result.failed
    text = one_line(result)
    assert f"On node-a, {missing} (looker_node_shared_storage_dir) does not exist" in text
    assert (f"roles/nfs_share mounts the share on this node at {missing} (nfs_share_mount_point): looker_node_shared_storage_dir "
            "must be that directory (or one under it), and nfs_share must run first") in text
    assert "Nothing was changed." in text


def test_a_directory_that_is_not_a_mount_point_is_refused_naming_the_expected_value(run_play, share_dirs):
    plain = share_dirs()
    plays = marker_plays({name: dict(hv, looker_node_shared_storage_dir=plain) for name, hv in NODES.items()})
    result = run_play(plays, BASE)
    assert result.failed
    text = one_line(result)
    assert f"On node-a, {plain} (looker_node_shared_storage_dir) is not a mount point (it lies on the file system mounted at" in text
    assert "roles/nfs_share mounts it at its nfs_share_mount_point, /mnt/looker-share by default" in text
