"""lookerops-bcp, the replication program of bcp_replication (files/lookerops_bcp.py), run without hosts.

Everything the program does to other hosts goes through `run` (ssh, rsync, gzip, systemctl) and
`http_ok` (the nodes' health URLs); both are replaced by `Hosts`, a stand-in for the two sites that
records what was asked, in order, and makes any command fail on demand. Time is a fake clock, so
stage durations and waits are exact. Every path of the configuration is under tmp_path.

- leader choice: the bully election (lowest id among the healthy nodes, one leader for all nodes),
  the fixed leader, no healthy node, a host that is not the leader, a host of the standby site;
- a cycle: the good one (status, metrics, manifest, staged dump), each of the seven stages failing
  (status, alert, exit code, no later stage, previous good cycle kept, locks released), the
  preflight's checks one by one, the hold before a stage;
- the locks: a second holder refused (same process and another process), a cycle that finds
  either lock taken, a share lock that cannot be opened, the lock held while the stages run;
- the status file, the metrics and the alert (e-mail, webhook, failures to alert);
- the standby's side of restore, switch and restart (what it refuses before touching anything).
"""
import argparse
import datetime
import errno
import gzip
import hashlib
import http.client
import importlib.util
import json
import os
import subprocess
import sys
import urllib.error
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SPEC = importlib.util.spec_from_file_location("lookerops_bcp_program", ROOT / "roles/bcp_replication/files/lookerops_bcp.py")
bcp = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(bcp)
REAL_ALERT = bcp.alert
REAL_WRITE_JSON_ATOMIC = bcp.write_json_atomic

NOW = datetime.datetime(2024, 5, 6, 7, 8, 9, tzinfo=datetime.timezone.utc)
CYCLE_ID = "20240506070809"
SHARE_STATS = ("Number of regular files transferred: 3\nTotal file size: 1,048,576 bytes\n"
               "Total transferred file size: 2,048 bytes\nTotal bytes sent: 4,096\nTotal bytes received: 64\n")
TRANSFER_STATS = ("Number of regular files transferred: 2\nTotal file size: 2,000,000 bytes\n"
                  "Total transferred file size: 5,120 bytes\nTotal bytes sent: 7,777\nTotal bytes received: 99\n")
DUMP = gzip.compress(b"CREATE TABLE `users` (id int);\nINSERT INTO `users` VALUES (1);\n")


def node(name, node_id, address):
    return {"name": name, "id": node_id, "address": address, "tls_provided_by": "",
            "health_url": f"https://{address}:9999/alive", "health_via": None}


def make_cfg(tmp_path, **changes):
    """A bcp.json as the role writes it (vars/main.yml __bcp_replication_config), for lkr-a1 of site a."""
    share = tmp_path / "share"
    share.mkdir(exist_ok=True)
    nodes = {"a": [node("lkr-a1", "1", "10.0.1.11"), node("lkr-a2", "2", "10.0.1.12"), node("lkr-a3", "3", "10.0.1.13")],
             "b": [node("lkr-b1", "1", "10.0.2.11"), node("lkr-b2", "2", "10.0.2.12")]}
    cfg = {
        "host": "lkr-a1", "site": "a", "sites": ["a", "b"], "active_site": "a", "is_db": False,
        "leader_mode": "bully", "fixed_leader": "",
        "nodes": nodes,
        "db": {"a": {"name": "lkr-a-db", "address": "10.0.1.20", "count": 1},
               "b": {"name": "lkr-b-db", "address": "10.0.2.20", "count": 1}},
        "receivers": {"a": nodes["a"][0], "b": nodes["b"][0]},
        "program": "/usr/local/sbin/lookerops-bcp", "database": "looker",
        "share_dir": str(share), "config_paths": [],
        "looker_uid": 9999, "looker_gid": 9999, "looker_service": "looker", "keep_previous_db": True,
        "staging_dir": str(tmp_path / "staging"), "incoming_dir": str(tmp_path / "incoming"),
        "min_free_mb": 1, "cycle_timeout": 600, "restart_timeout": 900,
        "ssh_user": "lookerops-bcp", "ssh_port": 22, "ssh_connect_timeout": 10,
        "ssh_key": str(tmp_path / "id_ed25519"), "known_hosts": str(tmp_path / "known_hosts"),
        "status_file": str(tmp_path / "lib" / "status.json"),
        "standby_status_file": str(tmp_path / "lib" / "standby-status.json"),
        "metrics_dir": str(tmp_path / "metrics"),
        "alert": {"email_to": [], "email_from": "bcp@example.com", "smtp_host": "localhost", "smtp_port": 25},
    }
    cfg.update(changes)
    return cfg


class Clock:
    """The program's `time` and `now_utc`: monotonic time moves only when a command or a sleep takes time."""

    def __init__(self):
        self.now = 1000.0
        self.utc = NOW
        self.slept = []
        self.on_sleep = None

    def monotonic(self):
        return self.now

    def sleep(self, seconds):
        self.slept.append(seconds)
        self.now += seconds
        if self.on_sleep:
            self.on_sleep()


class Hosts:
    """Both sites, as seen through `run` and `http_ok`.

    calls: one label per command or health URL, in order ("alive lkr-a2", "ping lkr-a2", "db-check",
    "dump", "gzip -t", "rsync share", "rsync transfer", "rsync manifest", "restore", ...);
    failing: label -> stderr of a command that exits 1; down: node name -> why its Looker does not
    answer; believes: node name -> the active site its host reports; took: label -> seconds;
    during: label -> called while that command runs; printed: label -> its output instead of the usual."""

    def __init__(self, cfg, clock):
        self.cfg = cfg
        self.clock = clock
        self.calls = []
        self.argv = {}
        self.stdin = {}
        self.failing = {}
        self.answers = {"db-check": {"ok": True, "error": None}, "standby-preflight": {"problems": []}}
        self.down = {}
        self.believes = {}
        self.took = {}
        self.during = {}
        self.printed = {}
        self.dump = DUMP

    def name_of(self, value):
        for site_nodes in self.cfg["nodes"].values():
            for n in site_nodes:
                if value in (n["address"], n["health_url"]):
                    return n["name"]
        raise AssertionError(f"no node at {value}")

    def http_ok(self, url, timeout=5):
        name = self.name_of(url)
        self.calls.append(f"alive {name}")
        if name in self.down:
            return False, self.down[name]
        return True, "HTTP 200"

    def run(self, argv, what, timeout=None, stdin=None, stdout=None, check=True, input_text=None):
        label, out, broken = self.command(argv, stdout)
        out = self.printed.get(label, out)
        self.calls.append(label)
        self.argv[label] = argv
        self.stdin[label] = stdin
        self.clock.now += self.took.get(label, 0)
        if label in self.during:
            self.during[label]()
        if label in self.failing or broken:
            if check:
                raise bcp.CycleError(f"{what}: exit status 1: {self.failing.get(label, broken)}")
            return subprocess.CompletedProcess(argv, 1, stdout=out, stderr=b"")
        return subprocess.CompletedProcess(argv, 0, stdout=out, stderr=b"")

    def command(self, argv, stdout):
        if argv[0] == "ssh":
            at = argv.index("sudo")
            address, action = argv[at - 1], argv[at + 4]
            if action == "alive":  # the node asks its own health URL (see http_ok)
                name = argv[argv.index("--node") + 1]
                ok = name not in self.down
                return f"alive {name}", json.dumps({"ok": ok, "reason": "HTTP 200" if ok else self.down[name]}).encode(), None
            if action == "ping":
                name = self.name_of(address)
                active = self.believes.get(name, self.cfg["active_site"])
                return f"ping {name}", json.dumps({"host": name, "site": "a", "active_site": active}).encode(), None
            if action == "dump":
                stdout.write(self.dump)
                return "dump", None, None
            return action, json.dumps(self.answers[action]).encode() if action in self.answers else b"", None
        if argv[0] == "gzip":
            try:
                gzip.decompress(Path(argv[-1]).read_bytes())
            except (OSError, EOFError):
                return "gzip -t", b"", f"gzip: {argv[-1]}: unexpected end of file"
            return "gzip -t", b"", None
        if argv[0] == "rsync":
            if "-e" in argv:
                if argv[-2].endswith(bcp.MANIFEST_NAME):
                    return "rsync manifest", TRANSFER_STATS.encode(), None
                return "rsync transfer", TRANSFER_STATS.encode(), None
            if "-aR" in argv:
                return "rsync config", b"", None
            if "--delay-updates" in argv:
                return "rsync switch", b"", None
            return "rsync share", SHARE_STATS.encode(), None
        if argv[0] == "systemctl":
            return f"systemctl {argv[1]}", b"", None
        raise AssertionError(f"unexpected command {argv}")


