"""A single Looker node (embedded database, offline jars, JMX): what runs, the files, check mode,
and a change of release. The node runs the Looker stand-in (tests/standin), not Looker."""
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "looker_node_shared"))
import looker_node_testlib as lib  # noqa: E402  pylint: disable=wrong-import-position

VARS = lib.scenario_vars()
INSTALL = "/home/looker/looker"
NODE = "lkr-node-solo"


@pytest.fixture(scope="module")
def node(host):
    return host


def test_service_runs_as_looker_and_is_enabled(node):
    service = node.service("looker")
    assert service.is_running and service.is_enabled
    pid = lib.main_pid(node)
    assert node.check_output(f"ps -o user= -p {pid}") == "looker"
    assert node.check_output(f"ps -o comm= -p {pid}") == "java"


def test_running_process_has_the_single_node_flags(node):
    jvm, looker = lib.looker_args(lib.cmdline(node, lib.main_pid(node)))
    # 60% of looker_node_memory_mb (3072), no render budget on a non-render node.
    assert "-Xms1843m" in jvm and "-Xmx1843m" in jvm
    assert "-XX:MaxMetaspaceSize=800m" in jvm
    assert "-XX:+UseG1GC" in jvm and "-XX:MaxGCPauseMillis=2000" in jvm
    assert f"-Xlog:gc*:file={INSTALL}/log/gc.log:time,uptime,level,tags:filecount=7,filesize=10m" in jvm
    assert "-Dcom.sun.management.jmxremote.authenticate=true" in jvm
    assert "-Dcom.sun.management.jmxremote.port=9910" in jvm
    assert not [a for a in jvm if "proxy" in a.lower()]
    assert looker[0] == "--no-daemonize"
    assert "--scheduler-threads=3" in looker
    assert "--concurrent-render-jobs=0" in looker
    assert "--port=9999" in looker and "--core-port=19999" in looker
    for flag in ("--clustered", "-H", "-d", "--shared-storage-dir", "--internal-analytics-connection-file"):
        assert flag not in looker, looker
    env = lib.environ(node, lib.main_pid(node))
    assert env["LKR_MASTER_KEY_FILE"] == f"{INSTALL}/.lkr_master_key"
    assert "LOOKER_DB" not in env


def test_alive_and_the_installed_release(node):
    assert lib.http(node, f"https://{NODE}:9999/alive")["status"] == 200
    versions = lib.http(node, f"https://{NODE}:19999/api/4.0/versions")
    assert versions["status"] == 200
    assert '"looker_release_version":"25.6.12"' in versions["body"].replace(" ", "")
    record = node.file(f"{INSTALL}/.looker-jars.json")
    assert '"version": "25.6.12"' in record.content_string
    assert lib.http(node, f"https://{NODE}:9999/availability")["status"] == 200  # a status code, nothing to parse
    state = lib.http(node, f"https://{NODE}:9999/standin/state")["body"]  # the stand-in's test-only introspection
    assert '"kind":"embedded"' in state.replace(" ", "")


def test_jmx_listens(node):
    assert node.socket("tcp://0.0.0.0:9910").is_listening or node.socket("tcp://:::9910").is_listening


@pytest.mark.parametrize(
    "path, mode, owner",
    [
        (INSTALL, 0o750, "looker"),
        (f"{INSTALL}/looker", 0o755, "looker"),
        (f"{INSTALL}/lookerstart.cfg", 0o644, "looker"),
        (f"{INSTALL}/looker.jar", 0o644, "looker"),
        (f"{INSTALL}/looker-dependencies.jar", 0o644, "looker"),
        (f"{INSTALL}/.lkr_master_key", 0o600, "looker"),
        ("/home/looker/.lookerjmx/jmxremote.password", 0o600, "looker"),
        ("/etc/systemd/system/looker.service", 0o644, "root"),
    ],
)
def test_files_and_modes(node, path, mode, owner):
    f = node.file(path)
    assert f.exists, path
    assert f.mode == mode, (path, oct(f.mode))
    assert f.user == owner


def test_user_ids_match_the_shared_storage_role(node):
    user = node.user("looker")
    assert user.uid == 9000 and user.gid == 9000 and user.home == "/home/looker"


