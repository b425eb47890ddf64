"""The controller ports the integration tests hand to servers they start (fixture free_port)."""
from pathlib import Path

from controller_ports import run_order, worker_ports


def test_ports_are_outside_the_kernels_ephemeral_range(free_port):
    # An outgoing connection can take an ephemeral port between the pick and the server's listen.
    low, high = (int(n) for n in Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    ports = [free_port() for dummy in range(8)]
    assert len(set(ports)) == 8
    assert not [p for p in ports if low <= p <= high], (ports, low, high)


def test_each_lane_has_its_own_ports(monkeypatch):
    monkeypatch.setenv("PYTEST_XDIST_WORKER_COUNT", "2")
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw0")
    first = set(worker_ports())
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw1")
    second = set(worker_ports())
    assert first and second and not first & second


def test_a_run_starts_anywhere_in_its_slice_and_covers_it_once():
    ports = range(20000, 20100)
    order = run_order(ports)
    assert sorted(order) == list(ports)
