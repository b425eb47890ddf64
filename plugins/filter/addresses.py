# -*- coding: utf-8 -*-
# Copyright: lookerops.cluster maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Host names and addresses as the collection uses and compares them.

- hostname: the one normalisation of a name or address (lower case, no trailing dot, IP addresses in
  their canonical form), applied wherever a name is compared or put in a URL or a flag.
- host_address: the address an inventory host is reached at (the one owner of the precedence
  looker_cluster_address, else ansible_host, else the inventory name), normalised.
- source_addresses: the addresses a host's connections come from, as the cluster firewall admits
  them and the port plan checks them.
- address_problems: resolves addresses on the controller and says, in sentences naming the host,
  the variable, the value and the fix, which do not resolve and which two hosts share one.
- access_list_problems: parses an allow-list option (addresses and networks) and says which entries
  are no address or network, and which hosts of the inventory it would lock out.

The filters run on the controller (Ansible templates there), so a name is resolved the way the
controller resolves it. A name the controller cannot resolve is accepted when it names a host of
the inventory (its inventory name, ansible_host, or the host name in its facts): its addresses are
then taken from that host's gathered facts.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import ipaddress
import json
import os
import re
import socket
import tempfile

from collections.abc import Mapping

from ansible.errors import AnsibleFilterError
from ansible.module_utils.common.text.converters import to_text
from ansible.module_utils.six import string_types

# Where a host's address comes from when the caller names no variable of its own first.
ADDRESS_CHAIN = ("looker_cluster_address", "ansible_host")
INVENTORY_NAME = "inventory name"


def hostname(value):
    """A host name or address as the collection compares and uses it.

    Names: lower case, surrounding blanks and one trailing dot (the DNS root) removed - DNS names
    are case-insensitive and "node1.example.com." is "node1.example.com". IP addresses: their
    canonical text (IPv6 compressed and in lower case).
    """
    if value is None:
        return ""
    if not isinstance(value, string_types) and not isinstance(value, (int, float)):
        raise AnsibleFilterError("lookerops.cluster.hostname: expected a host name or address, got %r" % (value,))
    text = to_text(value).strip()
    try:
        return to_text(ipaddress.ip_address(text))
    except ValueError:
        pass
    text = text.lower()
    if text.endswith("."):
        text = text[:-1]
    return text


def _ip(text):
    try:
        return ipaddress.ip_address(to_text(text))
    except ValueError:
        return None


def _vars_of(host, hostvars):
    try:
        return hostvars[host]
    except (KeyError, TypeError):
        return {}


def _pick(host, hostvars, prefer):
    """(variable, value) of the first of prefer + ADDRESS_CHAIN a host has, else its inventory name.

    A role's internal copy of an option (a name starting with __, such as the address a role
    recorded for a host) is reported as the next variable of the order, the option a user sets.
    """
    hv = _vars_of(host, hostvars)
    order = list(prefer) + [n for n in ADDRESS_CHAIN if n not in prefer]
    for index, name in enumerate(order):
        if name in hv and hv[name] is not None:
            shown = [n for n in order[index:] if not n.startswith("__")]
            return (shown[0] if shown else name), hv[name]
    return INVENTORY_NAME, host


def host_address(host, hostvars, *prefer, **kwargs):
    """The normalised address an inventory host is reached at.

    The first of the variables named in prefer (for example looker_node_cluster_address), then
    looker_cluster_address, then ansible_host, else the inventory name. detail=true returns
    {host, variable, value, address} instead, for address_problems and for messages.
    """
    detail = kwargs.pop("detail", False)
    if kwargs:
        raise AnsibleFilterError("lookerops.cluster.host_address: unknown option(s) %s" % ", ".join(sorted(kwargs)))
    host = to_text(host)
    variable, value = _pick(host, hostvars, [to_text(p) for p in prefer])
    if not isinstance(value, string_types) and not isinstance(value, (int, float)):
        raise AnsibleFilterError("%s: %s is %r, which is not a host name or address" % (host, variable, value))
    address = hostname(value)
    if detail:
        return {"host": host, "variable": variable, "value": to_text(value), "address": address}
    return address


