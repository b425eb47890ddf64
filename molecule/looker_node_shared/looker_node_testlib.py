"""Helpers for the looker_node scenarios' testinfra tests (imported from molecule/*/tests)."""
import contextlib
import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import yaml

SCENARIO_DIR = Path(os.environ.get("MOLECULE_SCENARIO_DIRECTORY", Path(__file__).parent))
EPHEMERAL = Path(os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY", "/nonexistent"))
INVENTORY = os.environ.get("MOLECULE_INVENTORY_FILE", "")


def scenario_vars(group="looker_nodes"):
    """The inventory group_vars of this scenario's molecule.yml (test-only secrets included)."""
    text = (SCENARIO_DIR / "molecule.yml").read_text()
    text = text.replace("${MOLECULE_EPHEMERAL_DIRECTORY}", str(EPHEMERAL))
    data = yaml.safe_load(text)
    return data["provisioner"]["inventory"]["group_vars"][group]


@contextlib.contextmanager
def download_api_down():
    """Test fixture: the download API unreachable from the controller. The scenarios' inventories read
    the download-API stand-in's port from <ephemeral>/api-port on every run: point it at a closed port."""
    path = EPHEMERAL / "api-port"
    saved = path.read_text()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    path.write_text(f"{closed}\n")
    try:
        yield
    finally:
        path.write_text(saved)


def main_pid(host, service="looker"):
    pid = int(host.check_output(f"systemctl show --property=MainPID --value {service}"))
    assert pid > 0, f"{service} has no main process"
    return pid


def cmdline(host, pid):
    """argv of a running process, read from /proc/PID/cmdline (NUL-separated)."""
    raw = host.check_output(f"tr '\\0' '\\n' </proc/{pid}/cmdline")
    return raw.splitlines()


def environ(host, pid, user="looker"):
    """The environment of a running process (read as its user: root lacks ptrace rights here)."""
    raw = host.check_output(f"runuser -u {user} -- cat /proc/{pid}/environ | tr '\\0' '\\n'")
    return dict(line.split("=", 1) for line in raw.splitlines() if "=" in line)


def looker_args(argv):
    """(JVM args, Looker args) of a `java ... -jar looker.jar start ...` command line."""
    jar = argv.index("-jar")
    assert argv[jar + 1] == "looker.jar" and argv[jar + 2] == "start", argv
    return argv[1:jar], argv[jar + 3:]


HTTP = r"""
import json, ssl, sys, urllib.request
method, url, body = sys.argv[1], sys.argv[2], sys.argv[3]
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
req = urllib.request.Request(url, data=body.encode() if body else None, method=method)
try:
    with urllib.request.urlopen(req, context=ctx, timeout=20) as r:
        print(json.dumps({"status": r.status, "body": r.read().decode()}))
except urllib.error.HTTPError as e:
    print(json.dumps({"status": e.code, "body": e.read().decode()}))
"""


def http(host, url, method="GET", body=""):
    """An HTTP(S) request made from inside the host (self-signed certificates accepted)."""
    out = host.check_output("python3 -c %s %s %s %s", HTTP, method, url, body)
    return json.loads(out)


WAIT_SERVING = r"""
import ssl, subprocess, sys, time, urllib.error, urllib.request
url, service, bound = sys.argv[1], sys.argv[2], float(sys.argv[3])
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
deadline = time.monotonic() + bound
while True:
    try:
        with urllib.request.urlopen(url, context=ctx, timeout=10) as r:
            if r.status == 200:
                sys.exit(0)
    except (urllib.error.URLError, OSError):
        pass
    state = subprocess.run(["systemctl", "is-failed", service], capture_output=True, text=True).stdout.strip()
    if state == "failed":
        sys.exit("%s failed instead of starting (systemctl status %s)" % (service, service))
    if time.monotonic() > deadline:
        sys.exit("%s still not serving %s after %d s (state %s)" % (service, url, bound, state))
    time.sleep(1)
"""


def wait_serving(host, url, service="looker", bound=900):
    """Wait until the node answers `url` with 200, as long as its unit has not failed: a start takes
    what it takes (minutes in the stand-in's realistic profile, as in Looker); `bound` only stops a
    hung test."""
    result = host.run("python3 -c %s %s %s %s", WAIT_SERVING, url, service, str(bound))
    assert result.rc == 0, result.stderr or result.stdout


def run_playbook(*args, check=True, env=None, inventory=None, watch=None):
    """ansible-playbook against this scenario's inventory (or `inventory` in its place); returns (rc, output).
    watch: called with each line of the output as it comes (stdout and stderr together)."""
    playbook_bin = Path(sys.executable).parent / "ansible-playbook"
    cmd = [str(playbook_bin), "-i", str(inventory or INVENTORY), *args]
    run_env = dict(os.environ, ANSIBLE_NOCOLOR="1", **(env or {}))
    if watch is None:
        proc = subprocess.run(cmd, cwd=SCENARIO_DIR, capture_output=True, text=True, check=False, env=run_env)
        returncode, output = proc.returncode, proc.stdout + proc.stderr
    else:
        lines = []
        with subprocess.Popen(cmd, cwd=SCENARIO_DIR, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              env=run_env) as proc:
            for line in proc.stdout:
                lines.append(line)
                watch(line)
        returncode, output = proc.returncode, "".join(lines)
    if check:
        assert returncode == 0, output[-6000:]
    return returncode, output


def recap(output):
    """{host: {ok, changed, failed, ...}} from a PLAY RECAP."""
    result = {}
    for line in output.splitlines():
        match = re.match(r"^(\S+)\s+: ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", line.strip())
        if match:
            result[match.group(1)] = {"ok": int(match.group(2)), "changed": int(match.group(3)),
                                      "unreachable": int(match.group(4)), "failed": int(match.group(5))}
    return result
