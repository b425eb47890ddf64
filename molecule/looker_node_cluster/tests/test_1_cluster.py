"""Two clustered Looker nodes after playbooks/migrate_to_cluster.yml: the running processes' real
flags, the database registry, health, shared storage, files and modes. The nodes run the Looker
stand-in (tests/standin), not Looker."""
import json
import sys
import urllib.parse
from pathlib import Path

import pytest
import testinfra

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "looker_node_shared"))
import looker_node_testlib as lib  # noqa: E402  pylint: disable=wrong-import-position

SECRETS = lib.scenario_vars("all")
A = testinfra.get_host("podman://lkr-node-a")
B = testinfra.get_host("podman://lkr-node-b")
DB = testinfra.get_host("podman://lkr-node-db")
NODES = {"lkr-node-a": A, "lkr-node-b": B}
INSTALL = "/home/looker/looker"
SHARE = "/mnt/looker-share"


def args_of(host):
    return lib.looker_args(lib.cmdline(host, lib.main_pid(host)))


def value_after(args, flag):
    return args[args.index(flag) + 1]


def standin_state(host, name):
    """The stand-in's test-only introspection (/availability is a status code only, as in Looker)."""
    answer = lib.http(host, f"https://{name}:9999/standin/state")
    assert answer["status"] == 200, answer
    return json.loads(answer["body"])


@pytest.mark.parametrize("name", NODES)
def test_each_node_runs_clustered_with_its_own_address(name):
    host = NODES[name]
    assert host.service("looker").is_running and host.service("looker").is_enabled
    looker = args_of(host)[1]
    assert looker[0] == "--no-daemonize"
    assert "--clustered" in looker
    assert value_after(looker, "-H") == name
    assert value_after(looker, "-n") == "1551" and value_after(looker, "-q") == "61616"
    assert value_after(looker, "--shared-storage-dir") == SHARE
    assert value_after(looker, "--internal-analytics-connection-file") == "looker-usage-db.yml"
    assert "--port=9999" in looker and "--core-port=19999" in looker
    assert not [a for a in looker if a.startswith("--ssl-provided-externally-by")]


def test_scheduler_threads_and_render_jobs_follow_each_nodes_role():
    a = args_of(A)[1]
    b = args_of(B)[1]
    assert "--scheduler-threads=4" in a and "--concurrent-render-jobs=0" in a
    assert "--scheduler-threads=0" in b and "--concurrent-render-jobs=1" in b
    a_state, b_state = standin_state(A, "lkr-node-a"), standin_state(B, "lkr-node-b")
    assert a_state["scheduler"]["threads"] == 4 and a_state["scheduler"]["status"] == "ok"
    assert b_state["scheduler"]["threads"] == 0 and b_state["scheduler"]["status"] == "disabled"
    assert a_state["render"]["status"] == "disabled"
    assert b_state["render"]["status"] == "ok" and b_state["render"]["chromium"]


def test_heap_is_sized_by_the_60_percent_rule_less_the_render_budget():
    a = args_of(A)[0]
    b = args_of(B)[0]
    # looker_node_memory_mb 4096: 60% = 2457 MB; with one render job: 80% - 2048 MB = 1228 MB.
    assert "-Xms2457m" in a and "-Xmx2457m" in a
    assert "-Xms1228m" in b and "-Xmx1228m" in b
    for jvm in (a, b):
        assert "-XX:MaxMetaspaceSize=800m" in jvm and "-XX:+UseG1GC" in jvm and "-XX:MaxGCPauseMillis=2000" in jvm
        assert any(arg.startswith(f"-Xlog:gc*:file={INSTALL}/log/gc.log") for arg in jvm)
        assert not [arg for arg in jvm if "jmxremote" in arg]


def test_proxy_settings_bypass_every_node():
    for host in NODES.values():
        jvm = args_of(host)[0]
        assert "-Dhttp.proxyHost=127.0.0.1" in jvm and "-Dhttps.proxyHost=127.0.0.1" in jvm
        assert "-Dhttp.proxyPort=3128" in jvm and "-Dhttps.proxyPort=3128" in jvm
        bypass = [arg for arg in jvm if arg.startswith("-Dhttp.nonProxyHosts=")]
        assert len(bypass) == 1
        assert set(bypass[0].split("=", 1)[1].split("|")) == {"localhost", "127.0.0.1", "lkr-node-a", "lkr-node-b"}


def test_database_credentials_from_a_file_on_a_and_from_looker_db_on_b():
    a = args_of(A)[1]
    b = args_of(B)[1]
    assert value_after(a, "-d") == "looker-db.yml"
    assert "-d" not in b
    creds = A.file(f"{INSTALL}/looker-db.yml")
    assert (creds.user, creds.group, creds.mode) == ("looker", "looker", 0o600)
    text = creds.content_string
    assert "dialect: mysql" in text and '"lkr-node-db"' in text and '"looker"' in text
    assert f'password: "{SECRETS["vault_looker_db_password"]}"' in text
    assert "LOOKER_DB" not in lib.environ(A, lib.main_pid(A))
    assert not B.file(f"{INSTALL}/looker-db.yml").exists
    env_file = B.file("/etc/default/looker-db")
    assert (env_file.user, env_file.mode) == ("root", 0o600)
    looker_db = lib.environ(B, lib.main_pid(B))["LOOKER_DB"]
    fields = dict(urllib.parse.parse_qsl(looker_db))
    assert fields == {"dialect": "mysql", "host": "lkr-node-db", "port": "3306", "username": "looker",
                      "password": SECRETS["vault_looker_db_password"], "database": "looker"}
    assert not A.file("/etc/default/looker-db").exists


