"""Changes to a running cluster: the role keeps the release a cluster runs (a moving version that moved
is reported, another release refused); with looker_node_allow_release_change (playbooks/upgrade.yml's
switch) a play that would mix releases is refused and a change of release starts one node first; a
configuration change restarts the nodes one at a time. Every run is -vvv and goes to the scenario's
log, which test_3_secrets.py searches."""
import re
import sys
from datetime import datetime
from pathlib import Path

import testinfra

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "looker_node_shared"))
import looker_node_testlib as lib  # noqa: E402  pylint: disable=wrong-import-position

A = testinfra.get_host("podman://lkr-node-a")
B = testinfra.get_host("podman://lkr-node-b")
DB = testinfra.get_host("podman://lkr-node-db")
NODES = {"lkr-node-a": A, "lkr-node-b": B}
LOG_TIME = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} [+-]\d{4}) ")


def nodes_play(*extra, check=True):
    return lib.run_playbook("nodes.yml", "-vvv", "--diff", *extra, check=check)


def running_release(host, name):
    answer = lib.http(host, f"https://{name}:19999/api/4.0/versions")
    assert answer["status"] == 200, answer
    return re.search(r'"looker_release_version"\s*:\s*"([^"]+)"', answer["body"]).group(1)


def last_log_time(host, pattern):
    """Time of the last line of the node's log/looker.log that matches pattern."""
    lines = [line for line in host.file("/home/looker/looker/log/looker.log").content_string.splitlines() if re.search(pattern, line)]
    assert lines, pattern
    return datetime.strptime(LOG_TIME.match(lines[-1]).group(1), "%Y-%m-%d %H:%M:%S.%f %z")


UPGRADE = ("-e", "looker_node_allow_release_change=true")


def test_a_version_that_moved_changes_nothing_and_says_so():
    """The cluster runs 25.6.12; the download API's latest is 25.7.2 now."""
    pids = {name: lib.main_pid(host) for name, host in NODES.items()}
    out = nodes_play("-e", "looker_node_version=latest")[1]
    recap = lib.recap(out)
    assert recap["lkr-node-a"]["changed"] == 0 and recap["lkr-node-b"]["changed"] == 0, out[-3000:]
    text = " ".join(out.split())
    assert "Looker 25.6.12, the release the cluster runs (looker_node_version latest: a running cluster keeps its release)." in text
    assert "latest names 25.7.2 now: to run it, run playbooks/upgrade.yml." in text
    for name, host in NODES.items():
        assert lib.main_pid(host) == pids[name]
        assert running_release(host, name) == "25.6.12"


def test_another_release_is_refused_before_any_change_naming_upgrade_yml():
    pids = {name: lib.main_pid(host) for name, host in NODES.items()}
    rc, out = nodes_play("-e", "looker_node_version=25.7.2", check=False)
    assert rc != 0
    text = " ".join(out.split())
    assert ("The cluster runs Looker 25.6.12 (lkr-node-a, lkr-node-b), and looker_node_version (looker_version in the "
            "inventory) asks for 25.7.2. A deployment keeps the release a cluster runs; a change of release is an upgrade: "
            "run playbooks/upgrade.yml") in text
    recap = lib.recap(out)
    assert recap["lkr-node-a"]["changed"] == 0 and recap["lkr-node-b"]["changed"] == 0, recap
    for name, host in NODES.items():
        assert lib.main_pid(host) == pids[name]
        assert '"version": "25.6.12"' in host.file("/home/looker/looker/.looker-jars.json").content_string


def test_a_play_that_would_mix_releases_is_refused():
    pids = {name: lib.main_pid(host) for name, host in NODES.items()}
    rc, out = nodes_play("--limit", "lkr-node-b", "-e", "looker_node_version=25.7", *UPGRADE, check=False)
    assert rc != 0
    text = " ".join(out.split())
    assert "This play would leave the cluster of lkr-node-b running more than one release" in text
    assert "would run 25.7.2, but lkr-node-a runs 25.6.12" in text
    assert "Nothing was changed." in text
    assert lib.recap(out)["lkr-node-b"]["changed"] == 0
    # Not even the controller's jar cache: the release was only resolved.
    assert '"version": "25.6.12"' in (lib.EPHEMERAL / "jar-cache" / ".looker-jars.json").read_text()
    for name, host in NODES.items():
        assert lib.main_pid(host) == pids[name]
        assert running_release(host, name) == "25.6.12"
        assert not host.file("/home/looker/looker/.deploying").exists


def test_a_change_of_release_starts_one_node_first():
    nodes_play("-e", "looker_node_version=25.7", *UPGRADE)
    for name, host in NODES.items():
        assert running_release(host, name) == "25.7.2"
        assert '"version": "25.7.2"' in host.file("/home/looker/looker/.looker-jars.json").content_string
    # The first node of the play migrated the application database, alone and once.
    migrations = DB.check_output("mysql -N -B -e \"SELECT node FROM standin_migrations WHERE to_schema = '25.7'\" looker")
    assert migrations.splitlines() == ["lkr-node-a"]
    # lkr-node-b was started only once lkr-node-a was up on the new release.
    a_up = last_log_time(A, r"Looker stand-in 25\.7\.2 is up")
    b_start = last_log_time(B, r"release 25\.7\.2 .* starting on lkr-node-b")
    assert b_start > a_up, (a_up, b_start)
    # No node of the old release ran next to the new one.
    a_old_stop = last_log_time(A, r"stopped cleanly")
    b_old_stop = last_log_time(B, r"stopped cleanly")
    assert max(a_old_stop, b_old_stop) < a_up
    records = lib.http(B, "https://lkr-node-b:9999/standin/records")["body"]
    assert "before-migration" in records


def test_a_configuration_change_restarts_one_node_at_a_time():
    pids = {name: lib.main_pid(host) for name, host in NODES.items()}
    nodes_play("-e", "looker_node_version=25.7", "-e", "looker_node_gc_max_pause_ms=1500")
    for name, host in NODES.items():
        assert lib.main_pid(host) != pids[name]
        jvm = lib.looker_args(lib.cmdline(host, lib.main_pid(host)))[0]
        assert "-XX:MaxGCPauseMillis=1500" in jvm
    a_up = last_log_time(A, r"is up")
    b_stop = last_log_time(B, r"SIGTERM received")
    # lkr-node-b was stopped for its restart only once lkr-node-a was back up: one node served throughout.
    assert b_stop > a_up, (a_up, b_stop)


def test_the_changed_cluster_converges_again_without_change():
    out = nodes_play("-e", "looker_node_version=25.7", "-e", "looker_node_gc_max_pause_ms=1500")[1]
    recap = lib.recap(out)
    assert recap["lkr-node-a"]["changed"] == 0 and recap["lkr-node-b"]["changed"] == 0, out[-3000:]
