# -*- coding: utf-8 -*-
# Copyright: lookerops.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The upgrade plan of a Looker cluster: from the inspected state of the cluster and the requested
strategy and release, either an ordered list of steps or the reasons the upgrade is refused.

Pure functions (no I/O): playbooks/upgrade.yml gathers the state with tasks and the module
lookerops.cluster.looker_upgrade_plan calls plan() with it, so every refusal is unit-tested."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.lookerops.cluster.plugins.module_utils.looker_release import (
    ReleaseError,
    manifest_release,
    older_than,
    releases_in_use,
    schema_of,
    version_key,
)

STRATEGIES = ("rolling", "replica_swap")


class PlanRefused(Exception):
    """The upgrade is unsafe; `reasons` says why, each with its fix."""

    def __init__(self, reasons):
        self.reasons = list(reasons)
        super(PlanRefused, self).__init__("; ".join(self.reasons))


# The release rules are looker_release's; here an unknown release is None or "", not an error.
def _key(version):
    try:
        return version_key(str(version or "").strip())
    except ReleaseError:
        return None


def _minor(version):
    return schema_of(str(version).strip()) if _key(version) else ""


def _names(nodes):
    return [str(node.get("name")) for node in nodes]


def _release(version):
    """The X.Y.Z a manifest's Implementation-Version starts with ('25.6.12', '25.6.12-b3' -> '25.6.12'), or ''."""
    return manifest_release(version) or ""


def _node_problems(nodes):
    """Problems of the nodes of the running cluster (each a sentence), and its single release.

    A node's release is known three ways, all documented by Looker or written by this collection:
    the record of looker_jar (installed_version), the Implementation-Version of its looker.jar's
    manifest (jar_version) and looker_release_version of /api/4.0/versions (running_version). They
    must agree on every node, and every node must be on one release: then the application database
    holds that release's schema (Looker migrates it when the first node of a release starts)."""
    problems = []
    releases = []
    for node in nodes:
        name = node.get("name")
        installed = str(node.get("installed_version") or "")
        jar = _release(node.get("jar_version"))
        running = str(node.get("running_version") or "")
        if not installed:
            problems.append("%s has no Looker installed (no .looker-jars.json): deploy the cluster with playbooks/site.yml first" % name)
            continue
        if not jar:
            problems.append("%s: the manifest of its looker.jar names no release (Implementation-Version), so the jar on disk is "
                            "not known to be Looker %s: run playbooks/site.yml to install the recorded pair again" % (name, installed))
        elif jar != installed:
            problems.append("%s: its looker.jar is Looker %s (manifest) but %s is recorded as installed (.looker-jars.json): the "
                            "jars were replaced outside lookerops.cluster; run playbooks/site.yml to install one release" % (name, jar, installed))
        if not node.get("active"):
            problems.append("%s is not running (Looker %s installed): start it and check it first, so that the upgrade starts from "
                            "a cluster known to work (a node left stopped by an earlier failed upgrade: run the rollback first)"
                            % (name, installed))
        elif not node.get("healthy"):
            problems.append("%s runs but does not answer /alive: repair it before upgrading" % name)
        elif not running:
            problems.append("%s answers /alive but not which release it runs (looker_release_version of /api/4.0/versions): "
                            "repair it before upgrading" % name)
        elif running != installed:
            problems.append("%s runs Looker %s but has %s installed (new jars not started yet)" % (name, running, installed))
        releases += [(name, installed), (name, running)]
    versions = releases_in_use(releases)
    if len(versions) > 1:
        problems.append("mixed-version cluster (%s): Looker must never run two versions against one application database; "
                        "bring every node to one release with the looker_node role first"
                        % ", ".join("%s on %s" % ("/".join(sorted(hosts)), version) for version, hosts in sorted(versions.items())))
    current = list(versions)[0] if len(versions) == 1 else ""
    return problems, current


def _check_backup(state):
    reasons = []
    if not state.get("backup_available", True):
        reasons.append("no backup of the application database can be made (lookerops-appdb-backup missing on the primary): "
                       "the rolling strategy restores a backup when the upgrade fails; set mysql_appdb_backup_enabled: true "
                       "and run playbooks/site.yml")
    free, size = state.get("backup_free_mb"), state.get("database_size_mb")
    ratio = float(state.get("backup_space_ratio", 1.0))
    if free is not None and size is not None and float(free) >= 0 and float(size) >= 0:
        needed = float(size) * ratio
        if float(free) < needed:
            reasons.append("no backup space: %.0f MB free in the backup directory, %.0f MB needed (database %.0f MB x %.2f); "
                           "free space or lower mysql_appdb_backup_retention_days" % (float(free), needed, float(size), ratio))
    return reasons


def _check_replica(replica, max_lag):
    if not replica or not replica.get("host"):
        return ["replica_swap needs a replica of the application database (a host in looker_appdb_replica)"]
    host = replica["host"]
    reasons = []
    if not replica.get("is_replica", True):
        reasons.append("%s does not replicate from the primary: run playbooks/site.yml (mysql_appdb) to set up replication" % host)
        return reasons
    if not replica.get("io_running") or not replica.get("sql_running"):
        reasons.append("replica %s is not in sync: IO thread %s, SQL thread %s%s; repair replication first"
                       % (host, "running" if replica.get("io_running") else "stopped",
                          "running" if replica.get("sql_running") else "stopped",
                          (" (" + replica["last_error"] + ")") if replica.get("last_error") else ""))
    lag = replica.get("seconds_behind")
    if lag is None or str(lag) == "":
        if not reasons:
            reasons.append("replica %s does not report its lag (Seconds_Behind): it is not in sync" % host)
    elif int(lag) > int(max_lag):
        reasons.append("replica %s is %s s behind the primary (at most %s allowed): wait until it catches up"
                       % (host, lag, max_lag))
    return reasons


