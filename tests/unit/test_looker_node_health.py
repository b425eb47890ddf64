"""looker_node tasks_from: health - the one place that asks a node whether it serves: the status code
of /alive and looker_release_version of /api/4.0/versions, nothing else; it waits up to
looker_node_health_wait seconds for a 200 and never fails on the answer (the callers decide). Run
here against a small local HTTP server standing in for a node's web and API ports."""
import http.server
import json
import re
import threading
import time

import pytest


class Node:
    """Answers /alive with `alive` (a list: one status per request, the last repeats) and the versions."""

    def __init__(self, alive, release="25.6.12"):
        self.alive, self.release, self.asked = list(alive), release, []
        node = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's name)
                node.asked.append(self.path)
                if self.path == "/alive":
                    status = node.alive[min(node.asked.count("/alive"), len(node.alive)) - 1]
                    body = b""
                else:
                    status, body = 200, json.dumps({"looker_release_version": node.release, "undocumented": "x"}).encode()
                self.send_response(status)
                if body:
                    self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def node():
    made = []

    def _make(alive, release="25.6.12"):
        made.append(Node(alive, release))
        return made[-1]
    yield _make
    for one in made:
        one.close()


def health_play(port, wait=0):
    # Plain HTTP as with TLS provided externally; asked from this host (no load balancer here).
    role_vars = dict(looker_node_cluster_address="127.0.0.1", looker_node_web_port=port, looker_node_api_port=port,
                     looker_node_ssl_provided_externally_by="127.0.0.1", looker_node_health_check_host="",
                     looker_node_health_wait=wait)
    return [{"name": "health", "hosts": "localhost", "gather_facts": False, "tasks": [
        {"name": "Ask", "ansible.builtin.include_role": {"name": "lookerops.cluster.looker_node", "tasks_from": "health"},
         "vars": role_vars},
        {"name": "Show", "ansible.builtin.debug": {"msg": "HEALTH={{ looker_node_health | to_json }}"}}]}]


def health_of(result):
    assert not result.failed, result.output[-3000:]
    return json.loads(re.search(r"HEALTH=(\{.*\})", result.output.replace('\\"', '"')).group(1))


@pytest.mark.parametrize("address", ["LOCALHOST", "localhost.", "LocalHost."])
def test_a_cluster_address_in_upper_case_or_with_a_trailing_dot_is_asked_normalised(run_play, node, address):
    """Issue 16: with a trailing dot the role's own wait failed its TLS handshake (SNI); the URL carries the
    normalised name."""
    looker = node([200])
    play = health_play(looker.port)
    play[0]["tasks"][0]["vars"]["looker_node_cluster_address"] = address
    health = health_of(run_play(play))
    assert health["alive"] and health["url"] == f"http://localhost:{looker.port}/alive"


def test_a_serving_node_reports_its_release(run_play, node):
    looker = node([200])
    health = health_of(run_play(health_play(looker.port)))
    assert (health["alive"], health["status"], health["release"], health["source"]) == (True, 200, "25.6.12", "localhost")
    assert health["url"] == f"http://127.0.0.1:{looker.port}/alive"
    assert looker.asked == ["/alive", "/api/4.0/versions"]


def test_a_node_that_does_not_serve_is_reported_not_failed(run_play, node):
    looker = node([503])
    health = health_of(run_play(health_play(looker.port)))
    assert (health["alive"], health["status"], health["release"]) == (False, 503, "")
    assert looker.asked == ["/alive"]


def test_it_waits_for_the_node_to_serve(run_play, node):
    looker = node([503, 503, 200])
    started = time.monotonic()
    health = health_of(run_play(health_play(looker.port, wait=30)))
    # Asked every 2 s (a node is up on the balancers about 2 s after it answers).
    assert health["alive"] and looker.asked.count("/alive") == 3 and time.monotonic() - started >= 4


def test_it_gives_up_after_the_wait(run_play, node):
    looker = node([503])
    health = health_of(run_play(health_play(looker.port, wait=5)))
    # Once, then every 2 s within the 5 s: 3 more times.
    assert not health["alive"] and looker.asked.count("/alive") == 4


def test_behind_a_tls_terminating_balancer_it_asks_from_the_balancer(run_play, node, tmp_path):
    """The node accepts plain HTTP from its balancer only: the requests are delegated there and still go
    to the node's address (localhost here), not to the balancer's (127.0.0.2): a delegated task sees
    the balancer's ansible_host, which the default of looker_node_cluster_address falls back to."""
    looker = node([200])
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(json.dumps({"all": {
        "vars": {"ansible_connection": "local", "ansible_python_interpreter": "{{ ansible_playbook_python }}"},
        "children": {"looker_nodes": {"hosts": {"localhost": {"looker_node_ssl_provided_externally_by": "127.0.0.2"}}},
                     "looker_lb": {"hosts": {"127.0.0.2": {}}}}}}))
    play = [{"name": "health", "hosts": "localhost", "gather_facts": False, "tasks": [
        {"name": "Ask", "ansible.builtin.include_role": {"name": "lookerops.cluster.looker_node", "tasks_from": "health"},
         "vars": {"looker_node_web_port": looker.port, "looker_node_api_port": looker.port}},
        {"name": "Show", "ansible.builtin.debug": {"msg": "HEALTH={{ looker_node_health | to_json }}"}}]}]
    health = health_of(run_play(play, extra_args=["-i", str(inventory)]))
    assert (health["alive"], health["release"], health["source"]) == (True, "25.6.12", "127.0.0.2")
    assert health["url"] == f"http://localhost:{looker.port}/alive"
