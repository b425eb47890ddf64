"""mysql_appdb on live sandbox hosts: what a Looker operator would check on the database tier.

Hosts: lkr-mysql-primary (looker_appdb_primary), lkr-mysql-replica (looker_appdb_replica),
lkr-mysql-node (looker_nodes: allowed) and lkr-mysql-outsider (in no Looker group: refused).
Both database hosts run MariaDB (the sandbox cannot install MySQL 8); TLS is on.
"""
import functools
import json
import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest
import testinfra
import yaml

SCENARIO = Path(os.environ.get("MOLECULE_SCENARIO_DIRECTORY", Path(__file__).resolve().parents[1]))
SETTINGS = yaml.safe_load((SCENARIO / "molecule.yml").read_text())["provisioner"]["inventory"]
GROUP_VARS = SETTINGS["group_vars"]["all"]
LOOKER_PASSWORD = GROUP_VARS["mysql_appdb_looker_password"]
READONLY_PASSWORD = GROUP_VARS["mysql_appdb_readonly_password"]
# The alert route of the backup check, set in converge.yml through the BCP variable.
WEBHOOK_URL = yaml.safe_load((SCENARIO / "converge.yml").read_text())[0]["vars"]["bcp_replication_alert_webhook_url"]
WEBHOOK_TOKEN = WEBHOOK_URL.split("token=", 1)[1]

PRIMARY = testinfra.get_host("podman://lkr-mysql-primary")
REPLICA = testinfra.get_host("podman://lkr-mysql-replica")
NODE = testinfra.get_host("podman://lkr-mysql-node")
OUTSIDER = testinfra.get_host("podman://lkr-mysql-outsider")

# A client that connects over TCP the way Looker's JDBC driver does: PyMySQL (copied by
# prepare.yml), TLS verified against the test CA. Prints JSON: rows, or the server's error.
CLIENT = r"""
import json, sys
sys.path.insert(0, "/opt/lkr-pymysql.zip")
import pymysql
host, user, password, database, use_tls, sql = sys.argv[1:7]
# PyMySQL negotiates TLS on its own when the server offers it: plain means ssl_disabled.
tls = {"ssl": {"ca": "/opt/lkr-ca.pem"}} if use_tls == "tls" else {"ssl_disabled": True}
try:
    conn = pymysql.connect(host=host, user=user, password=password, database=database or None,
                           connect_timeout=5, **tls)
    with conn.cursor() as cur:
        cur.execute(sql)
        rows = [list(map(str, r)) for r in cur.fetchall()]
    conn.commit()
    print(json.dumps({"ok": True, "rows": rows}))
except pymysql.err.MySQLError as exc:
    print(json.dumps({"ok": False, "code": exc.args[0], "error": str(exc)}))
"""


def remote_sql(client_host, db_host, user, password, sql, database="looker", tls=True):
    cmd = "python3 -c {} {} {} {} {} {} {}".format(
        shlex.quote(CLIENT), db_host, user, shlex.quote(password), database or "''",
        "tls" if tls else "plain", shlex.quote(sql))
    result = client_host.run(cmd)
    assert result.rc == 0, result.stderr
    return json.loads(result.stdout)


def root_sql(host, sql):
    """Run SQL as root over the local socket; return rows as lists of strings."""
    result = host.run("mariadb -N -B -e {}".format(shlex.quote(sql)))
    assert result.rc == 0, result.stderr
    return [line.split("\t") for line in result.stdout.splitlines()]


def variables(host, names):
    rows = root_sql(host, "SHOW GLOBAL VARIABLES WHERE Variable_name IN ({})".format(
        ",".join("'{}'".format(n) for n in names)))
    return dict(rows)


@functools.lru_cache(maxsize=None)
def ip_of(host):
    return host.run("hostname -I").stdout.split()[0]


@pytest.mark.parametrize("db", [PRIMARY, REPLICA], ids=["primary", "replica"])
def test_server_runs_with_utf8mb4_and_innodb(db):
    assert db.service("mariadb").is_running
    assert db.service("mariadb").is_enabled
    found = variables(db, ["character_set_server", "collation_server", "default_storage_engine",
                           "default_tmp_storage_engine", "enforce_storage_engine", "skip_name_resolve"])
    assert found == {
        "character_set_server": "utf8mb4",
        "collation_server": "utf8mb4_general_ci",
        "default_storage_engine": "InnoDB",
        "default_tmp_storage_engine": "InnoDB",
        "enforce_storage_engine": "InnoDB",
        "skip_name_resolve": "ON",
    }
    schemas = root_sql(db, "SELECT schema_name, default_character_set_name, default_collation_name "
                           "FROM information_schema.schemata WHERE schema_name IN ('looker', 'looker_tmp') "
                           "ORDER BY schema_name")
    assert schemas == [["looker", "utf8mb4", "utf8mb4_general_ci"],
                       ["looker_tmp", "utf8mb4", "utf8mb4_general_ci"]]


