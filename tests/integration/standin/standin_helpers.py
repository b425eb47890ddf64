"""Helpers of the Looker stand-in tests (imported by conftest.py and the tests; a module name of its
own so that it never collides with another directory's conftest): HTTP calls, the MariaDB
application databases, stand-in nodes on the controller, the download API stand-in."""
import base64
import itertools
import json
import os
import shutil
import signal
import ssl
import subprocess
import sys
import time
import urllib.parse
from http.client import HTTPConnection, HTTPSConnection
from pathlib import Path

import pymysql

ROOT = Path(__file__).resolve().parents[3]
STANDIN = ROOT / "tests" / "standin"
BUILD = STANDIN / "build.sh"
DOWNLOAD_API = STANDIN / "download_api.py"
JAVA = shutil.which("java") or "java"
# Small, fast JVMs: the tests start a few dozen of them on 2 cores.
JAVA_ARGS = ["-Xmx160m", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-Xss512k"]
# Releases the tests use. 25.6.10 and 25.6.12 are built with build.sh's defaults (start-up 5 s,
# migration 8 s: the timings every scenario of the suite runs with); 25.9.0's migration fails.
RELEASES = {
    "25.6.10": [],
    "25.6.12": [],
    "25.8.3": ["--migration-seconds", "3"],
    "25.9.0": ["--migration-seconds", "1", "--fail-migration"],
}
# Timings of a node: FAST (the default of these helpers) overrides the baked-in ones with short
# ones for tests that do not care how long a start takes; BUILT_IN keeps the jar's own. Every wait
# polls the node's state; the bounds below only keep a broken node from hanging the run, and are
# generous because a busy machine may be many times slower than an idle one.
FAST = ("-Dstandin.startup.seconds=1", "-Dstandin.migration.seconds=1")
BUILT_IN = ()
START_BOUND = 240
EXIT_BOUND = 180
# --ssl-provided-externally-by makes a node answer plain HTTP to that address only. The tests'
# client connects to the nodes' 127.0.x.y addresses from 127.0.0.1 (the kernel's source address
# for loopback destinations), so this flag gives plain HTTP to the tests and refuses other sources.
TEST_CLIENT = "127.0.0.1"
PLAIN_HTTP = f"--ssl-provided-externally-by={TEST_CLIENT}"
# Per-session names: two runs of these tests on one machine must not remove each other's host.
DB_NET = f"lkr-standin-net-{os.getpid()}"
DB_HOST = f"lkr-standin-db-{os.getpid()}"
ADMIN_PASSWORD = "standin-admin-pw"
APP_USER = "looker"
APP_PASSWORD = "Sup3r-s3cret-app-pw"
UNVERIFIED_TLS = ssl._create_unverified_context()  # the stand-in's default certificate is self-signed


def http(method, url, body=None, timeout=30, headers=None, source=None):
    """(status, headers (case-insensitive), body bytes) of one request; HTTP errors are answers, not
    exceptions. `source`: the client's source address (a 127.0.0.x address to look like another host)."""
    data = body if body is None or isinstance(body, bytes) else json.dumps(body).encode()
    parts = urllib.parse.urlsplit(url)
    source_address = (source, 0) if source else None
    if parts.scheme == "https":
        conn = HTTPSConnection(parts.hostname, parts.port, timeout=timeout, context=UNVERIFIED_TLS, source_address=source_address)
    else:
        conn = HTTPConnection(parts.hostname, parts.port, timeout=timeout, source_address=source_address)
    all_headers = dict(headers or {})
    if data is not None and "Content-Type" not in all_headers:
        all_headers["Content-Type"] = "application/json"
    try:
        conn.request(method, parts.path + (f"?{parts.query}" if parts.query else ""), body=data, headers=all_headers)
        resp = conn.getresponse()
        return resp.status, resp.headers, resp.read()
    finally:
        conn.close()


def http_json(method, url, body=None, timeout=30, source=None):
    status, dummy, data = http(method, url, body, timeout, source=source)
    try:
        return status, json.loads(data or b"null")
    except ValueError:
        return status, {"_raw": data.decode(errors="replace")}


def wait_for(predicate, timeout=60, interval=0.3, what="condition"):
    """Polls until predicate() is true and returns its value; the timeout only bounds a broken run."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def default_signals():
    """preexec_fn of every JVM the tests start: SIGINT and SIGQUIT back to their defaults.

    A background job of a non-interactive shell (`.ci/run & other-job &`) ignores SIGINT and SIGQUIT,
    and so does everything it starts, pytest and the nodes included. A JVM cannot handle a signal
    that was ignored when it started, so a node would survive the SIGINT a test sends (and print no
    thread dump on SIGQUIT). Resetting them here gives each node what a terminal or systemd gives."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGQUIT, signal.SIG_DFL)


def ignore_sigint():
    """preexec_fn starting a node the way a background job of a non-interactive shell would."""
    default_signals()
    signal.signal(signal.SIGINT, signal.SIG_IGN)


# ------------------------------------------------------------------------------------------ MariaDB

class AppDatabase:
    """One application database (and its credentials) on the shared MariaDB server."""

    def __init__(self, server, name):
        self.server = server
        self.name = name
        self.host = server.ip
        self.port = 3306
        self.username = APP_USER
        self.password = APP_PASSWORD

    def write_yml(self, path, **extra):
        lines = ["# looker-db.yml written by the stand-in tests", "dialect: mysql", f"host: {self.host}",
                 f"username: {self.username}", f"password: \"{self.password}\"", f"database: {self.name}", f"port: {self.port}"]
        lines += [f"{k}: {v}" for k, v in extra.items()]
        Path(path).write_text("\n".join(lines) + "\n")
        os.chmod(path, 0o600)
        return Path(path)

    def env(self):
        return f"dialect=mysql&host={self.host}&username={self.username}&password={self.password}&database={self.name}&port={self.port}"

    def query(self, sql, args=None):
        conn = pymysql.connect(host=self.host, user="admin", password=ADMIN_PASSWORD, database=self.name, autocommit=True,
                               connect_timeout=10)
        try:
            with conn.cursor() as cur:
                cur.execute(sql, args)
                return cur.fetchall()
        finally:
            conn.close()

    def scalar(self, sql, args=None):
        rows = self.query(sql, args)
        return rows[0][0] if rows else None

    def tables(self):
        return sorted(r[0] for r in self.query("SHOW TABLES"))

    def snapshot(self):
        """Every row of every table (for 'the database was left unchanged')."""
        return {t: self.query(f"SELECT * FROM `{t}` ORDER BY 1") for t in self.tables()}


class MariaDBServer:
    def __init__(self, host):
        self.host = host
        self.ip = host.ip
        self._names = itertools.count(1)

    def admin(self):
        return pymysql.connect(host=self.ip, user="admin", password=ADMIN_PASSWORD, autocommit=True, connect_timeout=10)

    def database(self, label):
        """A fresh, empty database standin_<label>_<n> the app user may use."""
        name = f"standin_{label}_{next(self._names)}"
        conn = self.admin()
        try:
            with conn.cursor() as cur:
                cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
                cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
        finally:
            conn.close()
        return AppDatabase(self, name)

    def systemctl(self, action):
        self.host.run(f"systemctl {action} mariadb", timeout=120)

    def set_read_only(self, on):
        """SET GLOBAL read_only as root (the app user has no SUPER/READ ONLY ADMIN, so it cannot write then)."""
        self.host.run(f"mysql -e 'SET GLOBAL read_only={'ON' if on else 'OFF'}'")

    def app_user_grants(self):
        return self.host.run(f"mysql -N -e \"SHOW GRANTS FOR '{APP_USER}'@'%'\"").stdout

    @classmethod
    def install(cls, host):
        """Installs MariaDB in a sandbox host, listening on all addresses, with an admin and an app user."""
        host.run("apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mariadb-server >/dev/null", timeout=900)
        host.run("printf '[mysqld]\\nbind-address = 0.0.0.0\\n' >/etc/mysql/mariadb.conf.d/99-standin.cnf && systemctl restart mariadb")
        host.run(
            "mysql -e \""
            f"CREATE USER IF NOT EXISTS 'admin'@'%' IDENTIFIED BY '{ADMIN_PASSWORD}'; GRANT ALL ON *.* TO 'admin'@'%' WITH GRANT OPTION;"
            f"CREATE USER IF NOT EXISTS '{APP_USER}'@'%' IDENTIFIED BY '{APP_PASSWORD}';"
            f"GRANT ALL ON \\`standin\\_%\\`.* TO '{APP_USER}'@'%'; FLUSH PRIVILEGES;\"")
        return cls(host)


# ------------------------------------------------------------------------------------------ nodes

def master_key():
    return base64.b64encode(os.urandom(32)).decode()


class Node:
    """One stand-in JVM on the controller, with its own working directory, loopback address and ports.
    `client_source`: the source address of the tests' requests to it (None: the kernel's choice)."""

    def __init__(self, jar_dir, workdir, address, ports, args, env, java_args, client_source=None):
        self.jar_dir = Path(jar_dir)
        self.workdir = Path(workdir)
        self.address = address
        self.ports = ports
        self.args = list(args)
        self.env = env
        self.java_args = list(java_args)
        self.client_source = client_source
        self.proc = None
        self.output_path = self.workdir / "stdout.txt"

    @property
    def tls(self):
        return not any(a.startswith("--ssl-provided-externally-by") for a in self.args)

    def start(self, preexec_fn=default_signals):
        self.workdir.mkdir(parents=True, exist_ok=True)
        cmd = [JAVA, *JAVA_ARGS, *self.java_args, "-jar", str(self.jar_dir / "looker.jar"), "start", "--no-daemonize", *self.args]
        with self.output_path.open("ab") as out:
            self.proc = subprocess.Popen(cmd, cwd=self.workdir, env=self.env, stdout=out, stderr=subprocess.STDOUT,
                                         preexec_fn=preexec_fn)
        return self

    def url(self, path, port="web"):
        return f"{'https' if self.tls else 'http'}://{self.address}:{self.ports[port]}{path}"

    def get(self, path, port="web", source=None):
        return http_json("GET", self.url(path, port), source=source or self.client_source)

    def post(self, path, body, port="web", source=None):
        return http_json("POST", self.url(path, port), body, source=source or self.client_source)

    def state(self):
        """The test-only introspection (GET /standin/state), or None while nothing listens."""
        try:
            status, body = self.get("/standin/state")
        except OSError:
            return None
        return body if status == 200 else None

    def alive_status(self):
        try:
            return http("GET", self.url("/alive"), timeout=5, source=self.client_source)[0]
        except OSError:
            return None

    def wait_alive(self, timeout=START_BOUND):
        """Polls /alive until 200; fails at once if the process exits."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"node {self.address} exited with {self.proc.returncode} before serving:\n{self.output()}")
            if self.alive_status() == 200:
                return self
            time.sleep(0.2)
        raise AssertionError(f"node {self.address} not alive after {timeout} s (state {self.state()}):\n{self.output()}")

    def wait_exit(self, timeout=EXIT_BOUND):
        """Waits for the process to exit; past the bound, asks the JVM for a thread dump and fails with it."""
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired as exc:
            self.proc.send_signal(signal.SIGQUIT)  # the JVM prints every thread's stack to its stdout
            try:
                wait_for(lambda: "Full thread dump" in self.output(), timeout=15, what="a thread dump")
            except AssertionError:
                pass
            raise AssertionError(f"node {self.address} still running after {timeout} s:\n{self.output()[-30000:]}") from exc

    def stop(self, sig=signal.SIGTERM, timeout=EXIT_BOUND):
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(sig)
        return self.wait_exit(timeout)

    def output(self):
        return self.output_path.read_text(errors="replace") if self.output_path.exists() else ""

    def log(self):
        path = self.workdir / "log" / "looker.log"
        return path.read_text(errors="replace") if path.exists() else ""


class NodeFactory:
    _counter = itertools.count(0)

    def __init__(self, tmp_path, free_port):
        self.tmp_path = tmp_path
        self.free_port = free_port
        self.nodes = []

    def node(self, jar_dir, args=(), env=None, java_args=(), workdir=None, master_key_value=None, address=None, ports=None,
             timing=FAST, client_source=None):
        """A node (not started). `args` are LOOKERARGS beyond the ports, which are added here; `java_args`
        come after `timing` (FAST or BUILT_IN), so an explicit -Dstandin.* there wins."""
        if address is None:
            n = next(self._counter)
            address = f"127.0.{n // 250}.{n % 250 + 2}"
        ports = ports or {name: self.free_port() for name in ("web", "api", "node", "queue")}
        full_args = ["-p", str(ports["web"]), "--core-port", str(ports["api"]), "-n", str(ports["node"]),
                     "-q", str(ports["queue"]), *args]
        node_env = {k: v for k, v in os.environ.items() if not k.startswith(("LKR_", "LOOKER_"))}
        if master_key_value:
            node_env["LKR_MASTER_KEY_ENV"] = master_key_value
        node_env.update(env or {})
        workdir = workdir or self.tmp_path / f"node-{address}-{len(self.nodes)}"
        n = Node(jar_dir, workdir, address, ports, full_args, node_env, [*timing, *java_args], client_source)
        self.nodes.append(n)
        return n

    def clustered(self, jar_dir, db, shared_dir, key, extra=(), **kw):
        """A clustered node against `db` with a looker-db.yml, -H its loopback address."""
        n = self.node(jar_dir, master_key_value=key, **kw)
        n.workdir.mkdir(parents=True, exist_ok=True)
        yml = db.write_yml(n.workdir / "looker-db.yml")
        n.args += ["--clustered", "-H", n.address, "-d", str(yml), "--shared-storage-dir", str(shared_dir), *extra]
        return n

    def close(self):
        for n in self.nodes:
            if n.proc is not None and n.proc.poll() is None:
                n.proc.kill()
                n.proc.wait(10)


def run_jar(jar_dir, args, cwd, env=None, timeout=EXIT_BOUND, java_args=FAST):
    """Runs looker.jar to completion (refusals, migrate_internal_data, migrate_db_to_looker_version);
    returns (rc, output). The timeout only bounds a broken run."""
    base_env = {k: v for k, v in os.environ.items() if not k.startswith(("LKR_", "LOOKER_"))}
    base_env.update(env or {})
    proc = subprocess.run([JAVA, *JAVA_ARGS, *java_args, "-jar", str(Path(jar_dir) / "looker.jar"), *args], cwd=cwd, env=base_env,
                          capture_output=True, text=True, timeout=timeout, check=False, preexec_fn=default_signals)
    return proc.returncode, proc.stdout + proc.stderr


# ------------------------------------------------------------------------------------------ download API

class DownloadApi:
    def __init__(self, proc, base):
        self.proc = proc
        self.base = base

    def download(self, body):
        return http_json("POST", self.base + "/download", body)

    def control(self, **body):
        return http_json("POST", self.base + "/_control", body)


def start_download_api(jars_dir, port, *extra):
    proc = subprocess.Popen([sys.executable, str(DOWNLOAD_API), "--jars-dir", str(jars_dir), "--license", "LKR-TEST-LICENSE",
                             "--email", "ops@example.com", "--bind", "127.0.0.1", "--port", str(port), *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = proc.stdout.readline()
    if "listening on" not in line:
        proc.kill()
        raise AssertionError(f"download API stand-in did not start: {line!r}")
    return DownloadApi(proc, f"http://127.0.0.1:{port}")
