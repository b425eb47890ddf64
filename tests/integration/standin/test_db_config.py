"""looker-db.yml read the way Looker reads it, with a YAML parser (issue 16).

A MariaDB account whose password holds the characters a hand-written reader trips over (" ' : #
{ } % spaces, backslashes) and a node given that password in looker-db.yml, written in each style
a YAML writer may choose (the role's template writes a double-quoted scalar). The node must
connect, serve and write through that account; a file holding the password with its escapes left
in must be refused, so that the account cannot be reached with anything but the exact password.
"""
import json
import os
import urllib.parse

import pytest
import yaml

from standin_helpers import PLAIN_HTTP

PASSWORD = "Q\"uo'te: #hash {brace} 100% and  spaces \\back\\slash"
USER = "looker_quoted"
# A failing start gives up quickly (the tests' databases are up).
DB_WAIT = ["-Dstandin.db.wait.seconds=10"]


def _double_quoted(value):
    """A YAML double-quoted scalar, escaped by PyYAML's emitter (what the role's template does with to_yaml)."""
    return yaml.dump(value, default_style='"', width=2**31 - 1).strip()


def _fields(db):
    return {"dialect": "mysql", "host": db.host, "port": db.port, "username": db.username, "password": db.password,
            "database": db.name}


def _lines(db, password):
    return (f"dialect: mysql\nhost: {db.host}\nport: {db.port}\nusername: {db.username}\n"
            f"password: {password}\ndatabase: {db.name}\n")


# style -> the text of looker-db.yml for a database
STYLES = {
    "double_quoted_as_the_role_writes": lambda db: _lines(db, _double_quoted(db.password)),
    "json_escaped": lambda db: _lines(db, json.dumps(db.password)),
    "single_quoted": lambda db: _lines(db, yaml.dump(db.password, default_style="'", width=2**31 - 1).strip()),
    "literal_block": lambda db: _lines(db, "|-\n  " + db.password),
    "flow_mapping_with_comments": lambda db: "# looker-db.yml\n---\n" + json.dumps(_fields(db)) + "  # one line\n",
    "block_mapping_by_pyyaml": lambda db: yaml.safe_dump(_fields(db), width=2**31 - 1),
}


@pytest.fixture(scope="module")
def account(mariadb):
    """A MariaDB account with PASSWORD, allowed on every standin_quoted_<n> database."""
    conn = mariadb.admin()
    try:
        with conn.cursor() as cur:
            cur.execute("DROP USER IF EXISTS %s@'%%'", (USER,))
            cur.execute("CREATE USER %s@'%%' IDENTIFIED BY %s", (USER, PASSWORD))
            cur.execute("GRANT ALL ON `standin\\_quoted\\_%%`.* TO %s@'%%'", (USER,))
    finally:
        conn.close()
    return USER


@pytest.fixture
def quoted_db(mariadb, account):
    db = mariadb.database("quoted")
    db.username, db.password = account, PASSWORD
    return db


def _node_with_yml(nodes, jars, text):
    node = nodes.node(jars["25.6.12"], args=[PLAIN_HTTP], java_args=DB_WAIT)
    node.workdir.mkdir(parents=True, exist_ok=True)
    yml = node.workdir / "looker-db.yml"
    yml.write_text(text, encoding="utf-8")
    os.chmod(yml, 0o600)
    node.args += ["-d", str(yml)]
    return node


def _assert_serves_through_the_account(node, db, payload):
    state = node.state()
    assert state["database"]["status"] == "ok" and state["database"]["kind"] == "mysql", state["database"]
    assert state["database"]["database"] == db.name
    status, body = node.post("/standin/records", {"payload": payload})
    assert status == 201, body
    assert db.scalar("SELECT COUNT(*) FROM standin_records WHERE payload = %s", (payload,)) == 1
    assert node.stop() == 0
    for text in (node.output(), node.log()):
        assert PASSWORD not in text and json.dumps(PASSWORD)[1:-1] not in text


@pytest.mark.parametrize("style", STYLES)
def test_a_password_with_quotes_and_yaml_indicators_connects(jars, nodes, quoted_db, style):
    text = STYLES[style](quoted_db)
    assert yaml.safe_load(text)["password"] == PASSWORD  # the file says what the test means
    node = _node_with_yml(nodes, jars, text).start().wait_alive()
    _assert_serves_through_the_account(node, quoted_db, style)


def test_the_same_password_through_looker_db(jars, nodes, quoted_db):
    """LOOKER_DB, each value URL-encoded as the role's urlencode filter does (urllib.parse.quote)."""
    fields = _fields(quoted_db)
    env = "&".join(f"{k}={urllib.parse.quote(str(v), safe='/')}" for k, v in fields.items())
    node = nodes.node(jars["25.6.12"], args=[PLAIN_HTTP], java_args=DB_WAIT, env={"LOOKER_DB": env}).start().wait_alive()
    _assert_serves_through_the_account(node, quoted_db, "looker_db")


def test_the_password_with_its_escapes_left_in_is_refused(jars, nodes, quoted_db):
    """What a reader that strips the quotes without unescaping passes on: MariaDB refuses it."""
    escaped = json.dumps(PASSWORD)[1:-1]
    assert escaped != PASSWORD
    text = _lines(quoted_db, yaml.dump(escaped, default_style="'", width=2**31 - 1).strip())
    node = _node_with_yml(nodes, jars, text)
    node.java_args.append("-Dstandin.db.wait.seconds=2")
    node.start()
    assert node.wait_exit() == 1
    out = node.output()
    assert f"application database mysql://{USER}@{quoted_db.host}" in out and "unreachable for 2 s" in out
    assert "Access denied" in out
    assert PASSWORD not in out and escaped not in out
