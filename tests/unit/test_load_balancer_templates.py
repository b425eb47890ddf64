"""The load_balancer templates (HAProxy, nginx, keepalived) rendered with the role's own
defaults and vars on an inventory built in the play, and checked for what a user relies on.

When haproxy or nginx are installed on the machine running the tests, the rendered files are
also checked by the daemon itself (as the role's `validate:` does on the hosts).
"""
import functools

from role_templates import daemon_check, lines, render_role

render = functools.partial(render_role, "load_balancer")


def test_haproxy_layer4_default(run_play, tmp_path):
    cfg = render(run_play, tmp_path, "lkr-lb1", {"haproxy.cfg": ("haproxy.cfg.j2", {})})["haproxy.cfg"]
    got = lines(cfg)
    assert got[0].startswith("#") and "Ansible managed" in cfg
    assert "mode tcp" in got and "mode http" not in got
    assert "bind :443" in got and "bind :19999" in got
    assert "timeout client 3600s" in got and "timeout server 3600s" in got and "timeout tunnel 3600s" in got
    assert "stats socket /run/haproxy/admin.sock mode 660 level admin" in got
    assert "http-check send meth GET uri /alive ver HTTP/1.1 hdr Host localhost" in got
    assert "default-server inter 1s fastinter 1s downinter 1s fall 2 rise 2" in got
    # A node marked down keeps its open sessions: a busy JVM that misses two checks must not lose its running queries.
    assert not [line for line in got if "shutdown-sessions" in line and not line.startswith("#")]
    # Looker's TLS passes through; the checks speak TLS to the node's self-signed certificate.
    assert "server lkr-node1 10.89.0.11:9999 check check-ssl verify none" in got
    assert "server lkr-node2 10.89.0.12:9999 check check-ssl verify none" in got
    assert "server lkr-node1 10.89.0.11:19999 track looker_ui/lkr-node1" in got
    assert "balance roundrobin" in got and "balance source" not in got and "cookie" not in cfg.replace("# ", "")
    assert "option redispatch 1" in got and "retries 2" in got
    daemon_check(["haproxy", "-c", "-q", "-f"], cfg, tmp_path, "haproxy")


def test_haproxy_layer7_sticky_and_layer4_sticky(run_play, tmp_path):
    out = render(run_play, tmp_path, "lkr-lb1", {
        "l7": ("haproxy.cfg.j2", {"load_balancer_tls_mode": "terminate", "load_balancer_sticky": True}),
        "l4": ("haproxy.cfg.j2", {"load_balancer_sticky": True, "load_balancer_api_enabled": False,
                                  "load_balancer_backend_hosts": ["lkr-node1", {"name": "extra", "address": "10.89.0.99"}]}),
    })
    l7 = lines(out["l7"])
    assert "mode http" in l7 and "option forwardfor" in l7
    assert "bind :443 ssl crt /etc/ssl/lookerops/looker-lb.pem alpn http/1.1" in l7
    assert "bind :19999 ssl crt /etc/ssl/lookerops/looker-lb.pem alpn http/1.1" in l7
    assert "http-request set-header X-Forwarded-Proto https" in l7
    assert "cookie LOOKERLB insert indirect nocache httponly secure" in l7
    # Plain HTTP to the nodes (they run with --ssl-provided-externally-by).
    assert "server lkr-node1 10.89.0.11:9999 check cookie lkr-node1" in l7
    assert "server lkr-node2 10.89.0.12:19999 track looker_ui/lkr-node2 cookie lkr-node2" in l7
    l4 = lines(out["l4"])
    assert "balance source" in l4 and "hash-type consistent" in l4
    assert "server extra 10.89.0.99:9999 check check-ssl verify none" in l4
    assert "frontend looker_api" not in l4


def test_nginx_layer4_and_layer7(run_play, tmp_path):
    out = render(run_play, tmp_path, "lkr-lb1", {
        "l4": ("nginx.conf.j2", {"load_balancer_sticky": True}),
        "l7": ("nginx.conf.j2", {"load_balancer_tls_mode": "terminate", "load_balancer_sticky": True}),
        "l4rr": ("nginx.conf.j2", {"load_balancer_balance": "leastconn"}),
    })
    l4 = lines(out["l4"])
    assert "stream {" in l4 and "http {" not in l4
    assert "include /etc/nginx/modules-enabled/*.conf;" in l4
    assert l4.count("hash $remote_addr consistent;") == 2
    assert "server 10.89.0.11:9999 max_fails=1 fail_timeout=10s;" in l4
    assert "server 10.89.0.12:19999 max_fails=1 fail_timeout=10s;" in l4
    assert "listen 443;" in l4 and "listen 19999;" in l4
    assert "proxy_timeout 3600s;" in l4 and "proxy_next_upstream on;" in l4
    l7 = lines(out["l7"])
    assert "http {" in l7 and "stream {" not in l7
    assert l7.count("ip_hash;") == 2
    assert "listen 443 ssl;" in l7 and "ssl_certificate_key /etc/ssl/lookerops/looker-lb.pem.key;" in l7
    assert "proxy_read_timeout 3600s;" in l7 and "proxy_pass http://looker_ui;" in l7
    assert "proxy_next_upstream error timeout http_502 http_503;" in l7
    assert lines(out["l4rr"]).count("least_conn;") == 2
    # nginx -t needs the modules and paths of an installed nginx; the molecule scenario checks it there.


def test_keepalived_pair(run_play, tmp_path):
    out = render(run_play, tmp_path, "lkr-lb2", {"keepalived.conf": ("keepalived.conf.j2", {
        "load_balancer_vip": "10.89.0.250", "load_balancer_vip_interface": "eth0", "load_balancer_vrrp_password": "s3cret"})})
    got = lines(out["keepalived.conf"])
    assert "10.89.0.250/24 dev eth0" in got
    assert "unicast_src_ip 10.89.0.22" in got and "10.89.0.21" in got
    assert "priority 140" in got  # the second balancer of the group
    assert 'script "/usr/bin/systemctl is-active --quiet haproxy"' in got
    assert "auth_pass s3cret" in got
