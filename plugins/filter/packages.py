# -*- coding: utf-8 -*-
# Copyright: lookerops.cluster maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which of the packages a role wants are not installed yet (filter missing_packages).

The roles refresh the apt package lists only when they have something to install: a refresh costs
seconds on every host of every run, and a run that changes nothing needs none. `cache_valid_time`
cannot decide it, because it trusts a fresh image's empty lists.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

from ansible.errors import AnsibleFilterError
from ansible.module_utils.six import string_types

# "name=1.2*", "name>=1.2", "name:amd64": the package's name is what comes first.
_NAME = re.compile(r"^([^=<>:\s]+)")


def missing_packages(wanted, installed):
    """The names in `wanted` that `installed` (ansible_facts.packages, from package_facts) lacks."""
    if isinstance(wanted, string_types):
        wanted = [wanted]
    if not isinstance(installed, dict):
        raise AnsibleFilterError("lookerops.cluster.missing_packages: installed must be ansible_facts.packages "
                                 "(a dict, from ansible.builtin.package_facts), got %r" % (type(installed).__name__,))
    missing = []
    for spec in wanted or []:
        match = _NAME.match(str(spec).strip())
        if not match:
            raise AnsibleFilterError("lookerops.cluster.missing_packages: %r is not a package name" % (spec,))
        if match.group(1) not in installed:
            missing.append(match.group(1))
    return missing


class FilterModule(object):
    def filters(self):
        return {"missing_packages": missing_packages}
