"""TCP ports on the controller for the servers the integration tests start (fixture free_port)."""
import os
import random
import socket

# Ports handed to the stand-in and the download API come from below the kernel's ephemeral range
# (net.ipv4.ip_local_port_range, 32768-60999 by default): a port the kernel picks for bind(0) can be
# taken by an outgoing connection (ssh, podman, MySQL clients of the other lane) before the server
# that was given it listens, which once failed a node start with "Address already in use".
# Each xdist worker takes its own slice, so two lanes never hand out the same port; each run starts
# at a random place in it, so that two runs on one machine (two checkouts) rarely try the same ports.
PORT_RANGE = (20000, 32000)


def port_is_free(port, host="0.0.0.0"):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def worker_ports():
    """This xdist worker's slice of PORT_RANGE (all of it without xdist)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    count = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    index = int(worker[2:]) if worker.startswith("gw") else 0
    size = (PORT_RANGE[1] - PORT_RANGE[0]) // count
    start = PORT_RANGE[0] + index * size
    return range(start, start + size)


def run_order(ports):
    """The ports of a slice from a random place on, wrapping around."""
    first = random.randrange(len(ports))
    return list(ports[first:]) + list(ports[:first])