@pytest.fixture
def clock(monkeypatch):
    fake = Clock()
    monkeypatch.setattr(bcp, "time", fake)
    monkeypatch.setattr(bcp, "now_utc", lambda: fake.utc)
    return fake


@pytest.fixture
def cfg(tmp_path, monkeypatch):
    monkeypatch.setattr(bcp, "RUN_DIR", str(tmp_path / "run"))
    monkeypatch.setattr(bcp, "WEBHOOK_FILE", str(tmp_path / "webhook-url"))
    return make_cfg(tmp_path)


@pytest.fixture
def hosts(cfg, clock, monkeypatch):
    fake = Hosts(cfg, clock)
    monkeypatch.setattr(bcp, "run", fake.run)
    monkeypatch.setattr(bcp, "http_ok", fake.http_ok)
    return fake


@pytest.fixture
def alerts(monkeypatch):
    sent = []
    monkeypatch.setattr(bcp, "alert", lambda cfg, subject, body: sent.append((subject, body)))
    return sent


@pytest.fixture
def taken_locks(monkeypatch):
    """Every FileLock the program creates, kept alive: a lock it does not release stays held (not closed by the garbage collector)."""
    made = []

    class Recorded(bcp.FileLock):
        def __init__(self, path):
            super().__init__(path)
            made.append(self)
    monkeypatch.setattr(bcp, "FileLock", Recorded)
    return made


def cycle(cfg, hold_before=None):
    return bcp.cmd_cycle(cfg, argparse.Namespace(hold_before=hold_before))


def status(cfg):
    return json.loads(Path(cfg["status_file"]).read_text(encoding="utf-8"))


def metrics(cfg):
    return Path(cfg["metrics_dir"], "lookerops_bcp.prom").read_text(encoding="utf-8")


def share_lock(cfg):
    return bcp.FileLock(os.path.join(cfg["share_dir"], bcp.SHARE_LOCK_NAME))


def local_lock():
    return bcp.FileLock(os.path.join(bcp.RUN_DIR, "cycle.lock"))


def free(lock):
    """True when nobody holds the lock (taken and given back at once)."""
    if not lock.acquire():
        return False
    lock.release()
    return True


# What lkr-a1 runs in a good cycle, stage by stage (the election first: it is the lowest id and healthy).
ELECTION = ["alive lkr-a1"]
CALLS = {
    "preflight": ["alive lkr-a1", "alive lkr-a2", "alive lkr-a3", "db-check", "standby-preflight"],
    "dump": ["dump", "gzip -t"],
    "collect": ["rsync share"],
    "transfer": ["rsync transfer", "rsync manifest"],
    "restore": ["restore"],
    "switch": ["switch"],
    "restart": ["restart-site"],
}
GOOD_CYCLE = ELECTION + [call for stage in bcp.STAGES for call in CALLS[stage]]


# --- leader choice --------------------------------------------------------------------------------

@pytest.mark.parametrize("down, leader, asked", [
    ((), "lkr-a1", ["alive lkr-a1"]),
    (("lkr-a2",), "lkr-a1", ["alive lkr-a1"]),
    (("lkr-a1",), "lkr-a2", ["alive lkr-a1", "alive lkr-a2", "ping lkr-a2"]),
    (("lkr-a1", "lkr-a3"), "lkr-a2", ["alive lkr-a1", "alive lkr-a2", "ping lkr-a2"]),
    (("lkr-a1", "lkr-a2"), "lkr-a3", ["alive lkr-a1", "alive lkr-a2", "alive lkr-a3", "ping lkr-a3"]),
])
def test_the_bully_leader_is_the_healthy_node_with_the_lowest_id(cfg, hosts, down, leader, asked):
    """The lowest id among the nodes whose Looker answers leads; the nodes after it are not asked."""
    hosts.down = {name: "connection refused" for name in down}
    assert bcp.find_leader(cfg)[0] == leader
    assert hosts.calls == asked


def test_the_election_does_not_depend_on_the_order_of_the_nodes_in_the_configuration(cfg, hosts):
    """Nodes are taken by id, not by their place in bcp.json."""
    hosts.down = {"lkr-a1": "connection refused"}
    cfg["nodes"]["a"] = list(reversed(cfg["nodes"]["a"]))
    leader, notes = bcp.find_leader(cfg)
    assert leader == "lkr-a2"
    assert notes == ["lkr-a1 (id 1): not healthy: Looker at https://10.0.1.11:9999/alive: connection refused",
                     "lkr-a2 (id 2): healthy"]


def test_node_ids_are_compared_as_strings(cfg, hosts):
    """As documented for bcp_replication_node_id: id "10" sorts before id "9"."""
    cfg["nodes"]["a"][0]["id"], cfg["nodes"]["a"][1]["id"] = "9", "10"
    assert bcp.find_leader(cfg)[0] == "lkr-a2"


def test_every_node_of_the_active_site_elects_the_same_single_leader(cfg, hosts, alerts, monkeypatch):
    """With lkr-a1 down, each node of site a evaluates the list and exactly one of them, lkr-a2, runs the cycle."""
    hosts.down = {"lkr-a1": "connection refused"}
    ran = []
    monkeypatch.setattr(bcp.Cycle, "run", lambda self: ran.append(self.cfg["host"]))
    results = {}
    for name in ("lkr-a1", "lkr-a2", "lkr-a3"):
        this = dict(cfg, host=name, status_file=str(Path(cfg["status_file"]).with_name(f"{name}.json")))
        assert cycle(this) == 0
        results[name] = status(this)["result"]
        assert bcp.find_leader(this)[0] == "lkr-a2"
    assert ran == ["lkr-a2"]
    assert results == {"lkr-a1": "follower", "lkr-a2": "ok", "lkr-a3": "follower"}


