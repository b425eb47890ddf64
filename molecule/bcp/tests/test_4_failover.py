"""failover.yml then failback.yml: the old site is fenced (its database read-only) before the last
cycle, which carries every record acknowledged before the switch; the direction reverses (timers,
recorded active site); the role refuses the old inventory value while site b is active; nothing
written before the failover is lost."""
import json
import threading

import bcp_testlib as t


def test_failover_to_b_carries_the_last_writes():
    """A user keeps writing through site a's balancer until the switch: every write acknowledged is on
    site b afterwards (the fence stops them before the last cycle; without it, those acknowledged
    after the last cycle's dump would be lost)."""
    t.write_record("a", "before-failover")
    t.put_model("a", "bcp/failover.view.lkml", "written on a before the failover\n")
    switching, acked = threading.Event(), []

    def write_until_the_switch():
        number = 0
        while not switching.is_set():
            uid = f"during-failover-{number}"
            number += 1
            status, _body = t.http_json(t.SITE_LB["a"], "POST", "/standin/records", json.dumps({"uid": uid, "payload": "user"}))
            if status in (200, 201):
                acked.append(uid)

    def watch(line):
        if line.startswith("PLAY [Failover - make the new site active, reverse the direction]"):
            switching.set()

    writer = threading.Thread(target=write_until_the_switch, daemon=True)
    writer.start()
    try:
        output = t.run_playbook("../../playbooks/failover.yml", "-e", "bcp_failover_to=b", watch=watch)[1]
    finally:
        switching.set()
        writer.join(60)
    assert "DNS / global load balancer: point Looker's host name" in output
    assert "set bcp_replication_active_site: b" in output
    assert "Site a was fenced: its database took no write from the fence, before the last cycle, until the switch" in " ".join(output.split())
    assert output.index("Set the old active site's database read-only") < output.index("Run a last cycle from the old active site")
    served = t.records("b")
    assert "before-failover" in served
    assert acked and [uid for uid in acked if uid not in served] == [], f"{len(acked)} acknowledged, lost: " + \
        str([uid for uid in acked if uid not in served][:10])
    # Both databases take writes again: b is active, a is the standby its cycles restore into.
    for site in ("a", "b"):
        assert t.HOSTS[t.SITE_DB[site]].check_output("mariadb -N -B -e 'SELECT @@read_only'") == "0"
    assert t.model("b", "bcp/failover.view.lkml") == "written on a before the failover\n"
    assert t.HOSTS["lkr-bcp-b1"].service("lookerops-bcp.timer").is_running
    for node in t.SITE_NODES["a"]:
        assert not t.HOSTS[node].service("lookerops-bcp.timer").is_running
        assert not t.HOSTS[node].service("lookerops-bcp.timer").is_enabled


def test_the_old_direction_is_refused_on_both_ends():
    out = t.HOSTS["lkr-bcp-a1"].run(f"{t.PROGRAM} cycle")
    assert out.rc == 0 and "which is the standby (active: b): nothing to do" in out.stdout
    out = t.HOSTS["lkr-bcp-b1"].run(f"{t.PROGRAM} remote switch --direction a-to-b --cycle 20260101000000")
    assert out.rc == 1 and "refused: lkr-bcp-b1 is in site b, whose hosts record site b as active" in out.stderr
    out = t.HOSTS["lkr-bcp-bdb"].run(f"{t.PROGRAM} remote db-swap --database looker_bcp_new_20260101000000")
    assert out.rc == 1 and "refused: lkr-bcp-bdb is in the active site b" in out.stderr


def test_the_role_refuses_the_old_active_site_from_the_inventory():
    rc, output = t.run_playbook("converge.yml", check=False)
    assert rc != 0
    assert "records site b as active, but bcp_replication_active_site is a" in " ".join(output.split())


def test_failback_to_a_loses_nothing():
    t.write_record("b", "during-failover")
    t.put_model("b", "bcp/failover.view.lkml", "changed on b during the failover\n")
    output = t.run_playbook("../../playbooks/failback.yml")[1]
    assert "Site a is active since" in output
    served = t.records("a")
    lost = [uid for uid in ("first-cycle", "after-the-kills", "leader-down", "before-failover", "during-failover")
            if uid not in served]
    assert lost == []
    assert t.model("a", "bcp/failover.view.lkml") == "changed on b during the failover\n"
    assert t.model("a", "shop/orders.view.lkml") == "view: orders { sql_table_name: orders ;; }\n"
    assert t.alive("a")
    for node in t.SITE_NODES["a"]:
        assert t.HOSTS[node].service("lookerops-bcp.timer").is_running
    assert not t.HOSTS["lkr-bcp-b1"].service("lookerops-bcp.timer").is_running
