#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: lookerops.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: looker_jar
short_description: Install the pair of Looker jars (core and dependencies), verified by SHA-256
version_added: 0.1.0
description:
  - Since Looker 6.18 a release is two files side by side, C(looker.jar) and C(looker-dependencies.jar).
    This module installs both in O(dest), from one of three sources.
  - With O(source=api) it calls Looker's download API once for V(latest), a minor release (V(25.6), its
    newest patch) or an exact release (V(25.6.12)), then fetches both jars (core from C(url), dependencies
    from C(depUrl)) and checks each against the C(sha256) and C(depSha256) the API returned.
  - With O(source=url) (an internal mirror) or O(source=file) (files already on the target, for example
    copied there by the play) no API is called; O(jar_sha256) and O(dependencies_sha256) are required.
  - Downloads go to temporary files in O(dest) and replace the installed jars only once both are verified,
    so an interrupted or corrupt transfer leaves the installed pair untouched. Transfers that break are
    retried with a doubling delay.
  - Idempotent. The installed release is recorded in C(.looker-jars.json) in O(dest) together with both
    checksums; when an exact release is asked for and the installed files still match that record, no
    API call and no download are made. For V(latest) and minor releases the API is asked which release
    that is, and nothing is downloaded when the installed checksums already match.
author:
  - lookerops.cluster maintainers (@lookerops)
extends_documentation_fragment:
  - ansible.builtin.files
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
    details: Calls the download API to learn the release, downloads nothing.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: full
    details: Shows the installed release before and after.
options:
  dest:
    description: Directory holding C(looker.jar) and C(looker-dependencies.jar). Must exist.
    type: path
    required: true
  version:
    description:
      - V(latest), a minor release C(X.Y) (newest patch of it) or an exact release C(X.Y.Z).
      - With O(source=url) or O(source=file) it must be the exact release of the given files.
    type: str
    default: latest
  source:
    description: Where the jars come from.
    type: str
    choices: [api, url, file]
    default: api
  license_key:
    description: Looker license key. Required with O(source=api). Never logged.
    type: str
  license_email:
    description: E-mail address the license is registered to. Required with O(source=api). Never logged.
    type: str
  api_url:
    description: The download API endpoint.
    type: str
    default: https://apidownload.looker.com/download
  jar_src:
    description: URL (O(source=url)) or path on the target (O(source=file)) of the core jar.
    type: str
  dependencies_src:
    description: URL (O(source=url)) or path on the target (O(source=file)) of the dependencies jar.
    type: str
  jar_sha256:
    description: Expected SHA-256 of the core jar. Required with O(source=url) and O(source=file).
    type: str
  dependencies_sha256:
    description: Expected SHA-256 of the dependencies jar. Required with O(source=url) and O(source=file).
    type: str
  backup:
    description: Keep the replaced pair as C(looker.jar.previous) and C(looker-dependencies.jar.previous) (one generation), for rollback.
    type: bool
    default: true
  attempts:
    description: How many times an API call or a transfer is tried before the module fails.
    type: int
    default: 3
  retry_delay:
    description: Seconds to wait after the first failed try; doubled after each further one.
    type: float
    default: 2.0
  timeout:
    description: Seconds a single transfer may stall.
    type: int
    default: 600
  validate_certs:
    description: Verify the TLS certificates of the API and of the download links.
    type: bool
    default: true
notes:
  - The download links the API returns expire after about 10 minutes, so both jars are fetched right after the one API call.
seealso:
  - name: Looker clustering
    description: Each node of a cluster must run the same release.
    link: https://cloud.google.com/looker/docs/clustering
"""

EXAMPLES = r"""
- name: Fetch the newest patch of 25.6 once, on the controller
  lookerops.cluster.looker_jar:
    dest: /var/cache/lookerops/jars
    version: "25.6"
    license_key: "{{ vault_looker_license_key }}"
    license_email: "{{ vault_looker_license_email }}"
  delegate_to: localhost
  run_once: true
  register: looker_release

- name: Install copied jars on a node, verified on arrival
  lookerops.cluster.looker_jar:
    dest: /home/looker/looker
    source: file
    version: "{{ looker_release.version }}"
    jar_src: /home/looker/looker/.staging/looker.jar
    dependencies_src: /home/looker/looker/.staging/looker-dependencies.jar
    jar_sha256: "{{ looker_release.sha256 }}"
    dependencies_sha256: "{{ looker_release.dependencies_sha256 }}"
    owner: looker
    group: looker

- name: Air-gapped site, jars from an internal mirror
  lookerops.cluster.looker_jar:
    dest: /home/looker/looker
    source: url
    version: 25.6.12
    jar_src: https://mirror.internal.example/looker/looker-25.6.12.jar
    dependencies_src: https://mirror.internal.example/looker/looker-25.6.12-dependencies.jar
    jar_sha256: 6f1c2e...
    dependencies_sha256: 9a0b7d...
