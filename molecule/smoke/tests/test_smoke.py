"""The sandbox hosts run systemd, carry the converged file and reach each other by name."""

PEERS = ["lkr-smoke-1", "lkr-smoke-2", "lkr-smoke-3"]


def test_systemd_is_pid_1_and_running(host):
    assert host.process.get(pid=1).comm == "systemd"
    state = host.run("systemctl is-system-running --wait").stdout.strip()
    assert state == "running", host.run("systemctl --failed --no-legend").stdout


def test_converged_file(host):
    marker = host.file("/etc/lookerops-smoke")
    assert marker.mode == 0o644
    assert marker.content_string.split() == PEERS


def test_peers_resolve_and_answer(host):
    for peer in PEERS:
        assert host.run(f"getent hosts {peer}").rc == 0, peer
        # Nothing listens on port 9: an immediate "refused" proves the peer's kernel answered
        # (a firewalled or unreachable peer would time out instead).
        probe = host.run(f"timeout 3 bash -c 'exec 3<>/dev/tcp/{peer}/9' 2>&1")
        assert "Connection refused" in probe.stdout, (peer, probe.stdout)
