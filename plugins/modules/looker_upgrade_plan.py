#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: lookerops.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: looker_upgrade_plan
short_description: Validate an upgrade of a Looker cluster and return its ordered steps, or refuse it
version_added: 0.2.0
description:
  - Takes the inspected state of a Looker cluster (each node's recorded, manifest and running release and
    its health, the replica's replication state, the space for a backup) and the requested O(strategy) and
    O(target_version), and returns the plan of the upgrade as ordered steps.
  - Refuses, listing every reason with its fix, an upgrade that is not safe - a downgrade, a
    mixed-version cluster, a node whose looker.jar manifest, recorded release and running release
    disagree, a stopped or unhealthy node, no backup or no space for it (V(rolling)), a replica that is
    not in sync, no new nodes or new nodes already running Looker, new nodes the load balancer does not
    know (V(replica_swap)).
  - The schema of the application database is not read - Looker documents no way to read it. It is the
    schema of the release every node runs (Looker migrates the schema when the first node of a release
    starts, and refuses to start against a newer one), which is what this module checks.
  - Changes nothing and contacts no host; C(playbooks/upgrade.yml) gathers the state with read-only
    tasks and passes it here, so the decision can be tested without a cluster.
author:
  - lookerops.cluster maintainers (@lookerops)
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
    details: The module never changes anything.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing) in diff mode.
    support: none
options:
  strategy:
    description:
      - V(rolling) stops every node, backs up the database, installs the new jars and starts one node
        first (it migrates the schema), then the others. The same release is a rolling restart.
      - V(replica_swap) starts new nodes on the new release against the promoted replica of the database
        and switches the load balancer to them.
    type: str
    required: true
    choices: [rolling, replica_swap]
  target_version:
    description: The exact release to run afterwards (C(X.Y.Z)), as the looker_jar module resolved it.
    type: str
    required: true
  nodes:
    description: The nodes of the running cluster, in the order they are to be started.
    type: list
    elements: dict
    required: true
    suboptions: &node_suboptions
      name:
        description: Inventory name.
        type: str
        required: true
      installed_version:
        description: Release recorded in C(.looker-jars.json); empty when Looker is not installed.
        type: str
        default: ""
      jar_version:
        description:
          - C(Implementation-Version) of the manifest of the installed C(looker.jar) (its C(X.Y.Z) prefix is compared).
          - Empty when it could not be read; a node of O(nodes) with Looker installed is then refused.
        type: str
        default: ""
      running_version:
        description: C(looker_release_version) of C(/api/4.0/versions); empty when not answering.
        type: str
        default: ""
      active:
        description: Whether the Looker service runs.
        type: bool
        default: false
      healthy:
        description: Whether C(/alive) answered 200.
        type: bool
        default: false
  new_nodes:
    description: V(replica_swap) only, the hosts of the new cluster (same keys as O(nodes)).
    type: list
    elements: dict
    default: []
    suboptions: *node_suboptions
  backup_available:
    description: V(rolling) only, whether the backup command of the mysql_appdb role exists on the primary.
    type: bool
    default: true
  backup_free_mb:
    description: V(rolling) only, free space in the backup directory (MB); a negative value skips the check.
    type: float
    default: -1
  database_size_mb:
    description: V(rolling) only, size of the application database (data and indexes, MB); negative skips the check.
    type: float
    default: -1
  backup_space_ratio:
    description: V(rolling) only, free space needed as a multiple of O(database_size_mb).
    type: float
    default: 1.0
  replica:
    description:
      - V(replica_swap) only, the replica's state, from community.mysql.mysql_replication C(getreplica).
      - Keys C(host), C(is_replica), C(io_running), C(sql_running) (booleans), C(seconds_behind) (int or
        null when replication does not run), C(last_error).
    type: dict
    default: {}
  max_replica_lag:
    description: V(replica_swap) only, the most seconds the replica may be behind.
    type: int
    default: 5
  swap_policy:
    description:
      - V(replica_swap) only, how the cutover treats writes.
      - V(block) sets the primary read-only and promotes the replica once it has applied every transaction - no write
        is lost; from the read-only switch until the new nodes serve, most requests fail.
      - V(capture) promotes the replica at once and lets the old cluster serve until the balancers switch; afterwards
        every transaction the old primary committed after the fork is saved from its binary logs and counted.
    type: str
    choices: [block, capture]
    default: block
  lb_backends:
    description: V(replica_swap) only, the backends the load balancer knows; omit to skip the check.
    type: list
    elements: str
notes:
  - Looker must never run two releases against one application database, and a schema migration must
    never be killed; the plans follow both rules.
