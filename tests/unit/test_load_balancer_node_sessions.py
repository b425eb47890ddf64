"""load_balancer tasks_from: node_sessions counts the sessions a balancer holds with one node and
waits for them to end: HAProxy's scur (show stat on the runtime socket) and, for nginx, the
established connections to the node's ports (ss). Run here on the controller against a fake
runtime socket and real local connections."""
import re
import socket
import socketserver
import threading
import time

import pytest

HEADER = "# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,wredis,status\n"


def stat_csv(ui, api, other=7):
    rows = [f"looker_ui,FRONTEND,,,{other},0,0,0,0,0,0,0,0,0,0,0,0,OPEN",
            f"looker_ui,n1,0,0,{ui},0,,0,0,0,,0,,0,0,0,0,DRAIN",
            f"looker_ui,n2,0,0,{other},0,,0,0,0,,0,,0,0,0,0,UP",
            f"looker_api,n1,0,0,{api},0,,0,0,0,,0,,0,0,0,0,DRAIN",
            f"looker_api,n2,0,0,{other},0,,0,0,0,,0,,0,0,0,0,UP",
            f"looker_ui,BACKEND,0,0,{ui + other},0,0,0,0,0,0,0,0,0,0,0,0,UP"]
    return HEADER + "\n".join(rows) + "\n\n"


@pytest.fixture
def haproxy_socket(tmp_path):
    """A fake HAProxy runtime socket; answers[i] is the `show stat` of the i-th request (the last one repeats)."""
    path = str(tmp_path / "admin.sock")
    answers, asked = [], []

    class Handler(socketserver.StreamRequestHandler):
        def handle(self):
            asked.append(self.rfile.readline().decode().strip())
            self.wfile.write(answers[min(len(asked), len(answers)) - 1].encode())

    server = socketserver.ThreadingUnixStreamServer(path, Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield path, answers, asked
    server.shutdown()
    server.server_close()


def sessions_play(engine, timeout=0, **extra):
    role_vars = dict(load_balancer_engine=engine, load_balancer_node_sessions_host="n1",
                     load_balancer_node_sessions_timeout=timeout,
                     load_balancer_backend_hosts=[{"name": "n1", "address": "127.0.0.1"}, {"name": "n2", "address": "127.0.0.2"}],
                     **extra)
    return [{"name": "count", "hosts": "localhost", "gather_facts": False, "tasks": [
        {"name": "Count", "ansible.builtin.include_role": {"name": "lookerops.cluster.load_balancer", "tasks_from": "node_sessions"},
         "vars": role_vars},
        {"name": "Show", "ansible.builtin.debug": {"msg": "SESSIONS={{ load_balancer_node_sessions }}"}}]}]


def count(result):
    assert not result.failed, result.output
    return int(re.search(r"SESSIONS=(\d+)", result.output).group(1))


def test_haproxy_counts_the_nodes_sessions_in_both_backends(run_play, haproxy_socket):
    path, answers, asked = haproxy_socket
    answers.append(stat_csv(ui=3, api=2))
    assert count(run_play(sessions_play("haproxy", load_balancer_haproxy_socket=path))) == 5
    assert asked == ["show stat"]


def test_haproxy_waits_until_the_sessions_are_gone(run_play, haproxy_socket):
    path, answers, asked = haproxy_socket
    answers.extend([stat_csv(ui=2, api=1), stat_csv(ui=1, api=0), stat_csv(ui=0, api=0)])
    assert count(run_play(sessions_play("haproxy", timeout=20, load_balancer_haproxy_socket=path))) == 0
    assert len(asked) == 3


def test_haproxy_gives_up_after_the_timeout_without_failing(run_play, haproxy_socket):
    path, answers, asked = haproxy_socket
    answers.append(stat_csv(ui=1, api=0))
    started = time.monotonic()
    assert count(run_play(sessions_play("haproxy", timeout=4, load_balancer_haproxy_socket=path))) == 1
    assert len(asked) == 3 and time.monotonic() - started >= 4


def test_an_unknown_node_is_refused(run_play):
    play = sessions_play("haproxy")
    play[0]["tasks"][0]["vars"]["load_balancer_node_sessions_host"] = "n9"
    result = run_play(play)
    assert result.failed and "load_balancer_node_sessions_host is 'n9'" in result.output


@pytest.fixture
def node_port():
    """A listening socket on 127.0.0.1 standing in for a node's web port."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    yield server
    server.close()


def test_nginx_counts_the_established_connections_to_the_node(run_play, node_port):
    port = node_port.getsockname()[1]
    clients = [socket.create_connection(("127.0.0.1", port)) for _client in range(2)]
    try:
        play = sessions_play("nginx", load_balancer_node_web_port=port, load_balancer_node_api_port=port + 1)
        assert count(run_play(play)) == 2
    finally:
        for client in clients:
            client.close()


def test_nginx_waits_until_the_connections_are_closed(run_play, node_port):
    port = node_port.getsockname()[1]
    client = socket.create_connection(("127.0.0.1", port))
    threading.Timer(3, client.close).start()
    play = sessions_play("nginx", timeout=30, load_balancer_node_web_port=port, load_balancer_node_api_port=port + 1)
    assert count(run_play(play)) == 0
