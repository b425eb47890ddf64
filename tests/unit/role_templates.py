"""Render a role's templates with the role's own defaults and vars on a small inventory built in the
play, as the host given; and check a rendered file with its daemon when that is installed here."""
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

INVENTORY = [
    ("lkr-node1", ["looker_nodes", "looker_appdb_primary"], {"looker_cluster_address": "10.89.0.11"}),
    ("lkr-node2", ["looker_nodes"], {"looker_cluster_address": "10.89.0.12"}),
    ("lkr-db2", ["looker_appdb_replica"], {"looker_cluster_address": "10.89.0.32"}),
    ("lkr-fs1", ["looker_storage"], {"looker_cluster_address": "fd00:89::41"}),
    ("lkr-lb1", ["looker_lb"], {"looker_cluster_address": "10.89.0.21"}),
    ("lkr-lb2", ["looker_lb"], {"looker_cluster_address": "10.89.0.22"}),
]


def render_role(role, run_play, tmp_path, host, variants, extra_vars=None):
    """Render (template, variant vars) pairs of roles/ROLE as `host`; return {name: text}."""
    role_dir = ROOT / "roles" / role
    add = [{
        "name": f"Add {name}", "ansible.builtin.add_host": {
            "name": name, "groups": groups, "ansible_connection": "local",
            "ansible_python_interpreter": "{{ ansible_playbook_python }}", **hostvars},
    } for name, groups, hostvars in INVENTORY]
    tasks = []
    for name, (template, variant) in variants.items():
        tasks.append({
            "name": f"Render {name}",
            "ansible.builtin.template": {"src": str(role_dir / "templates" / template), "dest": str(tmp_path / name), "mode": "0644"},
            "vars": variant,
            "delegate_to": "localhost",
        })
    play = [
        {"hosts": "localhost", "gather_facts": False, "tasks": add},
        {"hosts": host, "gather_facts": False,
         "vars_files": [str(role_dir / "defaults" / "main.yml"), str(role_dir / "vars" / "main.yml")],
         "tasks": tasks},
    ]
    result = run_play(play, extra_vars=extra_vars)
    assert result.rc == 0, result.output
    return {name: (tmp_path / name).read_text() for name in variants}


def lines(text):
    return [line.strip() for line in text.splitlines()]


def daemon_check(argv, text, tmp_path, name):
    if not shutil.which(argv[0]):
        return
    path = tmp_path / f"check-{name}"
    path.write_text(text)
    proc = subprocess.run(argv + [str(path)], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
