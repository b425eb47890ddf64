"""Scale out and in without touching the other nodes, in order: lkr-cluster-node3 joins with site.yml
(scale_out.yml adds it to looker_nodes), from a controller with an empty jar cache (as an AWX job's)
while the download API is down: it gets the release the cluster runs from a node's jars, and the run's
output, with --diff and -vvv, shows none of the inventory's secrets;
playbooks/remove_node.yml drains it, then stops it, while a user's requests keep flowing; the last site.yml, without node3 in the inventory, runs through
ansible-runner with a private data dir as AWX runs a job template, and forgets node3."""
import json
import os
import re
import shutil
import sys
import threading
from pathlib import Path

import testinfra

import clusterlib as cl

lib = cl.lib
# A second inventory source: lkr-cluster-node3 joins looker_nodes (its connection settings and the
# group_vars come from the scenario's own inventory).
SCALE_OUT = str(lib.EPHEMERAL / "scale_out.yml")
Path(SCALE_OUT).write_text("looker_nodes:\n  hosts:\n    lkr-cluster-node3:\n")
LB = cl.address("lkr-cluster-lb1")
UI = f"https://{LB}"
NEW = cl.NEW_NODE
NEW_HOST = testinfra.get_host(f"podman://{NEW}")
HOSTS = {name: testinfra.get_host(f"podman://{name}") for name in cl.NODES}
PIDS = {}
# Looker's start configuration on a node: what a change to Looker there would touch.
CONFIG = "/home/looker/looker/lookerstart.cfg"
CONFIGS = {}


def looker_accounts(address):
    out = cl.DB1.check_output(f"mysql -N -B -e \"SELECT user FROM mysql.user WHERE host = '{address}'\"")
    return sorted(out.split())


def test_a_new_node_joins_and_the_others_change_only_their_firewall():
    PIDS.update({name: lib.main_pid(host) for name, host in HOSTS.items()})
    CONFIGS.update({name: host.file(CONFIG).md5sum for name, host in HOSTS.items()})
    assert looker_accounts(cl.address(NEW)) == []
    shutil.rmtree(lib.EPHEMERAL / "jar-cache")
    with lib.download_api_down():
        # --diff and -vvv: every file's diff and every module's arguments are printed, a new node's files whole.
        out = cl.run_playbook("scale-out", str(cl.ROOT / "site.yml"), "-i", SCALE_OUT, "--diff", "-vvv")
    recap = cl.stats(out)
    secrets = cl.secret_scan.declared_secrets(cl.ROOT / "molecule" / "cluster")
    leaked = cl.secret_scan.shown(secrets, out)
    assert len(secrets) >= 5 and not leaked, f"scale-out.log shows the test secrets of {leaked}"
    # The other nodes: only their firewall changed (node3's address joined the sets of the cluster ports).
    changed = cl.changed_tasks(out)
    for name in cl.NODES:
        assert changed.get(name) and set(changed[name]) <= cl.FIREWALL_TASKS, (name, changed.get(name))
        assert cl.address(NEW) in HOSTS[name].check_output("nft list table inet lookerops_cluster")
        assert HOSTS[name].file(CONFIG).md5sum == CONFIGS[name]
    assert recap[NEW]["changed"] > 0 and recap["lkr-cluster-lb1"]["changed"] > 0
    assert all(r["failed"] == 0 and r["unreachable"] == 0 for r in recap.values()), recap
    # The postflight ran on the grown cluster: node-to-node ports, /alive, one release, the balancer, the URL.
    assert "Connect to every peer the plan allows" in out
    assert "Every node of a site reports the same Looker release" in out
    assert "lkr-cluster-node3 is a container (podman): chrony is configured and enabled (checked)" in " ".join(out.split())
    assert f"is served at https://{LB}/" in out
    assert {name: lib.main_pid(host) for name, host in HOSTS.items()} == PIDS
    # Registered, healthy behind the balancer and answering users.
    assert cl.registry()[NEW] == "running"
    assert cl.haproxy_servers()[NEW] == (2, 0)
    assert cl.nodes_answering(f"{UI}/", tries=15) == set(cl.NODES) | {NEW}
    assert looker_accounts(cl.address(NEW)) == ["looker", "looker_ro"]
    # The release the cluster runs, copied from node1's jars (not the download API's, which was down).
    assert re.search(r"TASK \[lookerops\.cluster\.looker_node : Fetch the jars of lkr-cluster-node1\]", out), out[-4000:]
    records = {name: json.loads(testinfra.get_host(f"podman://{name}").file("/home/looker/looker/.looker-jars.json").content_string)
               for name in [*cl.NODES, NEW]}
    assert len({json.dumps(r, sort_keys=True) for r in records.values()}) == 1, records
    assert records[NEW]["version"] == "25.6.12"


