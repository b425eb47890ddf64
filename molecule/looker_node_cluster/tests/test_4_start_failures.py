"""Bad input that breaks a start, as an operator makes it (issue 16), on the running cluster of
test_2_changes.py (25.7.2, MaxGCPauseMillis 1500):
- a shared storage directory that is a mount point on every node but not shared (/dev/shm) is
  refused before any host is changed, naming the nodes and the paths;
- an unusable database password makes lkr-node-b crash-loop: the role's wait ends within 2 minutes
  of the start with the reason and Looker's last log lines, instead of polling /alive for an hour;
- the re-run with the input fixed works, even after systemd's start limit, without a manual
  `systemctl reset-failed`, and the run after it changes nothing."""
import re
import sys
import time
from pathlib import Path

import testinfra

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "looker_node_shared"))
import looker_node_testlib as lib  # noqa: E402  pylint: disable=wrong-import-position

A = testinfra.get_host("podman://lkr-node-a")
B = testinfra.get_host("podman://lkr-node-b")
NODES = {"lkr-node-a": A, "lkr-node-b": B}
# What test_2_changes.py left the cluster with.
AS_DEPLOYED = ("-e", "looker_node_version=25.7", "-e", "looker_node_gc_max_pause_ms=1500")


def nodes_play(*extra, check=True):
    return lib.run_playbook("nodes.yml", "-vvv", "--diff", *AS_DEPLOYED, *extra, check=check)


def one_line(output):
    return " ".join(output.split())


def serves(host, name):
    return lib.http(host, f"https://{name}:9999/alive")["status"] == 200


def test_a_local_mount_point_as_shared_storage_is_refused_before_any_change():
    """/dev/shm is a mount point on each node (so the mount check passes) and lies under the value
    given as nfs_share_mount_point (so the preflight's path rule passes): only the marker can tell."""
    pids = {name: lib.main_pid(host) for name, host in NODES.items()}
    rc, out = nodes_play("-e", "nfs_share_mount_point=/dev/shm", "-e", "looker_node_shared_storage_dir=/dev/shm", check=False)
    assert rc != 0
    text = one_line(out)
    assert ("The nodes of the cluster of lkr-node-b do not share looker_node_shared_storage_dir: lkr-node-a wrote a marker "
            "into /dev/shm, and lkr-node-b did not find it (/dev/shm/.lookerops-shared-storage-check-") in text
    assert "not to a directory local to each node such as /dev/shm" in text and "Nothing was changed." in text
    recap = lib.recap(out)
    assert recap["lkr-node-a"]["changed"] == 0 and recap["lkr-node-b"]["changed"] == 0, recap
    for name, host in NODES.items():
        assert lib.main_pid(host) == pids[name]
        assert host.run("ls -A /dev/shm | grep -c lookerops-shared-storage-check").stdout.strip() == "0"


def test_a_crash_looping_node_fails_the_start_wait_within_2_minutes_with_the_reason():
    started = time.monotonic()
    rc, out = nodes_play("--limit", "lkr-node-b", "-e", "looker_node_db_password=not-the-password-16", check=False)
    took = time.monotonic() - started
    assert rc != 0
    text = one_line(out)
    assert "lkr-node-b: Looker did not start:" in text, out[-6000:]
    assert re.search(r"Looker (keeps exiting: systemd restarted it \d+ times? since the start|exited) \(last exit status 1\)", text), text[-4000:]
    after = int(re.search(r"\((\d+) s after the start; looker_node_start_timeout is 3600 s\)", text).group(1))
    assert after <= 120, f"the wait ran {after} s after the start of a crash-looping node"
    assert "Last lines of /home/looker/looker/log/looker.log:" in text
    # Not the start timeout: the whole run (facts, checks, the restart and the wait) is short.
    assert took < 360, f"the run took {took:.0f} s"
    # The other node still serves.
    assert serves(A, "lkr-node-a")


def test_a_fixed_rerun_recovers_from_the_start_limit_without_reset_failed():
    # Restart the broken node until systemd gives up on it ("start request repeated too quickly").
    attempts = 0
    while attempts < 8 and B.check_output("systemctl show --property=Result --value looker") != "start-limit-hit":
        B.run("systemctl restart looker")
        attempts += 1
    unit = set(B.check_output("systemctl show --property=ActiveState,Result looker").splitlines())
    assert unit == {"ActiveState=failed", "Result=start-limit-hit"}, unit
    rc, out = nodes_play("--limit", "lkr-node-b")
    assert rc == 0
    # The role cleared the failed state itself (the task's own result, not a later task's).
    assert re.search(r"TASK \[lookerops\.cluster\.looker_node : Clear the failed state of the unit[^\n]*\n"
                     r"(?:(?!TASK \[).*\n)*?changed: \[lkr-node-b\]", out), out[-6000:]
    assert serves(B, "lkr-node-b") and serves(A, "lkr-node-a")
    versions = lib.http(B, "https://lkr-node-b:19999/api/4.0/versions")
    assert versions["status"] == 200, versions
    assert re.search(r'"looker_release_version"\s*:\s*"25\.7\.2"', versions["body"]), versions


def test_the_recovered_cluster_converges_again_without_change():
    out = nodes_play()[1]
    recap = lib.recap(out)
    assert recap["lkr-node-a"]["changed"] == 0 and recap["lkr-node-b"]["changed"] == 0, out[-3000:]
