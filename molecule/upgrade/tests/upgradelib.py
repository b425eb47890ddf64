"""Helpers for molecule/upgrade's tests: run playbooks/upgrade.yml under the bounded load of
bench/upgrade/load.py and read the cluster's state."""
import http.client
import importlib.util
import json
import os
import re
import shutil
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path

import testinfra
import yaml

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "molecule" / "looker_node_shared"))
import looker_node_testlib as lib  # noqa: E402  pylint: disable=wrong-import-position,unused-import

_spec = importlib.util.spec_from_file_location("upgrade_load", ROOT / "bench" / "upgrade" / "load.py")
load = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(load)

HOSTS = {name: testinfra.get_host("podman://lkr-upgrade-" + name) for name in ("db", "db2", "a", "b", "c", "d", "lb")}
INSTALL = "/home/looker/looker"


def address(name):
    return HOSTS[name].check_output("hostname -I").split()[0]


def lb_url():
    return "https://%s" % address("lb")


def upgrade(strategy, version, *extra, inventory=None, watch=None):
    """ansible-playbook playbooks/upgrade.yml; returns (rc, output), also kept in the ephemeral directory.
    version None: the release the inventory names (see inventory_release). inventory: another inventory
    in place of the scenario's (see swapped_inventory). watch: sees each line of the output as it comes."""
    overrides = ("-e", "looker_upgrade_version=" + version) if version else ()
    rc, out = lib.run_playbook(str(ROOT / "playbooks" / "upgrade.yml"), "-e", "looker_upgrade_strategy=" + strategy,
                               *overrides, *extra, check=False, inventory=inventory, watch=watch)
    (lib.EPHEMERAL / ("upgrade-%s-%s.log" % (strategy, version or "inventory"))).write_text(out)
    return rc, out


def inventory_release(version, nodes=("a", "b")):
    """The inventory as an operator edits it for an upgrade: a second inventory source naming
    looker_node_version for the nodes. The scenario's own sets it in a group_vars file, which beats
    variables of a group in another source: the edit is a host_vars file beside it. Returns the -i arguments."""
    inventory = lib.EPHEMERAL / ("release-%s" % version)
    (inventory / "host_vars").mkdir(parents=True, exist_ok=True)
    hosts = ["lkr-upgrade-" + name for name in nodes]
    (inventory / "hosts.yml").write_text("looker_nodes:\n  hosts:\n" + "".join("    %s:\n" % host for host in hosts))
    for host in hosts:
        (inventory / "host_vars" / (host + ".yml")).write_text("looker_node_version: '%s'\n" % version)
    return ("-i", str(inventory / "hosts.yml"))


def seed_jar_cache(version):
    """Put the stand-in jars of VERSION into the controller's jar cache, with the record looker_jar
    writes (test fixture: as a controller that fetched them earlier has them)."""
    jars, cache = lib.EPHEMERAL / "jars" / version, lib.EPHEMERAL / "jar-cache"
    for name in ("looker.jar", "looker-dependencies.jar"):
        shutil.copyfile(jars / name, cache / name)
    sums = {key: (jars / (name + ".sha256")).read_text().split()[0]
            for key, name in (("sha256", "looker.jar"), ("dependencies_sha256", "looker-dependencies.jar"))}
    (cache / ".looker-jars.json").write_text(json.dumps(dict(sums, version=version), indent=2, sort_keys=True))


def swapped_inventory(release):
    """The inventory after the replica swap of test_3, as the operator rewrites it: c and d are the
    cluster (on RELEASE) against db2, now the primary; a and b are the new nodes of the next swap, and
    db (rebuilt as db2's replica, see rebuild_as_replica) its replica. Returns its path."""
    source = Path(lib.INVENTORY)
    target = lib.EPHEMERAL / "swapped-inventory"
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(source.parent, target)
    inventory = yaml.safe_load(source.read_text())
    hosts = inventory["all"]["hosts"]
    for group, names in (("looker_nodes", "cd"), ("looker_nodes_new", "ab"), ("looker_appdb_primary", ["db2"]),
                         ("looker_appdb_replica", ["db"])):
        inventory[group]["hosts"] = {"lkr-upgrade-" + name: hosts["lkr-upgrade-" + name] for name in names}
    (target / source.name).write_text(yaml.safe_dump(inventory))
    (target / "host_vars").mkdir(exist_ok=True)
    for name in "cd":
        (target / "host_vars" / ("lkr-upgrade-%s.yml" % name)).write_text("looker_node_version: '%s'\n" % release)
    return target / source.name