def test_master_key_file_holds_the_key(node):
    assert node.file(f"{INSTALL}/.lkr_master_key").content_string.strip() == VARS["looker_node_master_key"]


def test_no_database_credentials_and_no_chromium_on_a_single_non_render_node(node):
    assert not node.file(f"{INSTALL}/looker-db.yml").exists
    assert not node.file("/etc/default/looker-db").exists
    assert not node.package("chromium").is_installed
    assert node.package("openjdk-17-jre-headless").is_installed


def test_unit_runs_looker_in_the_foreground(node):
    unit = node.file("/etc/systemd/system/looker.service").content_string
    assert "ExecStart=/home/looker/looker/looker start" in unit
    assert "User=looker" in unit and "Restart=on-failure" in unit
    assert "TimeoutStartSec=3600" in unit
    assert "RestartPreventExitStatus=2 78" in unit


def test_data_survives_a_restart(node):
    created = lib.http(node, f"https://{NODE}:9999/standin/records", "POST", '{"uid": "single-restart", "payload": "kept"}')
    assert created["status"] in (200, 201), created
    node.check_output("systemctl restart looker")
    lib.wait_serving(node, f"https://{NODE}:9999/alive")
    records = lib.http(node, f"https://{NODE}:9999/standin/records")["body"]
    assert "single-restart" in records and node.file(f"{INSTALL}/.db/looker.script").exists


def test_check_mode_reports_no_change():
    out = lib.run_playbook("converge.yml", "--check", "--diff")[1]
    assert lib.recap(out)[NODE]["changed"] == 0, out[-4000:]


def test_check_mode_on_a_fresh_host_previews_without_changing_it(node):
    """A user, service and directory that do not exist yet stand for a fresh host."""
    pid = lib.main_pid(node)
    fresh = {"looker_node_user": "lookerfresh", "looker_node_group": "lookerfresh", "looker_node_uid": "9100",
             "looker_node_gid": "9100", "looker_node_home": "/home/lookerfresh", "looker_node_service_name": "lookerfresh"}
    args = [a for k, v in fresh.items() for a in ("-e", f"{k}={v}")]
    out = lib.run_playbook("converge.yml", "--check", *args)[1]
    assert lib.recap(out)[NODE]["changed"] > 0
    assert "Check mode on a host without the lookerfresh user: the role would create it" in " ".join(out.split())
    assert not node.user("lookerfresh").exists
    assert not node.file("/home/lookerfresh").exists
    assert not node.file("/etc/systemd/system/lookerfresh.service").exists
    assert lib.main_pid(node) == pid


def test_a_change_of_release_replaces_the_jars_and_restarts():
    jars = lib.EPHEMERAL / "jars" / "25.7.2"
    extra = {
        "looker_node_version": "25.7.2",
        # The role's own release change, as playbooks/upgrade.yml uses it.
        "looker_node_allow_release_change": "true",
        "looker_node_jar_src": str(jars / "looker.jar"),
        "looker_node_dependencies_src": str(jars / "looker-dependencies.jar"),
        "looker_node_jar_sha256": (jars / "looker.jar.sha256").read_text().strip(),
        "looker_node_dependencies_sha256": (jars / "looker-dependencies.jar.sha256").read_text().strip(),
    }
    args = [a for k, v in extra.items() for a in ("-e", f"{k}={v}")]
    lib.run_playbook("converge.yml", *args)
    import testinfra  # pylint: disable=import-outside-toplevel

    node = testinfra.get_host(f"podman://{NODE}")
    versions = lib.http(node, f"https://{NODE}:19999/api/4.0/versions")["body"].replace(" ", "")
    assert '"looker_release_version":"25.7.2"' in versions
    assert node.file(f"{INSTALL}/looker.jar.previous").exists
    assert "single-restart" in lib.http(node, f"https://{NODE}:9999/standin/records")["body"]
    assert not node.file(f"{INSTALL}/.deploying").exists
    assert not node.file(f"{INSTALL}/.lookerops-restart-pending").exists
    # ... and the same play again changes nothing.
    out = lib.run_playbook("converge.yml", *args)[1]
    assert lib.recap(out)[NODE]["changed"] == 0, out[-4000:]
