#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: lookerops.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: cluster_port_check
short_description: Check which cluster ports are open between which hosts, live and against the firewall rules
version_added: 0.1.0
description:
  - Takes the intended network flows of a Looker cluster (a source, a destination, ports, and whether the flow
    must be V(allowed) or V(forbidden)) and checks them two ways, returning one matrix row per flow and port.
  - B(Live), from the host the module runs on - for every flow whose sources include this host (by O(host) name in
    O(flows[].source_hosts) or by one of O(host_addresses) inside O(flows[].source_addresses)) it opens a TCP
    connection to O(flows[].address) with a timeout. An allowed flow must connect; a forbidden one must be refused or
    time out. Flows towards this host itself are skipped. Probes run in parallel, so the check takes about one
    O(timeout).
  - B(Static), with netaddr - O(rules) says what each destination's firewall lets in (the C(cluster_firewall_rules)
    fact the P(lookerops.cluster.cluster_firewall#role) role sets on every host). A port named by no rule of a destination
    is unrestricted there. For an allowed flow every source address must be covered by a rule for the port; for a
    forbidden flow no rule for the port may overlap the source addresses (an admin network that happens to contain an
    outsider is reported with the rule that lets it in), and the port must be restricted at all.
  - Fails listing each violated flow, unless O(fail_on_violation=false).
author:
  - lookerops.cluster maintainers (@lookerops)
requirements:
  - netaddr (on the host the module runs on), for the static check only
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
    details: The module only connects and never changes anything; it runs the same in check mode.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: none
options:
  flows:
    description: The intended flows.
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description: A label for the report. Defaults to C(SOURCE -> DESTINATION).
        type: str
      source:
        description: Who connects, as a label for the report (a group name such as C(looker_nodes), C(outsiders)).
        type: str
        required: true
      source_hosts:
        description: Inventory names of the source hosts; a host running the module whose O(host) is listed probes this flow live.
        type: list
        elements: str
        default: []
      source_addresses:
        description:
          - Addresses or networks (CIDR) the source connects from. Needed for the static check; a host running the module
            with one of O(host_addresses) inside them also probes this flow live.
        type: list
        elements: str
        default: []
      destination:
        description: The destination host, as named in O(rules) (usually its inventory name).
        type: str
        required: true
      address:
        description: Address or name to connect to for the live check. Defaults to O(flows[].destination).
        type: str
      ports:
        description: TCP ports (C(1551)) or ranges (C(49152-49251)); a range is probed live on its first port.
        type: list
        elements: raw
        required: true
      expect:
        description: Whether the flow must get through.
        type: str
        choices: [allowed, forbidden]
        required: true
  rules:
    description:
      - What each destination's firewall lets in, for the static check - a dict of destination name to a list of rules,
        each C({name, ports, sources}) with C(sources) the addresses or networks (CIDR) it lets in on C(ports).
      - A destination missing here is not checked statically.
    type: dict
    default: {}
  host:
    description: Inventory name of the host the module runs on, matched against O(flows[].source_hosts).
    type: str
  host_addresses:
    description: Addresses of the host the module runs on, matched against O(flows[].source_addresses).
    type: list
    elements: str
    default: []
  live:
    description: Run the live (TCP connect) check.
    type: bool
    default: true
  static:
    description: Run the static check against O(rules). Needs netaddr on the host the module runs on.
    type: bool
    default: true
  timeout:
    description: Seconds a live connection attempt may take before it counts as timed out.
    type: float
    default: 2.0
  fail_on_violation:
    description: Fail when a flow is violated. With V(false) the violations are only returned.
    type: bool
    default: true
notes:
  - A live V(refused) for an allowed flow means the port is rejected by a firewall or nothing listens there; the static
    check and the service's own state tell which.
seealso:
  - name: Looker clustering, opening the ports
    description: 1551 and 61616 must be open between cluster nodes only.
    link: https://cloud.google.com/looker/docs/clustering
"""

EXAMPLES = r"""
- name: Cluster ports are open between nodes and closed to everyone else
  lookerops.cluster.cluster_port_check:
    host: "{{ inventory_hostname }}"
    host_addresses: "{{ ansible_all_ipv4_addresses }}"
    rules: "{{ dict(groups['looker_nodes'] | zip(groups['looker_nodes'] | map('extract', hostvars, 'cluster_firewall_rules'))) }}"
    flows:
      - name: node links
        source: looker_nodes
        source_hosts: "{{ groups['looker_nodes'] }}"
        source_addresses: ["10.0.1.11", "10.0.1.12"]
        destination: looker-a2.example.com
        ports: [1551, 61616]
        expect: allowed
      - name: outsiders stay out
        source: outsiders
        source_hosts: [probe.example.com]
        source_addresses: ["10.0.9.0/24"]
        destination: looker-a2.example.com
        ports: [1551, 61616, 9999]
        expect: forbidden

- name: Only the static analysis, on the controller
  lookerops.cluster.cluster_port_check:
    live: false
    flows: "{{ my_flows }}"
    rules: "{{ my_rules }}"
  delegate_to: localhost
  run_once: true

- name: Report without failing
  lookerops.cluster.cluster_port_check:
    host: "{{ inventory_hostname }}"
    flows: "{{ my_flows }}"
    static: false
    fail_on_violation: false
  register: port_matrix
"""

RETURN = r"""
matrix:
  description: One row per flow and port.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: The flow's label.
      type: str
    source:
      description: The flow's source label.
      type: str
    destination:
      description: The destination host.
      type: str
    address:
      description: The address probed.
      type: str
    port:
      description: The port or range.
      type: str
      sample: "1551"
    expect:
      description: V(allowed) or V(forbidden).
      type: str
    live:
      description: V(open), V(refused), V(timeout), V(unreachable), or V(not run) when this host is not a source of the flow.
      type: str
    seconds:
      description: How long the live probe took.
      type: float
      returned: when probed live
    static:
      description: V(covered), V(partly covered), V(not covered), V(unrestricted), or V(not checked).
      type: str
    ok:
      description: Whether the row holds.
      type: bool
    problems:
      description: What is wrong with this row.
      type: list
      elements: str
  sample:
    - name: node links
      source: looker_nodes
      destination: lkr-lb-node2
      address: lkr-lb-node2
      port: "1551"
      expect: allowed
      live: open
      seconds: 0.002
      static: covered
      ok: true
      problems: []
violations:
  description: Each violated flow, one message per row and check.
  returned: always
  type: list
  elements: str
  sample:
    - "live from lkr-lb-outsider: forbidden outsiders -> lkr-lb-node1:3306: connection succeeded (expected refused or timed out)"
probed:
  description: How many rows were probed live from this host.
  returned: always
  type: int
"""

from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible_collections.lookerops.cluster.plugins.module_utils import port_rules


def main():
    flow_spec = dict(
        name=dict(type="str"),
        source=dict(type="str", required=True),
        source_hosts=dict(type="list", elements="str", default=[]),
        source_addresses=dict(type="list", elements="str", default=[]),
        destination=dict(type="str", required=True),
        address=dict(type="str"),
        ports=dict(type="list", elements="raw", required=True),
        expect=dict(type="str", choices=list(port_rules.EXPECTATIONS), required=True),
    )
    module = AnsibleModule(
        argument_spec=dict(
            flows=dict(type="list", elements="dict", required=True, options=flow_spec),
            rules=dict(type="dict", default={}),
            host=dict(type="str"),
            host_addresses=dict(type="list", elements="str", default=[]),
            live=dict(type="bool", default=True),
            static=dict(type="bool", default=True),
            timeout=dict(type="float", default=2.0),
            fail_on_violation=dict(type="bool", default=True),
        ),
        supports_check_mode=True,
    )
    params = module.params
    static = params["static"] and bool(params["rules"])
    if static and not port_rules.HAS_NETADDR:
        module.fail_json(msg=missing_required_lib("netaddr") + " (needed for the static check; or set static=false)")
    if params["timeout"] <= 0:
        module.fail_json(msg="timeout must be more than 0 seconds, got %s" % params["timeout"])
    try:
        flows, rules = port_rules.load(params["flows"], params["rules"])
        matrix, violations = port_rules.check(
            flows, rules, host=params["host"], host_addresses=params["host_addresses"],
            live=params["live"], static=static, timeout=params["timeout"])
    except port_rules.FlowError as exc:
        module.fail_json(msg="invalid flows or rules: %s" % exc)
    result = dict(changed=False, matrix=matrix, violations=violations, probed=sum(1 for row in matrix if row["live"] != port_rules.NOT_RUN))
    if violations and params["fail_on_violation"]:
        module.fail_json(msg="%d flow check(s) violated:\n- %s" % (len(violations), "\n- ".join(violations)), **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