def test_other_engines_are_refused_on_the_primary():
    result = PRIMARY.run("mariadb -e 'CREATE TABLE looker_tmp.lkr_myisam (i INT) ENGINE=MyISAM'")
    assert result.rc != 0
    assert "NO_ENGINE_SUBSTITUTION" in result.stderr
    # A table created without an engine is InnoDB.
    root_sql(PRIMARY, "CREATE TABLE IF NOT EXISTS looker_tmp.lkr_default (i INT)")
    engine = root_sql(PRIMARY, "SELECT engine FROM information_schema.tables "
                               "WHERE table_schema='looker_tmp' AND table_name='lkr_default'")
    assert engine == [["InnoDB"]]


# Expected values: the primary is sized from mysql_appdb_memory_mb=1024 (0.6 x 1024 = 614 MB,
# rounded down to a multiple of 128 MB = 512 MB; redo 25% = 128 MB; io capacity 5/8 of 800 IOPS);
# the replica from explicit overrides (molecule.yml host_vars).
TUNED = {
    "primary": (PRIMARY, {
        "innodb_buffer_pool_size": str(512 * 2**20),
        "innodb_log_file_size": str(128 * 2**20),
        "innodb_io_capacity": "500",
        "innodb_io_capacity_max": "800",
        "table_open_cache": "2048",
        "read_only": "OFF",
    }),
    "replica": (REPLICA, {
        "innodb_buffer_pool_size": str(256 * 2**20),
        "innodb_log_file_size": str(96 * 2**20),
        "innodb_io_capacity": "300",
        "innodb_io_capacity_max": "800",
        "table_open_cache": "1024",
        "read_only": "ON",
    }),
}
COMMON = {
    "innodb_flush_log_at_trx_commit": "1",
    "innodb_flush_method": "O_DIRECT",
    "innodb_file_per_table": "ON",
    "innodb_stats_on_metadata": "OFF",
    "query_cache_type": "OFF",
    "query_cache_size": "0",
    "join_buffer_size": str(512 * 2**10),
    "tmp_table_size": str(32 * 2**20),
    "max_heap_table_size": str(32 * 2**20),
    "max_connections": "500",
    "max_allowed_packet": str(2**30),
    "log_bin": "ON",
    "log_slave_updates": "ON",
    "sync_binlog": "1",
    "binlog_format": "ROW",
    "gtid_strict_mode": "ON",
    "require_secure_transport": "ON",
}


@pytest.mark.parametrize("name", sorted(TUNED))
def test_tuned_values_are_in_effect(name):
    db, expected = TUNED[name]
    wanted = dict(COMMON, **expected)
    found = variables(db, list(wanted) + ["table_open_cache_instances"])
    # MariaDB treats table_open_cache_instances as a maximum (16 configured) and starts with fewer.
    assert 1 <= int(found.pop("table_open_cache_instances")) <= 16
    assert found == wanted


def test_server_ids_differ():
    ids = {variables(db, ["server_id"])["server_id"] for db in (PRIMARY, REPLICA)}
    assert len(ids) == 2


def test_looker_accounts_exist_only_for_the_looker_node():
    node_ip = ip_of(NODE)
    accounts = root_sql(PRIMARY, "SELECT user, host FROM mysql.user WHERE user LIKE 'looker%' ORDER BY user")
    assert accounts == [["looker", node_ip], ["looker_repl", ip_of(REPLICA)], ["looker_ro", node_ip]]
    assert all("%" not in account[1] for account in accounts)


def test_looker_user_connects_from_the_looker_node_over_tls():
    result = remote_sql(NODE, "lkr-mysql-primary", "looker", LOOKER_PASSWORD,
                        "SELECT CURRENT_USER(), @@hostname, "
                        "(SELECT variable_value FROM information_schema.session_status "
                        " WHERE variable_name = 'Ssl_version')")
    assert result["ok"], result
    user, hostname, tls_version = result["rows"][0]
    assert user == "looker@" + ip_of(NODE)
    assert hostname == "lkr-mysql-primary"
    assert tls_version.startswith("TLSv1.")


def test_looker_user_can_write_its_database():
    result = remote_sql(NODE, "lkr-mysql-primary", "looker", LOOKER_PASSWORD,
                        "CREATE TABLE IF NOT EXISTS looker_tmp.lkr_scratch (i INT PRIMARY KEY)")
    assert result["ok"], result


def test_looker_user_is_refused_from_another_host():
    result = remote_sql(OUTSIDER, "lkr-mysql-primary", "looker", LOOKER_PASSWORD, "SELECT 1")
    assert not result["ok"]
    # 1130: "Host '...' is not allowed to connect to this MariaDB server".
    assert result["code"] == 1130, result
    assert ip_of(OUTSIDER) in result["error"]