def source_addresses(host, hostvars, every=False):
    """The addresses an inventory host's connections come from, as the cluster firewall admits them.

    Its address (host_address) when that is an IP address: the hosts of a cluster reach each other
    there, so that is the source address its kernel picks. Else every address in its gathered facts
    (IPv6 link-local left out). every=true (a flow that must be refused from wherever the host sends
    it): its address and those of its facts. [] when none is known.
    """
    host = to_text(host)
    try:
        declared = _ip(host_address(host, hostvars))
    except Exception:  # pylint: disable=broad-exception-caught  # its address cannot be templated yet (no facts)
        declared = None
    if declared is not None and not every:
        return [to_text(declared)]
    addresses = [to_text(declared)] if declared is not None else []
    for address in _fact_addresses(host, hostvars):
        if address not in addresses:
            addresses.append(address)
    return addresses


def _fact_addresses(host, hostvars):
    """The addresses in a host's gathered facts, normalised, default ones first, IPv6 link-local left out."""
    facts = _safe_get(host, hostvars, "ansible_facts") or {}
    facts = facts if isinstance(facts, Mapping) else {}
    found = []
    for key in ("default_ipv4", "default_ipv6"):
        if isinstance(facts.get(key), Mapping) and facts[key].get("address"):
            found.append(facts[key]["address"])
    found += list(facts.get("all_ipv4_addresses") or [])
    found += list(facts.get("all_ipv6_addresses") or [])
    addresses = []
    for address in (hostname(a) for a in found):
        if address not in addresses and not address.startswith("fe80:"):
            addresses.append(address)
    return addresses


def _controller_resolve(name):
    """The addresses the controller resolves name to, asked once per playbook run.

    Every host's validation resolves the same few names, in a worker process of its own: without a
    cache one run asks the resolver hundreds of times, and a resolver that limits its rate (as some
    do, each dropped query costing its 5 s timeout) makes that seconds per task. The answers are
    kept in ansible's local temporary directory, which belongs to one ansible-playbook run (its
    workers inherit it) and is removed when the run ends. A name that does not exist is kept too; a
    temporary failure is not.
    """
    path = _resolve_cache_path(name)
    answer = _cached(path)
    if answer is None:
        try:
            infos = socket.getaddrinfo(name, None, 0, socket.SOCK_STREAM)
            answer = {"addresses": sorted(set(hostname(info[4][0].split("%", 1)[0]) for info in infos))}
        except socket.gaierror as exc:
            if exc.errno not in _DEFINITE_ANSWERS:
                raise
            answer = {"errno": exc.errno, "error": to_text(exc.strerror or exc)}
        _store(path, answer)
    if "error" in answer:
        raise socket.gaierror(answer["errno"], answer["error"])
    return answer["addresses"]


# getaddrinfo's "this name has no address": an answer, not a failure of the resolver.
_DEFINITE_ANSWERS = tuple(getattr(socket, n) for n in ("EAI_NONAME", "EAI_NODATA") if hasattr(socket, n))


def _resolve_cache_path(name):
    try:
        from ansible import constants  # pylint: disable=import-outside-toplevel  # outside ansible: no cache
        directory = os.path.join(constants.DEFAULT_LOCAL_TMP, "lookerops-resolved")
    except (ImportError, AttributeError):
        return None
    return os.path.join(directory, hashlib.sha256(to_text(name).encode("utf-8")).hexdigest())


def _cached(path):
    if path is None:
        return None
    try:
        with open(path) as cached:
            return json.load(cached)
    except (OSError, ValueError):
        return None


def _store(path, answer):
    if path is None:
        return
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=os.path.dirname(path))
        with os.fdopen(fd, "w") as out:
            json.dump(answer, out)
        os.rename(temporary, path)
    except OSError:
        pass  # no cache: the next task asks the resolver again


def _safe_get(host, hostvars, name):
    """A variable of another host, or None when it is not set or cannot be templated (yet)."""
    try:
        return _vars_of(host, hostvars).get(name)
    except Exception:  # pylint: disable=broad-exception-caught  # an undefined variable in someone else's template
        return None


