"""MySQL 8.0 and 8.4 accounts use mysql_native_password, the only authentication method Looker's JDBC
driver uses (issue 18).

The role gives community.mysql.mysql_user a clear-text `password` and no `plugin`. On MySQL 5.7 and
later that module creates the account `IDENTIFIED WITH mysql_native_password AS '*<hash>'` and
converts an existing account of another plugin (caching_sha2_password, the 8.x default) the same
way, idempotently; with `plugin: mysql_native_password` and `plugin_auth_string` it would instead
report a change on every run. These tests pin both facts against the module code that is installed,
so that a collection upgrade that changes them fails here, and read the role's tasks."""
import hashlib
import re
from pathlib import Path

import pytest
import yaml

from ansible_collections.community.mysql.plugins.module_utils import user as mysql_user

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "molecule-Looker-Secret"


def native_hash(password):
    return "*" + hashlib.sha1(hashlib.sha1(password.encode()).digest()).hexdigest().upper()


class Server:
    """A DB-API cursor for MySQL VERSION that records what is executed; ACCOUNT is the
    (plugin, authentication_string) of the existing account, if any."""

    def __init__(self, version, account=None):
        self.version, self.account, self.executed, self._row = version, account, [], None

    def execute(self, query, args=()):
        query = " ".join(query.split())
        self.executed.append(query % tuple(repr(a) for a in args) if args else query)
        if query.startswith("SELECT VERSION()"):
            self._row = (self.version,)
        elif query.startswith("SELECT CONCAT('*', UCASE(SHA1(UNHEX(SHA1("):
            self._row = (native_hash(args[0]),)
        elif "information_schema.COLUMNS" in query:
            self._row = ("authentication_string",)
        elif query.startswith("SELECT COALESCE("):
            self._row = (self.account[1],)
        elif query.startswith("SELECT plugin, authentication_string FROM mysql.user"):
            self._row = self.account
        elif query.startswith("SHOW CREATE USER"):
            self._row = ("CREATE USER 'looker'@'10.89.0.11' IDENTIFIED WITH '%s' REQUIRE NONE" % self.account[0],)
        else:
            self._row = None

    def fetchone(self):
        return self._row

    def fetchall(self):
        return [self._row] if self._row else []


class Module:
    check_mode = False

    def fail_json(self, **kwargs):
        raise AssertionError(kwargs)

    def warn(self, msg):
        pass


def add(server):
    return mysql_user.user_add(server, "looker", "10.89.0.11", False, PASSWORD, False, None, None, None, None, None,
                               None, None, False, Module(), None, None)


def mod(server):
    return mysql_user.user_mod(server, "looker", "10.89.0.11", False, PASSWORD, False, None, None, None, None, None,
                               False, False, None, None, Module(), None, None)


@pytest.mark.parametrize("version", ["8.0.36", "8.4.3"])
def test_a_new_account_is_created_with_mysql_native_password(version):
    server = Server(version)
    assert add(server)["changed"]
    created = [q for q in server.executed if q.startswith("CREATE USER")]
    assert created == ["CREATE USER 'looker'@'10.89.0.11' IDENTIFIED WITH mysql_native_password AS '%s'"
                       % native_hash(PASSWORD)]
    assert not any(PASSWORD in q for q in created)


@pytest.mark.parametrize("version", ["8.0.36", "8.4.3"])
def test_an_account_of_another_plugin_is_converted_once(version):
    server = Server(version, account=("caching_sha2_password", "$A$005$salt-and-hash"))
    result = mod(server)
    assert result["changed"]
    assert "ALTER USER 'looker'@'10.89.0.11' IDENTIFIED WITH mysql_native_password AS '%s'" % native_hash(PASSWORD) \
        in server.executed
    # The next run finds the native hash: nothing to do.
    again = Server(version, account=("mysql_native_password", native_hash(PASSWORD)))
    assert not mod(again)["changed"]
    assert not any(q.startswith("ALTER USER") for q in again.executed)


def test_the_role_creates_its_accounts_from_a_clear_text_password_without_a_plugin():
    tasks = yaml.safe_load((ROOT / "roles/mysql_appdb/tasks/database.yml").read_text())
    found = {}

    def walk(items):
        for task in items:
            walk(task.get("block", []))
            args = task.get("community.mysql.mysql_user")
            if args and args.get("state") == "present":
                found[args["name"]] = (args, task)

    walk(tasks)
    assert set(found) == {"{{ mysql_appdb_looker_user }}", "{{ mysql_appdb_readonly_user }}",
                          "{{ mysql_appdb_replication_user }}"}
    for name, (args, task) in found.items():
        assert "plugin" not in args and "plugin_auth_string" not in args and "plugin_hash_string" not in args, name
        assert re.fullmatch(r"\{\{ mysql_appdb_\w+_password \}\}", args["password"]), name
        assert not args.get("encrypted", False) and task.get("no_log") is True, name