def test_plaintext_connections_are_refused():
    plain = remote_sql(NODE, "lkr-mysql-primary", "looker", LOOKER_PASSWORD, "SELECT 1", tls=False)
    # MariaDB answers a plaintext login under require_secure_transport with a plain 1045; the
    # same credentials over TLS, a moment later, get in.
    assert not plain["ok"] and plain["code"] == 1045, plain
    assert remote_sql(NODE, "lkr-mysql-primary", "looker", LOOKER_PASSWORD, "SELECT 1")["ok"]


def test_wrong_password_is_refused():
    result = remote_sql(NODE, "lkr-mysql-primary", "looker", "not-the-password", "SELECT 1")
    assert not result["ok"] and result["code"] == 1045, result


def test_replica_follows_the_primary_over_tls():
    status = REPLICA.run("mariadb -e 'SHOW REPLICA STATUS\\G'").stdout
    fields = {}
    for line in status.splitlines():
        key, sep, value = line.strip().partition(":")
        if sep:
            fields[key] = value.strip()
    assert fields["Slave_IO_Running"] == "Yes", fields.get("Last_IO_Error")
    assert fields["Slave_SQL_Running"] == "Yes", fields.get("Last_SQL_Error")
    assert fields["Master_Host"] == "lkr-mysql-primary"
    assert fields["Master_SSL_Allowed"] == "Yes"
    assert fields["Using_Gtid"] == "Slave_Pos"


def test_row_written_on_the_primary_appears_on_the_replica():
    marker = "row-{}".format(time.time_ns())
    root_sql(PRIMARY, "CREATE TABLE IF NOT EXISTS looker.lkr_probe "
                      "(id INT AUTO_INCREMENT PRIMARY KEY, marker VARCHAR(64) NOT NULL)")
    root_sql(PRIMARY, "INSERT INTO looker.lkr_probe (marker) VALUES ('{}')".format(marker))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if root_sql(REPLICA, "SELECT COUNT(*) FROM looker.lkr_probe WHERE marker = '{}'".format(marker)) == [["1"]]:
            break
        time.sleep(0.5)
    else:
        pytest.fail("row {} did not reach the replica within 30 s".format(marker))


def test_readonly_user_reads_the_replica_and_cannot_write():
    root_sql(PRIMARY, "CREATE TABLE IF NOT EXISTS looker.lkr_probe "
                      "(id INT AUTO_INCREMENT PRIMARY KEY, marker VARCHAR(64) NOT NULL)")
    time.sleep(1)
    read = remote_sql(NODE, "lkr-mysql-replica", "looker_ro", READONLY_PASSWORD,
                      "SELECT CURRENT_USER(), COUNT(*) >= 0 FROM looker.lkr_probe")
    assert read["ok"], read
    assert read["rows"][0][0] == "looker_ro@" + ip_of(NODE)
    # No write privilege, wherever it connects: 1142 "INSERT command denied" on the primary.
    write = remote_sql(NODE, "lkr-mysql-primary", "looker_ro", READONLY_PASSWORD,
                       "INSERT INTO looker.lkr_probe (marker) VALUES ('nope')")
    assert not write["ok"] and write["code"] == 1142, write


def test_replica_refuses_writes_from_the_looker_account():
    write = remote_sql(NODE, "lkr-mysql-replica", "looker", LOOKER_PASSWORD,
                       "INSERT INTO looker.lkr_probe (marker) VALUES ('nope')")
    assert not write["ok"], write
    assert "read-only" in write["error"].lower() or "read_only" in write["error"].lower(), write


def test_backup_timer_is_scheduled():
    assert PRIMARY.run("systemctl is-enabled lookerops-appdb-backup.timer").stdout.strip() == "enabled"
    assert PRIMARY.run("systemctl is-active lookerops-appdb-backup.timer").stdout.strip() == "active"
    assert PRIMARY.file("/var/backups/mysql_appdb").mode == 0o700


