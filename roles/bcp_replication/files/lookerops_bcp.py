# lookerops_bcp.py: run through /usr/local/sbin/lookerops-bcp (python3, standard library only).
# lookerops-bcp: active -> standby replication of a Looker site (installed by the
# lookerops.cluster.bcp_replication role; configuration in /etc/lookerops-bcp/bcp.json).
#
#   lookerops-bcp cycle [--hold-before STAGE]   one replication cycle (run by lookerops-bcp.timer)
#   lookerops-bcp leader                        print the current leader of the active site
#   lookerops-bcp status                        print the status file of this host
#   lookerops-bcp remote ACTION ...             the actions other hosts run here over SSH (sudo)
#
# A cycle runs only on the leader of the active site (fixed: a named node; bully: the node with
# the lowest id among the healthy nodes), under a lock on the shared storage, so that two cycles
# never overlap. Stages, each logged with its duration; any failure stops the cycle with its
# reason, raises the alert and leaves the standby at its previous good state:
#   1 preflight  both sites reachable, active DB and nodes healthy, staging space and permissions
#   2 dump       consistent dump of the active DB (--single-transaction), gzip, SHA-256
#   3 collect    incremental copy of the shared storage (and optional config paths) into staging
#   4 transfer   staging -> standby receiver (rsync over SSH, only changed bytes)
#   5 restore    dump loaded into a fresh database on the standby (looker_bcp_new_<cycle>)
#   6 switch     files into the standby's share (rsync --delay-updates), tables swapped in one
#                RENAME TABLE; this is the commit point of a cycle
#   7 restart    the standby nodes restarted one at a time, each healthy before the next
# Standard library only (Python 3.9+).
import argparse
import datetime
import fcntl
import hashlib
import http.client
import json
import os
import re
import shutil
import signal
import smtplib
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from email.message import EmailMessage

CONFIG_FILE = "/etc/lookerops-bcp/bcp.json"
WEBHOOK_FILE = "/etc/lookerops-bcp/webhook-url"
RUN_DIR = "/run/lookerops-bcp"
STAGES = ["preflight", "dump", "collect", "transfer", "restore", "switch", "restart"]
SHARE_LOCK_NAME = ".lookerops-bcp.lock"
# Left in the share by an interrupted `rsync --delay-updates`; never replicated.
RSYNC_EXCLUDES = ["/" + SHARE_LOCK_NAME, ".~tmp~/"]
DUMP_NAME = "db/looker.sql.gz"
MANIFEST_NAME = "manifest.json"
NEW_DB_PREFIX = "looker_bcp_new_"


class CycleError(ValueError):
    """A stage failed: the message says what and why."""


def now_utc():
    return datetime.datetime.now(datetime.timezone.utc)


def iso(ts=None):
    return (ts or now_utc()).strftime("%Y-%m-%dT%H:%M:%SZ")


def log(msg):
    print(f"{iso()} {msg}", flush=True)


def load_config(path=CONFIG_FILE):
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, ValueError) as exc:
        raise SystemExit(f"lookerops-bcp: cannot read {path}: {exc}") from exc


