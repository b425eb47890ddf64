"""No secret in the full -vvv --diff output of every ansible-playbook run of this scenario
(create, prepare, converge, idempotence and the test runs), logged through ANSIBLE_LOG_PATH."""
import base64
import sys
import urllib.parse
from pathlib import Path

import pytest
import testinfra

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "looker_node_shared"))
import looker_node_testlib as lib  # noqa: E402  pylint: disable=wrong-import-position

SECRETS = {name: value for name, value in lib.scenario_vars("all").items() if name.startswith("vault_")}
LOG = lib.EPHEMERAL / "ansible-vvv.log"


@pytest.fixture(scope="module")
def log():
    text = LOG.read_text(errors="replace")
    # The log is the real thing: verbose output of the runs that handled the secrets.
    assert "task path:" in text and "ESTABLISH LOCAL CONNECTION" in text
    for task in ("Fetch and verify the Looker jars on the controller", "Write the application database credentials",
                 "Write LOOKER_DB into a root-only environment file", "Write the encryption master key",
                 "Copy the embedded database into MySQL", "Install the jars, verified on arrival"):
        assert task in text, task
    return text


@pytest.mark.parametrize("name", sorted(SECRETS))
def test_no_secret_in_the_verbose_log(log, name):
    secret = SECRETS[name]
    forms = {secret, urllib.parse.quote(secret, safe=""), base64.b64encode(secret.encode()).decode()}
    if name == "vault_looker_master_key":
        forms.add(base64.b64decode(secret).decode())
    for form in forms:
        assert form not in log, f"{name} appears in {LOG}"


def test_the_secrets_were_really_used():
    a = testinfra.get_host("podman://lkr-node-a")
    assert SECRETS["vault_looker_db_password"] in a.file("/home/looker/looker/looker-db.yml").content_string
    assert a.file("/home/looker/looker/.lkr_master_key").content_string.strip() == SECRETS["vault_looker_master_key"]
    # The jars came from the download-API stand-in, which accepts only this license key and e-mail.
    assert (lib.EPHEMERAL / "jar-cache" / ".looker-jars.json").exists()
