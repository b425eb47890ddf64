# -*- coding: utf-8 -*-
# Copyright: lookerops.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Intended network flows of a Looker cluster, checked against firewall rules and on the wire.

A *flow* is what should (``allowed``) or must not (``forbidden``) get through: a source (a label
such as a group name, the inventory hosts it is made of and their addresses or networks), a
destination host, the address to reach it on, and ports.

The *rules* of a destination are what its firewall lets in: a list of ``{name, ports, sources}``
where ``sources`` are addresses or networks. A port that appears in no rule of a destination is
not restricted there (anyone may connect); a port that appears in some rule is open only to the
union of those rules' sources. This is how the cluster_firewall role's nftables table behaves.

The static check needs netaddr (``IPSet``); the live check only needs sockets.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import ipaddress
import socket
import threading
import time

try:
    from netaddr import AddrFormatError, IPNetwork, IPSet

    HAS_NETADDR = True
except ImportError:  # pragma: no cover - reported by the module with missing_required_lib
    HAS_NETADDR = False

ALLOWED = "allowed"
FORBIDDEN = "forbidden"
EXPECTATIONS = (ALLOWED, FORBIDDEN)

# Live results.
OPEN = "open"
REFUSED = "refused"
TIMEOUT = "timeout"
UNREACHABLE = "unreachable"
NOT_RUN = "not run"

# Static results.
COVERED = "covered"  # every source address is let in by a rule for the port
PARTLY = "partly covered"  # some source addresses are not
NOT_COVERED = "not covered"  # the port is restricted and no source address is let in
UNRESTRICTED = "unrestricted"  # no rule names the port: every address may connect
NOT_CHECKED = "not checked"


class FlowError(ValueError):
    """Bad flows or rules given to the checker; the message says which entry and why."""


def parse_ports(value, where):
    """Ports as a sorted list of (low, high) ranges, from 1551, "1551", "49152-49251" or a list of those."""
    items = value if isinstance(value, (list, tuple)) else [value]
    if not items:
        raise FlowError("%s: ports is empty; give at least one port (1-65535) or range (LOW-HIGH)" % where)
    ranges = []
    for item in items:
        text = str(item).strip()
        low, sep, high = text.partition("-")
        try:
            low_port = int(low)
            high_port = int(high) if sep else low_port
        except ValueError:
            raise FlowError("%s: port %r is not a number or a range such as 49152-49251" % (where, item))
        if not 1 <= low_port <= high_port <= 65535:
            raise FlowError("%s: port %r is outside 1-65535 or its range is reversed" % (where, item))
        ranges.append((low_port, high_port))
    return sorted(set(ranges))


def port_text(port_range):
    low, high = port_range
    return str(low) if low == high else "%d-%d" % (low, high)


def _network(text, where):
    try:
        return IPNetwork(str(text).strip())
    except (AddrFormatError, ValueError, TypeError):
        raise FlowError("%s: %r is not an IP address or network (CIDR)" % (where, text))


def _check_networks(values, where):
    """Validate addresses/networks without netaddr (the live check must work without it)."""
    nets = []
    for text in values:
        try:
            nets.append(ipaddress.ip_network(u"%s" % str(text).strip(), strict=False))
        except ValueError:
            raise FlowError("%s: %r is not an IP address or network (CIDR)" % (where, text))
    return nets


class Rule(object):
    def __init__(self, destination, raw, index):
        where = "rules[%s][%d]" % (destination, index)
        if not isinstance(raw, dict):
            raise FlowError("%s: a rule is a dict with name, ports and sources, got %r" % (where, raw))
        unknown = sorted(set(raw) - set(["name", "ports", "sources", "description"]))
        if unknown:
            raise FlowError("%s: unknown key(s) %s (a rule has name, ports, sources)" % (where, ", ".join(unknown)))
        self.name = str(raw.get("name") or "rule %d" % index)
        self.where = "%s (%s)" % (where, self.name)
        self.ports = parse_ports(raw.get("ports"), self.where)
        self.sources = [str(s).strip() for s in (raw.get("sources") or [])]
        _check_networks(self.sources, self.where)

    def has_port(self, port):
        return any(low <= port[0] and port[1] <= high for low, high in self.ports)

    def touches_port(self, port):
        return any(low <= port[1] and port[0] <= high for low, high in self.ports)


