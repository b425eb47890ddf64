"""The wait after a start fails fast when Looker crash-loops or exits, and a re-run recovers from
systemd's start limit (issue 16).

- files/looker_unit_state.py decides from `systemctl show` whether the wait goes on (its logic,
  unit-tested here);
- tasks/turns.yml groups the nodes into turns: those running with nothing to apply share one;
- tasks/service_turn.yml (with start_wait.yml) runs on the controller against a fake `systemctl` /
  `journalctl` on PATH (a unit that starts healthy, crash-loops, exits, or was left failed by
  systemd's start limit) and a local HTTP server standing in for the node's /alive.
"""
import importlib.util
import json
import os
import re
import stat
import sys
import textwrap
import time
from pathlib import Path

import pytest

from test_looker_node_health import Node

ROOT = Path(__file__).resolve().parents[2]
SPEC = importlib.util.spec_from_file_location("looker_unit_state", ROOT / "roles/looker_node/files/looker_unit_state.py")
unit_state = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(unit_state)


# --- the decision ---------------------------------------------------------------------------------

def state(active="active", sub="running", restarts=0, code=0, status=0, result="success"):
    return {"ActiveState": active, "SubState": sub, "NRestarts": str(restarts), "ExecMainCode": str(code),
            "ExecMainStatus": str(status), "Result": result}


def test_a_running_unit_keeps_the_wait_going():
    assert unit_state.decide(state(), 0) == ("starting", "the unit is active (running)")


def test_a_restart_counter_that_grew_since_the_start_is_a_crash_loop():
    verdict, reason = unit_state.decide(state(restarts=2, code=1, status=1), 0)
    assert verdict == "crash-loop"
    assert reason == "Looker keeps exiting: systemd restarted it 2 times since the start (last exit status 1)"


def test_restarts_from_before_the_start_do_not_count():
    # `started` on a unit that was already running: its counter is read right after and is the baseline.
    assert unit_state.decide(state(restarts=3), 3)[0] == "starting"
    assert unit_state.decide(state(restarts=4, code=1, status=1), 3)[1].startswith("Looker keeps exiting: systemd restarted it 1 time since")


def test_a_process_that_exited_and_waits_for_its_restart_ends_the_wait_at_once():
    verdict, reason = unit_state.decide(state(active="activating", sub="auto-restart", code=1, status=1), 0)
    assert (verdict, reason) == ("exited", "Looker exited (last exit status 1) and systemd is about to restart it")


def test_a_failed_unit_ends_the_wait_with_the_result():
    assert unit_state.decide(state(active="failed", sub="failed", code=1, status=2, result="exit-code"), 0) == (
        "failed", "the unit failed (exit-code) (last exit status 2)")
    verdict, reason = unit_state.decide(state(active="failed", sub="failed", restarts=5, code=2, status=9, result="start-limit-hit"), 0)
    assert verdict == "failed" and "start limit" in reason and "(last killed by signal 9)" in reason


def test_a_stopped_unit_ends_the_wait():
    assert unit_state.decide(state(active="inactive", sub="dead", code=1, status=0), 0)[0] == "stopped"


def test_systemd_without_a_restart_counter_is_read_as_no_restart():
    assert unit_state.decide({"ActiveState": "active", "SubState": "running"}, 0)[0] == "starting"


def test_journal_lines_already_in_the_log_file_are_not_repeated():
    assert unit_state.merge_logs(["a", "b ", "c"], ["b", "d"]) == ["a", "c"]


def test_details_put_each_log_line_on_its_own_line():
    assert unit_state.details("looker.service", ["j1"], "/l/looker.log", ["l1", "l2"]) == (
        "\nLast lines of journalctl -u looker.service:\n  j1\nLast lines of /l/looker.log:\n  l1\n  l2")
    assert unit_state.details("looker.service", [], "/l/looker.log", []) == ""


def test_tail_reads_the_last_lines_and_survives_a_missing_file(tmp_path):
    log = tmp_path / "looker.log"
    log.write_text("".join(f"line {i}\n" for i in range(100)))
    assert unit_state.tail(str(log), 3) == ["line 97", "line 98", "line 99"]
    assert unit_state.tail(str(tmp_path / "none.log"), 3) == []


