# -*- coding: utf-8 -*-
# Copyright: lookerops.cluster maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The release a cluster runs, as its nodes record it, and what a deployment does about it (filters
recorded_release, recorded_releases, release_plan, release_request_kind and release_of). The rules themselves live in
module_utils/looker_release.py, which the modules use too."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import json

from ansible.errors import AnsibleFilterError
from ansible.module_utils.parsing.convert_bool import boolean
from ansible_collections.lookerops.cluster.plugins.module_utils.looker_release import UNREADABLE, ReleaseError, manifest_release, request_kind
from ansible_collections.lookerops.cluster.plugins.module_utils.looker_release import release_plan as _release_plan

_NOT_FOUND = ("file not found", "does not exist", "no such file")


def recorded_release(result):
    """A node's record of its jars (.looker-jars.json, written by looker_jar) from the result of
    ansible.builtin.slurp: {"version", "sha256", "dependencies_sha256", "installed"}; the version is ""
    when the node has no record (no Looker yet), "unreachable" or "unknown" when it could not be read;
    "installed" is the version when it names a release, else ""."""
    record = _recorded_release(result)
    record["installed"] = "" if record["version"] in UNREADABLE else record["version"]
    return record


def _recorded_release(result):
    if not isinstance(result, dict):
        raise AnsibleFilterError("lookerops.cluster.recorded_release: expected the result of ansible.builtin.slurp, got %r"
                                 % (type(result).__name__,))
    if result.get("unreachable"):
        return {"version": "unreachable"}
    if "content" in result:
        try:
            record = json.loads(base64.b64decode(result["content"]).decode("utf-8"))
        except (ValueError, TypeError, UnicodeDecodeError):
            return {"version": "unknown"}
        if not isinstance(record, dict) or not record.get("version"):
            return {"version": "unknown"}
        return {key: str(record.get(key) or "") for key in ("version", "sha256", "dependencies_sha256")}
    if any(text in str(result.get("msg", "")).lower() for text in _NOT_FOUND):
        return {"version": ""}
    return {"version": "unknown"}


def recorded_releases(results):
    """recorded_release for each result of a slurp loop over node names: {node: record}."""
    if isinstance(results, dict):
        results = results.get("results", [])
    return dict((result.get("item"), recorded_release(result)) for result in results or [] if not result.get("skipped"))


def release_plan(request, records, allow_change=False):
    """See module_utils/looker_release.py release_plan."""
    try:
        return _release_plan(request, records or {}, allow_change=boolean(allow_change, strict=True))
    except (ReleaseError, TypeError) as exc:
        raise AnsibleFilterError("lookerops.cluster.release_plan: %s" % exc)


def release_request_kind(version):
    """What a requested version is: "latest", "minor" (X.Y), "exact" (X.Y.Z), or "" when it names no release."""
    try:
        return request_kind(version)
    except ReleaseError:
        return ""


def release_of(version):
    """The X.Y.Z release a version string names (a jar's Implementation-Version, looker_release_version of
    /api/4.0/versions: '25.6.12', '25.6.12-b3'), or "" when it names none."""
    return manifest_release(version) or ""


class FilterModule(object):
    def filters(self):
        return {
            "recorded_release": recorded_release,
            "recorded_releases": recorded_releases,
            "release_plan": release_plan,
            "release_request_kind": release_request_kind,
            "release_of": release_of,
        }
