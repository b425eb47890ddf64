"""What a Looker operator would check on the GlusterFS share, on the running sandbox hosts.

Tests run in file order; the last one stops a storage peer and restarts it.
"""
import re
import shlex
import subprocess
import time
import uuid

import pytest
import testinfra

PEERS = ["lkr-gluster-fs1", "lkr-gluster-fs2", "lkr-gluster-fs3"]
NODES = ["lkr-gluster-node1", "lkr-gluster-node2"]
SHARE = "/mnt/looker-share"
VOLUME = "looker"


def host(name):
    return testinfra.get_host(f"podman://{name}")


def as_looker(node, command):
    """Run a shell command as the looker user on a node; return the CommandResult."""
    return host(node).run(f"runuser -u looker -- sh -c {shlex.quote(command)}")


def wait_for(predicate, timeout, message, interval=2):
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(message)
        time.sleep(interval)


def test_volume_is_replicated_across_three_peers():
    info = host(PEERS[0]).check_output(f"gluster --mode=script volume info {VOLUME}")
    assert "Type: Replicate" in info
    assert "Status: Started" in info
    assert "Number of Bricks: 1 x 3 = 3" in info
    for peer in PEERS:
        assert f"{peer}:/srv/gluster/looker/brick" in info
    # Only the peers and the Looker nodes may connect.
    allow = host(PEERS[0]).check_output(f"gluster --mode=script volume get {VOLUME} auth.allow")
    for name in PEERS + NODES:
        assert name in allow
    pool = host(PEERS[1]).check_output("gluster --mode=script pool list")
    assert pool.count("Connected") == 3


@pytest.mark.parametrize("node", NODES)
def test_share_is_mounted_through_automount_with_backup_servers(node):
    h = host(node)
    fstab = [line.split() for line in h.file("/etc/fstab").content_string.splitlines() if SHARE in line]
    assert len(fstab) == 1
    src, path, fstype, options = fstab[0][:4]
    assert (src, path, fstype) == (f"{PEERS[0]}:/{VOLUME}", SHARE, "glusterfs")
    options = options.split(",")
    for option in ("_netdev", "x-systemd.automount", f"backup-volfile-servers={PEERS[1]}:{PEERS[2]}"):
        assert option in options
    assert h.run("systemctl is-active mnt-looker\\\\x2dshare.automount").stdout.strip() == "active"
    assert "fuse.glusterfs" in h.check_output(f"findmnt --noheadings --output FSTYPE --mountpoint {SHARE}")


@pytest.mark.parametrize("node", NODES)
def test_layout_and_ssh_share(node):
    h = host(node)
    for name in ("models", "deploy_keys", "plugins"):
        d = h.file(f"{SHARE}/{name}")
        assert d.is_directory and d.user == "looker" and d.uid == 9000 and d.gid == 9000
    ssh = h.file(f"{SHARE}/ssh-share")
    assert ssh.is_directory and ssh.user == "looker" and ssh.mode == 0o700
    for parent in ("/", "/mnt", SHARE):
        assert h.file(parent).mode & 0o022 == 0, f"{parent} is group- or world-writable"
    looker = h.user("looker")
    assert (looker.uid, looker.gid) == (9000, 9000)


def test_existing_node_was_moved_onto_the_share():
    node1, node2 = host(NODES[0]), host(NODES[1])
    for name in ("models", "models-user-7", "deploy_keys", "plugins"):
        local = node1.file(f"/home/looker/looker/{name}")
        assert local.is_symlink and local.linked_to == f"{SHARE}/{name}"
        # The original is kept next to the link, unchanged.
        assert node1.file(f"/home/looker/looker/{name}.pre-share").is_directory
        # Everything of the original is on the share, identical (the share may hold more).
        diff = node1.run(f"diff -r --no-dereference /home/looker/looker/{name}.pre-share {SHARE}/{name}")
        assert [line for line in diff.stdout.splitlines() if not line.startswith(f"Only in {SHARE}")] == []
    assert node2.file(f"{SHARE}/models/ecommerce/orders.view.lkml").content_string.startswith("view: orders")
    assert node2.file(f"{SHARE}/models/ecommerce/current.view.lkml").linked_to == f"{SHARE}/models/ecommerce/orders.view.lkml"
    assert node2.file(f"{SHARE}/models-user-7/ecommerce.model.lkml").exists
    # Logs stay on the node.
    log = node1.file("/home/looker/looker/log")
    assert log.is_directory and not log.is_symlink
    assert not node1.file(f"{SHARE}/log").exists


