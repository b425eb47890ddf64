"""mysql_appdb on live sandbox hosts: what a Looker operator would check on the database tier.

Hosts: lkr-mysql-primary (looker_appdb_primary), lkr-mysql-replica (looker_appdb_replica),
lkr-mysql-node (looker_nodes: allowed) and lkr-mysql-outsider (in no Looker group: refused).
Both database hosts run MariaDB (the sandbox cannot install MySQL 8); TLS is on.
"""
import functools
import json
import os
import shlex
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
    run = PRIMARY.run("systemctl start lookerops-appdb-backup.service")
    assert run.rc == 0, PRIMARY.run("journalctl -u lookerops-appdb-backup --no-pager -n 30").stdout
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
    PRIMARY.run("mariadb -e 'DROP DATABASE lkr_restored'")


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
    assert PRIMARY.run("systemctl start lookerops-appdb-backup.service").rc == 0
    left = PRIMARY.run("cd {} && ls -1 looker-*.sql.gz | sort -r".format(folder)).stdout.split()
    recent = [name for name in left if name not in old]
    assert recent, left
    # Every recent dump stays; old ones only fill up to keep_min, newest first.
    kept_old = [name for name in left if name in old]
    assert kept_old == sorted(old, reverse=True)[:max(0, 3 - len(recent))], left
    for name in set(old) - set(kept_old):
        assert not PRIMARY.file("{}/{}.sha256".format(folder, name)).exists
    PRIMARY.run("cd {} && rm -f {}".format(folder, " ".join(n + " " + n + ".sha256" for n in old)))
