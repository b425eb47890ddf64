"""The start command line: Looker's flags, and the refusals of unknown or incomplete ones."""
import socket

import pytest

from standin_helpers import PLAIN_HTTP, master_key, run_jar

KEY = master_key()


@pytest.fixture
def workdir(tmp_path):
    (tmp_path / "share").mkdir()
    (tmp_path / "looker-db.yml").write_text("dialect: mysql\nhost: 127.0.0.1\nusername: u\npassword: p\ndatabase: d\nport: 3306\n")
    (tmp_path / "pg.yml").write_text("dialect: postgres\nhost: 127.0.0.1\nusername: u\npassword: p\ndatabase: d\n")
    return tmp_path


CASES = [
    # (LOOKERARGS, environment, expected exit code, expected words)
    (["--bogus"], {}, 2, ["unknown option '--bogus'"]),
    (["--clustered"], {}, 2, ["--clustered requires", "-H/--hostname", "-d/--internal-db-creds", "--shared-storage-dir", "LKR_MASTER_KEY"]),
    (["--clustered", "-H", "10.0.0.1", "-d", "looker-db.yml", "--shared-storage-dir", "share"], {}, 2,
     ["--clustered requires LKR_MASTER_KEY_ENV or LKR_MASTER_KEY_FILE"]),
    (["--clustered", "-H", "10.0.0.1", "-d", "looker-db.yml"], {"LKR_MASTER_KEY_ENV": KEY}, 2,
     ["--clustered requires --shared-storage-dir"]),
    (["--clustered", "--hostname=10.0.0.1", "--shared-storage-dir=share"], {"LKR_MASTER_KEY_ENV": KEY}, 2,
     ["--clustered requires -d/--internal-db-creds FILE or the LOOKER_DB variable"]),
    (["--clustered=yes"], {}, 2, ["--clustered takes no value"]),
    (["-p", "http"], {}, 2, ["-p must be a TCP port"]),
    (["--node-to-node-port=70000"], {}, 2, ["--node-to-node-port must be a TCP port"]),
    (["--scheduler-threads", "-1"], {}, 2, ["--scheduler-threads must be a whole number"]),
    (["--log-format=xml"], {}, 2, ["--log-format must be 'json'"]),
    (["-H"], {}, 2, ["-H needs a value"]),
    (["-d", "missing.yml"], {}, 1, ["-d missing.yml: file not found"]),
    (["-d", "pg.yml"], {}, 1, ["dialect 'postgres' is not supported"]),
    (["--internal-analytics-connection-file", "nope.yml"], {}, 1, ["--internal-analytics-connection-file nope.yml: file not found"]),
    (["--clustered", "-H", "10.0.0.1", "-d", "looker-db.yml", "--shared-storage-dir", "share"], {"LKR_MASTER_KEY_ENV": "c2hvcnQ="}, 1,
     ["must be a base64-encoded 32-byte key"]),
    (["--clustered", "-H", "10.0.0.1", "-d", "looker-db.yml", "--shared-storage-dir", "share"], {"LKR_MASTER_KEY_FILE": "/nonexistent/key"},
     1, ["LKR_MASTER_KEY_FILE (/nonexistent/key) cannot be read"]),
    (["--clustered", "-H", "10.0.0.1", "-d", "looker-db.yml", "--shared-storage-dir", "/nonexistent/share"], {"LKR_MASTER_KEY_ENV": KEY},
     1, ["--shared-storage-dir /nonexistent/share does not exist"]),
    (["--ssl-keystore", "looker-db.yml"], {}, 1, ["--ssl-keystore needs --ssl-keystore-pass-file"]),
]


@pytest.mark.parametrize("args,env,rc,words", CASES, ids=[" ".join(c[0]) + (" +" + ",".join(c[1]) if c[1] else "") for c in CASES])
def test_start_refuses(jars, workdir, args, env, rc, words):
    got_rc, out = run_jar(jars["25.6.12"], ["start", "--no-daemonize", *args], cwd=workdir, env=env)
    assert got_rc == rc, out
    for word in words:
        assert word in out
    assert KEY not in out


@pytest.mark.parametrize("args,words", [
    ([], ["no command given"]),
    (["stop"], ["unknown command 'stop'"]),
    (["start", "extra"], ["unexpected argument 'extra'"]),
    (["migrate_internal_data"], ["usage: java -jar looker.jar migrate_internal_data looker-db.yml"]),
    (["migrate_db_to_looker_version"], ["usage: java -jar looker.jar migrate_db_to_looker_version VERSION"]),
    (["migrate_db_to_looker_version", "latest"], ["VERSION must look like 25.8 or 25.8.3"]),
])
def test_commands_refused(jars, workdir, args, words):
    rc, out = run_jar(jars["25.6.12"], args, cwd=workdir)
    assert rc == 2
    for word in words:
        assert word in out


def test_busy_port_refused(jars, workdir, free_port):
    ports = [free_port() for dummy in range(4)]
    with socket.socket() as busy:
        busy.bind(("0.0.0.0", ports[0]))
        busy.listen()
        rc, out = run_jar(jars["25.6.12"], ["start", "--no-daemonize", "-p", str(ports[0]), "--core-port", str(ports[1]), "-n", str(ports[2]),
                                            "-q", str(ports[3]), PLAIN_HTTP], cwd=workdir)
    assert rc == 1
    assert "refusing to start: cannot listen on the ports" in out