def test_last_backup_restores_to_identical_row_counts():
    # Known content: 3 tables with different row counts.
    root_sql(PRIMARY, "CREATE TABLE IF NOT EXISTS looker.lkr_backup_a (id INT PRIMARY KEY, t TEXT)")
    root_sql(PRIMARY, "CREATE TABLE IF NOT EXISTS looker.lkr_backup_b (id INT PRIMARY KEY)")
    root_sql(PRIMARY, "REPLACE INTO looker.lkr_backup_a VALUES (1, 'é ✓ utf8mb4 😀'), (2, 'b'), (3, 'c')")
    root_sql(PRIMARY, "REPLACE INTO looker.lkr_backup_b VALUES (1), (2), (3), (4), (5)")
    rc, result, journal = run_backup()
    assert rc == 0 and result == "success", journal
    latest = PRIMARY.run("ls -1 /var/backups/mysql_appdb/looker-*.sql.gz | sort | tail -n 1").stdout.strip()
    assert latest, "no dump was written"
    assert PRIMARY.run("cd /var/backups/mysql_appdb && sha256sum -c {}.sha256".format(
        os.path.basename(latest))).rc == 0
    assert PRIMARY.run("gzip -t {}".format(latest)).rc == 0

    # The restore command's own proof: scratch restore, table-by-table comparison.
    check = PRIMARY.run("lookerops-appdb-restore --check")
    assert check.rc == 0, check.stdout + check.stderr
    assert "identical row counts" in check.stdout

    # And independently of that command: restore into a database of our own and count.
    PRIMARY.run("mariadb -e 'DROP DATABASE IF EXISTS lkr_restored'")
    into = PRIMARY.run("lookerops-appdb-restore --into lkr_restored {}".format(latest))
    assert into.rc == 0, into.stdout + into.stderr
    tables = [t for (t,) in root_sql(PRIMARY, "SELECT table_name FROM information_schema.tables "
                                              "WHERE table_schema = 'looker' ORDER BY table_name")]
    assert {"lkr_backup_a", "lkr_backup_b", "lkr_probe"} <= set(tables)
    for table in tables:
        live = root_sql(PRIMARY, "SELECT COUNT(*) FROM looker.`{}`".format(table))
        restored = root_sql(PRIMARY, "SELECT COUNT(*) FROM lkr_restored.`{}`".format(table))
        assert live == restored, table
    assert root_sql(PRIMARY, "SELECT t FROM lkr_restored.lkr_backup_a WHERE id = 1") == [["é ✓ utf8mb4 😀"]]
    # A restore over a non-empty database needs --force.
    again = PRIMARY.run("lookerops-appdb-restore --into lkr_restored {}".format(latest))
    assert again.rc != 0 and "--force" in again.stderr
    # With --force, nothing the dump does not hold survives (as a table a failed migration created).
    root_sql(PRIMARY, "CREATE TABLE lkr_restored.lkr_from_a_failed_migration (id INT PRIMARY KEY)")
    forced = PRIMARY.run("lookerops-appdb-restore --into lkr_restored --force {}".format(latest))
    assert forced.rc == 0, forced.stdout + forced.stderr
    assert root_sql(PRIMARY, "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = 'lkr_restored' "
                             "AND table_name = 'lkr_from_a_failed_migration'") == [["0"]]
    assert root_sql(PRIMARY, "SELECT COUNT(*) FROM lkr_restored.lkr_backup_b") == [["5"]]
    PRIMARY.run("mariadb -e 'DROP DATABASE lkr_restored'")


def test_a_run_that_fails_before_it_holds_the_scratch_database_leaves_it_alone():
    """A --check that dies early (no such dump) must not drop the scratch database another run is using."""
    # Not binlogged, as the restore command keeps its scratch database.
    root_sql(PRIMARY, "SET SESSION sql_log_bin = 0; CREATE DATABASE IF NOT EXISTS looker_restore_check")
    try:
        early = PRIMARY.run("lookerops-appdb-restore --check /var/backups/mysql_appdb/looker-19990101T000000Z.sql.gz")
        assert early.rc != 0 and "no such dump" in early.stderr
        assert schemas(PRIMARY, "looker_restore_check") == [["1"]]
    finally:
        root_sql(PRIMARY, "SET SESSION sql_log_bin = 0; DROP DATABASE IF EXISTS looker_restore_check")


def test_scratch_restore_is_not_replicated():
    assert root_sql(REPLICA, "SELECT COUNT(*) FROM information_schema.schemata "
                             "WHERE schema_name = 'looker_restore_check'") == [["0"]]


def test_a_corrupted_dump_is_refused():
    latest = PRIMARY.run("ls -1 /var/backups/mysql_appdb/looker-*.sql.gz | sort | tail -n 1").stdout.strip()
    copy = "/var/backups/mysql_appdb/looker-19990101T000000Z.sql.gz"
    PRIMARY.run("cp {0} {1} && cp {0}.sha256 {1}.sha256 && sed -i 's/{2}/{3}/' {1}.sha256 && "
                "printf x >> {1}".format(latest, copy, os.path.basename(latest), os.path.basename(copy)))
    try:
        result = PRIMARY.run("lookerops-appdb-restore --check {}".format(copy))
        assert result.rc != 0
        assert "checksum" in result.stderr
    finally:
        PRIMARY.run("rm -f {0} {0}.sha256".format(copy))