def test_a_removed_node_is_drained_before_it_stops():
    stop, results = threading.Event(), []
    loader = threading.Thread(target=cl.load, args=(f"{UI}/", stop, results), daemon=True)
    loader.start()
    try:
        # Wait (bounded) until the user's requests reach the node to be removed.
        for _try in range(100):
            if any(node == NEW for _status, node in results):
                break
            stop.wait(0.1)
        assert any(node == NEW for _status, node in results), results[-20:]
        out = cl.run_playbook("remove-node", str(cl.ROOT / "playbooks" / "remove_node.yml"), "-i", SCALE_OUT,
                              "-e", json.dumps({"looker_remove_nodes": [NEW]}))
    finally:
        stop.set()
        loader.join(30)
    failures = [r for r in results if r[0] != 200]
    assert not failures, f"{len(failures)} of {len(results)} user requests failed: {failures[:5]}"
    assert {node for _status, node in results[-20:]} <= set(cl.NODES), "the last requests still reached the removed node"
    recap = cl.stats(out)
    assert {name: recap[name]["changed"] for name in cl.NODES} == {name: 0 for name in cl.NODES}, out[-4000:]
    assert recap[NEW]["changed"] == 1 and recap["lkr-cluster-lb1"]["changed"] >= 2, recap
    # Drained and disabled on the balancer before Looker was stopped.
    assert out.index("Drain the node") < out.index("Disable the node") < out.index("Stop Looker and keep it off at boot")
    op_state, admin_state = cl.haproxy_servers()[NEW]
    assert admin_state & 0x01, (op_state, admin_state)  # SRV_ADMF_FMAINT: disabled
    # Stopped cleanly: off, not started at boot, marked stopped in the node registry.
    looker = NEW_HOST.service("looker")
    assert not looker.is_running and not looker.is_enabled
    assert cl.registry()[NEW] == "stopped"
    assert {name: lib.main_pid(host) for name, host in HOSTS.items()} == PIDS


def _runner_event_stats(artifacts):
    for path in sorted((artifacts / "job_events").glob("*.json")):
        event = json.loads(path.read_text())
        if event.get("event") == "playbook_on_stats":
            return event["event_data"]
    raise AssertionError(f"no playbook_on_stats event in {artifacts}")


def _runner_changed_tasks(artifacts, host):
    """The names of the tasks and handlers that reported changed on HOST, from ansible-runner's job events."""
    tasks = set()
    for path in (artifacts / "job_events").glob("*.json"):
        data = json.loads(path.read_text()).get("event_data", {})
        if data.get("host") == host and (data.get("res") or {}).get("changed"):
            tasks.add(data["task"])
    return tasks


def test_site_yml_through_ansible_runner_forgets_the_removed_node(tmp_path):
    """As AWX runs a job template: ansible-runner, a private data dir holding the inventory, the
    environment and the settings, no terminal, an unrelated working directory."""
    private = tmp_path / "private"
    # The scenario's inventory (hosts, group_vars, host_vars), without node3 in looker_nodes.
    shutil.copytree(Path(os.environ["MOLECULE_INVENTORY_FILE"]).parent, private / "inventory")
    (private / "env").mkdir()
    (private / "env" / "envvars").write_text(json.dumps({
        # AWX points Ansible at the collections its project sync installed; here, the checkout.
        "ANSIBLE_COLLECTIONS_PATH": str(cl.ROOT / ".collections"),
        "ANSIBLE_NOCOLOR": "1",
    }))
    (private / "env" / "extravars").write_text("{}\n")
    (private / "env" / "settings").write_text(json.dumps({"job_timeout": 1800, "idle_timeout": 900}))
    bin_dir = Path(sys.executable).parent
    env = {"PATH": f"{bin_dir}:/usr/local/bin:/usr/bin:/bin", "HOME": os.environ["HOME"], "LANG": "C.UTF-8"}
    proc = cl.subprocess.run(
        [str(bin_dir / "ansible-runner"), "run", str(private), "--project-dir", str(cl.ROOT),
         "-p", "site.yml", "--ident", "scale-in"],
        cwd=str(tmp_path), env=env, stdin=cl.subprocess.DEVNULL, capture_output=True, text=True, check=False)
    artifacts = private / "artifacts" / "scale-in"
    stdout = (artifacts / "stdout").read_text() if (artifacts / "stdout").exists() else proc.stdout
    assert proc.returncode == 0, (proc.stderr + stdout)[-5000:]
    assert (artifacts / "status").read_text().strip() == "successful"
    assert (artifacts / "rc").read_text().strip() == "0"
    stats = _runner_event_stats(artifacts)
    assert not stats["failures"] and not stats["dark"], stats
    # The other nodes: only their firewall (node3's address left its sets). The balancer dropped node3's
    # backend, the database its accounts.
    for name in cl.NODES:
        tasks = _runner_changed_tasks(artifacts, name)
        assert tasks and tasks <= cl.FIREWALL_TASKS, (name, tasks)
        assert cl.address(NEW) not in HOSTS[name].check_output("nft list table inet lookerops_cluster")
        assert HOSTS[name].file(CONFIG).md5sum == CONFIGS[name]
    assert stats["changed"].get("lkr-cluster-lb1", 0) > 0 and stats["changed"].get("lkr-cluster-db1", 0) > 0, stats
    assert NEW not in cl.LB.file("/etc/haproxy/haproxy.cfg").content_string
    assert NEW not in cl.haproxy_servers()
    assert looker_accounts(cl.address(NEW)) == []
    assert cl.nodes_answering(f"{UI}/", tries=12) == set(cl.NODES)
    assert {name: lib.main_pid(host) for name, host in HOSTS.items()} == PIDS
