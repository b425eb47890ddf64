"""A cycle started on every node of the active site (as the timer does) runs on the leader only and
brings the records and model files written on site a to site b; the status file, the metric and
the journal tell what happened. The nodes run the Looker stand-in (tests/standin), not Looker."""
import json
import time

import bcp_testlib as t


def test_the_timer_runs_on_the_active_site_only():
    for node in t.SITE_NODES["a"]:
        assert t.HOSTS[node].service("lookerops-bcp.timer").is_enabled
        assert t.HOSTS[node].service("lookerops-bcp.timer").is_running
    assert not t.HOSTS["lkr-bcp-b1"].service("lookerops-bcp.timer").is_enabled
    assert not t.HOSTS["lkr-bcp-b1"].service("lookerops-bcp.timer").is_running


def test_check_mode_reports_no_change():
    """The scenario's sequence also runs converge.yml in check mode on the fresh hosts (before converge)."""
    output = t.run_playbook("converge.yml", "--check", "--diff")[1]
    recap = t.lib.recap(output)
    assert recap and all(counts["changed"] == 0 for counts in recap.values()), output[-4000:]


def test_records_and_model_files_reach_the_standby_after_a_cycle():
    t.write_record("a", "first-cycle", "written on site a")
    t.put_model("a", "shop/orders.view.lkml", "view: orders { sql_table_name: orders ;; }\n")
    assert "first-cycle" not in t.records("b")
    started = time.time()
    results = t.start_cycle("a")
    assert all(result[0] == 0 for result in results.values()), results
    assert "first-cycle" in t.records("b")
    assert t.model("b", "shop/orders.view.lkml") == "view: orders { sql_table_name: orders ;; }\n"
    assert t.alive("b")
    # Only the leader (lowest id, healthy) ran it; the other node found it was not the leader.
    log_a1, log_a2 = t.journal_since("lkr-bcp-a1", started), t.journal_since("lkr-bcp-a2", started)
    assert "this host is the leader of site a" in log_a1
    for number, stage in enumerate(["preflight", "dump", "collect", "transfer", "restore", "switch", "restart"], 1):
        assert f"stage {number}/7 {stage}: ok in " in log_a1, log_a1
    assert "not the leader (leader: lkr-bcp-a1)" in log_a2, log_a2
    assert t.status("lkr-bcp-a2")["result"] == "follower"


def test_status_file_and_metric_record_the_last_good_cycle():
    status = t.status("lkr-bcp-a1")
    assert status["result"] == "ok"
    good = status["last_good_cycle"]
    assert good["direction"] == "a-to-b"
    assert set(good["stages"]) == {"preflight", "dump", "collect", "transfer", "restore", "switch", "restart"}
    assert good["bytes_sent"] > 0 and good["dump_bytes"] > 0
    metrics = t.HOSTS["lkr-bcp-a1"].file("/var/lib/prometheus/node-exporter/lookerops_bcp.prom").content_string
    assert "lookerops_bcp_last_cycle_success 1" in metrics
    stamp = [line for line in metrics.splitlines() if line.startswith("lookerops_bcp_last_success_timestamp_seconds ")]
    assert abs(int(stamp[0].split()[1]) - time.time()) < 600
    standby = json.loads(t.HOSTS["lkr-bcp-b1"].check_output("cat /var/lib/lookerops-bcp/standby-status.json"))
    assert standby["cycle"] == good["cycle"] and standby["source_site"] == "a"


def test_the_standby_keeps_one_previous_generation_and_no_leftover():
    dbs = t.HOSTS["lkr-bcp-bdb"].check_output("mariadb -N -e 'SHOW DATABASES'").split()
    assert "looker_bcp_prev" in dbs
    assert not [d for d in dbs if d.startswith("looker_bcp_new_")]


def test_a_failed_cycle_alerts_and_keeps_the_standby(tmp_path):
    """The standby's database down: the preflight stops the cycle with the reason, the e-mail relay
    and the webhook get the alert, the status and the metric say failed, the standby still serves
    its data."""
    before = t.records("b")
    a1, bdb = t.HOSTS["lkr-bcp-a1"], t.HOSTS["lkr-bcp-bdb"]
    a1.run("rm -f /tmp/webhook.json /tmp/alert-mail.json")
    # One-message receivers on a1's loopback, where bcp_replication_alert_webhook_url and the
    # default bcp_replication_alert_smtp_host (localhost:25) point.
    a1.check_output("systemd-run --unit=bcp-webhook-test --collect python3 -c %s", t.WEBHOOK_RECEIVER)
    a1.check_output("systemd-run --unit=bcp-smtp-test --collect python3 -W ignore -c %s", t.SMTP_RECEIVER)
    for port in (18080, 25):
        t.wait_for(lambda: a1.run(f"python3 -c 'import socket; socket.create_connection((\"127.0.0.1\", {port}), 1)'").rc == 0,
                   what=f"the alert receiver on port {port}")
    bdb.check_output("systemctl stop mariadb")
    try:
        results = t.start_cycle("a", ["lkr-bcp-a1"])
    finally:
        bdb.check_output("systemctl start mariadb")
    assert results["lkr-bcp-a1"][0] != 0
    status = t.status("lkr-bcp-a1")
    assert status["result"] == "failed"
    assert "stage 1/7 preflight failed" in status["last_error"] and "standby database on lkr-bcp-bdb" in status["last_error"]
    assert "lookerops_bcp_last_cycle_success 0" in a1.file("/var/lib/prometheus/node-exporter/lookerops_bcp.prom").content_string
    t.wait_for(lambda: a1.file("/tmp/webhook.json").exists, timeout=30, what="the webhook alert")
    alert = json.loads(a1.file("/tmp/webhook.json").content_string)
    assert "replication a-to-b failed on lkr-bcp-a1" in alert["subject"]
    assert "keeps its previous good state" in alert["body"]
    t.wait_for(lambda: a1.file("/tmp/alert-mail.json").exists, timeout=30, what="the e-mail alert")
    mail = json.loads(a1.file("/tmp/alert-mail.json").content_string)
    assert mail["to"] == ["dr-oncall@example.com"]
    assert mail["from"].startswith("lookerops-bcp@")
    assert "replication a-to-b failed on lkr-bcp-a1" in mail["message"]
    assert "stage 1/7 preflight failed" in mail["message"]
    t.wait_for(lambda: t.alive("b"), timeout=60, what="site b serving")
    assert set(t.records("b")) == set(before)
