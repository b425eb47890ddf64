"""Shared fixtures for the integration tests: sandbox hosts (podman containers running systemd, see
tools/sandbox), their networks, and free TCP ports on the controller.

Every container and network a fixture creates carries the sandbox label and is removed by the
fixture's finalizer, also when the test fails. Name them with a prefix of your own
(`lkr-<area>-...`) so that tests of different areas never collide.
"""
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from controller_ports import port_is_free, run_order, worker_ports

ROOT = Path(__file__).resolve().parents[2]
SANDBOX = ROOT / "tools" / "sandbox"
IMAGE = os.environ.get("LOOKEROPS_SANDBOX_IMAGE", "localhost/lookerops-sandbox:bookworm")
LABEL = "io.lookerops.sandbox=1"


def podman(*args, check=True, timeout=300, input_text=None):
    """Run podman and return the CompletedProcess (text output); raise with its stderr on failure."""
    proc = subprocess.run(["podman", *args], capture_output=True, text=True, timeout=timeout, input=input_text, check=False)
    if check and proc.returncode != 0:
        raise RuntimeError(f"podman {' '.join(args)} failed (rc={proc.returncode}): {proc.stderr.strip() or proc.stdout.strip()}")
    return proc


class SandboxHost:
    """A running sandbox container: exec commands in it, reach it on its network address."""

    def __init__(self, name, network):
        self.name = name
        self.network = network
        fmt = "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}"
        self.ip = podman("inspect", "-f", fmt, name).stdout.split()[0]

    def run(self, command, check=True, timeout=300):
        """Run a bash command inside the host; return the CompletedProcess."""
        proc = podman("exec", self.name, "bash", "-c", command, check=False, timeout=timeout)
        if check and proc.returncode != 0:
            raise RuntimeError(f"{self.name}: `{command}` failed (rc={proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
        return proc

    def copy_in(self, src, dest):
        podman("cp", str(src), f"{self.name}:{dest}")

    def __repr__(self):
        return f"SandboxHost({self.name}, {self.ip})"


class Sandbox:
    """Creates sandbox networks and hosts and removes them all on close()."""

    def __init__(self):
        self.containers = []
        self.networks = []

    def network(self, name):
        subprocess.run([str(SANDBOX), "net-create", name], check=True, capture_output=True, text=True)
        if name not in self.networks:
            self.networks.append(name)
        return name

    def host(self, name, network, extra_args=(), wait=True):
        """Start a systemd host NAME on NETWORK (a name left over from an earlier run is replaced)."""
        podman("rm", "-f", "-t", "2", name, check=False)
        self.containers.append(name)
        podman("run", "-d", "--name", name, "--hostname", name, "--network", network, "--systemd=always",
               "--label", LABEL, *extra_args, IMAGE, "/sbin/init")
        host = SandboxHost(name, network)
        if wait:
            deadline = time.time() + 60
            while time.time() < deadline:
                state = host.run("systemctl is-system-running", check=False).stdout.strip()
                if state in ("running", "degraded"):
                    break
                time.sleep(0.5)
            else:
                raise RuntimeError(f"{name}: systemd did not finish booting (state {state!r})")
        return host

    def remove_host(self, name):
        podman("rm", "-f", "-t", "2", name, check=False)
        if name in self.containers:
            self.containers.remove(name)

    def close(self):
        for name in reversed(self.containers):
            podman("rm", "-f", "-t", "2", name, check=False)
        self.containers = []
        if self.networks:
            subprocess.run([str(SANDBOX), "net-remove", *self.networks], check=False, capture_output=True)
        self.networks = []


@pytest.fixture(scope="session")
def sandbox_image():
    """The sandbox host image; built by `tools/sandbox prepare` when missing (about a minute)."""
    if shutil.which("podman") is None or podman("image", "exists", IMAGE, check=False).returncode != 0:
        subprocess.run([str(SANDBOX), "prepare"], check=True)
    return IMAGE


@pytest.fixture(scope="session")
def sandbox(sandbox_image):
    """Session-wide Sandbox: `sandbox.network(name)`, `sandbox.host(name, network)`; all removed at the end."""
    box = Sandbox()
    try:
        yield box
    finally:
        box.close()


@pytest.fixture(scope="session")
def free_port():
    """A function returning a TCP port that is free on the controller right now (never the same twice),
    outside the ephemeral range and this worker's own."""
    ports = iter(run_order(worker_ports()))

    def _next():
        for port in ports:
            if port_is_free(port):
                return port
        raise AssertionError(f"no free TCP port left in {worker_ports()}")

    return _next