class _Inventory:
    """The hosts of the inventory by the names they are known by, built on first use."""

    def __init__(self, hostvars):
        self.hostvars = hostvars
        self._by_name = None

    def _facts(self, host):
        facts = _safe_get(host, self.hostvars, "ansible_facts") or {}
        return facts if isinstance(facts, Mapping) else {}

    def _index(self):
        if self._by_name is None:
            self._by_name = {}
            hosts = list(self.hostvars) if self.hostvars is not None else []
            for host in hosts:
                facts = self._facts(host)
                names = [host, _safe_get(host, self.hostvars, "ansible_host")] + [facts.get(k) for k in ("hostname", "fqdn", "nodename")]
                for name in names:
                    if isinstance(name, string_types) and name.strip():
                        self._by_name.setdefault(hostname(name), host)
        return self._by_name

    def lookup(self, name):
        """(host, addresses, whence) of the inventory host known by name, or (None, [], "")."""
        host = self._index().get(name)
        if host is None:
            return None, [], ""
        facts = self._facts(host)
        addresses = []
        for key in ("default_ipv4", "default_ipv6"):
            found = (facts.get(key) or {}).get("address") if isinstance(facts.get(key), Mapping) else None
            if found:
                addresses.append(hostname(found))
        if addresses:
            return host, addresses, "from the facts of %s" % host
        for variable in ADDRESS_CHAIN:
            declared = _safe_get(host, self.hostvars, variable)
            if declared is not None:
                if isinstance(declared, string_types) and _ip(declared.strip()):
                    return host, [hostname(declared)], "as the %s of %s" % (variable, host)
                break
        return host, [], "as the inventory host %s" % host


def _resolve(entry, inventory, resolver):
    """Fill in entry['addresses'], entry['how'] and entry['error'] (None when it resolves)."""
    name = entry["address"]
    entry.update(addresses=[], how="", error=None, key=[])
    if not name:
        entry["error"] = "empty"
        return
    if _ip(name):
        entry["addresses"] = entry["key"] = [name]
        return
    try:
        entry["addresses"] = resolver(name)
        entry["key"] = list(entry["addresses"])
        entry["how"] = "on the controller"
        if entry["addresses"]:
            return
        error = "no address"
    except (socket.gaierror, socket.herror, UnicodeError, OSError) as exc:
        error = to_text(getattr(exc, "strerror", None) or exc)
    host, addresses, whence = inventory.lookup(name)
    if host is None:
        entry["error"] = error
        return
    entry["addresses"] = addresses
    entry["how"] = whence
    # The host itself is what the name stands for too: two names of one host meet even without facts.
    entry["key"] = list(addresses) + ["host " + host]


def _said(entry):
    """How an entry's address was given, as a sentence fragment."""
    if entry["variable"] == INVENTORY_NAME:
        text = "%s has no address set, so its inventory name %s is used" % (entry["host"], entry["value"])
    else:
        text = "%s's %s is %s" % (entry["host"], entry["variable"], entry["value"])
    if _ip(entry["address"]):
        return text
    if entry["addresses"]:
        return "%s, which resolves to %s %s" % (text, ", ".join(entry["addresses"]), entry["how"])
    return "%s (%s)" % (text, entry["how"])


def _entries(raw, filter_name):
    if not isinstance(raw, (list, tuple)):
        raise AnsibleFilterError("%s: expected a list of {host, variable, value}, got %r" % (filter_name, raw))
    out = []
    for item in raw:
        if not isinstance(item, dict) or "host" not in item or "value" not in item:
            raise AnsibleFilterError("%s: each entry needs host and value (and variable), got %r" % (filter_name, item))
        value = item["value"]
        if value is None:
            value = ""
        out.append({
            "host": to_text(item["host"]),
            "variable": to_text(item.get("variable") or INVENTORY_NAME),
            "value": to_text(value),
            "address": hostname(value) if isinstance(value, string_types + (int, float)) else to_text(value),
            "scope": to_text(item.get("scope") or ""),
        })
    return out


