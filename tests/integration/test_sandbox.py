"""tools/sandbox is idempotent: a second run changes nothing and rebuilds no image."""
import subprocess
from pathlib import Path

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
    assert "present, not rebuilt" in again
    assert image_id() == before


def test_networks_are_created_once_and_removed():
    name = "lkr-sandbox-selftest"
    try:
        assert "created" in sandbox("net-create", name)
        assert "present" in sandbox("net-create", name)
    finally:
        sandbox("net-remove", name)
    assert subprocess.run(["podman", "network", "exists", name], check=False).returncode == 1