def test_the_server_checks_a_configuration_before_it_is_installed():
    """The checker the role's template task runs (validate:) before replacing the configuration."""
    installed = PRIMARY.run("lookerops-appdb-validate-config /etc/mysql/mariadb.conf.d/90-lookerops-appdb.cnf")
    assert installed.rc == 0, installed.stderr
    for bad in ("innodb_flush_method = O_BOGUS",        # bad value of a plugin option: only logged
                "innodb_redo_log_capacity = 1G",        # MySQL 8.0.30+ only: unknown to MariaDB
                "query_cache_type = 7"):                # out of range
        PRIMARY.run("printf '[mysqld]\\n{}\\n' > /tmp/lkr-bad.cnf".format(bad))
        result = PRIMARY.run("lookerops-appdb-validate-config /tmp/lkr-bad.cnf")
        assert result.rc == 1, bad
        assert "[ERROR]" in result.stderr, (bad, result.stderr)
    PRIMARY.run("rm -f /tmp/lkr-bad.cnf")


def test_backup_retention_keeps_recent_dumps_and_the_minimum():
    """Dumps older than mysql_appdb_backup_retention_days (14) go, but never below keep_min (3)."""
    folder = "/var/backups/mysql_appdb"
    old = ["looker-2000010{}T000000Z.sql.gz".format(i) for i in range(1, 5)]
    for name in old:
        PRIMARY.run("cd {0} && echo old | gzip > {1} && sha256sum {1} > {1}.sha256 && "
                    "touch -d '30 days ago' {1} {1}.sha256".format(folder, name))
    rc, result, journal = run_backup()
    assert rc == 0 and result == "success", journal
    left = PRIMARY.run("cd {} && ls -1 looker-*.sql.gz | sort -r".format(folder)).stdout.split()
    recent = [name for name in left if name not in old]
    assert recent, left
    # Every recent dump stays; old ones only fill up to keep_min, newest first.
    kept_old = [name for name in left if name in old]
    assert kept_old == sorted(old, reverse=True)[:max(0, 3 - len(recent))], left
    for name in set(old) - set(kept_old):
        assert not PRIMARY.file("{}/{}.sha256".format(folder, name)).exists
    PRIMARY.run("cd {} && rm -f {}".format(folder, " ".join(n + " " + n + ".sha256" for n in old)))


# --- The daily check of every dump (issue 17) ---------------------------------------------------
BACKUP_DIR = "/var/backups/mysql_appdb"
BACKUP_UNIT = "lookerops-appdb-backup.service"
ALERT_LOG = "/tmp/lkr-alerts.jsonl"
# The webhook receiver the tests run on the primary (converge.yml points the alerts at it): one
# JSON line per POST, with the path it was posted to.
LISTENER = r"""
import http.server, json, sys
class Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        with open(sys.argv[1], "a", encoding="utf-8") as handle:
            handle.write(json.dumps({"path": self.path, "body": json.loads(body)}) + "\n")
        self.send_response(204)
        self.end_headers()
    def log_message(self, *args):
        pass
http.server.HTTPServer(("127.0.0.1", 8925), Handler).serve_forever()
"""


@pytest.fixture(scope="module")
def alert_listener():
    PRIMARY.run("systemctl stop lkr-alert-listener; rm -f {}".format(ALERT_LOG))
    started = PRIMARY.run("systemd-run --unit=lkr-alert-listener --collect /usr/bin/python3 -c {} {}".format(
        shlex.quote(LISTENER), ALERT_LOG))
    assert started.rc == 0, started.stderr
    probe = "python3 -c 'import socket; socket.create_connection((\"127.0.0.1\", 8925), 1)'"
    deadline = time.monotonic() + 15
    while PRIMARY.run(probe).rc != 0:
        assert time.monotonic() < deadline, PRIMARY.run("journalctl -u lkr-alert-listener --no-pager").stdout
        time.sleep(0.3)
    yield
    PRIMARY.run("systemctl stop lkr-alert-listener")


def alerts():
    lines = PRIMARY.run("cat {} 2>/dev/null".format(ALERT_LOG)).stdout.splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def unit_state(unit):
    show = PRIMARY.run("systemctl show -p ActiveState -p Result -p InvocationID -p ExecMainStatus {}".format(unit))
    return dict(line.split("=", 1) for line in show.stdout.splitlines() if "=" in line)


