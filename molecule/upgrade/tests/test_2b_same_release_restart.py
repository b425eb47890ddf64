"""The same release with a configuration change (more scheduler threads): playbooks/upgrade.yml
restarts the nodes one at a time, each drained on the balancer first and put back once it answers,
so under writes and reads through the balancer no request fails and no write is lost, and a
long-running answer open on a node when its drain begins completes before that node stops."""
import re

import upgradelib as u

NODES = ("a", "b")


def test_a_configuration_change_restarts_the_nodes_without_a_failed_request():
    pids = {n: u.lib.main_pid(u.HOSTS[n]) for n in NODES}
    hold = u.Hold("a")
    waited = []

    def watch(line):
        # The balancer's wait for a's sessions sees the held answer: the query finishes now.
        if re.search(r"RETRYING: .*Count HAProxy's sessions with lkr-upgrade-a ", line):
            waited.append(line.strip())
            hold.release()

    figures = u.upgrade_losing_nothing("rolling restart, same release", "restart", "rolling", "25.7.2",
                                       "-e", "looker_node_scheduler_threads=3", watch=watch)[1]
    assert figures["failed"] == {"write": 0, "read": 0}, figures
    assert waited, "the drain of a did not wait for the answer open on it"
    assert hold.complete, "the answer open on a was cut: %s" % hold.lines[-3:]
    started = u.HOSTS["a"].check_output("systemctl show looker -p ExecMainStartTimestamp --timestamp=unix")
    assert float(started.split("@")[1]) >= hold.ended_at - 1, (started, hold.ended_at)
    for name in NODES:
        assert u.lib.main_pid(u.HOSTS[name]) != pids[name]
        assert "--scheduler-threads=3" in u.HOSTS[name].file(u.INSTALL + "/lookerstart.cfg").content_string
        assert u.running_release(name) == "25.7.2"
    # No schema change: the release stays, so nothing migrates.
    assert u.sql("db", "SELECT v FROM standin_meta WHERE k = 'schema_version'").strip() == "25.7"


def test_each_node_was_put_back_before_the_next_was_drained():
    out = (u.lib.EPHEMERAL / "upgrade-rolling-25.7.2.log").read_text()
    play = out[out.index("PLAY [Rolling restart behind the load balancers (same release)]"):]
    # serial: 1 prints the play's header for each batch; the next play is the next procedure's guard.
    play = play[:play.index("PLAY [Refuse a procedure that upgrade.yml did not plan]")]
    batches = play.split("TASK [Drain the node on every balancer]")[1:]
    assert len(batches) == len(NODES), play[-4000:]
    for name, batch in zip(NODES, batches):
        others = ["[lkr-upgrade-" + other for other in NODES if other != name]
        assert "TASK [Put the node back on every balancer]" in batch
        assert "[lkr-upgrade-" + name in batch and not any(other in batch for other in others), batch[-3000:]
