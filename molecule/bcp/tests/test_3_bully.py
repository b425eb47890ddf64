"""bully: the leader (lkr-bcp-a1, id 1) stops answering (its container frozen, as a hung or dead
host); the next cycle runs on lkr-bcp-a2 (id 2). When lkr-bcp-a1 is back it leads again."""
import subprocess
import time

import bcp_testlib as t


def test_the_next_node_runs_the_cycle_when_the_leader_is_dead():
    t.write_record("a", "leader-down")
    subprocess_run = subprocess.run
    subprocess_run(["podman", "pause", "lkr-bcp-a1"], check=True)
    try:
        started = time.time()
        # The timer of the frozen node cannot fire; the surviving node's does.
        results = t.start_cycle("a", ["lkr-bcp-a2"])
        log = t.journal_since("lkr-bcp-a2", started)
    finally:
        subprocess_run(["podman", "unpause", "lkr-bcp-a1"], check=True)
    assert results["lkr-bcp-a2"][0] == 0, (results, log)
    assert "lkr-bcp-a1 (id 1): not healthy" in log, log
    assert "this host is the leader of site a" in log
    assert "active site a is degraded" in log
    assert t.status("lkr-bcp-a2")["result"] == "ok"
    assert "leader-down" in t.records("b")


def test_the_first_node_leads_again_once_back():
    t.wait_for(lambda: t.node_alive("lkr-bcp-a1"), timeout=120, what="lkr-bcp-a1 serving again")
    started = time.time()
    results = t.start_cycle("a")
    assert all(result[0] == 0 for result in results.values()), results
    assert "this host is the leader of site a" in t.journal_since("lkr-bcp-a1", started)
    assert "not the leader (leader: lkr-bcp-a1)" in t.journal_since("lkr-bcp-a2", started)