def run_backup(timeout=600):
    """Run the daily service once, as its timer does: (exit status, Result, journal of that run).

    Queued with --no-block and followed through systemctl show, so the figures are the unit's own,
    not those of a systemctl client waiting on the bus. The journal holds the run's output and
    systemd's lines about it (a kill, a timeout).
    """
    before = unit_state(BACKUP_UNIT).get("InvocationID")
    PRIMARY.run("systemctl reset-failed {}".format(BACKUP_UNIT))
    queued = PRIMARY.run("systemctl start --no-block {}".format(BACKUP_UNIT))
    assert queued.rc == 0, queued.stderr
    deadline = time.monotonic() + timeout
    state = unit_state(BACKUP_UNIT)
    while state.get("InvocationID") == before or state.get("ActiveState") not in ("inactive", "failed"):
        assert time.monotonic() < deadline, (state, PRIMARY.run("systemctl status --no-pager {}".format(BACKUP_UNIT)).stdout)
        time.sleep(0.5)
        state = unit_state(BACKUP_UNIT)
    invocation = state["InvocationID"]
    journal = ""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        journal = PRIMARY.run("journalctl --no-pager -o cat _SYSTEMD_INVOCATION_ID={0} + INVOCATION_ID={0}".format(
            invocation)).stdout
        if re.search(r"^backup: (OK|FAILED)", journal, re.M):
            break
        time.sleep(0.3)
    return int(state["ExecMainStatus"]), state["Result"], journal


def dumps():
    return PRIMARY.run("cd {} && ls -1 looker-*.sql.gz | sort".format(BACKUP_DIR)).stdout.split()


def last_backup():
    return json.loads(PRIMARY.file(BACKUP_DIR + "/last-backup.json").content_string)


def remove_dump(path):
    PRIMARY.run("rm -f {0} {0}.sha256 {0}.counts {0}.unusable".format(path))


def schemas(host, name):
    return root_sql(host, "SELECT COUNT(*) FROM information_schema.schemata WHERE schema_name = '{}'".format(name))


def test_the_daily_run_restore_checks_the_new_dump_and_records_it():
    root_sql(PRIMARY, "CREATE TABLE IF NOT EXISTS looker.lkr_check_a (id INT PRIMARY KEY)")
    root_sql(PRIMARY, "REPLACE INTO looker.lkr_check_a VALUES (1), (2), (3), (4), (5), (6), (7)")
    before = set(dumps())
    rc, result, journal = run_backup()
    assert rc == 0 and result == "success", journal
    new = sorted(set(dumps()) - before)
    assert len(new) == 1, new
    path = "{}/{}".format(BACKUP_DIR, new[0])
    assert "row counts recorded in {}.counts".format(new[0]) in journal
    assert not PRIMARY.file(path + ".unusable").exists

    # The counts of the restored dump, one "table count" line per table of the live database.
    counts = dict(line.rsplit(" ", 1) for line in PRIMARY.file(path + ".counts").content_string.splitlines())
    live = [t for (t,) in root_sql(PRIMARY, "SELECT table_name FROM information_schema.tables "
                                            "WHERE table_schema = 'looker' AND table_type = 'BASE TABLE'")]
    assert sorted(counts) == sorted(live)
    assert counts["lkr_check_a"] == "7"

    record = last_backup()
    assert record == {
        "dump": path,
        "bytes": int(PRIMARY.run("stat -c %s {}".format(path)).stdout),
        "sha256": PRIMARY.file(path + ".sha256").content_string.split()[0],
        "time": record["time"],
        "checked": True,
    }
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$", record["time"]), record
    assert PRIMARY.file(BACKUP_DIR + "/last-backup.json").mode == 0o600

    # A later --check of that dump compares with the recorded counts; --against-live with the database.
    check = PRIMARY.run("lookerops-appdb-restore --check {}".format(path))
    assert check.rc == 0 and "identical row counts (compared with the counts recorded" in check.stdout, check.stdout
    against_live = PRIMARY.run("lookerops-appdb-restore --check --against-live {}".format(path))
    assert against_live.rc == 0 and "identical row counts (compared with looker)" in against_live.stdout
    PRIMARY.run("cp -p {0}.counts /tmp/lkr.counts && sed -i 's/^lkr_check_a 7$/lkr_check_a 8/' {0}.counts".format(path))
    try:
        differs = PRIMARY.run("lookerops-appdb-restore --check {}".format(path))
        assert differs.rc == 1 and re.search(r"lkr_check_a +8 +7  DIFFERENT", differs.stdout), differs.stdout
    finally:
        PRIMARY.run("cp -p /tmp/lkr.counts {}.counts".format(path))
    # The scratch database is dropped after each check and never replicated.
    assert schemas(PRIMARY, "looker_restore_check") == [["0"]]
    assert schemas(REPLICA, "looker_restore_check") == [["0"]]


