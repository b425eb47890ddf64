"""Failover measurement on the load_balancer scenario's hosts, shared by its tests and by bench/failover.

A client on one host sends requests through the balancer at a steady rate (new connection each)
while a probe on the balancer samples HAProxy's per-server counters every 0.1 s; in between, a
node dies. Reported: the seconds from the death to the last sample in which the balancer still
counted a connection (attempt) to that node, when it marked the node DOWN, and the requests the
client saw fail. Traffic stays between the sandbox containers; every loop is bounded.
"""
import json
import subprocess
import threading
import time
from pathlib import Path

FILES = Path(__file__).resolve().parent
SOCKET = "/run/haproxy/admin.sock"
UNIT = "looker-standin"


def podman(*args, timeout=120, check=True):
    proc = subprocess.run(["podman", *args], capture_output=True, text=True, timeout=timeout, check=False)
    if check and proc.returncode != 0:
        raise RuntimeError("podman %s failed (rc=%d): %s" % (" ".join(args), proc.returncode, proc.stderr.strip()))
    return proc


def install_tools(balancer, client):
    podman("cp", str(FILES / "haproxy_stats.py"), "%s:/usr/local/bin/haproxy_stats.py" % balancer)
    podman("cp", str(FILES / "lb_client.py"), "%s:/usr/local/bin/lb_client.py" % client)


def stats(balancer):
    """One sample of the balancer's per-server statistics."""
    out = podman("exec", balancer, "python3", "/usr/local/bin/haproxy_stats.py", SOCKET, "0.1", "0.05").stdout
    return json.loads(out.splitlines()[-1])["servers"]


def wait_status(balancer, server, prefix, timeout=60):
    """Wait until backend/server's status starts with prefix (UP, DOWN, DRAIN); bounded."""
    end = time.time() + timeout
    status = ""
    while time.time() < end:
        status = stats(balancer).get(server, {}).get("status", "")
        if status.startswith(prefix):
            return status
        time.sleep(0.5)
    raise AssertionError("%s did not become %s within %d s (last: %s)" % (server, prefix, timeout, status))


def kill(victim, how):
    """Make the node die. Return (began, gone): epoch times when the death began (signal sent, stop
    or pause asked for) and when the node was surely gone (process reaped, stop or pause done)."""
    if how == "kill":
        # Both times are taken inside the node: right before the signal, and once the process is gone.
        out = podman("exec", victim, "sh", "-c",
                     "pid=$(systemctl show -p MainPID --value %s); date +%%s.%%N; kill -KILL \"$pid\"; "
                     "n=0; while kill -0 \"$pid\" 2>/dev/null && [ $n -lt 1000 ]; do n=$((n+1)); sleep 0.005; done; "
                     "date +%%s.%%N" % UNIT).stdout.split()
        return float(out[0]), float(out[1])
    if how == "stop":
        out = podman("exec", victim, "sh", "-c", "date +%%s.%%N; systemctl stop %s; date +%%s.%%N" % UNIT).stdout.split()
        return float(out[0]), float(out[1])
    if how == "freeze":
        began = time.time()
        podman("pause", victim)
        return began, time.time()
    raise ValueError("how must be kill, stop or freeze, not %r" % how)


def revive(victim, how):
    if how == "freeze":
        podman("unpause", victim)
    else:
        podman("exec", victim, "systemctl", "start", UNIT)


def measure(balancer, client, victim, url, rate=20.0, before=3.0, after=10.0, how="kill", timeout=10.0):
    """Run the client across the death of `victim`; return the figures (the victim stays dead)."""
    duration = before + after
    samples, rows = [], []

    def read(cmd, sink):
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
        for line in proc.stdout:
            sink.append(json.loads(line))
        proc.wait(timeout=duration + timeout + 30)

    probe = ["podman", "exec", balancer, "python3", "/usr/local/bin/haproxy_stats.py", SOCKET, "0.1", str(duration + 2)]
    load = ["podman", "exec", client, "python3", "/usr/local/bin/lb_client.py", url, str(rate), str(duration), str(timeout)]
    readers = [threading.Thread(target=read, args=(probe, samples)), threading.Thread(target=read, args=(load, rows))]
    for reader in readers:
        reader.start()
    time.sleep(before)
    death, gone = kill(victim, how)
    for reader in readers:
        reader.join(duration + timeout + 60)
    return analyse(samples, rows, death, gone, victim, how)


def analyse(samples, rows, death, gone, victim, how):
    """Figures from the probe's samples and the client's rows; `death` began at `death` and was
    complete at `gone` (a request that starts in between may meet the dying node)."""
    prefix = "/" + victim
    last_request = None
    marked_down = None
    previous = None
    for sample in samples:
        mine = {k: v for k, v in sample["servers"].items() if k.endswith(prefix)}
        count = sum(v["stot"] + v["connect"] for v in mine.values())
        if previous is not None and count > previous and sample["t"] > death:
            last_request = sample["t"]
        if marked_down is None and sample["t"] > death and any(v["status"].startswith(("DOWN", "MAINT")) for v in mine.values()):
            marked_down = sample["t"]
        previous = count
    after = [r for r in rows if r["start"] >= gone]
    in_flight = [r for r in rows if r["start"] < gone and r["end"] >= death]
    failed = [r for r in rows if not r["ok"]]
    return {
        "how": how,
        "death": death,
        "dying_s": round(gone - death, 3),
        "last_request_after_death_s": round(last_request - death, 2) if last_request else 0.0,
        "marked_down_after_death_s": round(marked_down - death, 2) if marked_down else None,
        "requests": len(rows),
        "failed": len(failed),
        "failed_started_after_death": sum(1 for r in after if not r["ok"]),
        "in_flight_at_death": len(in_flight),
        "answered_by_victim_after_death": sum(1 for r in after if r["node"] == victim and r["ok"]),
        "max_latency_s": round(max((r["end"] - r["start"] for r in rows), default=0.0), 3),
        "errors": sorted(set(r.get("error") or "" for r in failed)),
        "failed_at_s": [round(r["start"] - death, 3) for r in failed],
        "nodes": {node: sum(1 for r in rows if r["node"] == node) for node in sorted(set(r["node"] or "-" for r in rows))},
        "samples": len(samples),
    }