def test_file_written_on_one_node_is_read_on_the_other():
    token = uuid.uuid4().hex
    assert as_looker(NODES[0], f"echo {token} > {SHARE}/models/handover-{token}").rc == 0
    read = as_looker(NODES[1], f"cat {SHARE}/models/handover-{token}")
    assert read.rc == 0 and read.stdout.strip() == token
    assert host(NODES[1]).file(f"{SHARE}/models/handover-{token}").user == "looker"


def test_exclusive_lock_on_one_node_is_refused_on_the_other():
    lockfile = f"{SHARE}/models/.lock-test"
    holder = host(NODES[0])
    holder.run("systemctl stop lkr-lock-test.service; systemctl reset-failed lkr-lock-test.service")
    holder.check_output(f"systemd-run --unit lkr-lock-test --uid looker flock --exclusive {lockfile} sleep 120")
    try:
        wait_for(lambda: holder.run("systemctl is-active lkr-lock-test.service").stdout.strip() == "active",
                 30, "the lock holder on node1 did not start")
        time.sleep(2)
        refused = as_looker(NODES[1], f"flock --nonblock --exclusive {lockfile} true")
        assert refused.rc == 1, "node2 got an exclusive lock that node1 holds"
        shared = as_looker(NODES[1], f"flock --nonblock --shared {lockfile} true")
        assert shared.rc == 1, "node2 got a shared lock on a file node1 holds exclusively"
    finally:
        holder.run("systemctl stop lkr-lock-test.service")
    granted = wait_for(lambda: as_looker(NODES[1], f"flock --nonblock --exclusive {lockfile} true").rc == 0,
                       30, "node2 never got the lock after node1 released it")
    assert granted


@pytest.mark.parametrize("node", NODES)
def test_ssh_dir_points_at_the_share(node):
    h = host(node)
    ssh = h.file("/home/looker/.ssh")
    assert ssh.is_symlink and ssh.linked_to == f"{SHARE}/ssh-share"
    assert as_looker(node, "cat ~/.ssh/known_hosts").stdout.startswith("git.example.com")
    if node == NODES[0]:
        assert h.file("/home/looker/.ssh.pre-share/id_ed25519").exists


def _heal_pending(peer):
    out = host(peer).run(f"gluster --mode=script volume heal {VOLUME} info")
    counts = [int(line.split(":")[1]) for line in out.stdout.splitlines() if line.startswith("Number of entries:")]
    return out.rc, counts


def test_one_peer_down_then_heals():
    lost = PEERS[2]
    subprocess.run(["podman", "stop", "--time", "10", lost], check=True, capture_output=True)
    try:
        token = uuid.uuid4().hex
        for writer, reader in (NODES, NODES[::-1]):
            path = f"{SHARE}/models/while-{lost}-down-{writer}-{token}"
            write = as_looker(writer, f"echo {token} > {path}")
            assert write.rc == 0, f"{writer} cannot write with {lost} down: {write.stderr}"
            read = as_looker(reader, f"cat {path}")
            assert read.rc == 0 and read.stdout.strip() == token, f"{reader} cannot read with {lost} down"
        # The migrated data is still there too.
        assert as_looker(NODES[1], f"cat {SHARE}/models/ecommerce/orders.view.lkml").rc == 0
    finally:
        subprocess.run(["podman", "start", lost], check=True, capture_output=True)

    def back_and_healed():
        status = host(PEERS[0]).run(f"gluster --mode=script volume status {VOLUME} detail")
        if len(re.findall(r"(?m)^Online\s*:\s*Y\s*$", status.stdout)) < 3:
            return False
        host(PEERS[0]).run(f"gluster --mode=script volume heal {VOLUME}")
        rc, counts = _heal_pending(PEERS[0])
        return rc == 0 and len(counts) == 3 and sum(counts) == 0

    wait_for(back_and_healed, 180, f"{lost} did not come back, or gluster volume heal {VOLUME} info never reached 0 entries",
             interval=5)
    # The restarted peer's brick now holds what was written while it was down.
    for writer in NODES:
        brick_copy = host(lost).file(f"/srv/gluster/looker/brick/models/while-{lost}-down-{writer}-{token}")
        assert brick_copy.exists and brick_copy.content_string.strip() == token