def test_an_upgrade_dump_is_proved_against_the_live_database():
    """mysql_appdb's entry point `dump` (the rolling upgrade, every Looker node stopped) runs the backup
    command with --against-live: one restore proves the new dump equal to the live database."""
    root_sql(PRIMARY, "CREATE TABLE IF NOT EXISTS looker.lkr_check_b (id INT PRIMARY KEY)")
    root_sql(PRIMARY, "REPLACE INTO looker.lkr_check_b VALUES (1), (2), (3)")
    run = PRIMARY.run("lookerops-appdb-backup --against-live")
    assert run.rc == 0, run.stdout + run.stderr
    path = last_backup()["dump"]
    try:
        assert last_backup()["checked"] is True
        assert "row counts recorded in {}.counts, identical to the live looker".format(Path(path).name) in run.stdout
        # Once the live database moved on, the same proof fails, naming the table; the recorded counts stay.
        counts = PRIMARY.file(path + ".counts").content_string
        root_sql(PRIMARY, "INSERT INTO looker.lkr_check_b VALUES (4)")
        differs = PRIMARY.run("lookerops-appdb-restore --record --against-live {}".format(path))
        assert differs.rc == 1
        assert "the restored dump differs from the live looker: lkr_check_b (4 live, 3 restored)" in differs.stderr
        assert PRIMARY.file(path + ".counts").content_string == counts
    finally:
        root_sql(PRIMARY, "DROP TABLE IF EXISTS looker.lkr_check_b")
        remove_dump(path)


def test_a_dump_damaged_after_it_was_written_is_reported_by_the_next_run(alert_listener):
    rc, result, journal = run_backup()
    assert rc == 0, journal
    damaged = last_backup()["dump"]
    name = os.path.basename(damaged)
    # One byte of the middle of the dump flipped, after the run wrote it and its checksum.
    flip = ("import os, sys; p = sys.argv[1]; n = os.path.getsize(p) // 2; f = open(p, 'r+b'); f.seek(n); "
            "b = f.read(1); f.seek(n); f.write(bytes([b[0] ^ 0xFF])); f.close()")
    assert PRIMARY.run("python3 -c {} {}".format(shlex.quote(flip), damaged)).rc == 0
    seen = len(alerts())
    try:
        rc, result, journal = run_backup()
        assert rc != 0 and result == "exit-code", journal
        assert PRIMARY.run("systemctl is-failed {}".format(BACKUP_UNIT)).stdout.strip() == "failed"
        marker = PRIMARY.file(damaged + ".unusable").content_string
        assert marker.startswith("checksum mismatch: {} no longer matches".format(name)), marker
        assert "{} is UNUSABLE".format(name) in journal
        # That run's own dump is fine.
        assert last_backup()["checked"] is True and last_backup()["dump"] != damaged

        # The alert, through the webhook URL of the root-only file.
        new_alerts = alerts()[seen:]
        assert len(new_alerts) == 1, new_alerts
        assert new_alerts[0]["path"] == "/lkr-alert?token=" + WEBHOOK_TOKEN
        body = new_alerts[0]["body"]
        assert body["subject"] == "[lookerops-appdb-backup] 1 unusable dump(s) of looker on lkr-mysql-primary"
        assert "{}: checksum mismatch".format(name) in body["body"] and body["host"].startswith("lkr-mysql-primary")
        assert "alert: posted to the webhook (HTTP 204)" in journal
        # The token is in that file only: not in the journal, the units or the commands.
        hook = PRIMARY.file("/etc/lookerops-appdb/alert-webhook-url")
        assert hook.user == "root" and hook.mode == 0o600 and WEBHOOK_TOKEN in hook.content_string
        everything = PRIMARY.run("journalctl --no-pager -u {} ; systemctl cat lookerops-appdb-backup.service "
                                 "lookerops-appdb-backup.timer; cat /usr/local/sbin/lookerops-appdb-*".format(BACKUP_UNIT))
        assert WEBHOOK_TOKEN not in everything.stdout

        # Refused by the restore command, --force or not.
        for force in ("", "--force "):
            refused = PRIMARY.run("lookerops-appdb-restore --into lkr_refused {}{}".format(force, damaged))
            assert refused.rc == 1, refused.stdout
            assert "{}.unusable".format(damaged) in refused.stderr and "checksum mismatch" in refused.stderr
            assert "--force does not override" in refused.stderr
        assert schemas(PRIMARY, "lkr_refused") == [["0"]]

        # Reported once: the next run passes, the dump stays marked.
        rc, result, journal = run_backup()
        assert rc == 0 and result == "success", journal
        assert PRIMARY.file(damaged + ".unusable").exists
    finally:
        remove_dump(damaged)
        PRIMARY.run("systemctl reset-failed {}".format(BACKUP_UNIT))