class Flow(object):
    KEYS = set(["name", "source", "source_hosts", "source_addresses", "destination", "address", "ports", "expect"])

    def __init__(self, raw, index):
        where = "flows[%d]" % index
        if not isinstance(raw, dict):
            raise FlowError("%s: a flow is a dict (source, destination, ports, expect), got %r" % (where, raw))
        unknown = sorted(set(raw) - self.KEYS)
        if unknown:
            raise FlowError("%s: unknown key(s) %s; a flow has %s" % (where, ", ".join(unknown), ", ".join(sorted(self.KEYS))))
        for key in ("source", "destination", "expect"):
            if not raw.get(key):
                raise FlowError("%s: %s is missing" % (where, key))
        self.source = str(raw["source"])
        self.destination = str(raw["destination"])
        self.name = str(raw.get("name") or "%s -> %s" % (self.source, self.destination))
        self.where = "%s (%s)" % (where, self.name)
        self.expect = str(raw["expect"])
        if self.expect not in EXPECTATIONS:
            raise FlowError("%s: expect must be %s, got %r" % (self.where, " or ".join(EXPECTATIONS), self.expect))
        self.ports = parse_ports(raw.get("ports"), self.where)
        self.source_hosts = [str(h) for h in (raw.get("source_hosts") or [])]
        self.source_addresses = [str(a).strip() for a in (raw.get("source_addresses") or [])]
        self.source_networks = _check_networks(self.source_addresses, self.where)
        self.address = str(raw.get("address") or self.destination)

    def includes(self, host, host_addresses):
        """Whether a host (inventory name and its addresses) is one of this flow's sources: by name when
        the flow names its source hosts (an address several hosts have, such as a container bridge's,
        says nothing), else by address."""
        if host and self.source_hosts:
            return host in self.source_hosts
        for text in host_addresses:
            try:
                addr = ipaddress.ip_address(u"%s" % text)
            except ValueError:
                continue
            if any(addr.version == net.version and addr in net for net in self.source_networks):
                return True
        return False


def load(flows, rules):
    """Validate raw flows and rules; return ([Flow], {destination: [Rule]}) or raise FlowError."""
    if not isinstance(flows, list) or not flows:
        raise FlowError("flows: give a non-empty list of flows")
    parsed_flows = [Flow(raw, i) for i, raw in enumerate(flows)]
    parsed_rules = {}
    if not isinstance(rules or {}, dict):
        raise FlowError("rules: a dict of destination -> list of rules, got %r" % (rules,))
    for destination, entries in (rules or {}).items():
        if not isinstance(entries, list):
            raise FlowError("rules[%s]: a list of rules (name, ports, sources), got %r" % (destination, entries))
        parsed_rules[str(destination)] = [Rule(str(destination), raw, i) for i, raw in enumerate(entries)]
    return parsed_flows, parsed_rules


def _cidrs(ipset):
    return ", ".join(str(c) for c in ipset.iter_cidrs())


def static_check(flow, port, rules):
    """Return (result, problem or None) for one flow and one port range against a destination's rules."""
    if flow.destination not in rules:
        return NOT_CHECKED, None
    if not flow.source_addresses:
        return NOT_CHECKED, None
    label = "%s %s -> %s:%s" % (flow.expect, flow.source, flow.destination, port_text(port))
    restricting = [r for r in rules[flow.destination] if r.touches_port(port)]
    source = IPSet([_network(a, flow.where) for a in flow.source_addresses])
    if not restricting:
        if flow.expect == FORBIDDEN:
            return UNRESTRICTED, ("%s: no firewall rule on %s restricts port %s, so every address (%s among them) can connect"
                                  % (label, flow.destination, port_text(port), _cidrs(source)))
        return UNRESTRICTED, None
    covered = IPSet()
    for rule in restricting:
        if rule.has_port(port):
            covered |= IPSet([_network(s, rule.where) for s in rule.sources])
    missing = source - covered
    let_in = source & covered
    if not missing:
        result = COVERED
    elif let_in:
        result = PARTLY
    else:
        result = NOT_COVERED
    if flow.expect == ALLOWED and missing:
        names = ", ".join("'%s' [%s]" % (r.name, ", ".join(r.sources) or "no source") for r in restricting)
        return result, ("%s: %s not let in by the rules for port %s on %s (%s)"
                        % (label, _cidrs(missing), port_text(port), flow.destination, names))
    if flow.expect == FORBIDDEN and let_in:
        culprits = []
        for rule in restricting:
            overlap = source & IPSet([_network(s, rule.where) for s in rule.sources])
            if overlap and rule.has_port(port):
                culprits.append("rule '%s' lets in %s" % (rule.name, _cidrs(overlap)))
        return result, "%s: %s" % (label, "; ".join(culprits))
    return result, None


