"""lookerops.cluster.release_plan and recorded_release(s): a cluster that runs Looker keeps its
release; only an upgrade (allow_change) changes it; a request naming another release is refused."""
import base64
import json

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.lookerops.cluster.plugins.filter.releases import (
    recorded_release,
    recorded_releases,
    release_of,
    release_plan,
    release_request_kind,
)


def record(version, sha="a" * 64, dep="b" * 64):
    return {"version": version, "sha256": sha, "dependencies_sha256": dep}


RUNNING = {"node1": record("25.6.12"), "node2": record("25.6.12")}


@pytest.mark.parametrize("request_", ["latest", "25.6", "25.6.12", " 25.6.12 "])
def test_a_running_cluster_keeps_its_release_when_the_request_names_it(request_):
    plan = release_plan(request_, RUNNING)
    assert plan["action"] == "keep" and plan["running"] == ["25.6.12"]
    assert plan["release"] == record("25.6.12")
    assert plan["moving"] == (request_.strip() != "25.6.12")


def test_a_new_node_of_a_running_cluster_gets_the_running_release():
    plan = release_plan("latest", dict(RUNNING, node3={"version": ""}))
    assert plan["action"] == "keep" and plan["release"]["version"] == "25.6.12"


def test_unreadable_records_do_not_hide_the_running_release():
    plan = release_plan("25.6", dict(RUNNING, node3={"version": "unreachable"}, node4={"version": "unknown"}))
    assert plan["action"] == "keep" and plan["release"]["version"] == "25.6.12"


@pytest.mark.parametrize("request_", ["25.7", "25.7.2", "26.1.0"])
def test_a_request_for_another_release_is_refused_naming_upgrade_yml(request_):
    plan = release_plan(request_, RUNNING)
    assert plan["action"] == "refuse"
    assert plan["reason"].startswith(f"The cluster runs Looker 25.6.12 (node1, node2), and looker_node_version "
                                     f"(looker_version in the inventory) asks for {request_}.")
    assert "run playbooks/upgrade.yml" in plan["reason"] and "set looker_version to 25.6.12, 25.6 or latest" in plan["reason"]
    assert plan["reason"].endswith("Nothing was changed.")


@pytest.mark.parametrize("request_", ["25.5", "25.6.11", "24.20.3"])
def test_an_older_release_is_refused_as_a_downgrade(request_):
    plan = release_plan(request_, RUNNING)
    assert plan["action"] == "refuse" and "an older release" in plan["reason"] and "forward only" in plan["reason"]
    assert "playbooks/upgrade.yml rolls back" in plan["reason"]


def test_an_upgrade_never_goes_back_to_an_older_minor_release():
    plan = release_plan("25.5", RUNNING, allow_change=True)
    assert plan["action"] == "refuse"
    assert plan["reason"].startswith("The cluster runs Looker 25.6.12 (node1, node2), and the upgrade asks for 25.5, an older release.")
    assert release_plan("25.5.9", RUNNING, allow_change=True)["action"] == "refuse"
    # Nor to an older patch: the upgrade plan refuses it by the same rule (looker_release.older_than).
    assert release_plan("25.6.11", RUNNING, allow_change=True)["action"] == "refuse"


def test_an_upgrade_may_change_the_release():
    assert release_plan("25.7", RUNNING, allow_change=True)["action"] == "resolve"
    # latest and X.Y are asked again: they may name a newer patch or release now.
    assert release_plan("latest", RUNNING, allow_change=True)["action"] == "resolve"
    assert release_plan("25.6", RUNNING, allow_change=True)["action"] == "resolve"
    # ... and keeps it when the request names the running release (a restart, or a rollback's start).
    assert release_plan("25.6.12", RUNNING, allow_change=True)["action"] == "keep"
    # As -e passes it: a string.
    assert release_plan("25.7", RUNNING, allow_change="true")["action"] == "resolve"
    assert release_plan("25.7", RUNNING, allow_change="false")["action"] == "refuse"


def test_mixed_releases_are_refused_unless_upgrading():
    records = {"node1": record("25.7.2"), "node2": record("25.6.12")}
    plan = release_plan("latest", records)
    assert plan["action"] == "refuse"
    assert "run different releases (node2: 25.6.12, node1: 25.7.2)" in plan["reason"]
    assert "playbooks/upgrade.yml" in plan["reason"]
    assert release_plan("25.7.2", records, allow_change=True)["action"] == "resolve"


def test_a_first_install_resolves():
    assert release_plan("latest", {"node1": {"version": ""}, "node2": {"version": ""}})["action"] == "resolve"
    assert release_plan("latest", {})["action"] == "resolve"


def test_a_bad_request_is_an_error():
    with pytest.raises(AnsibleFilterError, match="not a Looker release"):
        release_plan("25.x", RUNNING)


def slurped(obj):
    return {"content": base64.b64encode(json.dumps(obj).encode()).decode(), "encoding": "base64"}


def test_recorded_release_reads_the_record():
    # "installed" is the release where the record names one, else "" (no Looker, or an unreadable record).
    assert recorded_release(slurped(record("25.6.12"))) == dict(record("25.6.12"), installed="25.6.12")
    assert recorded_release({"failed": True, "msg": "file not found: /home/looker/looker/.looker-jars.json"}) == {
        "version": "", "installed": ""}
    assert recorded_release({"unreachable": True, "msg": "ssh: connect"}) == {"version": "unreachable", "installed": ""}
    assert recorded_release({"failed": True, "msg": "Permission denied"}) == {"version": "unknown", "installed": ""}
    assert recorded_release({"content": base64.b64encode(b"not json").decode()}) == {"version": "unknown", "installed": ""}
    assert recorded_release(slurped(["25.6.12"])) == {"version": "unknown", "installed": ""}


def test_recorded_releases_of_a_loop():
    results = {"results": [dict(slurped(record("25.6.12")), item="node1"), {"item": "node2", "unreachable": True},
                           {"item": "node3", "skipped": True}]}
    assert recorded_releases(results) == {"node1": dict(record("25.6.12"), installed="25.6.12"),
                                          "node2": {"version": "unreachable", "installed": ""}}
    assert recorded_releases(results["results"]) == recorded_releases(results)
    with pytest.raises(AnsibleFilterError):
        recorded_release("text")


@pytest.mark.parametrize("value, kind", [("latest", "latest"), ("25.6", "minor"), (" 25.6 ", "minor"), ("25.6.12", "exact"),
                                         (25.6, "minor"), ("25.6.x", ""), ("v25.6", ""), ("", ""), ("25", "")])
def test_release_request_kind_is_the_rule_of_looker_release(value, kind):
    assert release_request_kind(value) == kind


@pytest.mark.parametrize("value, release", [("25.6.12", "25.6.12"), ("25.6.12-b3", "25.6.12"), ("25.6.12 build 7", "25.6.12"),
                                            ("25.6", ""), ("25.6.12abc", ""), ("", ""), (None, "")])
def test_release_of_reads_a_version_string_as_a_manifest_is_read(value, release):
    assert release_of(value) == release
