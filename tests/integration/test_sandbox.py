"""tools/sandbox is idempotent (a second run changes nothing, rebuilds no image) and its ssh transport
reaches a host whatever the host's own sshd does."""
import os
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
IMAGE = "localhost/lookerops-sandbox:bookworm"


def sandbox(*args):
    return subprocess.run([str(ROOT / "tools/sandbox"), *args], capture_output=True, text=True, check=True).stderr


def image_id():
    return subprocess.run(["podman", "image", "inspect", "--format", "{{.Id}}", IMAGE],
                          capture_output=True, text=True, check=True).stdout.strip()


def test_second_prepare_changes_nothing():
    sandbox("prepare")
    before = image_id()
    again = sandbox("prepare")
    assert "host packages present: ok" in again
    assert "containers.conf drop-in: ok" in again
    assert "ssh key /var/lib/lookerops-sandbox/id_ed25519: present" in again
    assert "present, not rebuilt" in again
    assert "capabilities: hosts resolve each other by name, connect, and boot systemd" in again
    assert image_id() == before


def test_networks_are_created_once_and_removed():
    name = "lkr-sandbox-selftest"
    try:
        assert "created" in sandbox("net-create", name)
        assert "present" in sandbox("net-create", name)
        dns = subprocess.run(["podman", "network", "inspect", "--format", "{{.DNSEnabled}}", name],
                             capture_output=True, text=True, check=True).stdout.strip()
        assert dns == "true", "sandbox networks must resolve their hosts' names"
    finally:
        sandbox("net-remove", name)
    assert subprocess.run(["podman", "network", "exists", name], check=False).returncode == 1


def test_ssh_transport_ignores_the_hosts_sshd_settings_and_service(tmp_path):
    """The molecule scenarios and the demo reach hosts with tools/sandbox ssh-proxy; a role that
    locks down /etc/ssh/sshd_config or stops sshd must not cut the tests off."""
    name = "lkr-sandbox-sshtest"
    # The demo inventory's connection settings, for this host.
    demo_vars = yaml.safe_load((ROOT / "inventories" / "sandbox" / "hosts.yml").read_text())["all"]["vars"]
    demo_vars["ansible_ssh_common_args"] = demo_vars["ansible_ssh_common_args"].replace(
        "{{ inventory_dir }}/../..", str(ROOT))
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(yaml.safe_dump({"all": {"hosts": {name: demo_vars}}}))
    try:
        sandbox("host-create", name, "lkr-sandbox-sshtest")
        podman_exec = ["podman", "exec", name]
        wants = subprocess.run([*podman_exec, "ls", "/etc/systemd/system/multi-user.target.wants"],
                               capture_output=True, text=True, check=True).stdout.split()
        assert "ssh.service" not in wants  # the image leaves sshd to the roles that want it
        subprocess.run([*podman_exec, "sh", "-c", "echo 'DenyUsers root' >> /etc/ssh/sshd_config"], check=True)
        ansible = Path(sys.executable).parent / "ansible"
        env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(ROOT / ".collections"))
        result = subprocess.run([str(ansible), "-i", str(inventory), name, "-m", "ansible.builtin.command",
                                 "-a", "cat /etc/hostname"], capture_output=True, text=True, env=env, check=False)
        assert result.returncode == 0, result.stdout + result.stderr
        assert name in result.stdout
    finally:
        sandbox("host-remove", name)
        sandbox("net-remove", "lkr-sandbox-sshtest")
