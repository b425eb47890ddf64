"""The mysql_appdb templates rendered with the role's own defaults and derived vars, on the controller.

MySQL 8.0/8.4 cannot run in the sandbox (Debian packages MariaDB only), so the MySQL paths are
proven here by rendering: one ansible-playbook run loads roles/mysql_appdb/defaults and vars with
include_vars, injects each case's facts, options and installed server version, and runs the
template module on the role's templates into a temporary directory. The MariaDB path is rendered
here too, and runs for real in molecule/mysql_appdb.
"""
import configparser
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
ROLE = ROOT / "roles" / "mysql_appdb"

FACTS = {"os_family": "Debian", "distribution": "Debian", "distribution_release": "bookworm",
         "service_mgr": "systemd", "memtotal_mb": 16384, "processor_vcpus": 4,
         "default_ipv4": {"address": "10.0.0.5"}}

# case -> (groups, options, facts, installed server version or "" for a fresh host)
CASES = {
    "mysql84": (["looker_appdb_primary"], {"mysql_appdb_mysql_version": "8.4"}, {}, ""),
    "mysql84_installed": (["looker_appdb_primary"], {"mysql_appdb_mysql_version": "8.4"}, {}, "8.4.3"),
    "mysql80": (["looker_appdb_primary"], {"mysql_appdb_mysql_version": "8.0"}, {}, "8.0.39"),
    "mysql80_fresh": (["looker_appdb_primary"], {"mysql_appdb_mysql_version": "8.0"}, {}, ""),
    "mysql8028": (["looker_appdb_primary"], {"mysql_appdb_mysql_version": "8.0"}, {}, "8.0.28"),
    "mysql8025": (["looker_appdb_primary"], {"mysql_appdb_mysql_version": "8.0"}, {}, "8.0.25"),
    "mariadb": (["looker_appdb_primary"], {"mysql_appdb_flavour": "mariadb"}, {}, "10.11.18"),
    "replica84": (["looker_appdb_replica"], {"mysql_appdb_mysql_version": "8.4"}, {}, "8.4.3"),
    "replica_mariadb": (["looker_appdb_replica"], {"mysql_appdb_flavour": "mariadb"}, {}, "10.11.18"),
    "big84": (["looker_appdb_primary"], {"mysql_appdb_mysql_version": "8.4"},
              {"memtotal_mb": 65536, "processor_vcpus": 16}, "8.4.3"),
    "small84": (["looker_appdb_primary"], {"mysql_appdb_mysql_version": "8.4"},
                {"memtotal_mb": 2048, "processor_vcpus": 1}, "8.4.3"),
    "explicit84": (["looker_appdb_primary"], {
        "mysql_appdb_buffer_pool_size_mb": 3000, "mysql_appdb_redo_log_size_mb": 512,
        "mysql_appdb_io_capacity": 700, "mysql_appdb_io_capacity_max": 1400,
        "mysql_appdb_thread_concurrency": 12, "mysql_appdb_extra_settings": {"long_query_time": 2}}, {}, "8.4.3"),
    "tls84": (["looker_appdb_primary"], {"mysql_appdb_tls": True}, {}, "8.4.3"),
}
TEMPLATES = ["appdb.cnf", "backup.sh", "restore.sh", "validate-config.sh"]


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    """Render every template for every case in one ansible-playbook run; return case -> {template: text}."""
    tmp = tmp_path_factory.mktemp("mysql_appdb_render")
    hosts = {}
    for case, (groups, options, facts, _version) in CASES.items():
        for group in groups + ["looker_nodes"]:
            hosts.setdefault(group, {"hosts": {}})
        hosts[groups[0]]["hosts"][case] = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    hosts["looker_nodes"]["hosts"]["node1"] = {"ansible_connection": "local"}
    (tmp / "inventory.yml").write_text(yaml.safe_dump({"all": {"children": hosts}}))
    for case, (_groups, options, _facts, _version) in CASES.items():
        (tmp / f"options-{case}.yml").write_text(yaml.safe_dump(options))
    play = [{
        "name": "Render the mysql_appdb templates",
        "hosts": "all:!node1:!localhost",
        "gather_facts": False,
        "vars": {"cases": {c: {"facts": dict(FACTS, **f), "version": v} for c, (_g, _o, f, v) in CASES.items()}},
        "tasks": [
            {"name": "Role defaults", "ansible.builtin.include_vars": str(ROLE / "defaults" / "main.yml")},
            {"name": "Role vars", "ansible.builtin.include_vars": str(ROLE / "vars" / "main.yml")},
            # Loaded after the defaults, so a case's options win (same precedence, last one wins).
            {"name": "Case options", "ansible.builtin.include_vars": str(tmp) + "/options-{{ inventory_hostname }}.yml"},
            {"name": "Case facts and installed server version", "ansible.builtin.set_fact": {
                "ansible_facts": "{{ cases[inventory_hostname].facts }}",
                "__mysql_appdb_installed_version": "{{ cases[inventory_hostname].version }}"}},
            {"name": "Render", "ansible.builtin.template": {
                "src": str(ROLE / "templates") + "/{{ item }}.j2",
                "dest": str(tmp) + "/{{ inventory_hostname }}-{{ item }}", "mode": "0600"},
             "loop": TEMPLATES},
        ],
    }]
    (tmp / "play.yml").write_text(yaml.safe_dump(play, sort_keys=False))
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_COLLECTIONS_PATH=str(ROOT / ".collections"),
               ANSIBLE_NOCOLOR="1", ANSIBLE_CACHE_PLUGIN="memory", ANSIBLE_PYTHON_INTERPRETER=sys.executable)
    args = [str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(tmp / "inventory.yml"),
            "-e", "looker_admin_networks=[]", str(tmp / "play.yml")]
    proc = subprocess.run(args, cwd=tmp, env=env, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return {case: {t: (tmp / f"{case}-{t}").read_text() for t in TEMPLATES} for case in CASES}


def mysqld(text):
    """The [mysqld] section as a dict (the server reads the file the same way)."""
    parser = configparser.ConfigParser(allow_no_value=True, interpolation=None, strict=True)
    parser.optionxform = str
    parser.read_string(text)
    assert parser.sections() == ["mysqld"]
    return dict(parser["mysqld"])


def test_every_config_starts_with_the_managed_header(rendered):
    for case, files in rendered.items():
        assert files["appdb.cnf"].startswith("#"), case
        assert "Ansible managed" in files["appdb.cnf"].splitlines()[1], case


def test_mysql_84_turns_mysql_native_password_on(rendered):
    for case in ("mysql84", "mysql84_installed"):
        conf = mysqld(rendered[case]["appdb.cnf"])
        assert conf["mysql_native_password"] == "ON"
        # 8.4 removed default_authentication_plugin: the server would refuse to start with it.
        assert "default_authentication_plugin" not in conf


def test_mysql_80_sets_the_default_authentication_plugin(rendered):
    for case in ("mysql80", "mysql80_fresh", "mysql8028"):
        conf = mysqld(rendered[case]["appdb.cnf"])
        assert conf["default_authentication_plugin"] == "mysql_native_password"
        assert "mysql_native_password" not in conf


def test_redo_log_capacity_from_8_0_30_log_file_size_before(rendered):
    # 16 GB x 0.6 = 9830 MB -> 9 instances -> multiple of 1152 MB = 9216 MB; redo 25% = 2304 MB.
    for case in ("mysql84", "mysql84_installed", "mysql80", "mysql80_fresh"):
        conf = mysqld(rendered[case]["appdb.cnf"])
        assert conf["innodb_redo_log_capacity"] == "2304M", case
        assert "innodb_log_file_size" not in conf and "innodb_log_files_in_group" not in conf, case
    old = mysqld(rendered["mysql8028"]["appdb.cnf"])
    assert "innodb_redo_log_capacity" not in old
    assert old["innodb_log_files_in_group"] == "2"
    assert old["innodb_log_file_size"] == "1152M"  # two files = 25% of the pool


def test_replica_updates_option_name_follows_the_version(rendered):
    assert mysqld(rendered["mysql8028"]["appdb.cnf"])["log_replica_updates"] == "ON"
    assert mysqld(rendered["mysql84"]["appdb.cnf"])["log_replica_updates"] == "ON"
    assert mysqld(rendered["mysql8025"]["appdb.cnf"])["log_slave_updates"] == "ON"
    assert "log_replica_updates" not in mysqld(rendered["mysql8025"]["appdb.cnf"])
    assert mysqld(rendered["mariadb"]["appdb.cnf"])["log_slave_updates"] == "ON"


def test_no_query_cache_on_mysql_8_but_disabled_on_mariadb(rendered):
    for case in CASES:
        conf = mysqld(rendered[case]["appdb.cnf"])
        if case.startswith(("mariadb", "replica_mariadb")):
            assert conf["query_cache_type"] == "0" and conf["query_cache_size"] == "0", case
        else:
            # MySQL 8.0 removed the query cache and refuses to start with query_cache_* settings.
            assert not [k for k in conf if k.startswith("query_cache")], case


def test_utf8mb4_and_innodb_are_enforced(rendered):
    for case in CASES:
        conf = mysqld(rendered[case]["appdb.cnf"])
        assert conf["character_set_server"] == "utf8mb4"
        assert conf["collation_server"] == "utf8mb4_general_ci"
        assert conf["default_storage_engine"] == "InnoDB"
        if CASES[case][1].get("mysql_appdb_flavour") == "mariadb":
            assert conf["enforce_storage_engine"] == "InnoDB" and "disabled_storage_engines" not in conf
        else:
            assert conf["disabled_storage_engines"] == '"MyISAM,BLACKHOLE,FEDERATED,ARCHIVE"'
            assert "enforce_storage_engine" not in conf


def test_fixed_innodb_settings_from_the_tuning_guide(rendered):
    for case in CASES:
        conf = mysqld(rendered[case]["appdb.cnf"])
        assert conf["innodb_flush_log_at_trx_commit"] == "1"
        assert conf["innodb_flush_method"] == "O_DIRECT"
        assert conf["innodb_file_per_table"] == "ON"
        assert conf["innodb_stats_on_metadata"] == "OFF"
        assert conf["join_buffer_size"] == "512K"
        assert conf["tmp_table_size"] == conf["max_heap_table_size"] == "32M"
        assert conf["table_open_cache"] == "2048"
        assert conf["table_open_cache_instances"] == "16"
        assert conf["skip_name_resolve"] == "ON"
        assert conf["sync_binlog"] == "1"


def test_mysql_only_options(rendered):
    mysql = mysqld(rendered["mysql84"]["appdb.cnf"])
    assert mysql["gtid_mode"] == "ON" and mysql["enforce_gtid_consistency"] == "ON"
    assert mysql["innodb_buffer_pool_instances"] == "9"
    assert mysql["innodb_thread_concurrency"] == "8"  # 2 x 4 vCPUs
    assert mysql["log_bin"] == "binlog"
    maria = mysqld(rendered["mariadb"]["appdb.cnf"])
    # MariaDB 10.6+ removed these (it sizes them itself); GTIDs are always on there.
    for key in ("innodb_buffer_pool_instances", "innodb_thread_concurrency", "gtid_mode", "mysql_native_password",
                "default_authentication_plugin", "innodb_redo_log_capacity", "super_read_only"):
        assert key not in maria, key
    assert maria["binlog_format"] == "ROW" and maria["gtid_strict_mode"] == "ON"
    assert maria["innodb_log_file_size"] == "2304M"  # one redo file = 25% of the 9216 MB pool


def test_replicas_are_read_only(rendered):
    mysql = mysqld(rendered["replica84"]["appdb.cnf"])
    assert mysql["read_only"] == "ON" and mysql["super_read_only"] == "ON"
    maria = mysqld(rendered["replica_mariadb"]["appdb.cnf"])
    assert maria["read_only"] == "ON" and "super_read_only" not in maria
    for primary in ("mysql84", "mariadb"):
        assert "read_only" not in mysqld(rendered[primary]["appdb.cnf"])


def test_sizing_from_facts_on_a_64_gb_host(rendered):
    conf = mysqld(rendered["big84"]["appdb.cnf"])
    pool = int(conf["innodb_buffer_pool_size"].rstrip("M"))
    instances = int(conf["innodb_buffer_pool_instances"])
    assert 0.5 * 65536 <= pool <= 0.7 * 65536
    assert pool // instances >= 1024  # each instance holds at least 1 GB
    assert pool % (128 * instances) == 0  # what the server would round to anyway
    assert (pool, instances) == (38912, 38)
    assert conf["innodb_redo_log_capacity"] == f"{pool // 4}M"
    assert conf["innodb_thread_concurrency"] == "32"  # 2 x 16 vCPUs, within 1x..4x
    assert conf["innodb_io_capacity"] == "1250" and conf["innodb_io_capacity_max"] == "2000"


def test_sizing_on_a_small_host(rendered):
    conf = mysqld(rendered["small84"]["appdb.cnf"])
    # 2048 x 0.6 = 1228 MB -> one instance, 128 MB multiple: 1152 MB.
    assert conf["innodb_buffer_pool_size"] == "1152M"
    assert conf["innodb_buffer_pool_instances"] == "1"
    assert conf["innodb_redo_log_capacity"] == "288M"
    assert conf["innodb_thread_concurrency"] == "2"


def test_explicit_sizing_overrides(rendered):
    conf = mysqld(rendered["explicit84"]["appdb.cnf"])
    # 3000 MB: 2 instances (>= 1 GB each), rounded down to a multiple of 256 MB.
    assert conf["innodb_buffer_pool_size"] == "2816M"
    assert conf["innodb_buffer_pool_instances"] == "2"
    assert conf["innodb_redo_log_capacity"] == "512M"
    assert conf["innodb_io_capacity"] == "700" and conf["innodb_io_capacity_max"] == "1400"
    assert conf["innodb_thread_concurrency"] == "12"
    assert conf["long_query_time"] == "2"


def test_tls_requires_secure_transport(rendered):
    conf = mysqld(rendered["tls84"]["appdb.cnf"])
    assert conf["require_secure_transport"] == "ON"
    assert conf["ssl_ca"] == "/etc/mysql/lookerops-tls/ca.pem"
    assert conf["ssl_cert"] == "/etc/mysql/lookerops-tls/server-cert.pem"
    assert conf["ssl_key"] == "/etc/mysql/lookerops-tls/server-key.pem"
    assert "require_secure_transport" not in mysqld(rendered["mysql84"]["appdb.cnf"])


def test_server_ids_are_stable_and_distinct(rendered):
    ids = {case: mysqld(files["appdb.cnf"])["server_id"] for case, files in rendered.items()}
    assert len(set(ids.values())) == len(ids)
    assert all(0 < int(i) < 2**32 for i in ids.values())


def test_config_validation_command_per_flavour(rendered):
    mysql = rendered["mysql84"]["validate-config.sh"]
    assert re.search(r'exec /usr/sbin/mysqld --defaults-extra-file="\$file" --user=mysql --validate-config', mysql)
    maria = rendered["mariadb"]["validate-config.sh"]
    assert "--user=mysql --validate-config" not in maria
    assert '/usr/sbin/mariadbd --defaults-extra-file="$file" --user=mysql --help --verbose' in maria
    assert "grep -F '[ERROR]'" in maria


def test_backup_dump_command_per_flavour(rendered):
    mysql = rendered["mysql84"]["backup.sh"]
    assert "mysqldump --single-transaction" in mysql
    # A scratch restore must not carry the primary's GTID set.
    assert "--set-gtid-purged=OFF" in mysql
    maria = rendered["mariadb"]["backup.sh"]
    assert "mariadb-dump --single-transaction" in maria and "--set-gtid-purged" not in maria
    for files in (rendered["mysql84"], rendered["mariadb"]):
        assert "| gzip -6" in files["backup.sh"] and "sha256sum" in files["backup.sh"]
        assert "sha256sum --quiet -c" in files["restore.sh"]
        assert "SET SESSION sql_log_bin = 0;" in files["restore.sh"]


@pytest.mark.parametrize("script", ["backup.sh", "restore.sh", "validate-config.sh"])
def test_rendered_scripts_are_valid_shell(rendered, script, tmp_path):
    for case in ("mysql84", "mariadb"):
        path = tmp_path / f"{case}-{script}"
        path.write_text(rendered[case][script])
        shell = "sh" if script == "validate-config.sh" else "bash"
        assert subprocess.run([shell, "-n", str(path)], capture_output=True, check=False).returncode == 0
        if shutil.which("shellcheck"):
            check = subprocess.run(["shellcheck", "-s", shell, str(path)], capture_output=True, text=True, check=False)
            assert check.returncode == 0, check.stdout


@pytest.mark.parametrize("script", ["backup.sh", "restore.sh"])
def test_the_backup_units_scripts_leave_no_process_behind(rendered, script):
    # bash does not wait for a process substitution: one still exiting when the script ends stays in
    # the unit's cgroup, and systemd then timed out stopping lookerops-appdb-backup.service (90 s,
    # result 'timeout') although the backup had succeeded.
    for case in ("mysql84", "mariadb"):
        code = "\n".join(line for line in rendered[case][script].splitlines() if not line.lstrip().startswith("#"))
        assert "<(" not in code and ">(" not in code, f"{case} {script} uses a process substitution"