seealso:
  - name: Looker clustering, updating a cluster
    description: The safer (rolling) and faster (replica) methods this module plans.
    link: https://cloud.google.com/looker/docs/clustering
"""

EXAMPLES = r"""
- name: Plan a rolling upgrade to 25.8.1
  lookerops.cluster.looker_upgrade_plan:
    strategy: rolling
    target_version: 25.8.1
    nodes:
      - {name: looker-a1, installed_version: 25.6.12, jar_version: 25.6.12, running_version: 25.6.12, active: true, healthy: true}
      - {name: looker-a2, installed_version: 25.6.12, jar_version: 25.6.12, running_version: 25.6.12, active: true, healthy: true}
    backup_free_mb: 20480
    database_size_mb: 1800
  delegate_to: localhost
  run_once: true
  register: upgrade_plan

- name: Plan a replica swap
  lookerops.cluster.looker_upgrade_plan:
    strategy: replica_swap
    target_version: 25.8.1
    nodes: "{{ old_nodes_state }}"
    new_nodes: "{{ new_nodes_state }}"
    replica: {host: db-a2, is_replica: true, io_running: true, sql_running: true, seconds_behind: 0}
    lb_backends: [looker-a1, looker-a2, looker-a3, looker-a4]
  delegate_to: localhost
  run_once: true
"""

RETURN = r"""
plan:
  description: The validated plan.
  returned: success
  type: dict
  contains:
    strategy:
      description: The strategy.
      type: str
      sample: rolling
    action:
      description: V(upgrade) for a change of release, V(restart) for a rolling restart on the same release.
      type: str
      sample: upgrade
    swap_policy:
      description: V(replica_swap) only, the cutover policy (O(swap_policy)).
      type: str
      sample: block
    from_version:
      description: The release the cluster runs.
      type: str
      sample: 25.6.12
    to_version:
      description: The release it will run.
      type: str
      sample: 25.8.1
    schema_from:
      description: Schema (minor release) before.
      type: str
      sample: "25.6"
    schema_to:
      description: Schema after.
      type: str
      sample: "25.8"
    migrates_schema:
      description: Whether the first node started on the new release migrates the schema.
      type: bool
      sample: true
    nodes:
      description: The nodes of the running cluster in start order.
      type: list
      elements: str
      sample: [looker-a1, looker-a2]
    first_node:
      description: The node started first (it migrates the schema).
      type: str
      sample: looker-a1
    new_nodes:
      description: V(replica_swap), the nodes of the new cluster.
      type: list
      elements: str
      returned: replica_swap
      sample: [looker-a3, looker-a4]
    replica:
      description: V(replica_swap), the replica that is promoted.
      type: str
      returned: replica_swap
      sample: db-a2
    steps:
      description: The ordered steps, in words.
      type: list
      elements: str
      sample: ["install the 25.8.1 jars on every node (looker_jar, verified by SHA-256) while the old release serves; stop
                every node (looker-a1, looker-a2) for the swap of the jars: no write is accepted from here on"]
reasons:
  description: Why the upgrade was refused, one sentence each with its fix.
  returned: failure
  type: list
  elements: str
  sample: ["downgrade from 25.8.1 to 25.6.12: Looker migrates its application database forward only; ..."]
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.lookerops.cluster.plugins.module_utils.looker_upgrade import PlanRefused, plan

NODE_SPEC = dict(
    name=dict(type="str", required=True),
    installed_version=dict(type="str", default=""),
    jar_version=dict(type="str", default=""),
    running_version=dict(type="str", default=""),
    active=dict(type="bool", default=False),
    healthy=dict(type="bool", default=False),
)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            strategy=dict(type="str", required=True, choices=["rolling", "replica_swap"]),
            target_version=dict(type="str", required=True),
            nodes=dict(type="list", elements="dict", required=True, options=NODE_SPEC),
            new_nodes=dict(type="list", elements="dict", default=[], options=NODE_SPEC),
            backup_available=dict(type="bool", default=True),
            backup_free_mb=dict(type="float", default=-1),
            database_size_mb=dict(type="float", default=-1),
            backup_space_ratio=dict(type="float", default=1.0),
            replica=dict(type="dict", default={}),
            max_replica_lag=dict(type="int", default=5),
            swap_policy=dict(type="str", default="block", choices=["block", "capture"]),
            lb_backends=dict(type="list", elements="str"),
        ),
        supports_check_mode=True,
    )
    try:
        result = plan(dict(module.params))
    except PlanRefused as exc:
        module.fail_json(msg="Upgrade refused, nothing was changed: " + " | ".join(exc.reasons), reasons=exc.reasons)
    module.exit_json(changed=False, plan=result)


if __name__ == "__main__":
    main()