# --- the role's start turn against a fake systemd --------------------------------------------------

FAKE_SYSTEMCTL = r'''
import json, os, sys, time
path = os.environ["FAKE_UNIT"]
unit = json.load(open(path))
args = sys.argv[1:]
with open(path + ".calls", "a") as calls:
    calls.write(" ".join(args) + "\n")

def now_state():
    s = dict(unit["state"])
    if unit.get("started_at") is not None:
        elapsed = time.time() - unit["started_at"]
        if unit["mode"] == "crashloop" and elapsed > 1:
            # exits 1 s after each start, restarted 1 s later
            s.update(ActiveState="activating", SubState="auto-restart" if elapsed % 2 < 1 else "running",
                     NRestarts=str(int(elapsed // 2)), ExecMainCode="1", ExecMainStatus="1")
        elif unit["mode"] == "exits" and elapsed > 1:
            s.update(ActiveState="failed", SubState="failed", Result="exit-code", ExecMainCode="1", ExecMainStatus="2")
    return s

def save():
    json.dump(unit, open(path, "w"))

verb = args[0]
name = [a for a in args[1:] if not a.startswith("-")]
if verb == "show":
    s = dict(now_state(), LoadState="loaded", UnitFileState="enabled", Id="looker.service")
    props = [a.split("=", 1)[1] for a in args if a.startswith("--property=")]
    for key in props or s:
        print(s.get(key, "") if "--value" in args else "%s=%s" % (key, s.get(key, "")))
elif verb == "is-enabled":
    print("enabled")
elif verb in ("start", "restart"):
    s = now_state()
    if s["ActiveState"] == "failed" and s.get("Result") == "start-limit-hit":
        sys.stderr.write("Job for looker.service failed because start request repeated too quickly.\n")
        sys.exit(1)
    if verb == "start" and s["ActiveState"] in ("active", "activating"):
        sys.exit(0)
    unit["state"] = dict(ActiveState="active", SubState="running", Result="success", NRestarts="0",
                         ExecMainCode="0", ExecMainStatus="0")
    unit["started_at"] = time.time()
    unit["starts"] = unit.get("starts", 0) + 1
    save()
elif verb == "reset-failed":
    if unit["state"]["ActiveState"] == "failed":
        unit["state"].update(ActiveState="inactive", SubState="dead", Result="success")
        save()
else:
    sys.exit("fake systemctl: %s not handled" % verb)
'''

FAKE_JOURNALCTL = r'''
print("ERROR: Looker stand-in 25.6.12: refusing to start: the master key does not match the application database")
print("2026-11-27 22:00:00.000 +0000 ERROR refusing to start: the master key does not match the application database")
'''


@pytest.fixture
def fake_systemd(tmp_path, monkeypatch):
    """A fake systemctl/journalctl on PATH; returns (set_unit(mode, state...), calls(), starts())."""
    fakebin = tmp_path / "fakebin"
    fakebin.mkdir()
    for name, body in (("systemctl", FAKE_SYSTEMCTL), ("journalctl", FAKE_JOURNALCTL)):
        script = fakebin / name
        script.write_text(f"#!{sys.executable}\n" + textwrap.dedent(body))
        script.chmod(script.stat().st_mode | stat.S_IEXEC)
    unit_file = tmp_path / "unit.json"
    monkeypatch.setenv("PATH", f"{fakebin}:{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_UNIT", str(unit_file))

    class Fake:
        @staticmethod
        def set(mode="healthy", **unit):
            base = dict(ActiveState="inactive", SubState="dead", Result="success", NRestarts="0", ExecMainCode="0", ExecMainStatus="0")
            unit_file.write_text(json.dumps({"mode": mode, "state": dict(base, **unit), "started_at": None}))

        @staticmethod
        def calls():
            path = Path(str(unit_file) + ".calls")
            return path.read_text().splitlines() if path.exists() else []

        @staticmethod
        def starts():
            return json.loads(unit_file.read_text()).get("starts", 0)
    return Fake