def test_read_replica_for_system_activity():
    for name, host in NODES.items():
        usage = host.file(f"{INSTALL}/looker-usage-db.yml")
        assert (usage.user, usage.mode) == ("looker", 0o600)
        assert '"lkr-node-db2"' in usage.content_string and '"looker_ro"' in usage.content_string
        assert standin_state(host, name)["analytics_database"]["status"] == "ok"


def test_same_master_key_on_every_node():
    for host in NODES.values():
        key = host.file(f"{INSTALL}/.lkr_master_key")
        assert (key.user, key.mode) == ("looker", 0o600)
        assert key.content_string.strip() == SECRETS["vault_looker_master_key"]
        assert lib.environ(host, lib.main_pid(host))["LKR_MASTER_KEY_FILE"] == f"{INSTALL}/.lkr_master_key"


@pytest.mark.parametrize("name", NODES)
def test_alive_on_each_node_from_both_nodes(name):
    for client in NODES.values():
        assert lib.http(client, f"https://{name}:9999/alive")["status"] == 200


def test_both_nodes_registered_in_the_application_database():
    rows = DB.check_output("mysql -N -B -e \"SELECT hostname, state, version FROM standin_nodes ORDER BY hostname\" looker")
    registry = [line.split("\t") for line in rows.splitlines()]
    assert registry == [["lkr-node-a", "running", "25.6.12"], ["lkr-node-b", "running", "25.6.12"]]


def test_nodes_reach_each_other_and_are_healthy():
    for name, host in NODES.items():
        state = standin_state(host, name)
        assert state["clustered"] is True and state["healthy"] is True, state
        assert lib.http(host, f"https://{name}:9999/availability")["status"] == 200
        peers = {p["hostname"]: p for p in state["peers"]}
        other = "lkr-node-b" if name == "lkr-node-a" else "lkr-node-a"
        assert peers[other]["node_to_node"]["reachable"] and peers[other]["queue_broker"]["reachable"]


def test_a_model_written_through_a_is_read_through_b():
    body = "view: written_through_a { dimension: id {} }"
    written = lib.http(A, "https://lkr-node-a:9999/standin/models/shop/through_a.view.lkml", "PUT", body)
    assert written["status"] == 201, written
    read = lib.http(B, "https://lkr-node-b:9999/standin/models/shop/through_a.view.lkml")
    assert read == {"status": 200, "body": body}
    assert B.file(f"{SHARE}/models/shop/through_a.view.lkml").content_string == body


def test_the_single_nodes_data_survived_the_migration():
    records = json.loads(lib.http(B, "https://lkr-node-b:9999/standin/records")["body"])
    assert "before-migration" in [r["uid"] for r in records["records"]]
    model = lib.http(B, "https://lkr-node-b:9999/standin/models/shop/before.view.lkml")
    assert model == {"status": 200, "body": "view: before_migration {}\n"}
    assert A.file(f"{INSTALL}/.db.migrated/looker.script").exists
    assert not A.file(f"{INSTALL}/.db").exists
    backup = A.file(f"{INSTALL}/.db-before-mysql.tar.gz")
    assert (backup.user, backup.mode) == ("root", 0o600)
    assert not A.file(f"{INSTALL}/.deploying").exists


def test_chromium_only_on_the_render_node():
    assert B.package("chromium").is_installed
    assert not A.package("chromium").is_installed
    for host in NODES.values():
        assert host.package("openjdk-17-jre-headless").is_installed


@pytest.mark.parametrize(
    "path, mode, owner",
    [
        (INSTALL, 0o750, "looker"),
        (f"{INSTALL}/looker", 0o755, "looker"),
        (f"{INSTALL}/lookerstart.cfg", 0o644, "looker"),
        (f"{INSTALL}/looker.jar", 0o644, "looker"),
        (f"{INSTALL}/looker-dependencies.jar", 0o644, "looker"),
        (f"{INSTALL}/.looker-jars.json", 0o644, "looker"),
        ("/etc/systemd/system/looker.service", 0o644, "root"),
    ],
)
def test_files_and_modes(path, mode, owner):
    for host in NODES.values():
        f = host.file(path)
        assert f.exists and f.mode == mode and f.user == owner, (path, oct(f.mode), f.user)
        assert not host.file(f"{INSTALL}/.lookerops-restart-pending").exists


def test_user_ids_match_on_nodes_and_share():
    for host in NODES.values():
        user = host.user("looker")
        assert (user.uid, user.gid) == (9000, 9000)
    assert A.file(f"{SHARE}/models").uid == 9000