def rebuild_as_replica(replica, primary, password="molecule-REPL-Secret-u4b9"):
    """Test fixture, as an operator rebuilds the old primary of a block swap as the replica of the
    promoted one: read-only since the cutover, its binary log is a prefix of the new primary's, so GTID
    replication goes on from its own position. Waits until it is in sync."""
    sql(primary, "CREATE USER IF NOT EXISTS 'looker_repl'@'%s' IDENTIFIED BY '%s'; "
                 "GRANT REPLICATION SLAVE ON *.* TO 'looker_repl'@'%s'" % (address(replica), password, address(replica)))
    sql(replica, "STOP SLAVE; SET GLOBAL gtid_slave_pos = @@GLOBAL.gtid_binlog_pos; "
                 "CHANGE MASTER TO MASTER_HOST='%s', MASTER_PORT=3306, MASTER_USER='looker_repl', MASTER_PASSWORD='%s', "
                 "MASTER_USE_GTID=slave_pos; START SLAVE" % (address(primary), password))
    deadline = time.time() + 120
    while True:
        status = HOSTS[replica].check_output("mariadb -e 'SHOW SLAVE STATUS\\G'")
        if "Slave_IO_Running: Yes" in status and "Slave_SQL_Running: Yes" in status and "Seconds_Behind_Master: 0" in status:
            return
        assert time.time() < deadline, status
        time.sleep(2)


def capture_report(host):
    """The report of the newest capture of a replica swap (policy capture) on HOST, and the capture's text."""
    report_path = HOSTS[host].check_output("ls -1 /var/backups/mysql_appdb/upgrade-capture-*.json | sort | tail -n 1")
    report = json.loads(HOSTS[host].file(report_path).content_string)
    return report, HOSTS[host].file(report["file"]).content_string


def upgrade_under_load(tag, strategy, version, *extra, rate=5.0, inventory=None, watch=None):
    """The upgrade with writes and reads through the balancer from before it starts to after it ends."""
    # A tag of its own per run: a uid written again would be answered as the existing record.
    run = load.Load(lb_url(), "%s-%d" % (tag, time.time()), rate=rate, max_seconds=900).start()
    try:
        rc, out = upgrade(strategy, version, *extra, inventory=inventory, watch=watch)
    finally:
        run.stop()
    return rc, out, run


def upgrade_losing_nothing(label, tag, strategy, version, *extra, watch=None):
    """upgrade_under_load that must succeed with writes acknowledged and none of them lost;
    returns (output, figures), the figures kept for the report under LABEL."""
    rc, out, run = upgrade_under_load(tag, strategy, version, *extra, watch=watch)
    ok(rc, out)
    missing = run.missing()
    figures = record_figures(label, run, missing)
    assert figures["acked_writes"] > 0
    assert missing == []
    return out, figures


class Hold:
    """A long answer held open through the balancer on one node, as a user's long-running query: the
    stand-in's test-only GET /standin/hold, read line by line in a thread. `complete` once it ended
    with "done" (released or timed out), not when a stop cut it."""

    def __init__(self, name, seconds=600):
        self.node = "lkr-upgrade-" + name
        self.lines, self.ended_at, self.released_at = [], None, None
        context = ssl.create_default_context()
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
        for _try in range(10):  # round robin: a new connection lands on the next node
            self.conn = http.client.HTTPSConnection(address("lb"), 443, timeout=seconds + 60, context=context)
            # Connection: close - the balancer counts a connection kept alive after the answer as a session.
            self.conn.request("GET", "/standin/hold?seconds=%d" % seconds, headers={"Connection": "close"})
            self.answer = self.conn.getresponse()
            if self.answer.status == 200 and self.answer.headers["X-Standin-Node"] == self.node:
                break
            self.conn.close()
        else:
            raise AssertionError("no hold landed on %s through the balancer" % self.node)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        try:
            for line in self.answer:
                self.lines.append(line.decode().strip())
        except (OSError, http.client.HTTPException):
            pass  # cut
        self.conn.close()
        self.ended_at = time.time()

    def release(self):
        """Ends the hold from the node itself (test-only POST /standin/hold/release): the query finished."""
        if self.released_at is None:
            self.released_at = time.time()
            name = self.node[len("lkr-upgrade-"):]
            answer = lib.http(HOSTS[name], "https://%s:19999/standin/hold/release" % self.node, "POST")
            assert answer["status"] == 200, answer

    @property
    def complete(self):
        self.reader.join(30)
        return bool(self.lines) and self.lines[-1] == "done"


def running_release(name):
    answer = lib.http(HOSTS[name], "https://lkr-upgrade-%s:19999/api/4.0/versions" % name)
    assert answer["status"] == 200, answer
    return json.loads(answer["body"])["looker_release_version"]


def installed_release(name):
    return json.loads(HOSTS[name].file(INSTALL + "/.looker-jars.json").content_string)["version"]


def sql(host, query):
    return HOSTS[host].check_output("mariadb -N -B -e %s looker", query)


def migrations(host, schema):
    return sql(host, "SELECT node FROM standin_migrations WHERE to_schema = '%s'" % schema).split()


def ok(rc, out):
    assert rc == 0, out[-8000:]


def recap(out):
    return lib.recap(out)


def text(out):
    return " ".join(out.split())


def log_has(name, pattern):
    return re.search(pattern, HOSTS[name].file(INSTALL + "/log/looker.log").content_string) is not None


def record_figures(label, run, missing):
    """Keep the figures for the report (the scenario's ephemeral directory)."""
    figures = dict(run.figures(), missing=len(missing), strategy=label)
    path = Path(os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY", "/tmp")) / "upgrade-figures.jsonl"
    with path.open("a") as handle:
        handle.write(json.dumps(figures) + "\n")
    print(label, figures)
    return figures


__all__ = ["HOSTS", "threading", "subprocess"]