@pytest.fixture
def looker():
    made = []

    def _make(alive):
        made.append(Node(alive))
        return made[-1]
    yield _make
    for one in made:
        one.close()


def turn_play(tmp_path, port, start_timeout=3600, active=False, pending=False):
    install = tmp_path / "looker"
    (install / "log").mkdir(parents=True, exist_ok=True)
    (install / "log" / "looker.log").write_text(
        "2026-11-27 22:00:00.000 +0000 INFO starting\n"
        "2026-11-27 22:00:00.000 +0000 ERROR refusing to start: the master key does not match the application database\n")
    if pending:
        (install / ".lookerops-restart-pending").write_text("")
    role_vars = {
        "__looker_node_turn": ["localhost"], "__looker_node_preview": False,
        "looker_node_install_dir": str(install), "__looker_node_pending_file": str(install / ".lookerops-restart-pending"),
        "__looker_node_active": active, "__looker_node_outdated": False, "__looker_node_config_changed": False,
        "__looker_node_needs_jars": False, "__looker_node_release": {"version": "25.6.12"},
        "looker_node_start_timeout": start_timeout,
        # Plain HTTP as with TLS provided externally; asked from this host.
        "looker_node_cluster_address": "127.0.0.1", "looker_node_web_port": port, "looker_node_api_port": port,
        "looker_node_ssl_provided_externally_by": "127.0.0.1", "looker_node_health_check_host": "",
    }
    return [{"name": "turn", "hosts": "localhost", "gather_facts": False, "tasks": [
        {"name": "Turn", "ansible.builtin.include_role": {"name": "lookerops.cluster.looker_node", "tasks_from": "service_turn"},
         "vars": role_vars}]}]


# Rounds of 5 s instead of 20 s, so that the tests take seconds.
FAST = {"__looker_node_start_round": 5}


def one_line(result):
    return " ".join(result.output.split())


def changed_on(result, host="localhost"):
    return int(re.search(rf"^{host}\s+: ok=\d+\s+changed=(\d+)", result.output, re.M).group(1))


def test_a_crash_looping_node_fails_the_wait_fast_with_the_reason_and_the_log(run_play, tmp_path, fake_systemd, looker):
    fake_systemd.set("crashloop")
    node = looker([503])
    started = time.monotonic()
    result = run_play(turn_play(tmp_path, node.port), FAST)
    took = time.monotonic() - started
    assert result.failed
    assert took < 60, f"the wait took {took:.0f} s with a start timeout of an hour"
    text = one_line(result)
    assert "localhost: Looker did not start:" in text
    assert re.search(r"Looker (keeps exiting: systemd restarted it \d+ times? since the start|exited) \(last exit status 1\)", text), text
    assert "looker_node_start_timeout is 3600 s" in text
    assert f"Last lines of {tmp_path}/looker/log/looker.log:" in text
    assert "refusing to start: the master key does not match the application database" in text
    assert "Last lines of journalctl -u looker.service:" in text
    assert "Fix the cause" in text and "the role clears the failed state of the unit and starts it" in text
    # One line per log line, not an escaped blob.
    assert re.search(r"\nLast lines of journalctl -u looker\.service:\n  ERROR: Looker stand-in", result.output), result.output[-3000:]


def test_a_node_whose_unit_fails_ends_the_wait_at_once(run_play, tmp_path, fake_systemd, looker):
    fake_systemd.set("exits")
    node = looker([503])
    started = time.monotonic()
    result = run_play(turn_play(tmp_path, node.port), FAST)
    assert result.failed and time.monotonic() - started < 60
    assert "Looker did not start: the unit failed (exit-code) (last exit status 2)" in one_line(result)


def test_a_slow_but_healthy_start_is_waited_for(run_play, tmp_path, fake_systemd, looker):
    """Serves after about 12 s: three rounds of 5 s, the unit running throughout."""
    fake_systemd.set("healthy")
    node = looker([503, 503, 503, 200])
    result = run_play(turn_play(tmp_path, node.port), FAST)
    assert not result.failed, result.output[-3000:]
    assert node.asked.count("/alive") == 4
    assert fake_systemd.starts() == 1


