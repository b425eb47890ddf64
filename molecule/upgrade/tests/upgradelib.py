"""Helpers for molecule/upgrade's tests: run playbooks/upgrade.yml under the bounded load of
bench/upgrade/load.py and read the cluster's state."""
import importlib.util
import json
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import testinfra

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "molecule" / "looker_node_shared"))
import looker_node_testlib as lib  # noqa: E402  pylint: disable=wrong-import-position,unused-import

_spec = importlib.util.spec_from_file_location("upgrade_load", ROOT / "bench" / "upgrade" / "load.py")
load = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(load)

HOSTS = {name: testinfra.get_host("podman://lkr-upgrade-" + name) for name in ("db", "db2", "a", "b", "c", "d", "lb")}
INSTALL = "/home/looker/looker"


def address(name):
    return HOSTS[name].check_output("hostname -I").split()[0]


def lb_url():
    return "https://%s" % address("lb")


def upgrade(strategy, version, *extra):
    """ansible-playbook playbooks/upgrade.yml; returns (rc, output), also kept in the ephemeral directory.
    version None: the release the inventory names (see inventory_release)."""
    overrides = ("-e", "looker_upgrade_version=" + version) if version else ()
    rc, out = lib.run_playbook(str(ROOT / "playbooks" / "upgrade.yml"), "-e", "looker_upgrade_strategy=" + strategy,
                               *overrides, *extra, check=False)
    (lib.EPHEMERAL / ("upgrade-%s-%s.log" % (strategy, version or "inventory"))).write_text(out)
    return rc, out


def inventory_release(version, nodes=("a", "b")):
    """The inventory as an operator edits it for an upgrade: a second inventory source naming
    looker_node_version for the nodes. The scenario's own sets it in a group_vars file, which beats
    variables of a group in another source: the edit is a host_vars file beside it. Returns the -i arguments."""
    inventory = lib.EPHEMERAL / ("release-%s" % version)
    (inventory / "host_vars").mkdir(parents=True, exist_ok=True)
    hosts = ["lkr-upgrade-" + name for name in nodes]
    (inventory / "hosts.yml").write_text("looker_nodes:\n  hosts:\n" + "".join("    %s:\n" % host for host in hosts))
    for host in hosts:
        (inventory / "host_vars" / (host + ".yml")).write_text("looker_node_version: '%s'\n" % version)
    return ("-i", str(inventory / "hosts.yml"))


def seed_jar_cache(version):
    """Put the stand-in jars of VERSION into the controller's jar cache, with the record looker_jar
    writes (test fixture: as a controller that fetched them earlier has them)."""
    import shutil  # pylint: disable=import-outside-toplevel

    jars, cache = lib.EPHEMERAL / "jars" / version, lib.EPHEMERAL / "jar-cache"
    for name in ("looker.jar", "looker-dependencies.jar"):
        shutil.copyfile(jars / name, cache / name)
    sums = {key: (jars / (name + ".sha256")).read_text().split()[0]
            for key, name in (("sha256", "looker.jar"), ("dependencies_sha256", "looker-dependencies.jar"))}
    (cache / ".looker-jars.json").write_text(json.dumps(dict(sums, version=version), indent=2, sort_keys=True))


def upgrade_under_load(tag, strategy, version, *extra, rate=5.0):
    """The upgrade with writes and reads through the balancer from before it starts to after it ends."""
    # A tag of its own per run: a uid written again would be answered as the existing record.
    run = load.Load(lb_url(), "%s-%d" % (tag, time.time()), rate=rate, max_seconds=900).start()
    try:
        rc, out = upgrade(strategy, version, *extra)
    finally:
        run.stop()
    return rc, out, run


def upgrade_losing_nothing(label, tag, strategy, version, *extra):
    """upgrade_under_load that must succeed with writes acknowledged and none of them lost;
    returns (output, figures), the figures kept for the report under LABEL."""
    rc, out, run = upgrade_under_load(tag, strategy, version, *extra)
    ok(rc, out)
    missing = run.missing()
    figures = record_figures(label, run, missing)
    assert figures["acked_writes"] > 0
    assert missing == []
    return out, figures


def running_release(name):
    answer = lib.http(HOSTS[name], "https://lkr-upgrade-%s:19999/api/4.0/versions" % name)
    assert answer["status"] == 200, answer
    return json.loads(answer["body"])["looker_release_version"]


def installed_release(name):
    return json.loads(HOSTS[name].file(INSTALL + "/.looker-jars.json").content_string)["version"]


def sql(host, query):
    return HOSTS[host].check_output("mariadb -N -B -e %s looker", query)


def migrations(host, schema):
    return sql(host, "SELECT node FROM standin_migrations WHERE to_schema = '%s'" % schema).split()


def ok(rc, out):
    assert rc == 0, out[-8000:]


def recap(out):
    return lib.recap(out)


def text(out):
    return " ".join(out.split())


def log_has(name, pattern):
    return re.search(pattern, HOSTS[name].file(INSTALL + "/log/looker.log").content_string) is not None


def record_figures(label, run, missing):
    """Keep the figures for the report (the scenario's ephemeral directory)."""
    figures = dict(run.figures(), missing=len(missing), strategy=label)
    path = Path(os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY", "/tmp")) / "upgrade-figures.jsonl"
    with path.open("a") as handle:
        handle.write(json.dumps(figures) + "\n")
    print(label, figures)
    return figures


__all__ = ["HOSTS", "threading", "subprocess"]
