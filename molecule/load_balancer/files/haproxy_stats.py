"""Test probe (copied into the balancer): sample HAProxy's per-server statistics ("show stat" on
the runtime socket, read only) every INTERVAL seconds for DURATION seconds. Prints one JSON line
per sample: {"t": epoch seconds, "servers": {"backend/server": {"status", "stot", "connect", "scur"}}}.

    haproxy_stats.py SOCKET INTERVAL DURATION
"""
import csv
import json
import socket
import sys
import time


def show_stat(path):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(2)
    sock.connect(path)
    sock.sendall(b"show stat\n")
    data = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    sock.close()
    rows = csv.DictReader(data.decode().lstrip("# ").splitlines())
    servers = {}
    for row in rows:
        if row["svname"] in ("FRONTEND", "BACKEND"):
            continue
        servers["%s/%s" % (row["pxname"], row["svname"])] = {
            "status": row["status"], "stot": int(row["stot"] or 0), "connect": int(row.get("connect") or 0),
            "scur": int(row["scur"] or 0)}
    return servers


def main():
    path, interval, duration = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
    end = time.time() + duration
    while time.time() < end:
        started = time.time()
        print(json.dumps({"t": started, "servers": show_stat(path)}), flush=True)
        time.sleep(max(0.0, interval - (time.time() - started)))


if __name__ == "__main__":
    main()