def test_a_node_that_never_serves_fails_after_the_start_timeout(run_play, tmp_path, fake_systemd, looker):
    fake_systemd.set("healthy")
    node = looker([503])
    result = run_play(turn_play(tmp_path, node.port, start_timeout=8), FAST)
    assert result.failed
    assert f"localhost did not answer http://127.0.0.1:{node.port}/alive with 200 within 8 s (last answer: 503" in one_line(result)


def test_a_rerun_after_the_start_limit_clears_the_failed_state_and_starts(run_play, tmp_path, fake_systemd, looker):
    """systemd gave up after repeated failed starts: without reset-failed, start is refused."""
    fake_systemd.set("healthy", ActiveState="failed", SubState="failed", Result="start-limit-hit", NRestarts="5",
                     ExecMainCode="1", ExecMainStatus="1")
    node = looker([200])
    result = run_play(turn_play(tmp_path, node.port, pending=True), FAST)
    assert not result.failed, result.output[-3000:]
    calls = fake_systemd.calls()
    assert calls.index("reset-failed looker.service") < calls.index("start looker")
    assert fake_systemd.starts() == 1


def test_a_healthy_rerun_clears_nothing_and_changes_nothing(run_play, tmp_path, fake_systemd, looker):
    fake_systemd.set("healthy")
    node = looker([200])
    assert not run_play(turn_play(tmp_path, node.port), FAST).failed
    result = run_play(turn_play(tmp_path, node.port, active=True), FAST)
    assert not result.failed, result.output[-3000:]
    assert changed_on(result) == 0
    assert not any(call.startswith("reset-failed") for call in fake_systemd.calls())
    assert fake_systemd.starts() == 1


def test_a_unit_waiting_for_its_automatic_restart_is_started_now(run_play, tmp_path, fake_systemd, looker):
    """A re-run while the process exited and systemd waits RestartSec: started now, and watched."""
    fake_systemd.set("healthy", ActiveState="activating", SubState="auto-restart", NRestarts="2", ExecMainCode="1", ExecMainStatus="1")
    node = looker([200])
    result = run_play(turn_play(tmp_path, node.port, active=True), FAST)
    assert not result.failed, result.output[-3000:]
    assert "restart looker" in fake_systemd.calls()


# --- entry point `start` (the upgrade procedures, after the migration) -----------------------------

def start_play(tmp_path, port, release="25.7.2", stale_pass=True):
    """tasks_from: start on a stopped node; with stale_pass, facts of an earlier main pass in the same
    run say the node was active and outdated (as the rolling upgrade's install pass leaves them)."""
    play = turn_play(tmp_path, port)
    role_vars = {k: v for k, v in play[0]["tasks"][0]["vars"].items() if not k.startswith("__looker_node_")}
    role_vars["__looker_node_pending_file"] = str(tmp_path / "looker" / ".lookerops-restart-pending")
    role_vars["looker_node_start_release"] = release
    tasks = []
    if stale_pass:
        tasks.append({"name": "Facts of an earlier pass", "ansible.builtin.set_fact": {
            "__looker_node_active": True, "__looker_node_outdated": False, "__looker_node_needs_jars": True,
            "__looker_node_release": {"version": "25.6.12", "sha256": "x"}}})
    tasks.append({"name": "Start", "ansible.builtin.include_role": {
        "name": "lookerops.cluster.looker_node", "tasks_from": "start"}, "vars": role_vars})
    play[0]["tasks"] = tasks
    return play


def test_the_start_entry_point_starts_a_stopped_node_on_the_release_given(run_play, tmp_path, fake_systemd, looker):
    fake_systemd.set("healthy")
    (tmp_path / "looker").mkdir()
    (tmp_path / "looker" / ".deploying").write_text("")
    node = looker([503, 200])
    node.release = "25.7.2"
    result = run_play(start_play(tmp_path, node.port), FAST)
    assert not result.failed, result.output[-3000:]
    # Started, not restarted, whatever an earlier pass noted; .deploying is gone.
    assert "start looker" in fake_systemd.calls() and not any(c.startswith("restart") for c in fake_systemd.calls())
    assert fake_systemd.starts() == 1
    assert not (tmp_path / "looker" / ".deploying").exists()