"""

RETURN = r"""
version:
  description: The exact release installed (or that would be, in check mode).
  returned: success
  type: str
  sample: 25.6.12
previous_version:
  description: The release installed before, V(null) when none or unknown.
  returned: success
  type: str
  sample: 25.4.9
sha256:
  description: SHA-256 of the core jar.
  returned: success
  type: str
dependencies_sha256:
  description: SHA-256 of the dependencies jar.
  returned: success
  type: str
jar_path:
  description: Path of the installed core jar.
  returned: success
  type: str
  sample: /home/looker/looker/looker.jar
dependencies_path:
  description: Path of the installed dependencies jar.
  returned: success
  type: str
  sample: /home/looker/looker/looker-dependencies.jar
api_called:
  description: Whether the download API was asked.
  returned: success
  type: bool
downloaded:
  description: Whether jars were transferred.
  returned: success
  type: bool
"""

import json
import os
import shutil
import tempfile

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.lookerops.cluster.plugins.module_utils.looker_download import (
    DownloadError,
    fetch_verified,
    request_links,
    sha256_file,
)
from ansible_collections.lookerops.cluster.plugins.module_utils.looker_release import (
    ReleaseError,
    api_request,
    request_kind,
    version_from_text,
)

JAR = "looker.jar"
DEPENDENCIES = "looker-dependencies.jar"
RECORD = ".looker-jars.json"


class LookerJars(object):
    """The pair of jars in one directory and the record of which release they are."""

    def __init__(self, dest):
        self.dest = dest
        self.jar = os.path.join(dest, JAR)
        self.dependencies = os.path.join(dest, DEPENDENCIES)
        self.record = os.path.join(dest, RECORD)

    def installed(self):
        """(version, sha256, dependencies_sha256) of what is there; version None if unrecorded or altered."""
        if not (os.path.isfile(self.jar) and os.path.isfile(self.dependencies)):
            return None, None, None
        jar_sum, dep_sum = sha256_file(self.jar), sha256_file(self.dependencies)
        try:
            with open(self.record) as stream:
                record = json.load(stream)
        except (IOError, OSError, ValueError):
            record = {}
        recorded = record.get("sha256") == jar_sum and record.get("dependencies_sha256") == dep_sum
        return (record.get("version") if recorded else None), jar_sum, dep_sum

    def replace(self, new_jar, new_dependencies, version, jar_sum, dep_sum, backup):
        # The staged files are private temporary files (0600): give the jars the mode a new file
        # gets from the umask, as documented for `mode`; an explicit mode is applied afterwards.
        mode = default_file_mode()
        for current, new in ((self.jar, new_jar), (self.dependencies, new_dependencies)):
            os.chmod(new, mode)
            if backup and os.path.exists(current):
                os.rename(current, current + ".previous")
            os.rename(new, current)
        self.write_record(version, jar_sum, dep_sum)

    def write_record(self, version, jar_sum, dep_sum):
        fd, tmp = tempfile.mkstemp(prefix=".looker-jars.", dir=self.dest)
        with os.fdopen(fd, "w") as stream:
            json.dump({"version": version, "sha256": jar_sum, "dependencies_sha256": dep_sum}, stream, indent=2, sort_keys=True)
        os.chmod(tmp, 0o644)
        os.rename(tmp, self.record)


def default_file_mode():
    """The mode of a new regular file under the current umask."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def validate(module):
    params = module.params
    try:
        kind = request_kind(params["version"])
    except ReleaseError as exc:
        module.fail_json(msg="version: %s" % exc)
    if params["source"] == "api":
        missing = [name for name in ("license_key", "license_email") if not params[name]]
        if missing:
            module.fail_json(msg="source=api needs %s: set them (from a vault), or use source=url/file with known checksums"
                             % " and ".join(missing))
    else:
        missing = [name for name in ("jar_src", "dependencies_src", "jar_sha256", "dependencies_sha256") if not params[name]]
        if missing:
            module.fail_json(msg="source=%s needs %s" % (params["source"], ", ".join(missing)))
        if kind != "exact":
            module.fail_json(msg="version: source=%s installs files of one known release, so version must be exact (X.Y.Z), not %r"
                             % (params["source"], params["version"]))
    if not os.path.isdir(params["dest"]):
        module.fail_json(msg="dest: %s is not a directory; create it first" % params["dest"])


def wanted_release(module, jars, installed_version):
    """Return (target dict, api_called). The target holds version, checksums and where to get them."""
    params = module.params
    if params["source"] != "api":
        return {
            "version": params["version"], "sha256": params["jar_sha256"].lower(),
            "dependencies_sha256": params["dependencies_sha256"].lower(),
            "jar_src": params["jar_src"], "dependencies_src": params["dependencies_src"],
        }, False
    if request_kind(params["version"]) == "exact" and installed_version == params["version"]:
        return None, False
    body = api_request(params["version"], params["license_key"], params["license_email"])
    answer = request_links(module, params["api_url"], body, params["attempts"], params["retry_delay"])
    return {
        "version": version_from_text(answer["version_text"]), "sha256": answer["sha256"].lower(),
        "dependencies_sha256": answer["depSha256"].lower(), "jar_src": answer["url"], "dependencies_src": answer["depUrl"],
    }, True