def test_a_node_that_believes_another_site_is_active_is_not_healthy(cfg, hosts):
    """A node whose host records site b as active (half way through a failover) is passed over."""
    cfg["host"] = "lkr-a3"
    hosts.believes = {"lkr-a1": "b"}
    leader, notes = bcp.find_leader(cfg)
    assert leader == "lkr-a2"
    assert notes[0] == "lkr-a1 (id 1): not healthy: it believes site b is active"
    assert hosts.calls == ["alive lkr-a1", "ping lkr-a1", "alive lkr-a2", "ping lkr-a2"]


def test_a_node_whose_host_does_not_answer_over_ssh_is_not_healthy(cfg, hosts):
    """Looker answers but its host's SSH does not: not healthy, with the SSH error as the reason."""
    cfg["host"] = "lkr-a3"
    hosts.failing["ping lkr-a1"] = "ssh: connect to host 10.0.1.11 port 22: No route to host"
    ok, reason = bcp.node_healthy(cfg, cfg["nodes"]["a"][0])
    assert ok is False
    assert reason == "ping lkr-a1: exit status 1: ssh: connect to host 10.0.1.11 port 22: No route to host"


def test_this_host_is_not_asked_over_ssh(cfg, hosts):
    """The node running the election is healthy when its own Looker answers; it does not ssh to itself."""
    assert bcp.node_healthy(cfg, cfg["nodes"]["a"][0]) == (True, "this host")
    assert hosts.calls == ["alive lkr-a1"]


def test_no_leader_when_no_node_is_healthy(cfg, hosts):
    """Every node down: no leader, and the notes give each node's reason."""
    hosts.down = {n["name"]: "timed out" for n in cfg["nodes"]["a"]}
    leader, notes = bcp.find_leader(cfg)
    assert leader is None
    assert notes == [f"lkr-a{i} (id {i}): not healthy: Looker at https://10.0.1.1{i}:9999/alive: timed out" for i in (1, 2, 3)]


def test_a_fixed_leader_is_taken_without_asking_any_node(cfg, hosts):
    """leader_mode fixed: bcp_replication_fixed_leader, whatever the nodes' health."""
    cfg.update(leader_mode="fixed", fixed_leader="lkr-a3")
    hosts.down = {"lkr-a3": "connection refused"}
    assert bcp.find_leader(cfg) == ("lkr-a3", ["fixed leader lkr-a3"])
    assert hosts.calls == []


def test_a_follower_does_nothing_but_record_it(cfg, hosts, alerts):
    """lkr-a2 finds lkr-a1 leading: exit 0, status "follower", no lock taken, no stage run, no alert."""
    cfg["host"] = "lkr-a2"
    assert cycle(cfg) == 0
    assert status(cfg)["result"] == "follower"
    assert hosts.calls == ["alive lkr-a1", "ping lkr-a1"]
    assert not os.path.exists(os.path.join(cfg["share_dir"], bcp.SHARE_LOCK_NAME))
    assert not os.path.exists(bcp.RUN_DIR)
    assert alerts == []


def test_without_a_healthy_node_no_cycle_runs(cfg, hosts, alerts):
    """No leader: this node (down itself) records "follower" and runs nothing."""
    hosts.down = {n["name"]: "timed out" for n in cfg["nodes"]["a"]}
    assert cycle(cfg) == 0
    assert status(cfg)["result"] == "follower"
    assert hosts.calls == ["alive lkr-a1", "alive lkr-a2", "alive lkr-a3"]


def test_a_host_of_the_standby_site_runs_no_election(cfg, hosts, alerts):
    """On site b (standby) the timer's cycle records "standby" and asks nobody anything."""
    cfg.update(host="lkr-b1", site="b")
    assert cycle(cfg) == 0
    assert status(cfg)["result"] == "standby"
    assert hosts.calls == []