def test_the_start_entry_point_only_checks_a_node_that_runs(run_play, tmp_path, fake_systemd, looker):
    """Whatever an earlier pass noted (new jars, a restart due), a running node is not restarted."""
    fake_systemd.set("healthy", ActiveState="active", SubState="running")
    node = looker([200])
    node.release = "25.7.2"
    result = run_play(start_play(tmp_path, node.port), FAST)
    assert not result.failed, result.output[-3000:]
    assert not any(c.split()[0] in ("start", "restart") for c in fake_systemd.calls()), fake_systemd.calls()


def test_the_start_entry_point_fails_a_node_serving_another_release(run_play, tmp_path, fake_systemd, looker):
    fake_systemd.set("healthy")
    node = looker([200])
    result = run_play(start_play(tmp_path, node.port, release="25.7.2"), FAST)
    assert result.failed
    assert "localhost answers /alive but runs Looker 25.6.12 (api/4.0/versions answered 200) instead of 25.7.2" in one_line(result)


def test_the_start_entry_point_needs_the_release(run_play, tmp_path, fake_systemd, looker):
    play = start_play(tmp_path, 1, stale_pass=False)
    del play[0]["tasks"][0]["vars"]["looker_node_start_release"]
    result = run_play(play, FAST)
    assert result.failed and "looker_node_start_release" in one_line(result)
    assert fake_systemd.calls() == []


# --- the turns (turns.yml) -----------------------------------------------------------------------

def turns_play(tmp_path, port, hosts, pending=(), only=None):
    """tasks_from: turns on the nodes `hosts` (each with an install directory of its own, the unit
    and /alive shared); the nodes named in `pending` have a restart pending; with `only`, the other
    nodes of the play skip the include (as the upgrade starts its first new node alone)."""
    role_vars = {k: v for k, v in turn_play(tmp_path, port)[0]["tasks"][0]["vars"].items()
                 if k not in ("__looker_node_turn", "__looker_node_pending_file")}
    role_vars["looker_node_install_dir"] = f"{tmp_path}/{{{{ inventory_hostname }}}}"
    for host in hosts:
        (tmp_path / host).mkdir()
        if host in pending:
            (tmp_path / host / ".lookerops-restart-pending").write_text("")
    include = {"name": "Turns", "ansible.builtin.include_role": {"name": "lookerops.cluster.looker_node", "tasks_from": "turns"},
               "vars": dict(role_vars, __looker_node_active=True)}
    if only:
        include["when"] = f"inventory_hostname == '{only}'"
    return [{"name": "turns", "hosts": ",".join(hosts), "gather_facts": False, "tasks": [include]}]


def test_running_nodes_share_one_turn_and_a_node_to_restart_takes_its_own(run_play, tmp_path, fake_systemd, looker):
    fake_systemd.set("healthy", ActiveState="active", SubState="running")
    node = looker([200])
    hosts = ["n1", "n2", "n3"]
    result = run_play(turns_play(tmp_path, node.port, hosts, pending=["n2"]), FAST, extra_args=("-i", "n1,n2,n3,"))
    assert not result.failed, result.output[-3000:]
    turns = re.findall(r"^included: \S+/service_turn\.yml for .* => \(item=(.*)\)$", result.output, re.M)
    assert turns == ["n1, n3", "n2"], turns
    assert [c for c in fake_systemd.calls() if c.split()[0] in ("start", "restart")] == ["restart looker"]
    assert not (tmp_path / "n2" / ".lookerops-restart-pending").exists()
    assert [changed_on(result, host) for host in hosts] == [0, 2, 0]


def test_a_node_started_alone_takes_its_turn_while_the_others_skip_the_include(run_play, tmp_path, fake_systemd, looker):
    fake_systemd.set("healthy")
    node = looker([200])
    result = run_play(turns_play(tmp_path, node.port, ["n1", "n2"], only="n1"), FAST, extra_args=("-i", "n1,n2,"))
    assert not result.failed, result.output[-3000:]
    assert fake_systemd.starts() == 1 and [c for c in fake_systemd.calls() if c.split()[0] == "start"] == ["start looker"]