def stage(module, target):
    """Put verified copies of both jars into temporary files in dest; return their paths."""
    params = module.params
    dest = params["dest"]
    staged = []
    try:
        for label, src_key, sum_key in ((JAR, "jar_src", "sha256"), (DEPENDENCIES, "dependencies_src", "dependencies_sha256")):
            if params["source"] == "file":
                staged.append(copy_verified(target[src_key], dest, target[sum_key], label))
            else:
                staged.append(fetch_verified(module, target[src_key], dest, target[sum_key], label,
                                             params["attempts"], params["retry_delay"], params["timeout"]))
        return staged
    except Exception:
        for path in staged:
            os.unlink(path)
        raise


def copy_verified(src, dest, expected, label):
    if not os.path.isfile(src):
        raise DownloadError("%s: source file %s does not exist on the target" % (label, src))
    actual = sha256_file(src)
    if actual != expected:
        raise DownloadError("%s: %s has SHA-256 %s but %s was expected" % (label, src, actual, expected))
    fd, tmp = tempfile.mkstemp(prefix=".%s." % label, suffix=".part", dir=dest)
    os.close(fd)
    shutil.copyfile(src, tmp)
    if sha256_file(tmp) != expected:
        os.unlink(tmp)
        raise DownloadError("%s: the copy of %s in %s does not match its checksum (disk full?)" % (label, src, dest))
    return tmp


def main():
    argument_spec = dict(
        dest=dict(type="path", required=True),
        version=dict(type="str", default="latest"),
        source=dict(type="str", choices=["api", "url", "file"], default="api"),
        license_key=dict(type="str", no_log=True),
        license_email=dict(type="str", no_log=True),
        api_url=dict(type="str", default="https://apidownload.looker.com/download"),
        jar_src=dict(type="str"),
        dependencies_src=dict(type="str"),
        jar_sha256=dict(type="str"),
        dependencies_sha256=dict(type="str"),
        backup=dict(type="bool", default=True),
        attempts=dict(type="int", default=3),
        retry_delay=dict(type="float", default=2.0),
        timeout=dict(type="int", default=600),
        validate_certs=dict(type="bool", default=True),
    )
    module = AnsibleModule(argument_spec=argument_spec, add_file_common_args=True, supports_check_mode=True)
    validate(module)

    jars = LookerJars(module.params["dest"])
    previous, jar_sum, dep_sum = jars.installed()
    result = dict(changed=False, previous_version=previous, jar_path=jars.jar, dependencies_path=jars.dependencies,
                  api_called=False, downloaded=False)
    try:
        target, result["api_called"] = wanted_release(module, jars, previous)
    except (DownloadError, ReleaseError) as exc:
        module.fail_json(msg=str(exc), **result)
    if target is None:  # the exact release asked for is installed and intact
        target = {"version": previous, "sha256": jar_sum, "dependencies_sha256": dep_sum}
    result.update(version=target["version"], sha256=target["sha256"], dependencies_sha256=target["dependencies_sha256"])

    up_to_date = (jar_sum, dep_sum) == (target["sha256"], target["dependencies_sha256"])
    if not up_to_date:
        result["changed"] = True
        result["diff"] = dict(before="version: %s\n" % (previous or "none"), after="version: %s\n" % target["version"],
                              before_header=jars.dest, after_header=jars.dest)
        if not module.check_mode:
            try:
                new_jar, new_dependencies = stage(module, target)
            except DownloadError as exc:
                module.fail_json(msg="%s; the installed jars were left untouched" % exc, **result)
            jars.replace(new_jar, new_dependencies, target["version"], target["sha256"], target["dependencies_sha256"],
                         module.params["backup"])
            result["downloaded"] = module.params["source"] != "file"
    elif previous != target["version"]:
        if previous is not None:
            module.fail_json(msg="version: the jars in %s are release %s with exactly the checksums given, so they cannot be release %s; "
                             "check version and the checksums" % (jars.dest, previous, target["version"]), **result)
        # Right files but no record (for example installed by hand): record them.
        result["changed"] = True
        if not module.check_mode:
            jars.write_record(target["version"], jar_sum, dep_sum)

    if not module.check_mode:
        for path in (jars.jar, jars.dependencies, jars.record):
            if os.path.exists(path):
                file_args = module.load_file_common_arguments(module.params, path=path)
                result["changed"] = module.set_fs_attributes_if_different(file_args, result["changed"])
    module.exit_json(**result)


if __name__ == "__main__":
    main()