def probe(address, port, timeout):
    """TCP connect to address:port within timeout seconds: open, refused, timeout or unreachable."""
    started = time.time()
    try:
        infos = socket.getaddrinfo(address, port, 0, socket.SOCK_STREAM)
    except socket.gaierror as exc:
        return UNREACHABLE, "cannot resolve %s: %s" % (address, exc), 0.0
    last = None
    for family, socktype, proto, _dummy, sockaddr in infos:
        sock = socket.socket(family, socktype, proto)
        sock.settimeout(timeout)
        try:
            sock.connect(sockaddr)
            return OPEN, None, time.time() - started
        except socket.timeout:
            last = (TIMEOUT, "no answer within %.1f s" % timeout)
        except (OSError, socket.error) as exc:
            if getattr(exc, "errno", None) == errno.ECONNREFUSED:
                last = (REFUSED, "connection refused")
            else:
                last = (UNREACHABLE, str(exc))
        finally:
            sock.close()
    return last[0], last[1], time.time() - started


def live_ok(expect, result):
    """A flow that must be refused passes whenever nothing connects - refused, no answer, or no path at all
    (isolated sites: the other site's address is not routed, or its name does not resolve, from here)."""
    if expect == ALLOWED:
        return result == OPEN
    return result in (REFUSED, TIMEOUT, UNREACHABLE)


def check(flows, rules, host=None, host_addresses=(), live=True, static=True, timeout=2.0, prober=probe, workers=16):
    """Check every flow. Return (matrix rows, violation messages).

    Live: the flows whose sources include this host (by name or address) are probed from here, in
    parallel, except those whose destination is this host itself. Static: every flow whose
    destination has rules and whose source addresses are known.
    """
    rows = []
    to_probe = []
    for flow in flows:
        run_live = live and flow.includes(host, host_addresses)
        if run_live and (flow.destination == host or flow.address in host_addresses):
            run_live = False
        for port in flow.ports:
            row = {
                "name": flow.name, "source": flow.source, "destination": flow.destination, "address": flow.address,
                "port": port_text(port), "expect": flow.expect, "live": NOT_RUN, "static": NOT_CHECKED, "problems": [],
            }
            if static:
                row["static"], problem = static_check(flow, port, rules)
                if problem:
                    row["problems"].append("static: " + problem)
            if run_live:
                # A range is probed on its first port only: enough to see the firewall, bounded in time.
                to_probe.append((row, flow, port[0]))
            rows.append(row)
    for (row, flow, port), (result, detail, seconds) in zip(to_probe, _probe_all(to_probe, timeout, prober, workers)):
        row["live"] = result
        row["seconds"] = round(seconds, 3)
        if not live_ok(flow.expect, result):
            want = "open" if flow.expect == ALLOWED else "refused or timed out"
            got = "connection succeeded" if result == OPEN else (detail or result)
            row["problems"].append("live from %s: %s %s -> %s:%d: %s (expected %s)"
                                   % (host or "this host", flow.expect, flow.source, flow.address, port, got, want))
    violations = []
    for row in rows:
        row["ok"] = not row["problems"]
        violations.extend(row["problems"])
    return rows, violations


def _probe_all(jobs, timeout, prober, workers):
    """Probe every (row, flow, port) job, several at a time, so that the whole check takes about one timeout."""
    results = [None] * len(jobs)
    pending = list(enumerate(jobs))

    def work():
        while pending:
            try:
                index, (_row, flow, port) = pending.pop()
            except IndexError:
                return
            results[index] = prober(flow.address, port, timeout)

    threads = [threading.Thread(target=work) for _dummy in range(max(1, min(workers, len(jobs))))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results