def write_json_atomic(path, data, mode=0o644):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.tmp.{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=2, sort_keys=True)
        handle.write("\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def run(argv, what, timeout=None, stdin=None, stdout=None, check=True, input_text=None):
    """Run a command; on failure raise CycleError naming the command, its status and its stderr."""
    try:
        proc = subprocess.run(argv, stdin=stdin, stdout=stdout if stdout is not None else subprocess.PIPE,
                              stderr=subprocess.PIPE, timeout=timeout, check=False,
                              input=input_text.encode() if input_text is not None else None)
    except subprocess.TimeoutExpired as exc:
        raise CycleError(f"{what}: no answer within {timeout} s ({' '.join(argv[:6])} ...)") from exc
    except OSError as exc:
        raise CycleError(f"{what}: cannot run {argv[0]}: {exc}") from exc
    if check and proc.returncode != 0:
        err = proc.stderr.decode(errors="replace").strip()
        raise CycleError(f"{what}: exit status {proc.returncode}: {err[-2000:] or '(no error output)'}")
    return proc


def ssh_base(cfg):
    return ["ssh", "-i", cfg["ssh_key"], "-p", str(cfg["ssh_port"]), "-l", cfg["ssh_user"],
            "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes", "-o", "StrictHostKeyChecking=yes",
            "-o", f"UserKnownHostsFile={cfg['known_hosts']}", "-o", f"ConnectTimeout={cfg['ssh_connect_timeout']}",
            "-o", "ServerAliveInterval=15", "-o", "ServerAliveCountMax=4"]


def remote(cfg, address, action, *args, what=None, timeout=None, stdin=None, stdout=None):
    """Run `lookerops-bcp remote ACTION` on another host through SSH and sudo."""
    argv = ssh_base(cfg) + [address, "sudo", "-n", cfg["program"], "remote", action] + list(args)
    return run(argv, what or f"{action} on {address}", timeout=timeout, stdin=stdin, stdout=stdout)


def remote_json(cfg, address, action, *args, what=None, timeout=60):
    proc = remote(cfg, address, action, *args, what=what, timeout=timeout)
    try:
        return json.loads(proc.stdout.decode())
    except ValueError as exc:
        raise CycleError(f"{what or action} on {address}: unreadable answer {proc.stdout[:200]!r}") from exc


def http_ok(url, timeout=5):
    """True (and '') when the URL answers 200; False and the reason otherwise."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # Looker's default certificate on 9999 is self-signed
    try:
        with urllib.request.urlopen(url, timeout=timeout, context=ctx) as resp:  # nosec - URL from the config
            return resp.status == 200, f"HTTP {resp.status}"
    except urllib.error.HTTPError as exc:
        return False, f"HTTP {exc.code}"
    # HTTPException: something that is not HTTP answered (a TLS port asked in plain HTTP, for one).
    except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
        return False, str(getattr(exc, "reason", exc)) or type(exc).__name__


def node_alive(cfg, node):
    """Does this node's Looker answer its health URL (200)? Asked from where both Looker and the cluster
    firewall accept it, through the replication's SSH (which the firewall never restricts): a node with
    TLS provided externally (--ssl-provided-externally-by) answers plain HTTP to its load balancer only
    (health_via names it); any other node is asked on itself, over its loopback - the firewall lets a
    node's web port in from the load balancers only, so a peer's direct request would be refused."""
    via = node.get("health_via") or {"name": node["name"], "address": node["address"]}
    if via["name"] == cfg["host"]:
        return http_ok(node["health_url"])
    try:
        answer = remote_json(cfg, via["address"], "alive", "--node", node["name"],
                             what=f"/alive of {node['name']} asked from {via['name']}", timeout=cfg["ssh_connect_timeout"] + 20)
    except CycleError as exc:
        return False, str(exc)
    asked_from = "" if via["name"] == node["name"] else f" (asked from {via['name']})"
    return bool(answer.get("ok")), f"{answer.get('reason', '')}{asked_from}"


def direction(src, dst):
    return f"{src}-to-{dst}"


def site_of(cfg):
    return cfg["site"]


def other_site(cfg, site):
    return [s for s in cfg["sites"] if s != site][0]


def free_mb(path):
    usage = shutil.disk_usage(path)
    return usage.free // (1024 * 1024)


def parse_rsync_stats(text):
    stats = {}
    for key, pattern in (("bytes_sent", r"Total bytes sent: ([\d,.]+)"),
                         ("bytes_received", r"Total bytes received: ([\d,.]+)"),
                         ("changed_bytes", r"Total transferred file size: ([\d,.]+)"),
                         ("files_changed", r"Number of regular files transferred: ([\d,.]+)"),
                         ("total_size", r"Total file size: ([\d,.]+)")):
        match = re.search(pattern, text)
        if match:
            stats[key] = int(re.sub(r"[,.]", "", match.group(1)))
    return stats


# --------------------------------------------------------------------------------------------
# Leader selection
# --------------------------------------------------------------------------------------------
def node_healthy(cfg, node):
    """A node is healthy when its host answers over SSH as a node of the active site and its Looker
    answers its health URL."""
    ok, reason = node_alive(cfg, node)
    if not ok:
        return False, f"Looker at {node['health_url']}: {reason}"
    if node["name"] == cfg["host"]:
        return True, "this host"
    try:
        answer = remote_json(cfg, node["address"], "ping", what=f"ping {node['name']}", timeout=cfg["ssh_connect_timeout"] + 20)
    except CycleError as exc:
        return False, str(exc)
    if answer.get("active_site") != cfg["active_site"]:
        return False, f"it believes site {answer.get('active_site')} is active"
    return True, "ok"


def find_leader(cfg):
    """Return (leader name or None, explanation lines)."""
    nodes = cfg["nodes"][cfg["active_site"]]
    notes = []
    if cfg["leader_mode"] == "fixed":
        return cfg["fixed_leader"], [f"fixed leader {cfg['fixed_leader']}"]
    for node in sorted(nodes, key=lambda n: n["id"]):
        ok, reason = node_healthy(cfg, node)
        notes.append(f"{node['name']} (id {node['id']}): {'healthy' if ok else 'not healthy: ' + reason}")
        if ok:
            return node["name"], notes
    return None, notes


# --------------------------------------------------------------------------------------------
# The cycle (on the leader)
# --------------------------------------------------------------------------------------------
class Cycle:
    def __init__(self, cfg, hold_before=None):
        self.cfg = cfg
        self.src = cfg["active_site"]
        self.dst = other_site(cfg, self.src)
        self.direction = direction(self.src, self.dst)
        self.staging = os.path.join(cfg["staging_dir"], self.direction)
        self.cycle_id = now_utc().strftime("%Y%m%d%H%M%S")
        self.receiver = cfg["receivers"][self.dst]
        self.db = cfg["db"][self.src]
        self.hold_before = hold_before
        self.timings = {}
        self.info = {"direction": self.direction, "cycle": self.cycle_id, "leader": cfg["host"]}

    def stage(self, number, name, func):
        if self.hold_before == name:
            os.makedirs(RUN_DIR, exist_ok=True)
            hold = os.path.join(RUN_DIR, f"hold-{name}")
            with open(hold, "w", encoding="utf-8") as handle:
                handle.write(f"{os.getpid()}\n")
            log(f"holding before stage {number}/{len(STAGES)} {name} until {hold} is removed")
            while os.path.exists(hold):
                time.sleep(0.2)
        log(f"stage {number}/{len(STAGES)} {name}: started")
        start = time.monotonic()
        try:
            func()
        # OSError: the program's own writes (staging full, a rename refused) fail a stage like any other.
        except (CycleError, OSError) as exc:
            took = time.monotonic() - start
            self.timings[name] = round(took, 3)
            raise CycleError(f"stage {number}/{len(STAGES)} {name} failed after {took:.2f} s: {exc}") from exc
        took = time.monotonic() - start
        self.timings[name] = round(took, 3)
        log(f"stage {number}/{len(STAGES)} {name}: ok in {took:.2f} s")

    # 1
    def preflight(self):
        cfg = self.cfg
        problems = []
        # A degraded site is still replicated (that is when it matters most); a site none of whose
        # nodes serves is not: its state may be broken.
        down = []
        for node in cfg["nodes"][self.src]:
            ok, reason = node_alive(cfg, node)
            if not ok:
                down.append(f"{node['name']} ({node['health_url']}: {reason})")
        if down:
            log(f"WARNING: active site {self.src} is degraded, not serving: {', '.join(down)}")
            self.info["degraded_nodes"] = down
        if len(down) == len(cfg["nodes"][self.src]):
            problems.append(f"no node of the active site {self.src} serves: {', '.join(down)}")
        try:
            answer = remote_json(cfg, self.db["address"], "db-check", what=f"active database on {self.db['name']}")
            if not answer.get("ok"):
                problems.append(f"active database on {self.db['name']}: {answer.get('error')}")
        except CycleError as exc:
            problems.append(str(exc))
        try:
            answer = remote_json(cfg, self.receiver["address"], "standby-preflight", "--direction", self.direction,
                                 what=f"standby site {self.dst} (receiver {self.receiver['name']})", timeout=180)
            problems.extend(f"standby site {self.dst}: {p}" for p in answer.get("problems", []))
        except CycleError as exc:
            problems.append(f"standby site {self.dst} unreachable: {exc}")
        share = cfg["share_dir"]
        if not os.path.isdir(share) or not os.access(share, os.R_OK | os.X_OK):
            problems.append(f"shared storage {share} is not a readable directory on {cfg['host']}")
        try:
            os.makedirs(os.path.join(self.staging, "db"), mode=0o700, exist_ok=True)
            os.chmod(self.staging, 0o700)  # copied as is to the standby's incoming area
            os.makedirs(os.path.join(self.staging, "files"), mode=0o700, exist_ok=True)
            probe = os.path.join(self.staging, ".write-test")
            with open(probe, "w", encoding="utf-8") as handle:
                handle.write("ok")
            os.unlink(probe)
            if free_mb(self.staging) < cfg["min_free_mb"]:
                problems.append(f"staging {self.staging} has {free_mb(self.staging)} MB free, below bcp_replication_min_free_mb "
                                f"({cfg['min_free_mb']} MB)")
        except OSError as exc:
            problems.append(f"staging {self.staging} is not writable: {exc}")
        if problems:
            raise CycleError("; ".join(problems))

    # 2
    def dump(self):
        final = os.path.join(self.staging, DUMP_NAME)
        partial = final + ".partial"
        with open(partial, "wb") as out:
            remote(self.cfg, self.db["address"], "dump", what=f"dump of the active database on {self.db['name']}",
                   timeout=self.cfg["cycle_timeout"], stdout=out)
        run(["gzip", "-t", partial], "the dump is not a complete gzip file")
        digest = hashlib.sha256()
        with open(partial, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        os.replace(partial, final)
        with open(final + ".sha256", "w", encoding="utf-8") as handle:
            handle.write(f"{digest.hexdigest()}  looker.sql.gz\n")
        self.info["dump_bytes"] = os.path.getsize(final)
        self.info["dump_sha256"] = digest.hexdigest()
        self.info["dumped_at"] = iso()

    # 3
    def collect(self):
        cfg = self.cfg
        target = os.path.join(self.staging, "files", "share") + "/"
        argv = ["rsync", "-a", "--delete", "--numeric-ids", "--stats"] + [f"--exclude={e}" for e in RSYNC_EXCLUDES]
        proc = run(argv + [cfg["share_dir"].rstrip("/") + "/", target], f"copy of the shared storage {cfg['share_dir']}")
        stats = parse_rsync_stats(proc.stdout.decode(errors="replace"))
        self.info["share_changed_bytes"] = stats.get("changed_bytes", 0)
        self.info["share_files_changed"] = stats.get("files_changed", 0)
        self.info["share_total_bytes"] = stats.get("total_size", 0)
        conf_dir = os.path.join(self.staging, "files", "config")
        os.makedirs(conf_dir, exist_ok=True)
        for path in cfg["config_paths"]:
            if not os.path.exists(path):
                raise CycleError(f"configuration path {path} (bcp_replication_config_paths) does not exist on {cfg['host']}")
            run(["rsync", "-aR", "--delete", path, conf_dir + "/"], f"copy of the configuration {path}")
        manifest = dict(self.info, collected_at=iso(), source_site=self.src, target_site=self.dst)
        write_json_atomic(os.path.join(self.staging, MANIFEST_NAME), manifest, mode=0o600)

    # 4
    def transfer(self):
        cfg = self.cfg
        ssh = " ".join(ssh_base(cfg))
        dest = f"{self.receiver['address']}:{cfg['incoming_dir']}/{self.direction}/"
        # The receiving account keeps the files as its own; the switch gives them to the looker user.
        base = ["rsync", "-a", "--no-owner", "--no-group", "--delete", "--partial", "--stats", "-e", ssh]
        # The manifest goes last: the standby restores only a transfer whose manifest names this cycle.
        proc = run(base + [f"--exclude=/{MANIFEST_NAME}", self.staging + "/", dest], f"transfer to {self.receiver['name']}",
                   timeout=cfg["cycle_timeout"])
        stats = parse_rsync_stats(proc.stdout.decode(errors="replace"))
        run(base + [os.path.join(self.staging, MANIFEST_NAME), dest], f"transfer of the manifest to {self.receiver['name']}")
        self.info["bytes_sent"] = stats.get("bytes_sent", 0)
        self.info["bytes_staged_changed"] = stats.get("changed_bytes", 0)

    # 5
    def restore(self):
        remote(self.cfg, self.receiver["address"], "restore", "--direction", self.direction, "--cycle", self.cycle_id,
               what=f"restore on standby site {self.dst}", timeout=self.cfg["cycle_timeout"])

    # 6
    def switch(self):
        remote(self.cfg, self.receiver["address"], "switch", "--direction", self.direction, "--cycle", self.cycle_id,
               what=f"switch of standby site {self.dst}", timeout=self.cfg["cycle_timeout"])
        self.info["switched_at"] = iso()

    # 7
    def restart(self):
        remote(self.cfg, self.receiver["address"], "restart-site", what=f"restart of the standby nodes of site {self.dst}",
               timeout=self.cfg["cycle_timeout"])

    def run(self):
        for number, name in enumerate(STAGES, start=1):
            self.stage(number, name, getattr(self, name))


def status_paths(cfg):
    return cfg["status_file"], os.path.join(cfg["metrics_dir"], "lookerops_bcp.prom")


def write_status(cfg, result, cycle=None, error=None, started=None):
    status_file, metrics_file = status_paths(cfg)
    try:
        with open(status_file, encoding="utf-8") as handle:
            previous = json.load(handle)
    except (OSError, ValueError):
        previous = {}
    status = dict(previous)
    status.update({"host": cfg["host"], "result": result, "at": iso()})
    if cycle is not None:
        status["last_cycle"] = dict(cycle.info, stages=cycle.timings, error=error,
                                    duration_seconds=round(time.monotonic() - started, 3) if started else None)
        if result == "ok":
            status["last_good_cycle"] = status["last_cycle"]
            status["last_good_cycle_end"] = iso()
    if error:
        status["last_error"] = error
    write_json_atomic(status_file, status)
    if result not in ("ok", "failed"):
        return
    good = status.get("last_good_cycle_end")
    good_ts = datetime.datetime.strptime(good, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc).timestamp() if good else 0
    last = status.get("last_cycle", {})
    lines = [
        "# HELP lookerops_bcp_last_success_timestamp_seconds End of the last good replication cycle run on this host.",
        "# TYPE lookerops_bcp_last_success_timestamp_seconds gauge",
        f"lookerops_bcp_last_success_timestamp_seconds {good_ts:.0f}",
        "# HELP lookerops_bcp_last_cycle_success 1 when the last cycle run on this host succeeded.",
        "# TYPE lookerops_bcp_last_cycle_success gauge",
        f"lookerops_bcp_last_cycle_success {1 if result == 'ok' else 0}",
        "# HELP lookerops_bcp_last_cycle_duration_seconds Duration of the last cycle run on this host.",
        "# TYPE lookerops_bcp_last_cycle_duration_seconds gauge",
        f"lookerops_bcp_last_cycle_duration_seconds {last.get('duration_seconds') or 0}",
        "# HELP lookerops_bcp_last_cycle_bytes_sent Bytes sent to the standby by the last cycle.",
        "# TYPE lookerops_bcp_last_cycle_bytes_sent gauge",
        f"lookerops_bcp_last_cycle_bytes_sent {last.get('bytes_sent', 0)}",
        "# HELP lookerops_bcp_stage_duration_seconds Duration of each stage of the last cycle.",
        "# TYPE lookerops_bcp_stage_duration_seconds gauge",
    ]
    lines += [f'lookerops_bcp_stage_duration_seconds{{stage="{k}"}} {v}' for k, v in sorted(last.get("stages", {}).items())]
    os.makedirs(os.path.dirname(metrics_file), exist_ok=True)
    tmp = metrics_file + ".tmp"
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")
    os.replace(tmp, metrics_file)


def alert(cfg, subject, body):
    """E-mail through the local relay and/or a webhook; failures to alert are logged, never fatal."""
    alert_cfg = cfg["alert"]
    if alert_cfg.get("email_to"):
        msg = EmailMessage()
        msg["Subject"] = subject
        msg["From"] = alert_cfg.get("email_from") or f"lookerops-bcp@{socket.getfqdn()}"
        msg["To"] = ", ".join(alert_cfg["email_to"])
        msg.set_content(body)
        try:
            with smtplib.SMTP(alert_cfg["smtp_host"], alert_cfg["smtp_port"], timeout=30) as smtp:
                smtp.send_message(msg)
            log(f"alert e-mailed to {msg['To']} through {alert_cfg['smtp_host']}:{alert_cfg['smtp_port']}")
        except (OSError, smtplib.SMTPException) as exc:
            log(f"ALERT NOT SENT by e-mail ({alert_cfg['smtp_host']}:{alert_cfg['smtp_port']}): {exc}")
    url = ""
    if os.path.exists(WEBHOOK_FILE):
        with open(WEBHOOK_FILE, encoding="utf-8") as handle:
            url = handle.read().strip()
    if url:
        data = json.dumps({"text": f"{subject}\n{body}", "subject": subject, "body": body, "host": cfg["host"]}).encode()
        try:
            req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"}, method="POST")
            with urllib.request.urlopen(req, timeout=30) as resp:  # nosec - URL from the config
                log(f"alert posted to the webhook (HTTP {resp.status})")
        except (urllib.error.URLError, OSError) as exc:
            log(f"ALERT NOT SENT to the webhook: {getattr(exc, 'reason', exc)}")
        except (ValueError, OverflowError, http.client.HTTPException) as exc:
            # A malformed URL: the message quotes it, and it may carry a token.
            log(f"ALERT NOT SENT to the webhook: malformed URL ({type(exc).__name__})")


class FileLock:
    """flock(2) on a file; GlusterFS and NFSv4 carry it across hosts."""

    def __init__(self, path):
        self.path = path
        self.handle = None

    def acquire(self):
        self.handle = open(self.path, "a", encoding="utf-8")  # pylint: disable=consider-using-with
        try:
            fcntl.flock(self.handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.handle.close()
            self.handle = None
            return False
        return True

    def release(self):
        if self.handle:
            fcntl.flock(self.handle, fcntl.LOCK_UN)
            self.handle.close()
            self.handle = None


def cmd_cycle(cfg, args):
    if cfg["site"] != cfg["active_site"]:
        log(f"this host belongs to site {cfg['site']}, which is the standby (active: {cfg['active_site']}): nothing to do")
        write_status(cfg, "standby")
        return 0
    leader, notes = find_leader(cfg)
    for note in notes:
        log(f"leader selection ({cfg['leader_mode']}): {note}")
    if leader != cfg["host"]:
        log(f"not the leader (leader: {leader or 'none'}): nothing to do")
        write_status(cfg, "follower")
        return 0
    log(f"this host is the leader of site {cfg['active_site']}")
    os.makedirs(RUN_DIR, exist_ok=True)
    local_lock = FileLock(os.path.join(RUN_DIR, "cycle.lock"))
    if not local_lock.acquire():
        log("another cycle runs on this host: skipped")
        return 0
    share_lock = FileLock(os.path.join(cfg["share_dir"], SHARE_LOCK_NAME))
    try:
        if not share_lock.acquire():
            log(f"another node of site {cfg['active_site']} holds {share_lock.path} (a cycle is running there): skipped")
            write_status(cfg, "skipped")
            return 0
    except OSError as exc:
        error = f"cannot take the cycle lock {share_lock.path} on the shared storage: {exc}"
        log(error)
        alert(cfg, f"[lookerops-bcp] replication {cfg['active_site']} failed on {cfg['host']}", error)
        write_status(cfg, "failed", error=error)
        return 1
    started = time.monotonic()
    cycle = Cycle(cfg, hold_before=args.hold_before)
    write_status(cfg, "running")
    try:
        cycle.run()
    except CycleError as exc:
        error = str(exc)
        log(f"cycle {cycle.cycle_id} FAILED: {error}")
        write_status(cfg, "failed", cycle=cycle, error=error, started=started)
        alert(cfg, f"[lookerops-bcp] replication {cycle.direction} failed on {cfg['host']}",
              f"Cycle {cycle.cycle_id} ({cycle.direction}) failed: {error}\n"
              f"The standby site {cycle.dst} keeps its previous good state.\nStages: {json.dumps(cycle.timings)}")
        return 1
    finally:
        share_lock.release()
        local_lock.release()
    took = time.monotonic() - started
    write_status(cfg, "ok", cycle=cycle, started=started)
    log(f"cycle {cycle.cycle_id} ({cycle.direction}) ok in {took:.2f} s; sent {cycle.info.get('bytes_sent', 0)} bytes, "
        f"{cycle.info.get('share_changed_bytes', 0)} bytes changed in the shared storage")
    return 0


# --------------------------------------------------------------------------------------------
# Remote actions (run as root through sudo on the host named)
# --------------------------------------------------------------------------------------------
def db_client(cfg):
    for name in ("mariadb", "mysql"):
        if shutil.which(name):
            return name
    raise CycleError("no mariadb/mysql client on this host")


def db_dump_client():
    for name in ("mariadb-dump", "mysqldump"):
        if shutil.which(name):
            return name
    raise CycleError("no mariadb-dump/mysqldump on this host")


def sql(cfg, statement, database=None):
    argv = [db_client(cfg), "--batch", "--skip-column-names", "-e", statement]
    if database:
        argv.insert(1, f"--database={database}")
    return run(argv, f"SQL on {cfg['host']}").stdout.decode().splitlines()


def require_db_host(cfg):
    if not cfg.get("is_db"):
        raise CycleError(f"{cfg['host']} is not the application database host of site {cfg['site']}")


def require_standby(cfg, dirn):
    src, dst = dirn.split("-to-")
    if cfg["site"] != dst or cfg["active_site"] != src:
        raise CycleError(f"refused: {cfg['host']} is in site {cfg['site']}, whose hosts record site {cfg['active_site']} as "
                         f"active; direction {dirn} would overwrite it. Run failover.yml/failback.yml to change the direction")


def safe_name(value, pattern=r"^[A-Za-z0-9_]+$"):
    if not re.match(pattern, value):
        raise CycleError(f"refused: {value!r} is not a plain name")
    return value


def r_ping(cfg, _args):
    print(json.dumps({"host": cfg["host"], "site": cfg["site"], "active_site": cfg["active_site"]}))


def r_db_check(cfg, _args):
    require_db_host(cfg)
    try:
        found = sql(cfg, f"SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = '{safe_name(cfg['database'])}'")
        ok = found == ["1"]
        print(json.dumps({"ok": ok, "error": None if ok else f"database {cfg['database']} does not exist"}))
    except CycleError as exc:
        print(json.dumps({"ok": False, "error": str(exc)}))


def r_dump(cfg, _args):
    require_db_host(cfg)
    if cfg["site"] != cfg["active_site"]:
        raise CycleError(f"refused: {cfg['host']} is in the standby site {cfg['site']}; only the active site is dumped")
    argv = [db_dump_client(), "--single-transaction", "--quick", "--routines", "--triggers", "--hex-blob",
            "--default-character-set=utf8mb4"]
    if db_dump_client() == "mysqldump" and "MariaDB" not in run(["mysqldump", "--version"], "mysqldump --version").stdout.decode():
        argv.append("--set-gtid-purged=OFF")
    argv.append(cfg["database"])
    dump = subprocess.Popen(argv, stdout=subprocess.PIPE)  # pylint: disable=consider-using-with
    gz = subprocess.Popen(["gzip", "-6", "--rsyncable"], stdin=dump.stdout)  # pylint: disable=consider-using-with
    dump.stdout.close()
    gz_rc, dump_rc = gz.wait(), dump.wait()
    if dump_rc or gz_rc:
        raise CycleError(f"{argv[0]} exited {dump_rc}, gzip {gz_rc}")


def r_standby_preflight(cfg, args):
    problems = []
    try:
        require_standby(cfg, args.direction)
    except CycleError as exc:
        problems.append(str(exc))
    incoming = os.path.join(cfg["incoming_dir"], args.direction)
    if not os.path.isdir(incoming):
        problems.append(f"{incoming} is missing on {cfg['host']}")
    elif free_mb(incoming) < cfg["min_free_mb"]:
        problems.append(f"{incoming} on {cfg['host']} has {free_mb(incoming)} MB free (< {cfg['min_free_mb']} MB)")
    if not os.path.isdir(cfg["share_dir"]):
        problems.append(f"shared storage {cfg['share_dir']} is not mounted on {cfg['host']}")
    db = cfg["db"][cfg["site"]]
    try:
        answer = remote_json(cfg, db["address"], "db-check", what=f"standby database on {db['name']}")
        if not answer.get("ok"):
            problems.append(f"standby database on {db['name']}: {answer.get('error')}")
    except CycleError as exc:
        problems.append(str(exc))
    for node in cfg["nodes"][cfg["site"]]:
        if node["name"] == cfg["host"]:
            continue
        try:
            remote_json(cfg, node["address"], "ping", what=f"standby node {node['name']}")
        except CycleError as exc:
            problems.append(str(exc))
    print(json.dumps({"problems": problems}))


def read_manifest(cfg, dirn, cycle):
    incoming = os.path.join(cfg["incoming_dir"], dirn)
    try:
        with open(os.path.join(incoming, MANIFEST_NAME), encoding="utf-8") as handle:
            manifest = json.load(handle)
    except (OSError, ValueError) as exc:
        raise CycleError(f"no readable manifest in {incoming}: {exc}") from exc
    if manifest.get("cycle") != cycle:
        raise CycleError(f"the transfer in {incoming} is from cycle {manifest.get('cycle')}, not {cycle}: incomplete transfer")
    return incoming, manifest


def r_restore(cfg, args):
    require_standby(cfg, args.direction)
    incoming, manifest = read_manifest(cfg, args.direction, args.cycle)
    dump = os.path.join(incoming, DUMP_NAME)
    digest = hashlib.sha256()
    with open(dump, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    if digest.hexdigest() != manifest.get("dump_sha256"):
        raise CycleError(f"{dump}: SHA-256 {digest.hexdigest()} differs from the manifest's {manifest.get('dump_sha256')}")
    db = cfg["db"][cfg["site"]]
    with open(dump, "rb") as handle:
        remote(cfg, db["address"], "db-load", "--database", NEW_DB_PREFIX + safe_name(args.cycle),
               what=f"load into {NEW_DB_PREFIX}{args.cycle} on {db['name']}", stdin=handle, timeout=cfg["cycle_timeout"])


def r_db_load(cfg, args):
    require_db_host(cfg)
    if cfg["site"] == cfg["active_site"]:
        raise CycleError(f"refused: {cfg['host']} is in the active site {cfg['site']}")
    name = safe_name(args.database)
    for old in sql(cfg, f"SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE '{NEW_DB_PREFIX}%'"):
        sql(cfg, f"DROP DATABASE `{safe_name(old)}`")  # left by an interrupted cycle
    sql(cfg, f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
    gunzip = subprocess.Popen(["gzip", "-dc"], stdin=sys.stdin.buffer, stdout=subprocess.PIPE)  # pylint: disable=consider-using-with
    load = subprocess.run([db_client(cfg), f"--database={name}"], stdin=gunzip.stdout, check=False,
                          stderr=subprocess.PIPE)
    gunzip.stdout.close()
    if gunzip.wait() or load.returncode:
        raise CycleError(f"loading {name} failed: {load.stderr.decode(errors='replace').strip()[-1000:]}")


def r_db_swap(cfg, args):
    """One RENAME TABLE moves the live tables to looker_bcp_prev and the new ones in: atomic."""
    require_db_host(cfg)
    if cfg["site"] == cfg["active_site"]:
        raise CycleError(f"refused: {cfg['host']} is in the active site {cfg['site']}")
    new, live, prev = safe_name(args.database), safe_name(cfg["database"]), "looker_bcp_prev"
    new_tables = sql(cfg, "SHOW FULL TABLES WHERE Table_type = 'BASE TABLE'", database=new)
    new_tables = [line.split("\t")[0] for line in new_tables]
    if not new_tables:
        raise CycleError(f"{new} holds no table: the dump was empty")
    live_tables = [line.split("\t")[0] for line in sql(cfg, "SHOW FULL TABLES WHERE Table_type = 'BASE TABLE'", database=live)]
    sql(cfg, f"DROP DATABASE IF EXISTS `{prev}`")
    sql(cfg, f"CREATE DATABASE `{prev}` CHARACTER SET utf8mb4")
    pairs = [f"`{live}`.`{t}` TO `{prev}`.`{t}`" for t in live_tables]
    pairs += [f"`{new}`.`{t}` TO `{live}`.`{t}`" for t in new_tables]
    sql(cfg, "RENAME TABLE " + ", ".join(pairs))
    sql(cfg, f"DROP DATABASE `{new}`")
    if not cfg.get("keep_previous_db", True):
        sql(cfg, f"DROP DATABASE `{prev}`")


def r_switch(cfg, args):
    require_standby(cfg, args.direction)
    incoming, manifest = read_manifest(cfg, args.direction, args.cycle)
    share = cfg["share_dir"].rstrip("/") + "/"
    # --delay-updates: every changed file is written aside first and renamed into place at the end.
    run(["rsync", "-a", "--delete-delay", "--delay-updates", "--numeric-ids",
         f"--chown={cfg['looker_uid']}:{cfg['looker_gid']}"] + [f"--exclude={e}" for e in RSYNC_EXCLUDES]
        + [os.path.join(incoming, "files", "share") + "/", share], f"files into {share} on {cfg['host']}")
    db = cfg["db"][cfg["site"]]
    remote(cfg, db["address"], "db-swap", "--database", NEW_DB_PREFIX + safe_name(args.cycle),
           what=f"table swap on {db['name']}", timeout=cfg["cycle_timeout"])
    write_json_atomic(cfg["standby_status_file"], dict(manifest, switched_at=iso(), receiver=cfg["host"]))


def r_restart_site(cfg, _args):
    for node in cfg["nodes"][cfg["site"]]:
        if cfg["site"] == cfg["active_site"]:
            raise CycleError(f"refused: site {cfg['site']} is active")
        log(f"restarting {node['name']}")
        remote(cfg, node["address"], "restart-node", what=f"restart of {node['name']}", timeout=cfg["restart_timeout"] + 60)


def r_restart_node(cfg, _args):
    if cfg["site"] == cfg["active_site"]:
        raise CycleError(f"refused: {cfg['host']} is in the active site {cfg['site']}")
    me = [n for n in cfg["nodes"][cfg["site"]] if n["name"] == cfg["host"]]
    if not me:
        raise CycleError(f"{cfg['host']} is not a Looker node")
    # A deliberate restart every cycle must not count towards the unit's start rate limit (meant
    # for crash loops): reset the counter first.
    run(["systemctl", "reset-failed", cfg["looker_service"]], "systemctl reset-failed", check=False)
    run(["systemctl", "restart", cfg["looker_service"]], f"systemctl restart {cfg['looker_service']} on {cfg['host']}",
        timeout=cfg["restart_timeout"])
    deadline = time.monotonic() + cfg["restart_timeout"]
    reason = ""
    while time.monotonic() < deadline:
        ok, reason = node_alive(cfg, me[0])
        if ok:
            return
        time.sleep(1)
    raise CycleError(f"{cfg['host']} did not answer {me[0]['health_url']} within {cfg['restart_timeout']} s ({reason})")


def r_alive(cfg, args):
    """On a probe host (a load balancer the node accepts plain HTTP from, or the node itself): ask one
    node of the configuration for its health URL. Only URLs of the configuration are asked."""
    nodes = [n for site in cfg["nodes"].values() for n in site if n["name"] == args.node]
    if not nodes:
        raise CycleError(f"{args.node} is not a Looker node of the configuration on {cfg['host']}")
    ok, reason = http_ok(nodes[0]["health_url"])
    print(json.dumps({"ok": ok, "reason": reason}))


REMOTE = {"alive": r_alive, "ping": r_ping, "db-check": r_db_check, "dump": r_dump, "standby-preflight": r_standby_preflight,
          "restore": r_restore, "db-load": r_db_load, "db-swap": r_db_swap, "switch": r_switch,
          "restart-site": r_restart_site, "restart-node": r_restart_node}


def main(argv=None):
    parser = argparse.ArgumentParser(prog="lookerops-bcp", description=__doc__)
    parser.add_argument("--config", default=CONFIG_FILE)
    sub = parser.add_subparsers(dest="command", required=True)
    p_cycle = sub.add_parser("cycle", help="run one replication cycle if this host is the leader")
    p_cycle.add_argument("--hold-before", choices=STAGES,
                         help="drill: wait before this stage until /run/lookerops-bcp/hold-STAGE is removed")
    sub.add_parser("leader", help="print the leader of the active site")
    sub.add_parser("status", help="print this host's status file")
    p_remote = sub.add_parser("remote", help="actions run by other hosts through SSH")
    p_remote.add_argument("action", choices=sorted(REMOTE))
    p_remote.add_argument("--direction", type=lambda v: safe_name(v, r"^[A-Za-z0-9_]+-to-[A-Za-z0-9_]+$"))
    p_remote.add_argument("--cycle", type=lambda v: safe_name(v, r"^[0-9]{14}$"))
    p_remote.add_argument("--database", type=safe_name)
    p_remote.add_argument("--node", type=lambda v: safe_name(v, r"^[A-Za-z0-9_.:-]+$"))
    args = parser.parse_args(argv)
    cfg = load_config(args.config)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        if args.command == "cycle":
            return cmd_cycle(cfg, args)
        if args.command == "leader":
            leader, notes = find_leader(cfg)
            for note in notes:
                print(note)
            print(f"leader: {leader or 'none'}")
            return 0 if leader else 1
        if args.command == "status":
            with open(cfg["status_file"], encoding="utf-8") as handle:
                print(handle.read(), end="")
            return 0
        REMOTE[args.action](cfg, args)
        return 0
    except CycleError as exc:
        print(f"lookerops-bcp: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
