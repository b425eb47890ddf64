"""Layer 7 with a pair of balancers sharing a virtual IP, nginx on the first and HAProxy on the
second: TLS ends on the balancer with a generated certificate, ip_hash (nginx) and a cookie
(HAProxy) keep a client on one node, a dead backend is skipped, and the virtual IP moves to the
second balancer when nginx stops on the first, and comes back.

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


def get(path, port=443, timeout=5, address=None, headers=None):
    request = urllib.request.Request(f"https://{address or VIP}:{port}{path}", headers=headers or {})
    with urllib.request.urlopen(request, timeout=timeout, context=CONTEXT) as answer:
        return answer.status, answer.read().decode().strip(), answer.headers


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
    for lb, engine, check in ((LB1, "nginx", "nginx -t -q"), (LB2, "haproxy", "haproxy -c -q -f /etc/haproxy/haproxy.cfg")):
        lb_host = host(lb)
        assert lb_host.service(engine).is_running and lb_host.service("keepalived").is_running
        assert lb_host.run(check).rc == 0
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


def test_haproxy_layer7_sticks_with_a_cookie():
    address = host(LB2).check_output("hostname -I").split()[0]
    plain = [get("/whoami", address=address) for attempt in range(4)]
    assert {body for _status, body, _headers in plain} == set(NODES)  # round robin without the cookie
    cookie = plain[0][2]["Set-Cookie"].split(";")[0]
    assert cookie.startswith("LOOKERLB=") and "Secure" in plain[0][2]["Set-Cookie"]
    kept = {get("/whoami", address=address, headers={"Cookie": cookie})[1] for attempt in range(6)}
    assert kept == {plain[0][1]}
    assert get("/whoami", port=19999, address=address)[1] in NODES


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