def test_the_leader_command_prints_the_choice_and_fails_without_a_leader(tmp_path, cfg, hosts, monkeypatch, capsys):
    """`lookerops-bcp leader`: the notes and the leader, exit 0; "leader: none" and exit 1 when no node is healthy."""
    monkeypatch.setattr(bcp.signal, "signal", lambda *_args: None)
    config = tmp_path / "bcp.json"
    config.write_text(json.dumps(dict(cfg, host="lkr-a3")), encoding="utf-8")
    hosts.down = {"lkr-a1": "connection refused"}
    assert bcp.main(["--config", str(config), "leader"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "lkr-a1 (id 1): not healthy: Looker at https://10.0.1.11:9999/alive: connection refused",
        "lkr-a2 (id 2): healthy", "leader: lkr-a2"]
    hosts.down = {n["name"]: "timed out" for n in cfg["nodes"]["a"]}
    assert bcp.main(["--config", str(config), "leader"]) == 1
    assert capsys.readouterr().out.splitlines()[-1] == "leader: none"


# --- a good cycle ---------------------------------------------------------------------------------

def test_a_good_cycle_runs_every_stage_in_order_and_records_it(cfg, hosts, alerts):
    """Exit 0; every stage's commands in order; status "ok" with the cycle as the last good one."""
    hosts.took = {"dump": 3.0, "rsync transfer": 2.5, "restart-site": 40.0}
    assert cycle(cfg) == 0
    assert hosts.calls == GOOD_CYCLE
    assert alerts == []
    st = status(cfg)
    assert st["result"] == "ok"
    assert st["at"] == st["last_good_cycle_end"] == "2024-05-06T07:08:09Z"
    last = st["last_cycle"]
    assert st["last_good_cycle"] == last
    assert (last["cycle"], last["direction"], last["leader"], last["error"]) == (CYCLE_ID, "a-to-b", "lkr-a1", None)
    assert last["stages"] == {"preflight": 0, "dump": 3.0, "collect": 0, "transfer": 2.5, "restore": 0, "switch": 0,
                              "restart": 40.0}
    assert last["duration_seconds"] == 45.5
    assert last["dump_sha256"] == hashlib.sha256(DUMP).hexdigest()
    assert last["dump_bytes"] == len(DUMP)
    assert (last["share_changed_bytes"], last["share_files_changed"], last["share_total_bytes"]) == (2048, 3, 1048576)
    assert (last["bytes_sent"], last["bytes_staged_changed"]) == (7777, 5120)
    assert "last_error" not in st


def test_a_good_cycle_stages_the_dump_and_the_manifest(cfg, hosts, alerts):
    """The dump lands in staging with its checksum; the manifest names the cycle, the checksum and the direction."""
    assert cycle(cfg) == 0
    staging = Path(cfg["staging_dir"], "a-to-b")
    assert (staging / "db" / "looker.sql.gz").read_bytes() == DUMP
    assert not (staging / "db" / "looker.sql.gz.partial").exists()
    assert (staging / "db" / "looker.sql.gz.sha256").read_text() == f"{hashlib.sha256(DUMP).hexdigest()}  looker.sql.gz\n"
    manifest = json.loads((staging / "manifest.json").read_text())
    assert (manifest["cycle"], manifest["source_site"], manifest["target_site"]) == (CYCLE_ID, "a", "b")
    assert manifest["dump_sha256"] == hashlib.sha256(DUMP).hexdigest()
    assert oct(staging.stat().st_mode & 0o777) == "0o700"


def test_a_good_cycle_writes_the_metrics(cfg, hosts, alerts):
    """lookerops_bcp.prom: success 1, the end of the good cycle, the bytes sent and each stage's seconds."""
    hosts.took = {"rsync share": 1.25}
    assert cycle(cfg) == 0
    lines = metrics(cfg).splitlines()
    assert f"lookerops_bcp_last_success_timestamp_seconds {NOW.timestamp():.0f}" in lines
    assert "lookerops_bcp_last_cycle_success 1" in lines
    assert "lookerops_bcp_last_cycle_duration_seconds 1.25" in lines
    assert "lookerops_bcp_last_cycle_bytes_sent 7777" in lines
    assert 'lookerops_bcp_stage_duration_seconds{stage="collect"} 1.25' in lines
    assert len([line for line in lines if line.startswith("lookerops_bcp_stage_duration_seconds{")]) == 7


def test_the_standby_actions_name_the_direction_and_this_cycle(cfg, hosts, alerts):
    """restore and switch go to the standby's receiver with --direction a-to-b --cycle <this cycle>."""
    assert cycle(cfg) == 0
    for action in ("restore", "switch"):
        argv = hosts.argv[action]
        assert argv[argv.index("sudo") - 1:] == ["10.0.2.11", "sudo", "-n", "/usr/local/sbin/lookerops-bcp", "remote", action,
                                                 "--direction", "a-to-b", "--cycle", CYCLE_ID]
    argv = hosts.argv["restart-site"]
    assert argv[argv.index("sudo") - 1:] == ["10.0.2.11", "sudo", "-n", "/usr/local/sbin/lookerops-bcp", "remote", "restart-site"]
    assert hosts.argv["dump"][hosts.argv["dump"].index("sudo") - 1] == "10.0.1.20"


def test_the_manifest_is_transferred_last_and_not_with_the_data(cfg, hosts, alerts):
    """The standby restores only a transfer whose manifest names the cycle: the data rsync leaves it out, a second one sends it."""
    assert cycle(cfg) == 0
    data, manifest = hosts.argv["rsync transfer"], hosts.argv["rsync manifest"]
    dest = f"10.0.2.11:{cfg['incoming_dir']}/a-to-b/"
    assert "--exclude=/manifest.json" in data
    assert data[-2:] == [os.path.join(cfg["staging_dir"], "a-to-b") + "/", dest]
    assert manifest[-2:] == [os.path.join(cfg["staging_dir"], "a-to-b", "manifest.json"), dest]
    assert hosts.calls.index("rsync manifest") == hosts.calls.index("rsync transfer") + 1


def test_a_degraded_active_site_is_still_replicated(cfg, hosts, alerts):
    """One node of site a down: the cycle runs and the status names the node that did not serve."""
    hosts.down = {"lkr-a3": "connection refused"}
    assert cycle(cfg) == 0
    assert status(cfg)["last_cycle"]["degraded_nodes"] == ["lkr-a3 (https://10.0.1.13:9999/alive: connection refused)"]


def test_configuration_paths_are_collected(tmp_path, cfg, hosts, alerts):
    """bcp_replication_config_paths are copied (rsync -R) into files/config of the staging area."""
    extra = tmp_path / "etc-looker"
    extra.mkdir()
    cfg["config_paths"] = [str(extra)]
    assert cycle(cfg) == 0
    assert hosts.calls[hosts.calls.index("rsync share") + 1] == "rsync config"
    assert hosts.argv["rsync config"][-2:] == [str(extra), os.path.join(cfg["staging_dir"], "a-to-b", "files", "config") + "/"]


# --- each stage failing ---------------------------------------------------------------------------

STAGE_FAILURES = [
    # stage number, stage, the command that fails, its error, the last command run
    (1, "preflight", "db-check", "ERROR 2002 (HY000): Can't connect to local server", "standby-preflight"),
    (2, "dump", "dump", "mysqldump: Got error: 1044: Access denied", "dump"),
    (3, "collect", "rsync share", "rsync: [sender] opendir failed: Permission denied (13)", "rsync share"),
    (4, "transfer", "rsync transfer", "ssh: connect to host 10.0.2.11 port 22: Connection timed out", "rsync transfer"),
    (5, "restore", "restore", "the transfer is from cycle 20240506065809: incomplete transfer", "restore"),
    (6, "switch", "switch", "rsync: write failed: No space left on device (28)", "switch"),
    (7, "restart", "restart-site", "lkr-b1 did not answer https://10.0.2.11:9999/alive within 900 s", "restart-site"),
]


@pytest.mark.parametrize("number, stage, command, error, last", STAGE_FAILURES, ids=[f[1] for f in STAGE_FAILURES])
def test_a_failed_stage_stops_the_cycle_and_raises_the_alert(cfg, hosts, alerts, number, stage, command, error, last):
    """Exit 1; nothing after the failed stage runs; the status, the metrics and the alert name the stage and the reason."""
    hosts.failing[command] = error
    hosts.took[command] = 2.0
    assert cycle(cfg) == 1
    assert hosts.calls == GOOD_CYCLE[:GOOD_CYCLE.index(last) + 1]
    st = status(cfg)
    assert st["result"] == "failed"
    assert st["last_error"].startswith(f"stage {number}/7 {stage} failed after 2.00 s: ")
    assert st["last_error"].endswith(f": exit status 1: {error}")
    assert st["last_cycle"]["error"] == st["last_error"]
    assert set(st["last_cycle"]["stages"]) == set(bcp.STAGES[:number])
    assert st["last_cycle"]["stages"][stage] == 2.0
    assert "last_good_cycle" not in st and "last_good_cycle_end" not in st
    lines = metrics(cfg).splitlines()
    assert "lookerops_bcp_last_cycle_success 0" in lines
    assert "lookerops_bcp_last_success_timestamp_seconds 0" in lines
    assert len(alerts) == 1
    subject, body = alerts[0]
    assert subject == "[lookerops-bcp] replication a-to-b failed on lkr-a1"
    assert body.splitlines()[:2] == [f"Cycle {CYCLE_ID} (a-to-b) failed: {st['last_error']}",
                                     "The standby site b keeps its previous good state."]
    assert json.loads(body.splitlines()[2].removeprefix("Stages: ")) == st["last_cycle"]["stages"]


@pytest.mark.parametrize("number, stage, command, error, last", STAGE_FAILURES, ids=[f[1] for f in STAGE_FAILURES])
def test_both_locks_are_released_after_a_failed_stage(cfg, hosts, alerts, taken_locks, number, stage, command, error, last):
    """The next cycle (on this node or another) is not locked out by a failed one."""
    hosts.failing[command] = error
    assert cycle(cfg) == 1
    assert [(lock.path, lock.handle) for lock in taken_locks] == [(os.path.join(bcp.RUN_DIR, "cycle.lock"), None),
                                                                  (os.path.join(cfg["share_dir"], bcp.SHARE_LOCK_NAME), None)]
    assert free(share_lock(cfg))
    assert free(local_lock())


def test_a_failed_cycle_keeps_the_last_good_one(cfg, hosts, alerts, clock):
    """A failure after a good cycle: result "failed", but the last good cycle and its metric stay those of the good one."""
    assert cycle(cfg) == 0
    good = status(cfg)["last_good_cycle"]
    clock.utc = NOW + datetime.timedelta(minutes=15)
    hosts.failing["restore"] = "loading looker_bcp_new_20240506072309 failed"
    assert cycle(cfg) == 1
    st = status(cfg)
    assert st["result"] == "failed"
    assert st["at"] == "2024-05-06T07:23:09Z"
    assert st["last_cycle"]["cycle"] == "20240506072309"
    assert st["last_good_cycle"] == good and good["cycle"] == CYCLE_ID
    assert st["last_good_cycle_end"] == "2024-05-06T07:08:09Z"
    assert f"lookerops_bcp_last_success_timestamp_seconds {NOW.timestamp():.0f}" in metrics(cfg).splitlines()


def test_the_status_says_running_while_a_cycle_runs(cfg, hosts, alerts):
    """Between the start and the end of a cycle the status file says "running"."""
    seen = []
    hosts.during["restore"] = lambda: seen.append(status(cfg)["result"])
    assert cycle(cfg) == 0
    assert seen == ["running"]
    assert status(cfg)["result"] == "ok"


def test_a_stage_failure_message_names_the_stage_and_its_duration(cfg, hosts, clock):
    """Cycle.stage: "stage 4/7 transfer failed after 10.02 s: <reason>", and the time is recorded for the failed stage."""
    hosts.failing["rsync transfer"] = "ssh: connect to host 10.0.2.11 port 22: Connection timed out"
    hosts.took["rsync transfer"] = 10.02
    run = bcp.Cycle(cfg)
    with pytest.raises(bcp.CycleError) as failure:
        run.stage(4, "transfer", run.transfer)
    assert str(failure.value) == ("stage 4/7 transfer failed after 10.02 s: transfer to lkr-b1: exit status 1: "
                                  "ssh: connect to host 10.0.2.11 port 22: Connection timed out")
    assert run.timings == {"transfer": 10.02}
    assert "rsync manifest" not in hosts.calls


def test_a_broken_dump_is_not_staged(cfg, hosts, alerts):
    """A truncated dump fails `gzip -t`: the staged dump of the previous cycle and its checksum stay as they were."""
    db = Path(cfg["staging_dir"], "a-to-b", "db")
    db.mkdir(parents=True)
    (db / "looker.sql.gz").write_bytes(b"previous dump")
    (db / "looker.sql.gz.sha256").write_text("previous sum\n")
    hosts.dump = DUMP[:-8]
    assert cycle(cfg) == 1
    assert status(cfg)["last_error"].startswith("stage 2/7 dump failed after 0.00 s: the dump is not a complete gzip file: exit status 1")
    assert (db / "looker.sql.gz").read_bytes() == b"previous dump"
    assert (db / "looker.sql.gz.sha256").read_text() == "previous sum\n"
    assert hosts.calls[-1] == "gzip -t"


def test_a_missing_configuration_path_fails_the_collect_stage(tmp_path, cfg, hosts, alerts):
    """A bcp_replication_config_paths entry that does not exist stops the cycle before the transfer."""
    cfg["config_paths"] = [str(tmp_path / "no-such-dir")]
    assert cycle(cfg) == 1
    assert status(cfg)["last_error"] == (f"stage 3/7 collect failed after 0.00 s: configuration path {tmp_path / 'no-such-dir'} "
                                         "(bcp_replication_config_paths) does not exist on lkr-a1")
    assert hosts.calls[-1] == "rsync share"
    assert not Path(cfg["staging_dir"], "a-to-b", "manifest.json").exists()


def test_a_failed_data_transfer_does_not_send_the_manifest(cfg, hosts, alerts):
    """Without the new manifest on the standby, nothing there can take the half-sent data for a complete transfer."""
    hosts.failing["rsync transfer"] = "rsync error: timeout in data send/receive (code 30)"
    assert cycle(cfg) == 1
    assert "rsync manifest" not in hosts.calls


def test_a_stage_failing_with_an_os_error_is_a_failed_cycle(cfg, hosts, alerts, monkeypatch):
    """The staging disk full when the manifest is written: a failed cycle like any other (status, alert, exit 1)."""
    def write_json_atomic(path, data, mode=0o644):
        if path.endswith(bcp.MANIFEST_NAME):
            raise OSError(errno.ENOSPC, "No space left on device", path)
        REAL_WRITE_JSON_ATOMIC(path, data, mode)
    monkeypatch.setattr(bcp, "write_json_atomic", write_json_atomic)
    assert cycle(cfg) == 1
    assert status(cfg)["result"] == "failed"
    assert "stage 3/7 collect failed" in status(cfg)["last_error"]
    assert len(alerts) == 1


# --- the preflight's checks -----------------------------------------------------------------------

def preflight_error(cfg):
    with pytest.raises(bcp.CycleError) as failure:
        bcp.Cycle(cfg).preflight()
    return str(failure.value).split("; ")


def test_the_preflight_passes_on_healthy_sites(cfg, hosts):
    """Both sites answer, the share is readable, the staging area writable: no problem, staging created 0700."""
    bcp.Cycle(cfg).preflight()
    assert hosts.calls == CALLS["preflight"]
    assert Path(cfg["staging_dir"], "a-to-b", "db").is_dir() and Path(cfg["staging_dir"], "a-to-b", "files").is_dir()


def test_the_preflight_reports_every_problem_at_once(cfg, hosts):
    """Database, standby, share and staging space: each problem named, all in one error."""
    hosts.answers["db-check"] = {"ok": False, "error": "database looker does not exist"}
    hosts.answers["standby-preflight"] = {"problems": ["/var/lib/lookerops-bcp/incoming/a-to-b is missing on lkr-b1"]}
    cfg["share_dir"] = str(Path(cfg["share_dir"]) / "not-mounted")
    cfg["min_free_mb"] = 1 << 40
    problems = preflight_error(cfg)
    assert problems[:3] == ["active database on lkr-a-db: database looker does not exist",
                            "standby site b: /var/lib/lookerops-bcp/incoming/a-to-b is missing on lkr-b1",
                            f"shared storage {cfg['share_dir']} is not a readable directory on lkr-a1"]
    assert problems[3].startswith(f"staging {cfg['staging_dir']}/a-to-b has ")
    assert problems[3].endswith(f"MB free, below bcp_replication_min_free_mb ({1 << 40} MB)")
    assert len(problems) == 4


def test_the_preflight_fails_when_no_node_of_the_active_site_serves(cfg, hosts):
    """A degraded site is replicated, a site none of whose nodes serves is not (its state may be broken)."""
    hosts.down = {n["name"]: "connection refused" for n in cfg["nodes"]["a"]}
    assert preflight_error(cfg) == ["no node of the active site a serves: " + ", ".join(
        f"lkr-a{i} (https://10.0.1.1{i}:9999/alive: connection refused)" for i in (1, 2, 3))]


def test_the_preflight_fails_when_the_standby_cannot_be_reached(cfg, hosts):
    """The receiver's SSH failing is a problem naming the standby site."""
    hosts.failing["standby-preflight"] = "ssh: connect to host 10.0.2.11 port 22: Connection refused"
    assert preflight_error(cfg) == ["standby site b unreachable: standby site b (receiver lkr-b1): exit status 1: "
                                    "ssh: connect to host 10.0.2.11 port 22: Connection refused"]


def test_the_preflight_fails_when_the_active_database_answer_is_unreadable(cfg, hosts):
    """An answer that is not JSON (a shell banner, a Python traceback) is a problem, not a crash."""
    hosts.printed["db-check"] = b"Traceback (most recent call last):"
    assert preflight_error(cfg) == ["active database on lkr-a-db on 10.0.1.20: unreadable answer b'Traceback (most recent call last):'"]


def test_the_preflight_fails_when_the_staging_area_cannot_be_written(tmp_path, cfg, hosts):
    """A staging path that cannot be a directory (here a file) is reported as not writable."""
    blocker = tmp_path / "blocker"
    blocker.write_text("a file")
    cfg["staging_dir"] = str(blocker)
    problems = preflight_error(cfg)
    assert len(problems) == 1
    assert problems[0].startswith(f"staging {blocker}/a-to-b is not writable: ")


# --- holding before a stage (drills) -------------------------------------------------------------

def test_a_cycle_holds_before_the_stage_named_until_the_hold_file_goes(cfg, hosts):
    """--hold-before transfer: hold-transfer (with the pid) is written and the stage starts only once it is removed."""
    hold = Path(bcp.RUN_DIR, "hold-transfer")
    seen = []

    def operator():
        seen.append(hold.read_text())
        if len(hosts.clock.slept) == 3:
            hold.unlink()
    hosts.clock.on_sleep = operator
    ran = []
    bcp.Cycle(cfg, hold_before="transfer").stage(4, "transfer", lambda: ran.append(hold.exists()))
    assert seen == [f"{os.getpid()}\n"] * 3
    assert hosts.clock.slept == [0.2, 0.2, 0.2]
    assert ran == [False]


def test_other_stages_do_not_hold(cfg, hosts):
    """Only the stage named waits."""
    ran = []
    bcp.Cycle(cfg, hold_before="transfer").stage(2, "dump", lambda: ran.append("dump"))
    assert ran == ["dump"]
    assert hosts.clock.slept == []
    assert not Path(bcp.RUN_DIR, "hold-dump").exists()


# --- the locks ------------------------------------------------------------------------------------

def test_a_second_holder_of_the_lock_is_refused_until_the_first_releases(tmp_path):
    """flock: a second FileLock on the same file is refused while the first holds it, and gets it after."""
    path = str(tmp_path / "cycle.lock")
    first, second = bcp.FileLock(path), bcp.FileLock(path)
    assert first.acquire() is True
    assert second.acquire() is False
    assert second.handle is None
    first.release()
    assert first.handle is None
    assert second.acquire() is True
    second.release()


def test_a_lock_held_by_another_process_is_refused(tmp_path):
    """Another process (another cycle) holding the flock keeps this one out until it exits."""
    path = tmp_path / ".lookerops-bcp.lock"
    holder = subprocess.Popen(  # pylint: disable=consider-using-with
        [sys.executable, "-c", "import fcntl, sys\nf = open(sys.argv[1], 'a')\nfcntl.flock(f, fcntl.LOCK_EX)\n"
         "print('held', flush=True)\nsys.stdin.read()\n", str(path)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "held\n"
        assert bcp.FileLock(str(path)).acquire() is False
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
        holder.stdout.close()
    assert free(bcp.FileLock(str(path)))


def test_a_cycle_running_on_another_node_makes_this_one_skip(cfg, hosts, alerts):
    """The share lock held elsewhere: exit 0, status "skipped", no stage, no alert, the other holder keeps it."""
    other = share_lock(cfg)
    assert other.acquire()
    try:
        assert cycle(cfg) == 0
        assert status(cfg)["result"] == "skipped"
        assert hosts.calls == ELECTION
        assert alerts == []
        assert not free(share_lock(cfg))
    finally:
        other.release()


def test_a_cycle_still_running_on_this_node_makes_the_next_one_skip(cfg, hosts, alerts):
    """The local lock held: exit 0, nothing run, the status file untouched."""
    os.makedirs(bcp.RUN_DIR)
    other = local_lock()
    assert other.acquire()
    try:
        assert cycle(cfg) == 0
        assert hosts.calls == ELECTION
        assert not os.path.exists(cfg["status_file"])
        assert not os.path.exists(os.path.join(cfg["share_dir"], bcp.SHARE_LOCK_NAME))
    finally:
        other.release()


def test_a_share_lock_that_cannot_be_taken_fails_the_cycle(cfg, hosts, alerts):
    """The share not mounted (the lock file cannot be opened): exit 1, status "failed", an alert, no stage."""
    os.rmdir(cfg["share_dir"])
    assert cycle(cfg) == 1
    st = status(cfg)
    assert st["result"] == "failed"
    assert st["last_error"].startswith(f"cannot take the cycle lock {cfg['share_dir']}/.lookerops-bcp.lock on the shared storage: ")
    assert "No such file or directory" in st["last_error"]
    assert alerts == [("[lookerops-bcp] replication a failed on lkr-a1", st["last_error"])]
    assert hosts.calls == ELECTION
    assert "lookerops_bcp_last_cycle_success 0" in metrics(cfg).splitlines()


def test_the_share_lock_is_held_while_the_stages_run_and_released_after(cfg, hosts, alerts, taken_locks):
    """During the cycle no other node can take the share lock; after a good cycle both locks are free."""
    taken = []
    hosts.during["restore"] = lambda: taken.append((free(share_lock(cfg)), free(local_lock())))
    assert cycle(cfg) == 0
    assert taken == [(False, False)]
    assert [lock.handle for lock in taken_locks[:2]] == [None, None]
    assert free(share_lock(cfg))
    assert free(local_lock())


# --- status file, metrics and alert ---------------------------------------------------------------

def test_a_status_without_a_result_of_a_cycle_writes_no_metrics(cfg, clock):
    """"running", "skipped", "follower", "standby" update the status file only."""
    for result in ("running", "skipped", "follower", "standby"):
        bcp.write_status(cfg, result)
        assert status(cfg) == {"host": "lkr-a1", "result": result, "at": "2024-05-06T07:08:09Z"}
    assert not os.path.exists(cfg["metrics_dir"])


def test_an_unreadable_status_file_is_started_over(cfg, clock):
    """A corrupt status file (a crash mid-write on another version) does not stop the status from being written."""
    Path(cfg["status_file"]).parent.mkdir(parents=True)
    Path(cfg["status_file"]).write_text("{not json")
    bcp.write_status(cfg, "follower")
    assert status(cfg) == {"host": "lkr-a1", "result": "follower", "at": "2024-05-06T07:08:09Z"}


def test_an_alert_is_e_mailed_through_the_relay(cfg, monkeypatch):
    """email_to set: one message with the subject and body, From/To as configured, through smtp_host:smtp_port."""
    sent = []

    class SMTP:
        def __init__(self, host, port, timeout):
            sent.append(("connect", host, port, timeout))

        def __enter__(self):
            return self

        def __exit__(self, *_exc):
            return False

        def send_message(self, msg):
            sent.append(("send", msg["Subject"], msg["From"], msg["To"], msg.get_content()))
    monkeypatch.setattr(bcp.smtplib, "SMTP", SMTP)
    cfg["alert"].update(email_to=["ops@example.com", "dr@example.com"], smtp_host="relay.example.com", smtp_port=2525)
    REAL_ALERT(cfg, "[lookerops-bcp] replication a-to-b failed on lkr-a1", "Cycle 1 failed")
    assert sent == [("connect", "relay.example.com", 2525, 30),
                    ("send", "[lookerops-bcp] replication a-to-b failed on lkr-a1", "bcp@example.com",
                     "ops@example.com, dr@example.com", "Cycle 1 failed\n")]


def test_an_alert_is_posted_to_the_webhook(cfg, monkeypatch):
    """The webhook URL (its own root-only file) gets a JSON POST with subject, body, text and host."""
    Path(bcp.WEBHOOK_FILE).write_text("https://hooks.example.com/T0/B0\n")
    posted = []

    class Response:
        status = 200

        def __enter__(self):
            return self

        def __exit__(self, *_exc):
            return False

    def urlopen(req, timeout):
        posted.append((req.full_url, req.get_method(), req.headers, json.loads(req.data), timeout))
        return Response()
    monkeypatch.setattr(bcp.urllib.request, "urlopen", urlopen)
    monkeypatch.setattr(bcp.smtplib, "SMTP", lambda *a, **k: pytest.fail("no e-mail is configured"))
    REAL_ALERT(cfg, "subject line", "body text")
    assert posted == [("https://hooks.example.com/T0/B0", "POST", {"Content-type": "application/json"},
                       {"text": "subject line\nbody text", "subject": "subject line", "body": "body text", "host": "lkr-a1"}, 30)]


def test_an_alert_that_cannot_be_sent_is_logged_not_fatal(cfg, monkeypatch, capsys):
    """The relay and the webhook both failing: alert() returns and says ALERT NOT SENT for each."""
    def refuse(*_args, **_kwargs):
        raise ConnectionRefusedError(111, "Connection refused")

    def unreachable(*_args, **_kwargs):
        raise urllib.error.URLError("Name or service not known")
    monkeypatch.setattr(bcp.smtplib, "SMTP", refuse)
    monkeypatch.setattr(bcp.urllib.request, "urlopen", unreachable)
    Path(bcp.WEBHOOK_FILE).write_text("https://hooks.example.com/x\n")
    cfg["alert"]["email_to"] = ["ops@example.com"]
    REAL_ALERT(cfg, "subject", "body")
    out = capsys.readouterr().out
    assert "ALERT NOT SENT by e-mail (localhost:25): [Errno 111] Connection refused" in out
    assert "ALERT NOT SENT to the webhook: Name or service not known" in out


def test_no_alert_channel_configured_sends_nothing(cfg, monkeypatch, capsys):
    """Neither e-mail nor webhook: nothing is contacted."""
    monkeypatch.setattr(bcp.smtplib, "SMTP", lambda *a, **k: pytest.fail("SMTP contacted"))
    monkeypatch.setattr(bcp.urllib.request, "urlopen", lambda *a, **k: pytest.fail("webhook contacted"))
    REAL_ALERT(cfg, "subject", "body")
    assert capsys.readouterr().out == ""


# --- the boundaries: run, remote, http_ok ---------------------------------------------------------

def test_a_failing_command_is_reported_with_its_status_and_stderr():
    """run: the message is "<what>: exit status N: <stderr>", the source of every stage's reason."""
    with pytest.raises(bcp.CycleError, match=r"^copy: exit status 3: rsync: link_stat failed$"):
        bcp.run([sys.executable, "-c", "import sys; sys.stderr.write('rsync: link_stat failed\\n'); sys.exit(3)"], "copy")
    with pytest.raises(bcp.CycleError, match=r"^copy: exit status 4: \(no error output\)$"):
        bcp.run([sys.executable, "-c", "raise SystemExit(4)"], "copy")


def test_a_command_that_does_not_answer_in_time_is_a_failure():
    """run: a timeout is a CycleError saying how long was waited."""
    with pytest.raises(bcp.CycleError, match=r"^dump: no answer within 0.3 s \("):
        bcp.run([sys.executable, "-c", "import time; time.sleep(30)"], "dump", timeout=0.3)


def test_a_missing_program_is_a_failure(tmp_path):
    """run: a command that cannot be started is a CycleError naming it."""
    with pytest.raises(bcp.CycleError, match=rf"^copy: cannot run {tmp_path}/no-rsync: "):
        bcp.run([str(tmp_path / "no-rsync")], "copy")


def test_remote_actions_go_through_pinned_ssh_and_sudo(cfg, monkeypatch):
    """remote: key, port, user, batch mode, pinned host keys, then `sudo -n lookerops-bcp remote ACTION ARGS`."""
    seen = []
    monkeypatch.setattr(bcp, "run", lambda argv, what, **kw: seen.append((argv, what, kw)))
    bcp.remote(cfg, "10.0.2.11", "restore", "--direction", "a-to-b", what="restore on b", timeout=600)
    argv, what, kwargs = seen[0]
    assert argv == ["ssh", "-i", cfg["ssh_key"], "-p", "22", "-l", "lookerops-bcp", "-o", "BatchMode=yes",
                    "-o", "IdentitiesOnly=yes", "-o", "StrictHostKeyChecking=yes", "-o", f"UserKnownHostsFile={cfg['known_hosts']}",
                    "-o", "ConnectTimeout=10", "-o", "ServerAliveInterval=15", "-o", "ServerAliveCountMax=4",
                    "10.0.2.11", "sudo", "-n", "/usr/local/sbin/lookerops-bcp", "remote", "restore", "--direction", "a-to-b"]
    assert what == "restore on b"
    assert kwargs["timeout"] == 600


def test_a_health_url_that_does_not_answer_200_is_not_ok(monkeypatch):
    """http_ok: 503 and a refused connection are (False, reason)."""
    def answer(url, timeout, context):
        if url.endswith("503"):
            raise urllib.error.HTTPError(url, 503, "Service Unavailable", {}, None)
        raise urllib.error.URLError(ConnectionRefusedError(111, "Connection refused"))
    monkeypatch.setattr(bcp.urllib.request, "urlopen", answer)
    assert bcp.http_ok("https://10.0.1.11:9999/503") == (False, "HTTP 503")
    assert bcp.http_ok("https://10.0.1.11:9999/alive") == (False, "[Errno 111] Connection refused")


def test_a_health_url_answering_something_else_than_http_is_not_ok(monkeypatch):
    """A plain-HTTP probe of a port serving TLS gets a TLS alert back: the node is not healthy, the election goes on."""
    def answer(url, timeout, context):
        raise http.client.BadStatusLine("\x15\x03\x03\x00\x02\x02P")
    monkeypatch.setattr(bcp.urllib.request, "urlopen", answer)
    assert bcp.http_ok("http://10.0.1.11:9999/alive")[0] is False


# --- the standby's side of restore, switch and restart --------------------------------------------

@pytest.fixture
def standby(cfg, hosts):
    """lkr-b1, the receiver of site b, with an incoming transfer of this cycle."""
    cfg.update(host="lkr-b1", site="b")
    incoming = Path(cfg["incoming_dir"], "a-to-b")
    (incoming / "db").mkdir(parents=True)
    (incoming / "db" / "looker.sql.gz").write_bytes(DUMP)
    (incoming / "manifest.json").write_text(json.dumps({"cycle": CYCLE_ID, "dump_sha256": hashlib.sha256(DUMP).hexdigest()}))
    return incoming


def remote_args(**values):
    return argparse.Namespace(**dict({"direction": "a-to-b", "cycle": CYCLE_ID, "database": None, "node": None}, **values))


def test_the_standby_loads_a_verified_dump_into_a_fresh_database(cfg, hosts, standby):
    """restore: the dump's checksum matches the manifest; it is streamed to the standby primary's db-load."""
    bcp.r_restore(cfg, remote_args())
    assert hosts.calls == ["db-load"]
    argv = hosts.argv["db-load"]
    assert argv[argv.index("sudo") - 1:] == ["10.0.2.20", "sudo", "-n", "/usr/local/sbin/lookerops-bcp", "remote", "db-load",
                                             "--database", f"looker_bcp_new_{CYCLE_ID}"]
    assert hosts.stdin["db-load"].name == str(standby / "db" / "looker.sql.gz")


def test_the_standby_refuses_a_transfer_of_another_cycle(cfg, hosts, standby):
    """restore: a manifest naming another cycle (an incomplete transfer) loads nothing."""
    (standby / "manifest.json").write_text(json.dumps({"cycle": "20240506065809", "dump_sha256": "x"}))
    with pytest.raises(bcp.CycleError, match=f"is from cycle 20240506065809, not {CYCLE_ID}: incomplete transfer"):
        bcp.r_restore(cfg, remote_args())
    assert hosts.calls == []


def test_the_standby_refuses_a_dump_whose_checksum_differs(cfg, hosts, standby):
    """restore: a dump changed or cut after the manifest was written loads nothing."""
    (standby / "db" / "looker.sql.gz").write_bytes(DUMP[:-1])
    with pytest.raises(bcp.CycleError, match=r"looker.sql.gz: SHA-256 [0-9a-f]{64} differs from the manifest's "):
        bcp.r_restore(cfg, remote_args())
    assert hosts.calls == []


def test_the_active_site_refuses_to_be_restored_into(cfg, hosts, standby):
    """restore b-to-a sent to site b while b records a as active: refused, naming the playbooks that change direction."""
    with pytest.raises(bcp.CycleError, match=r"^refused: lkr-b1 is in site b, whose hosts record site a as active; "
                                             r"direction b-to-a would overwrite it"):
        bcp.r_restore(cfg, remote_args(direction="b-to-a"))
    assert hosts.calls == []


def test_the_switch_moves_files_then_swaps_tables_then_records_the_cycle(cfg, hosts, standby, clock):
    """switch: rsync --delay-updates into the share, db-swap on the standby primary, then the standby status file."""
    bcp.r_switch(cfg, remote_args())
    assert hosts.calls == ["rsync switch", "db-swap"]
    assert hosts.argv["rsync switch"][-2:] == [str(standby / "files" / "share") + "/", cfg["share_dir"] + "/"]
    recorded = json.loads(Path(cfg["standby_status_file"]).read_text())
    assert (recorded["cycle"], recorded["switched_at"], recorded["receiver"]) == (CYCLE_ID, "2024-05-06T07:08:09Z", "lkr-b1")


def test_a_failed_file_switch_swaps_no_table(cfg, hosts, standby):
    """switch: the file copy failing stops before the table swap and records nothing."""
    hosts.failing["rsync switch"] = "rsync: write failed: No space left on device (28)"
    with pytest.raises(bcp.CycleError, match="No space left on device"):
        bcp.r_switch(cfg, remote_args())
    assert hosts.calls == ["rsync switch"]
    assert not os.path.exists(cfg["standby_status_file"])


def test_the_switch_refuses_a_transfer_of_another_cycle(cfg, hosts, standby):
    """switch: the manifest must name this cycle, else neither files nor tables are touched."""
    (standby / "manifest.json").write_text(json.dumps({"cycle": "20240506065809"}))
    with pytest.raises(bcp.CycleError, match="incomplete transfer"):
        bcp.r_switch(cfg, remote_args())
    assert hosts.calls == []


def test_the_standby_nodes_are_restarted_one_at_a_time(cfg, hosts):
    """restart-site: restart-node on each standby node in turn; the first failure stops the rest."""
    cfg.update(host="lkr-b1", site="b")
    hosts.failing["restart-node"] = "lkr-b1 did not answer within 900 s"
    with pytest.raises(bcp.CycleError, match="^restart of lkr-b1: exit status 1: "):
        bcp.r_restart_site(cfg, remote_args())
    assert hosts.calls == ["restart-node"]
    assert hosts.argv["restart-node"][hosts.argv["restart-node"].index("sudo") - 1] == "10.0.2.11"


def test_the_active_site_refuses_to_be_restarted(cfg, hosts):
    """restart-site on a host of the active site: refused before any node is restarted."""
    with pytest.raises(bcp.CycleError, match="^refused: site a is active$"):
        bcp.r_restart_site(cfg, remote_args())
    assert hosts.calls == []


def test_a_restarted_node_must_answer_within_the_restart_timeout(cfg, hosts, clock):
    """restart-node: reset-failed, restart, then /alive polled each second; silent for restart_timeout: a failure."""
    cfg.update(host="lkr-b2", site="b", restart_timeout=5)
    hosts.down = {"lkr-b2": "connection refused"}
    with pytest.raises(bcp.CycleError) as failure:
        bcp.r_restart_node(cfg, remote_args())
    assert str(failure.value) == "lkr-b2 did not answer https://10.0.2.12:9999/alive within 5 s (connection refused)"
    assert hosts.calls[:2] == ["systemctl reset-failed", "systemctl restart"]
    assert hosts.calls[2:] == ["alive lkr-b2"] * 5
    assert clock.slept == [1] * 5


def test_a_restarted_node_that_answers_ends_the_wait(cfg, hosts, clock):
    """restart-node: returns as soon as /alive answers 200."""
    cfg.update(host="lkr-b2", site="b")
    hosts.down = {"lkr-b2": "connection refused"}
    clock.on_sleep = lambda: hosts.down.clear() if len(clock.slept) == 2 else None
    bcp.r_restart_node(cfg, remote_args())
    assert hosts.calls == ["systemctl reset-failed", "systemctl restart", "alive lkr-b2", "alive lkr-b2", "alive lkr-b2"]


@pytest.mark.parametrize("url", ["http://127.0.0.1:99999/T0?token=s3cr3t-tok", "127.0.0.1/T0?token=s3cr3t-tok",
                                 "http://127.0.0.1:9/T 0?token=s3cr3t-tok"])
def test_a_malformed_webhook_url_is_not_fatal_and_never_printed(cfg, monkeypatch, capsys, url):
    """A webhook URL the HTTP client rejects (its messages quote the URL, which may carry a token):
    alert() logs ALERT NOT SENT, naming the error only, and returns."""
    Path(bcp.WEBHOOK_FILE).write_text(url + "\n")
    REAL_ALERT(cfg, "subject", "body")
    out = capsys.readouterr()
    assert "ALERT NOT SENT to the webhook" in out.out
    assert "s3cr3t-tok" not in out.out + out.err