def address_problems(entries, hostvars=None, unique=True, what="address", why="", setting="", resolver=None):
    """Resolve every entry's address on the controller; return the problems as sentences.

    entries: [{host, variable, value, scope}] (host_address(..., detail=true) gives the first three).
    An entry whose name does not resolve (and names no inventory host) is a problem. With unique,
    two entries of one scope on different hosts whose addresses meet are a problem too. what names
    the address in messages ("-H address"), why says why it must be unique and setting which
    variable a user sets to fix a duplicate (default: the variable that was set).
    """
    resolver = resolver or _controller_resolve
    inventory = _Inventory(hostvars)
    items = _entries(entries, "lookerops.cluster.address_problems")
    problems = []
    for entry in items:
        _resolve(entry, inventory, resolver)
        if entry["error"] is None:
            continue
        where = "%s (the inventory name of %s)" % (entry["value"], entry["host"]) if entry["variable"] == INVENTORY_NAME else entry["variable"]
        scope = "%s: " % entry["scope"] if entry["scope"] else ""
        if entry["error"] == "empty":
            problems.append("%s%s: %s is empty, so %s has no %s. Set %s on %s to its host name or IP address."
                            % (scope, entry["host"], where, entry["host"], what, entry["variable"], entry["host"]))
            continue
        problems.append(
            "%s%s: %s is %s, which does not resolve on the controller (%s) and names no host of the inventory, so %s "
            "would have no %s. Correct %s on %s, make the name resolve on the controller and on every host (DNS or "
            "/etc/hosts), or use an IP address."
            % (scope, entry["host"], where, to_text(entry["value"]), entry["error"], entry["host"], what,
               entry["variable"] if entry["variable"] != INVENTORY_NAME else "the host's looker_cluster_address",
               entry["host"]))
    if unique:
        problems.extend(_duplicates([e for e in items if e["error"] is None], what, why, setting))
    return problems


def _duplicates(items, what, why, setting):
    problems = []
    seen = set()
    for i, first in enumerate(items):
        for second in items[i + 1:]:
            if first["scope"] != second["scope"] or first["host"] == second["host"]:
                continue
            shared = [a for a in first["key"] if a in second["key"]]
            pair = (first["scope"], first["host"], second["host"])
            if not shared or pair in seen:
                continue
            seen.add(pair)
            address = shared[0][len("host "):] if shared[0].startswith("host ") else shared[0]
            # The host whose address was set explicitly is the likely mistake (the later one when both were).
            blamed = second if second["variable"] != INVENTORY_NAME or first["variable"] == INVENTORY_NAME else first
            variable = setting or (blamed["variable"] if blamed["variable"] != INVENTORY_NAME else "looker_cluster_address")
            scope = "%s: " % first["scope"] if first["scope"] else ""
            problems.append(
                "%s%s and %s have the same %s, %s: %s, and %s.%s Give each host its own: set %s on %s (or on %s) "
                "to an address of that host only."
                % (scope, first["host"], second["host"], what, address, _said(first), _said(second),
                   (" " + why.strip()) if why.strip() else "", variable, blamed["host"],
                   first["host"] if blamed is second else second["host"]))
    return problems


# An allow-list entry: MySQL also takes ADDRESS/NETMASK (10.89.0.0/255.255.255.0), which Python's
# ipaddress reads too; both must name a network exactly (no host bits), as the server compares them.
ACCESS_FORMS = {
    "cidr": "an address (10.89.0.11) or a network (10.89.0.0/24)",
    "mysql": "an address (10.89.0.11) or a network as ADDRESS/NETMASK (10.89.0.0/255.255.255.0) or ADDRESS/PREFIX "
             "(10.89.0.0/24)",
    "export": "an address (10.89.0.11), a network (10.89.0.0/24) or a host name that resolves (node1.example.com)",
}
# A DNS name: letters, digits and hyphens in dot-separated labels.
_HOST_NAME = re.compile(r"^(?=.{1,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$")


def _access_entry(text, form):
    """(network, None) for an allow-list entry, or (None, why it is none)."""
    if form == "mysql" and any(c in text for c in "%_*"):
        return None, "a wildcard: the accounts are restricted to addresses"
    if form == "export" and any(c in text for c in "*?@"):
        return None, "a wildcard or a netgroup, which cannot be checked against the inventory: use the nodes' addresses or network"
    try:
        return ipaddress.ip_network(text, strict=True), None
    except ValueError as exc:
        try:
            network = ipaddress.ip_network(text, strict=False)
        except ValueError:
            return None, "not an IP address or network (%s)" % to_text(exc)
        return None, "a network with host bits set: the server would match nothing; %s is meant" % network


