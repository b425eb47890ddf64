"""The time_sync role: chrony's configuration as rendered on the controller, and its validation,
which refuses bad sources before any host is changed."""
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ROLE = ROOT / "roles" / "time_sync"


def render(run_play, tmp_path, **variables):
    play = [{
        "name": "Render",
        "hosts": "localhost",
        "gather_facts": True,
        "vars_files": [str(ROLE / "defaults" / "main.yml"), str(ROLE / "vars" / "main.yml")],
        "vars": {"ansible_python_interpreter": sys.executable},
        "tasks": [{"name": "Render chrony.conf",
                   "ansible.builtin.template": {"src": str(ROLE / "templates" / "chrony.conf.j2"),
                                                "dest": str(tmp_path / "chrony.conf"), "mode": "0644"}}],
    }]
    result = run_play(play, variables)
    assert not result.failed, result.output
    return [line for line in (tmp_path / "chrony.conf").read_text().splitlines() if line and not line.startswith("#")]


def test_the_sources_become_server_and_pool_lines(run_play, tmp_path):
    lines = render(run_play, tmp_path, time_sync_servers=["ntp1.example.com", "10.0.0.123"], time_sync_pools=[])
    assert [line for line in lines if line.split()[0] in ("server", "pool")] == [
        "server ntp1.example.com iburst", "server 10.0.0.123 iburst"]
    assert "makestep 1 3" in lines and "rtcsync" in lines
    assert "driftfile /var/lib/chrony/chrony.drift" in lines  # Debian's path (the controller is Debian)


def test_the_default_is_the_public_pool(run_play, tmp_path):
    lines = render(run_play, tmp_path)
    assert [line for line in lines if line.split()[0] in ("server", "pool")] == ["pool pool.ntp.org iburst"]


def validate_play():
    return [{"name": "Validate", "hosts": "localhost", "gather_facts": False,
             "vars": {"ansible_python_interpreter": sys.executable},
             "tasks": [{"name": "Run the role's validation",
                        "ansible.builtin.include_role": {"name": "lookerops.cluster.time_sync", "tasks_from": "validate"}}]}]


@pytest.mark.parametrize("variables, message", [
    ({"time_sync_servers": [], "time_sync_pools": []}, "give at least one NTP source"),
    ({"time_sync_servers": "ntp1.example.com"}, 'time_sync_servers is "ntp1.example.com"'),
    ({"time_sync_servers": ["ntp1.example.com:123"]}, 'time_sync_servers has "ntp1.example.com:123": each NTP source is'),
    ({"time_sync_pools": ["pool.ntp.org iburst"]}, 'time_sync_pools has "pool.ntp.org iburst": each NTP source is'),
    ({"time_sync_servers": ["10.0.0.300"], "time_sync_pools": []}, 'time_sync_servers has "10.0.0.300"'),
    ({"time_sync_wait_seconds": "1m"}, 'time_sync_wait_seconds is "1m"'),
], ids=["no-source", "servers-not-a-list", "server-with-port", "pool-with-options", "bad-address", "wait-not-seconds"])
def test_bad_sources_are_refused_naming_the_option_and_value(run_play, variables, message):
    result = run_play(validate_play(), variables)
    output = " ".join(result.output.split())
    assert result.failed and message in output, output[-2000:]
    assert "changed=0" in output


@pytest.mark.parametrize("servers", [["ntp1.example.com", "10.0.0.123", "fd00::123", "time.example.com."]])
def test_good_sources_pass(run_play, servers):
    result = run_play(validate_play(), {"time_sync_servers": servers})
    assert not result.failed, result.output[-2000:]
