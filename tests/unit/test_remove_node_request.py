"""playbooks/remove_node.yml refuses a bad request before it changes anything: the list of nodes is
read once (a list, or names separated by commas as an AWX survey gives them) and checked against
the inventory, the sites and the balancers."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
PLAYBOOK = ROOT / "playbooks" / "remove_node.yml"


def remove(tmp_path, extra_vars, lb_vars=None):
    groups = {
        "looker_nodes": {"hosts": {"n1": {"looker_site": "a"}, "n2": {"looker_site": "a"}, "n3": {"looker_site": "b"}}},
        "looker_lb": {"hosts": {"lb1": dict(lb_vars or {})}},
    }
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(yaml.safe_dump({"all": {"vars": {"ansible_connection": "local",
                                                          "ansible_python_interpreter": sys.executable},
                                                 "children": groups}}))
    extra = tmp_path / "extra.yml"
    extra.write_text(yaml.safe_dump(extra_vars))
    env = {"ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"), "ANSIBLE_COLLECTIONS_PATH": str(ROOT / ".collections"),
           "ANSIBLE_NOCOLOR": "1", "ANSIBLE_CACHE_PLUGIN": "memory"}
    proc = subprocess.run([str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(inventory),
                           str(PLAYBOOK), "-e", f"@{extra}"],
                          cwd=tmp_path, env={**os.environ, **env}, capture_output=True, text=True,
                          check=False)
    return proc.returncode, " ".join((proc.stdout + proc.stderr).split())


@pytest.mark.parametrize("request_, message", [
    ({"looker_remove_nodes": ""}, "looker_remove_nodes is empty"),
    ({"looker_remove_nodes": " , "}, "looker_remove_nodes is empty"),
    ({"looker_remove_nodes": "n1, nosuch"}, 'looker_remove_nodes names ["nosuch"], which is not in looker_nodes'),
    ({"looker_remove_nodes": ["n3"]}, "would remove every node of site b (n3)"),
    ({"looker_remove_nodes": "n1,n2"}, "would remove every node of site a (n1, n2)"),
    ({"looker_remove_nodes": ["n1"], "looker_drain_timeout": "5m"}, 'looker_drain_timeout is "5m"'),
    ({"looker_remove_nodes": ["n1"], "looker_remove_drain_timeout": "5m"}, 'looker_remove_drain_timeout is "5m"'),
], ids=["empty", "only-commas", "unknown-host", "last-of-site", "all-of-site-from-survey-text", "timeout-not-seconds",
        "former-timeout-name-not-seconds"])
def test_a_bad_request_is_refused_before_anything_changes(tmp_path, request_, message):
    rc, output = remove(tmp_path, request_)
    assert rc != 0
    assert message in output, output[-2000:]
    assert "Nothing was changed" in output
    assert "changed=1" not in output and "Drain the node" not in output


def test_balancers_that_cannot_drain_are_refused(tmp_path):
    rc, output = remove(tmp_path, {"looker_remove_nodes": "n1"}, lb_vars={"load_balancer_engine": "nginx"})
    assert rc != 0
    assert "runs load_balancer_engine nginx, which cannot drain a node" in output, output[-2000:]
    assert "Drain the node" not in output