def _host_addresses(host, hostvars):
    """Every IP address known for a host - its address (looker_cluster_address, ansible_host) when
    that is one, then the addresses in its gathered facts: it may connect from any of them."""
    known = [_safe_get(host, hostvars, name) for name in ADDRESS_CHAIN]
    facts = _safe_get(host, hostvars, "ansible_facts") or {}
    known += [(facts.get(k) or {}).get("address") for k in ("default_ipv4", "default_ipv6")]
    known += list(facts.get("all_ipv4_addresses") or []) + list(facts.get("all_ipv6_addresses") or [])
    return [to_text(a) for a in known if isinstance(a, string_types) and _ip(a.strip()) is not None]


def _is_host_name(text):
    """A DNS name, not an address written wrong (10.0.0.256 is a bad address, not a name)."""
    name = hostname(text)
    return bool(_HOST_NAME.match(name)) and not re.match(r"^[0-9.]+$", name)


def _named_networks(text, inventory, resolver):
    """The addresses a host name entry admits, as networks, or (None, why) when it resolves to none."""
    entry = {"address": hostname(text)}
    _resolve(entry, inventory, resolver)
    if entry["error"] is None and entry["addresses"]:
        return [ipaddress.ip_network(a) for a in entry["addresses"]], None
    return None, ("a name that does not resolve on the controller (%s) and names no host of the inventory with a known "
                  "address" % (entry["error"] or "no address"))


def access_list_problems(entries, option, required=None, why="", form="cidr", hostvars=None, resolver=None):
    """Sentences naming the option, the value and the fix: entries that are no address or network,
    and each host of `required` none of whose addresses an entry admits (a host may connect from
    any of its addresses). `required`: {inventory host: address or list of addresses}, or a list of
    inventory hosts whose addresses are read from their facts in `hostvars`. form export also takes
    host names, which admit the addresses they resolve to (on the controller, else from the inventory)."""
    if isinstance(required, (list, tuple)):
        required = dict((to_text(host), _host_addresses(to_text(host), hostvars)) for host in required)
    if form not in ACCESS_FORMS:
        raise AnsibleFilterError("lookerops.cluster.access_list_problems: form must be one of %s" % ", ".join(ACCESS_FORMS))
    if isinstance(entries, string_types) or not isinstance(entries, (list, tuple)):
        return ["%s is %r: it must be a list of entries, each %s." % (option, entries, ACCESS_FORMS[form])]
    problems, networks = [], []
    inventory = _Inventory(hostvars)
    for raw in entries:
        text = to_text(raw).strip()
        network, reason = _access_entry(text, form)
        if network is None and form == "export" and _is_host_name(text):
            named, reason = _named_networks(text, inventory, resolver or _controller_resolve)
            if named:
                networks.extend(named)
                continue
        if network is None:
            problems.append("%s has %r, which is %s. Each entry is %s. Nothing was changed."
                            % (option, to_text(raw), reason, ACCESS_FORMS[form]))
        else:
            networks.append(network)
    for host, addresses in sorted((required or {}).items()):
        addresses = addresses if isinstance(addresses, (list, tuple)) else [addresses]
        ips = [ip for ip in (_ip(to_text(a or "").strip()) for a in addresses) if ip is not None]
        if not ips:
            problems.append("%s cannot be checked against %s: its address is unknown (%r; gather its facts)."
                            % (option, host, addresses))
        elif not any(ip.version == network.version and ip in network for ip in ips for network in networks):
            problems.append("%s (%s) leaves out %s (%s)%s: add its address or a network holding it. Nothing was changed."
                            % (option, ", ".join(to_text(e) for e in entries), host, ", ".join(to_text(ip) for ip in ips),
                               (", " + why.strip()) if why.strip() else ""))
    return problems


class FilterModule(object):
    """Host names and addresses."""

    def filters(self):
        return {
            "hostname": hostname,
            "host_address": host_address,
            "source_addresses": source_addresses,
            "address_problems": address_problems,
            "access_list_problems": access_list_problems,
        }
