"""Test-only: the secrets a scenario gives its inventory, and which of them an output shows.

A secret is the value of an inventory variable whose name says it is one (password, secret, master
or license key, auth_pass, token), at least 8 characters and not a template. It counts as shown when
it appears as written, JSON-escaped or YAML-quoted (how Ansible prints values)."""
import json
import re
from pathlib import Path

import yaml

SECRET_NAME = re.compile(r"password|secret|master_key|license_key|auth_pass|token", re.IGNORECASE)


def declared_secrets(scenario_dir):
    """{variable: value} of the test secrets in SCENARIO_DIR/molecule.yml's inventory (and converge.yml's vars)."""
    scenario_dir = Path(scenario_dir)
    config = yaml.safe_load((scenario_dir / "molecule.yml").read_text())
    sources = [(config.get("provisioner") or {}).get("inventory") or {}]
    converge = scenario_dir / "converge.yml"
    if converge.exists():
        sources += [play.get("vars") or {} for play in yaml.safe_load(converge.read_text()) or []]
    found = {}

    def walk(node):
        if isinstance(node, dict):
            for name, value in node.items():
                if isinstance(value, str) and SECRET_NAME.search(str(name)) and "{{" not in value and len(value) >= 8:
                    found[str(name)] = value
                else:
                    walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    for source in sources:
        walk(source)
    return found


def _forms(value):
    return {value, json.dumps(value)[1:-1], yaml.safe_dump(value, default_style="'").strip()[1:-1]}


def shown(secrets, output):
    """The names of SECRETS ({name: value}) whose value OUTPUT shows, in any of the forms above."""
    return sorted(name for name, value in secrets.items() if any(form in output for form in _forms(value)))