def test_a_dump_that_does_not_restore_is_marked_unusable(alert_listener):
    # A row its table's CHECK constraint refuses, written with the checks off (not replicated): the
    # server holds and dumps it, but refuses it when the dump is restored.
    root_sql(PRIMARY, "SET SESSION sql_log_bin = 0; "
                      "CREATE TABLE looker.lkr_unrestorable (v INT, CONSTRAINT lkr_positive CHECK (v > 0)); "
                      "SET SESSION check_constraint_checks = 0; INSERT INTO looker.lkr_unrestorable VALUES (-1)")
    before = set(dumps())
    seen = len(alerts())
    new = []
    try:
        rc, result, journal = run_backup()
        assert rc != 0 and result == "exit-code", journal
        new = sorted(set(dumps()) - before)
        assert len(new) == 1, new
        path = "{}/{}".format(BACKUP_DIR, new[0])
        marker = PRIMARY.file(path + ".unusable").content_string
        assert marker.startswith("the restore check failed: ") and "lkr_positive" in marker, marker
        assert not PRIMARY.file(path + ".counts").exists
        record = last_backup()
        assert record["dump"] == path and record["checked"] is False, record
        new_alerts = alerts()[seen:]
        assert len(new_alerts) == 1 and "{}: the restore check failed".format(new[0]) in new_alerts[0]["body"]["body"]
        assert schemas(PRIMARY, "looker_restore_check") == [["0"]]
        # Without a dump named, the restore command takes the newest usable one.
        check = PRIMARY.run("lookerops-appdb-restore --check")
        assert "skipping {}, marked unusable".format(path) in check.stderr, check.stderr
        assert check.rc == 0 and path not in check.stdout, check.stdout
    finally:
        root_sql(PRIMARY, "SET SESSION sql_log_bin = 0; DROP TABLE IF EXISTS looker.lkr_unrestorable")
        for name in new:
            remove_dump("{}/{}".format(BACKUP_DIR, name))
        PRIMARY.run("systemctl reset-failed {}".format(BACKUP_UNIT))


def test_retention_removes_the_side_files_and_never_counts_an_unusable_dump():
    """keep_min (3) counts usable dumps only: old usable dumps stay until 3 usable remain."""
    old = ["looker-2001010{}T000000Z.sql.gz".format(i) for i in range(1, 6)]
    unusable = old[4]   # the newest of the old ones
    recent = [name for name in dumps() if name not in old]
    PRIMARY.run("cd {} && rm -f {}".format(BACKUP_DIR, " ".join(recent) + " " + " ".join(n + ".*" for n in recent)))
    try:
        for name in old:
            PRIMARY.run("cd {0} && echo old | gzip > {1} && sha256sum {1} > {1}.sha256 && echo 't 1' > {1}.counts && "
                        "touch -d '30 days ago' {1} {1}.sha256 {1}.counts".format(BACKUP_DIR, name))
        PRIMARY.run("cd {0} && echo 'marked by hand' > {1}.unusable && touch -d '30 days ago' {1}.unusable".format(
            BACKUP_DIR, unusable))
        rc, result, journal = run_backup()
        assert rc == 0, journal
        left = dumps()
        # The new dump and the two newest usable old ones make 3; the unusable one is old: removed.
        assert sorted(set(left) & set(old)) == old[2:4], left
        assert len(left) == 3, left
        for name in old[:2] + [unusable]:
            for suffix in ("", ".sha256", ".counts", ".unusable"):
                assert not PRIMARY.file("{}/{}{}".format(BACKUP_DIR, name, suffix)).exists, name + suffix
    finally:
        PRIMARY.run("cd {} && rm -f {}".format(BACKUP_DIR, " ".join(n + " " + n + ".*" for n in old)))


def test_rotated_passwords_show_neither_old_nor_new_under_diff_and_vvv():
    """Last: a converge with --diff and -vvv (every module's arguments and results printed) that rotates
    the Looker and read-only passwords changes the accounts, and its output shows no test secret, old
    or new. (The replication password stays: a replica connected with it would lose the primary.)"""
    sys.path.insert(0, str(SCENARIO.parents[0] / "shared"))
    import secret_scan  # pylint: disable=import-outside-toplevel

    old = secret_scan.declared_secrets(SCENARIO)
    new = {name: value + "-Rotated-q7" for name, value in old.items() if name != "mysql_appdb_replication_password"}
    assert len(old) == 3 and len(new) == 2
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "ansible-playbook"), "-i", os.environ["MOLECULE_INVENTORY_FILE"],
         str(SCENARIO / "converge.yml"), "--diff", "-vvv", "-e", json.dumps(new)],
        cwd=SCENARIO, capture_output=True, text=True, check=False, env=dict(os.environ, ANSIBLE_NOCOLOR="1"))
    output = proc.stdout + proc.stderr
    leaked = secret_scan.shown({**old, **{name + " (rotated)": value for name, value in new.items()}}, output)
    assert proc.returncode == 0 and not leaked, f"rc {proc.returncode}, test secrets shown: {leaked}"
    assert re.search(r"lkr-mysql-primary\s+: ok=\d+\s+changed=[1-9]", output), "the rotation changed nothing"
    assert remote_sql(NODE, "lkr-mysql-primary", "looker", new["mysql_appdb_looker_password"], "SELECT 1")["ok"]