def _check_new_nodes(nodes, new_nodes, lb_backends, target):
    reasons = []
    if not new_nodes:
        return ["replica_swap needs the hosts of the new cluster (looker_upgrade_new_nodes_group), none were given"]
    overlap = sorted(set(_names(nodes)) & set(_names(new_nodes)))
    if overlap:
        reasons.append("%s would be in both the old and the new cluster: the new cluster needs its own hosts" % ", ".join(overlap))
    for node in new_nodes:
        if node.get("active"):
            running = node.get("running_version") or node.get("installed_version") or "?"
            reasons.append("new node %s already runs Looker (%s): stop it, a new node must start on %s against the promoted replica"
                           % (node.get("name"), running, target))
    if lb_backends is not None:
        missing = sorted(set(_names(new_nodes)) - set(lb_backends))
        if missing:
            reasons.append("the load balancer does not know %s: list the new nodes in load_balancer_backend_hosts next to the old "
                           "ones and run the load_balancer role, so that the switch needs no reload" % ", ".join(missing))
    return reasons


def plan(state):
    """Return the plan (dict) for `state`, or raise PlanRefused with every reason.

    state: strategy, target_version, nodes [{name, installed_version, jar_version, running_version,
    active, healthy}], and for rolling backup_available, backup_free_mb, database_size_mb,
    backup_space_ratio; for replica_swap replica {host, is_replica, io_running, sql_running,
    seconds_behind, last_error}, max_replica_lag, new_nodes, lb_backends."""
    strategy = state.get("strategy")
    target = str(state.get("target_version") or "").strip()
    nodes = list(state.get("nodes") or [])
    reasons = []
    if strategy not in STRATEGIES:
        raise PlanRefused(["unknown strategy %r: use one of %s" % (strategy, ", ".join(STRATEGIES))])
    if not _key(target):
        raise PlanRefused(["the target release %r is not an exact release X.Y.Z" % target])
    if not nodes:
        raise PlanRefused(["no Looker nodes were inspected (the looker_nodes group is empty)"])

    problems, current = _node_problems(nodes)
    reasons.extend(problems)
    action = "upgrade"
    if current:
        if older_than(target, current):
            reasons.append("downgrade from %s to %s: Looker migrates its application database forward only; going back means "
                           "restoring the backup taken before the upgrade, with the old jars" % (current, target))
        elif target == current:
            action = "restart"
            if strategy == "replica_swap":
                reasons.append("the cluster already runs %s: there is nothing to swap; a configuration change of the same release "
                               "is a rolling restart (looker_upgrade_strategy: rolling)" % target)

    if strategy == "rolling" and action == "upgrade":
        reasons.extend(_check_backup(state))
    if strategy == "replica_swap":
        reasons.extend(_check_replica(state.get("replica") or {}, state.get("max_replica_lag", 5)))
        reasons.extend(_check_new_nodes(nodes, list(state.get("new_nodes") or []), state.get("lb_backends"), target))
    if reasons:
        raise PlanRefused(reasons)

    order = _names(nodes)
    migrates = action == "upgrade" and _minor(target) != _minor(current)
    result = dict(strategy=strategy, action=action, from_version=current, to_version=target,
                  schema_from=_minor(current), schema_to=_minor(target), migrates_schema=migrates,
                  nodes=order, first_node=order[0])
    if action == "restart":
        result["steps"] = ["drain %s on the load balancer, restart it with the new configuration, wait for /alive, "
                           "put it back" % name for name in order]
    elif strategy == "rolling":
        result["steps"] = (
            ["install the %s jars on every node (looker_jar, verified by SHA-256) while the old release serves; stop every "
             "node (%s) for the swap of the jars: no write is accepted from here on" % (target, ", ".join(order)),
             "back up the application database and verify the dump (restore check)"]
            + (["migrate the schema %s -> %s from %s (looker.jar migrate_db_to_looker_version %s)"
                % (_minor(current), _minor(target), order[0], target)] if migrates else [])
            + ["start %s and wait for /alive" % name for name in order]
            + ["on failure: stop every node, restore the verified dump and the %s jars, start %s again" % (current, current)])
    else:
        new = _names(state.get("new_nodes") or [])
        replica = state["replica"]["host"]
        result.update(new_nodes=new, replica=replica)
        policy = state.get("swap_policy") or "block"
        result.update(swap_policy=policy)
        if policy == "block":
            cutover = [
                "cutover: set the primary read-only - Looker writes on nearly every request, so most requests fail from here "
                "until the new nodes serve, reads included",
                "wait until the replica has applied every transaction of the primary (GTID)",
                "promote %s: stop replication, make it writable" % replica]
            after = []
        else:
            cutover = [
                "promote %s at once: stop replication, record the fork (the GTIDs it applied), make it writable - the old "
                "cluster serves on, on the old primary" % replica]
            after = ["save every transaction the old primary committed after the fork from its binary logs, with a report, "
                     "and count them"]
        result["steps"] = (
            ["install %s on the new nodes (%s) against the replica %s, not started" % (target, ", ".join(new), replica)]
            + cutover
            + ["%sstart %s and wait for /alive" % (
                "migrate the schema %s -> %s from %s (looker.jar migrate_db_to_looker_version %s), then "
                % (_minor(current), _minor(target), new[0], target) if migrates else "", new[0]),
               "put %s in the load balancers, drain and disable the old nodes, stop them" % new[0]]
            + after
            + ["start %s one at a time behind /alive and put each in the load balancers" % ", ".join(new[1:])] * (len(new) > 1)
            + ["on failure before the switch: stop the new nodes, make the primary writable again: the old cluster serves on"])
    return result
