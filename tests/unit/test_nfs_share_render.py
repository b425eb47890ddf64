"""The nfs_share role's server templates, rendered by Ansible on the controller.

The kernel NFS server cannot run on this project's test hosts (the kernel has no nfsd), so its
/etc/exports and nfs.conf drop-in are checked as rendered here; nfs-ganesha's configuration is
also served for real by molecule/nfs_share_nfs.
"""
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ROLE = ROOT / "roles" / "nfs_share"


def render_play(out_dir, templates, conf_role="server"):
    return [
        {
            "name": "Inventory",
            "hosts": "localhost",
            "gather_facts": False,
            "tasks": [
                {"name": "Storage", "ansible.builtin.add_host": {"name": "fs1", "groups": ["looker_storage"], "looker_cluster_address": "10.0.0.10"}},
                {"name": "Node 1", "ansible.builtin.add_host": {"name": "node1", "groups": ["looker_nodes"], "looker_cluster_address": "10.0.0.21"}},
                {"name": "Node 2", "ansible.builtin.add_host": {"name": "node2", "groups": ["looker_nodes"], "ansible_host": "node2.example.com"}},
            ],
        },
        {
            "name": "Render",
            "hosts": "localhost",
            "gather_facts": False,
            "vars_files": [str(ROLE / "defaults" / "main.yml"), str(ROLE / "vars" / "main.yml")],
            "vars": {"ansible_python_interpreter": sys.executable, "__nfs_share_nfs_conf_role": conf_role},
            "tasks": [
                {
                    "name": f"Render {name}",
                    "ansible.builtin.template": {"src": str(ROLE / "templates" / name), "dest": str(out_dir / name), "mode": "0644"},
                }
                for name in templates
            ],
        },
    ]


def render(run_play, tmp_path, templates, conf_role="server", **variables):
    result = run_play(render_play(tmp_path, templates, conf_role), variables)
    assert not result.failed, result.output
    return {name: (tmp_path / name).read_text() for name in templates}


def content_lines(text):
    return [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def test_kernel_exports_list_only_the_nodes(run_play, tmp_path):
    exports = render(run_play, tmp_path, ["exports.j2"])["exports.j2"]
    assert exports.startswith("#")  # ansible_managed
    assert content_lines(exports) == [
        "/srv/looker-share  10.0.0.21(rw,sync,no_subtree_check,sec=sys,root_squash)"
        " node2.example.com(rw,sync,no_subtree_check,sec=sys,root_squash)"
    ]


def test_kernel_exports_follow_options(run_play, tmp_path):
    exports = render(run_play, tmp_path, ["exports.j2"], nfs_share_nfs_root_squash=False,
                     nfs_share_nfs_export_extra_options=["fsid=1"], nfs_share_nfs_export_path="/data/looker",
                     nfs_share_client_addresses=["192.0.2.0/28"])["exports.j2"]
    assert content_lines(exports) == ["/data/looker  192.0.2.0/28(rw,sync,no_subtree_check,sec=sys,no_root_squash,fsid=1)"]


def test_nfs_conf_fixes_v3_ports_on_the_server(run_play, tmp_path):
    conf = render(run_play, tmp_path, ["nfs.conf.j2"], nfs_share_nfs_version="3")["nfs.conf.j2"]
    assert content_lines(conf) == [
        "[statd]", "port = 662", "outgoing-port = 2020",
        "[lockd]", "port = 32803", "udp-port = 32769",
        "[mountd]", "port = 20048",
    ]


def test_nfs_conf_client_has_no_mountd(run_play, tmp_path):
    conf = render(run_play, tmp_path, ["nfs.conf.j2"], conf_role="client", nfs_share_nfs_version="3",
                  nfs_share_nfs_statd_port=4000)["nfs.conf.j2"]
    assert "[mountd]" not in conf and "port = 4000" in conf


def test_nfs_conf_v4_only_turns_v3_off(run_play, tmp_path):
    conf = render(run_play, tmp_path, ["nfs.conf.j2"])["nfs.conf.j2"]
    assert content_lines(conf) == ["[nfsd]", "vers3 = n"]


def test_ganesha_conf_v4_only(run_play, tmp_path):
    conf = render(run_play, tmp_path, ["ganesha.conf.j2"])["ganesha.conf.j2"]
    assert "Clients = 10.0.0.21, node2.example.com;" in conf
    assert "Protocols = 4;" in conf and "NLM_Port" not in conf
    assert "Squash = Root_Squash;" in conf
