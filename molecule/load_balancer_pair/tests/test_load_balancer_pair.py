"""nginx at Layer 7 with a pair of balancers sharing a virtual IP: TLS ends on the balancer with a
generated certificate, ip_hash keeps a client on one node, a dead backend is skipped (passive
check), and the virtual IP moves to the other balancer when nginx stops on the first and comes back.

Requests go from this controller to the virtual IP, inside the scenario's own podman network.
"""
import ssl
import time
import urllib.error
import urllib.request

import testinfra

LB1, LB2 = "lkr-lb-pair-lb1", "lkr-lb-pair-lb2"
# Address 200 of the scenario's /24 network, as in molecule.yml.
VIP = ".".join(testinfra.get_host(f"podman://{LB2}").check_output("hostname -I").split()[0].split(".")[:3] + ["200"])
NODES = ["lkr-lb-pair-node1", "lkr-lb-pair-node2"]
CONTEXT = ssl.create_default_context()
CONTEXT.check_hostname = False
CONTEXT.verify_mode = ssl.CERT_NONE


def host(name):
    return testinfra.get_host(f"podman://{name}")


def get(path, port=443, timeout=5):
    with urllib.request.urlopen(f"https://{VIP}:{port}{path}", timeout=timeout, context=CONTEXT) as answer:
        return answer.status, answer.read().decode().strip()


def holder():
    """Which balancer carries the virtual IP (None or both are failures of the pair)."""
    holders = [lb for lb in (LB1, LB2) if VIP in host(lb).check_output("ip -4 -o addr show")]
    assert len(holders) <= 1, holders
    return holders[0] if holders else None


def wait_for(predicate, timeout, what):
    end = time.time() + timeout
    while time.time() < end:
        if predicate():
            return
        time.sleep(0.5)
    raise AssertionError(f"not within {timeout} s: {what}")


def answers():
    try:
        return get("/whoami", timeout=2)[1]
    except (urllib.error.URLError, OSError):
        return None


def test_both_balancers_run_a_checked_configuration():
    for lb in (LB1, LB2):
        lb_host = host(lb)
        assert lb_host.service("nginx").is_running and lb_host.service("keepalived").is_running
        assert lb_host.run("nginx -t -q").rc == 0
        assert lb_host.run("keepalived --config-test --use-file /etc/keepalived/keepalived.conf").rc == 0


def test_first_balancer_holds_the_virtual_ip_and_ends_tls_with_the_generated_certificate():
    wait_for(lambda: holder() == LB1, 20, "the virtual IP on the first balancer")
    subject = host(LB2).check_output(
        f"openssl s_client -connect {VIP}:443 </dev/null 2>/dev/null | openssl x509 -noout -subject")
    assert VIP in subject
    assert get("/whoami")[1] in NODES
    assert get("/whoami", port=19999)[1] in NODES
    assert get("/alive")[0] == 200


def test_ip_hash_keeps_a_client_on_one_node():
    seen = {get("/whoami")[1] for attempt in range(10)}
    assert len(seen) == 1, seen


def test_a_dead_backend_is_skipped():
    node = get("/whoami")[1]
    host(node).check_output("systemctl stop backend-9999")
    try:
        others = [get("/whoami")[1] for attempt in range(5)]
        assert set(others) == set(NODES) - {node}, others
    finally:
        host(node).check_output("systemctl start backend-9999")


def test_the_virtual_ip_moves_when_nginx_stops_and_comes_back():
    wait_for(lambda: holder() == LB1, 20, "the virtual IP on the first balancer")
    host(LB1).check_output("systemctl stop nginx")
    try:
        began = time.time()
        wait_for(lambda: holder() == LB2 and answers() in NODES, 15, "the second balancer answering on the virtual IP")
        print(f"virtual IP served by {LB2} after {time.time() - began:.1f} s")
    finally:
        host(LB1).check_output("systemctl start nginx")
    wait_for(lambda: holder() == LB1 and answers() in NODES, 20, "the virtual IP back on the first balancer")
