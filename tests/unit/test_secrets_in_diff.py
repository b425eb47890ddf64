"""A file that holds a secret is never shown by --diff (issue 18).

Every template or copy task of a role whose content uses a secret variable (a name ending in
password, secret, token, auth_pass, private_key, license_key or webhook_url) must set `diff: false`
or `no_log: true`: with --diff, Ansible prints the whole rendered file."""
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
SECRET = re.compile(r"\b\w*(password|secret|token|auth_pass|private_key|license_key|webhook_url)\b")
WRITERS = ("ansible.builtin.template", "ansible.builtin.copy")


def tasks_of(items):
    for task in items or []:
        if isinstance(task, dict):
            yield task
            for key in ("block", "rescue", "always"):
                yield from tasks_of(task.get(key))


def secrets_used(role, args, task):
    if "src" in args and (role / "templates" / args["src"]).exists():
        text = (role / "templates" / args["src"]).read_text()
    else:
        text = str(args.get("content", ""))
    expressions = [part for found in re.findall(r"\{\{(.*?)\}\}|\{%(.*?)%\}", text, re.S) for part in found]
    expressions += [str(value) for value in (task.get("vars") or {}).values()]
    return sorted({m.group(0) for e in expressions for m in SECRET.finditer(e)})


def writers():
    for role in sorted(ROOT.glob("roles/*")):
        for path in sorted((role / "tasks").glob("*.yml")):
            for task in tasks_of(yaml.safe_load(path.read_text())):
                for module in WRITERS:
                    if isinstance(task.get(module), dict):
                        yield pytest.param(role, task[module], task, id="%s:%s" % (path.relative_to(ROOT), task.get("name")))


@pytest.mark.parametrize("role, args, task", list(writers()))
def test_a_file_with_a_secret_is_not_diffed(role, args, task):
    used = secrets_used(role, args, task)
    assert not used or task.get("diff") is False or task.get("no_log") is True, (
        "writes %s without diff: false" % ", ".join(used))


def test_the_scan_sees_the_secrets_it_guards():
    role = ROOT / "roles/load_balancer"
    assert secrets_used(role, {"src": "keepalived.conf.j2"}, {}) == ["load_balancer_vrrp_password"]
