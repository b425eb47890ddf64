"""looker-db.yml as the looker_node role writes it, read back by a YAML parser (issue 16).

Looker reads looker-db.yml with a YAML parser (SnakeYAML, under JRuby), so every value the role
writes must come back exactly as the inventory gave it, whatever characters a password holds.
One ansible-playbook run renders roles/looker_node/templates/looker-db.yml.j2 per case (one host
per case, with the role's defaults and vars and the same task vars as tasks/configure.yml), and
each file is parsed with yaml.safe_load. tests/integration/standin/test_db_config.py proves the
stand-in, which reads the file with SnakeYAML, connects with such a password.
"""
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
ROLE = ROOT / "roles" / "looker_node"


class Unsafe(str):
    """A value written with Ansible's !unsafe tag (never templated), as users keep such passwords."""


def _unsafe(dumper, value):
    return dumper.represent_scalar("!unsafe", str(value), style='"')


class _Dumper(yaml.SafeDumper):
    pass


_Dumper.add_representer(Unsafe, _unsafe)

# case -> (looker_node_db_password, extra inventory vars)
CASES = {
    # The password of issue 16: every character a hand-written YAML reader trips over.
    "issue16": ('Q"uo\'te: #hash {brace} 100% and  spaces', {}),
    "escapes": ("back\\slash \\\" tab\there newline\nend del\x7f bell\x07", {}),
    "spaces_around": ("  leading and trailing  ", {}),
    "looks_like_a_number": ("0123", {}),
    "looks_like_a_bool": ("true", {}),
    "looks_like_null": ("~", {}),
    "yaml_indicators": ("- ? : , [ ] { } # & * ! | > ' \" % @ `", {}),
    "non_ascii": ("pässwörd ✓ 中文 😀 end", {}),
    "unicode_line_breaks": ("nel\x85line sep\u2028para sep\u2029bom\ufeff", {}),
    # An unquoted number in the inventory is an int: the file must still hold the string.
    "integer": (123456789012, {}),
    # Jinja-looking text is kept out of templating with !unsafe (or a vault); the file holds it verbatim.
    "jinja_like": (Unsafe("{{ not_a_var }} {% raw %} {# c #}"), {}),
    "odd_user_and_database": ("plain-Secret-1234", {"looker_node_db_user": "lo'o\"ker", "looker_node_db_name": "looker#1"}),
}


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    """Render looker-db.yml.j2 for every case in one ansible-playbook run; return case -> text."""
    tmp = tmp_path_factory.mktemp("looker_db_yml")
    hosts = {case: {"ansible_connection": "local", "ansible_python_interpreter": sys.executable,
                    "looker_node_db_password": password, "looker_node_db_host": "db.example.com", **extra}
             for case, (password, extra) in CASES.items()}
    # The host vars go in after the role's defaults (include_vars), so they are loaded as case files.
    for case, host_vars in hosts.items():
        (tmp / f"case-{case}.yml").write_text(yaml.dump(host_vars, Dumper=_Dumper, allow_unicode=True))
    inventory = {"all": {"hosts": {case: {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
                                   for case in CASES}}}
    (tmp / "inventory.yml").write_text(yaml.safe_dump(inventory))
    play = [{
        "name": "Render looker-db.yml",
        "hosts": "all",
        "gather_facts": False,
        "tasks": [
            {"name": "Role defaults", "ansible.builtin.include_vars": str(ROLE / "defaults" / "main.yml")},
            {"name": "Role vars", "ansible.builtin.include_vars": str(ROLE / "vars" / "main.yml")},
            {"name": "Case", "ansible.builtin.include_vars": str(tmp) + "/case-{{ inventory_hostname }}.yml"},
            # The same task vars as tasks/configure.yml's "Write the application database credentials".
            {"name": "Render", "ansible.builtin.template": {
                "src": str(ROLE / "templates" / "looker-db.yml.j2"),
                "dest": str(tmp) + "/{{ inventory_hostname }}-looker-db.yml", "mode": "0600"},
             "vars": {"__looker_node_db": {"host": "{{ looker_node_db_host }}", "user": "{{ looker_node_db_user }}",
                                           "password": "{{ looker_node_db_password }}"}},
             "no_log": True},
        ],
    }]
    (tmp / "play.yml").write_text(yaml.safe_dump(play, sort_keys=False))
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_COLLECTIONS_PATH=str(ROOT / ".collections"),
               ANSIBLE_NOCOLOR="1", ANSIBLE_CACHE_PLUGIN="memory", ANSIBLE_PYTHON_INTERPRETER=sys.executable)
    args = [str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(tmp / "inventory.yml"), str(tmp / "play.yml")]
    proc = subprocess.run(args, cwd=tmp, env=env, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return {case: (tmp / f"{case}-looker-db.yml").read_text(encoding="utf-8") for case in CASES}


@pytest.mark.parametrize("case", CASES)
def test_the_password_reads_back_as_given(rendered, case):
    password = CASES[case][0]
    assert yaml.safe_load(rendered[case])["password"] == str(password)


@pytest.mark.parametrize("case", CASES)
def test_every_value_reads_back_with_its_type(rendered, case):
    extra = CASES[case][1]
    assert yaml.safe_load(rendered[case]) == {
        "dialect": "mysql",
        "host": "db.example.com",
        "port": 3306,
        "username": extra.get("looker_node_db_user", "looker"),
        "password": str(CASES[case][0]),
        "database": extra.get("looker_node_db_name", "looker"),
    }


def test_every_string_value_is_double_quoted(rendered):
    """Quoted scalars are strings in every YAML reader (SnakeYAML's resolver, Psych's scalar scanner,
    PyYAML): nothing a password holds can turn it into a number, a boolean, a null or a symbol."""
    for case, text in rendered.items():
        lines = [line for line in text.splitlines() if line and not line.startswith("#")]
        values = dict(line.split(": ", 1) for line in lines)
        assert set(values) == {"dialect", "host", "port", "username", "password", "database"}, case
        for key in ("host", "username", "password", "database"):
            assert values[key].startswith('"') and values[key].endswith('"'), (case, key)


def test_the_file_starts_with_the_managed_header(rendered):
    for case, text in rendered.items():
        assert text.startswith("#") and "Ansible managed" in text.splitlines()[1], case
