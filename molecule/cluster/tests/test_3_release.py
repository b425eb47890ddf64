"""site.yml keeps the release the cluster runs (25.6.12): asked for another exact release it refuses
in the preflight, before any tier changes a host, naming playbooks/upgrade.yml."""
import testinfra

import clusterlib as cl

lib = cl.lib


def test_site_yml_refuses_another_release_before_any_change():
    pids = {name: lib.main_pid(testinfra.get_host(f"podman://{name}")) for name in cl.NODES}
    rc, out = lib.run_playbook(str(cl.ROOT / "site.yml"), "-e", "looker_node_version=25.7.2", check=False)
    (lib.EPHEMERAL / "site-refused-release.log").write_text(out)
    assert rc != 0
    text = " ".join(out.split())
    assert ("The cluster runs Looker 25.6.12 (lkr-cluster-node1, lkr-cluster-node2), and looker_node_version (looker_version "
            "in the inventory) asks for 25.7.2.") in text, out[-4000:]
    assert "run playbooks/upgrade.yml" in text
    # Refused by the preflight: no tier's play started.
    assert "PLAY [Firewall on every host of the cluster]" not in out
    assert all(r["changed"] == 0 for r in cl.stats(out).values()), cl.stats(out)
    assert {name: lib.main_pid(testinfra.get_host(f"podman://{name}")) for name in cl.NODES} == pids
