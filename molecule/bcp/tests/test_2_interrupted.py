"""A cycle killed (SIGKILL) before each of its stages leaves the standby serving its previous data:
everything before the switch writes only to staging, incoming and a fresh database. Killed before
the restart, the switch has happened and the standby serves the new data, complete. The next cycle
starts over and brings everything."""
import subprocess

import pytest

import bcp_testlib as t

MODEL = "bcp/interrupted.view.lkml"
STAGES = ["preflight", "dump", "collect", "transfer", "restore", "switch", "restart"]
BEFORE_SWITCH = STAGES[:6]


def kill_cycle_before(stage):
    """Run a cycle on the leader held before STAGE, then SIGKILL it there."""
    a1 = t.HOSTS["lkr-bcp-a1"]
    hold = f"/run/lookerops-bcp/hold-{stage}"
    proc = subprocess.Popen(["podman", "exec", "lkr-bcp-a1", t.PROGRAM, "cycle", "--hold-before", stage],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        t.wait_for(lambda: a1.file(hold).exists or proc.poll() is not None, timeout=240, what=f"the hold before {stage}")
        assert proc.poll() is None, proc.stdout.read()
        pid = a1.file(hold).content_string.strip()
        a1.check_output(f"kill -KILL {pid}")
        proc.wait(timeout=30)
    finally:
        a1.run(f"rm -f {hold}")
    output = proc.stdout.read()
    assert f"holding before stage {STAGES.index(stage) + 1}/7 {stage}" in output, output
    return output


def test_a_good_cycle_first():
    t.put_model("a", MODEL, "generation 0\n")
    results = t.start_cycle("a", ["lkr-bcp-a1"])
    assert results["lkr-bcp-a1"][0] == 0, results
    assert t.model("b", MODEL) == "generation 0\n"


@pytest.mark.parametrize("stage", BEFORE_SWITCH)
def test_a_cycle_killed_before_a_stage_leaves_the_standby_as_it_was(stage):
    before = set(t.records("b"))
    t.write_record("a", f"killed-before-{stage}")
    t.put_model("a", MODEL, f"written before a kill at {stage}\n")
    kill_cycle_before(stage)
    assert t.alive("b")
    assert set(t.records("b")) == before
    assert t.model("b", MODEL) == "generation 0\n"


def test_a_cycle_killed_before_the_restart_has_switched_completely():
    t.write_record("a", "killed-before-restart")
    t.put_model("a", MODEL, "written before a kill at restart\n")
    kill_cycle_before("restart")
    served = t.records("b")
    assert {f"killed-before-{s}" for s in BEFORE_SWITCH + ["restart"]} <= set(served)
    assert t.model("b", MODEL) == "written before a kill at restart\n"
    assert t.alive("b")


def test_the_next_cycle_completes_and_clears_the_leftovers():
    t.write_record("a", "after-the-kills")
    results = t.start_cycle("a")
    assert all(result[0] == 0 for result in results.values()), results
    assert "after-the-kills" in t.records("b")
    dbs = t.HOSTS["lkr-bcp-bdb"].check_output("mariadb -N -e 'SHOW DATABASES'").split()
    assert not [d for d in dbs if d.startswith("looker_bcp_new_")], dbs
    leftovers = t.HOSTS["lkr-bcp-b1"].check_output(f"find {t.SHARE} -name '.~tmp~' -print")
    assert leftovers == ""
