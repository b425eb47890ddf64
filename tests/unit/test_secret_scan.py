"""The secret scan the scenario runs end with (molecule/shared/secret_scan.py): which inventory values
count as secrets, and that a secret shows whether printed as written, JSON-escaped or YAML-quoted."""
import json
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "molecule" / "shared"))
from secret_scan import declared_secrets, shown  # noqa: E402  pylint: disable=wrong-import-position

PASSWORD = 'molecule "CLUSTER" \'DB\': #4c1d {pw} 100% ok'


def scenario(tmp_path, group_vars, converge_vars=None):
    (tmp_path / "molecule.yml").write_text(yaml.safe_dump({"provisioner": {"inventory": {"group_vars": {"all": group_vars}}}}))
    if converge_vars is not None:
        (tmp_path / "converge.yml").write_text(yaml.safe_dump([{"hosts": "all", "vars": converge_vars}]))
    return tmp_path


def test_secrets_are_the_values_of_variables_named_as_secrets(tmp_path):
    found = declared_secrets(scenario(tmp_path, {
        "vault_looker_db_password": PASSWORD, "looker_node_master_key": "bG9va2Vyb3Bz", "keepalived_auth_pass": "kA-9x7yQ",
        "looker_node_db_password": "{{ vault_looker_db_password }}", "looker_node_license_email": "ops@example.com",
        "short_token": "abc", "mysql_appdb_port": 3306}, {"bcp_replication_api_token": "tok-1234-5678"}))
    assert found == {"vault_looker_db_password": PASSWORD, "looker_node_master_key": "bG9va2Vyb3Bz",
                     "keepalived_auth_pass": "kA-9x7yQ", "bcp_replication_api_token": "tok-1234-5678"}


def test_a_secret_shows_as_written_json_escaped_or_yaml_quoted():
    secrets = {"db": PASSWORD}
    assert shown(secrets, "password: " + PASSWORD) == ["db"]
    assert shown(secrets, json.dumps({"password": PASSWORD})) == ["db"]
    assert shown(secrets, yaml.safe_dump({"password": PASSWORD}, default_style="'")) == ["db"]
    assert shown(secrets, '"password": "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"') == []
