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
  - The release of a pair of jars is read from the jars, never taken from a label - the
    C(Implementation-Version) in C(META-INF/MANIFEST.MF) of C(looker.jar) (its C(X.Y.Z) start, so
    C(25.6.12-b3) is 25.6.12). Before the jars replace the installed pair, that release must be the one
    O(version) asks for (with O(source=api), the one the API named); otherwise the module fails, naming the
    release asked for, the release the manifest names and the files, and installs nothing. A jar whose
    manifest names no release is refused the same way.
  - Idempotent. The installed release is recorded in C(.looker-jars.json) in O(dest) together with both
    checksums. When an exact release is asked for and the manifest of the installed C(looker.jar) and the
    record (for exactly the installed files) both name it, no API call and no download are made. A record
    that contradicts the manifest is not trusted (a warning says so) and is rewritten once the jars are
    checked. For V(latest) and minor releases the API is asked which release that is, and nothing is
    downloaded when the installed checksums already match.
  - A failure changes nothing and returns no RV(version); C(changed) is false, and the result tells what
    was there before (RV(previous_version)) and whether the API was asked (RV(api_called)).
  - A refusal is explained by what it means where it came from. From the download API, HTTP 401/403 is the
    license key or e-mail and HTTP 404 a release it does not have (use V(latest) or C(X.Y)). From a link the
    API returned, HTTP 401/403 is a link that expired (about 10 minutes), run again. From a mirror
    (O(source=url)), HTTP 404/410 is a file that is not at that URL and HTTP 401/403 a mirror that refuses
    this host.
author:
  - lookerops.cluster maintainers (@lookerops)
extends_documentation_fragment:
  - ansible.builtin.files
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
    details: Calls the download API to learn the release, downloads nothing. With O(source=file) the manifest of
      O(jar_src) is checked when that file is already there with the checksum O(jar_sha256); with O(source=api) and
      O(source=url) it is checked only once downloaded.
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
      - With O(source=url) or O(source=file) it must be the exact release of the given files, and the manifest of
        the core jar must name it (C(Implementation-Version)).
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
  description:
    - The exact release installed (or that would be, in check mode), checked against the manifest of C(looker.jar)
      (in check mode with O(source=api) or O(source=url), as the API or O(version) names it).
    - Not returned when the module fails.
  returned: success
  type: str
  sample: 25.6.12
previous_version:
  description:
    - The release of the pair installed before, read from the manifest of the installed C(looker.jar);
      V(null) when there was no pair or its manifest names no release.
  returned: when the arguments are valid, also when the module fails
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
  returned: when the arguments are valid, also when the module fails
  type: str
  sample: /home/looker/looker/looker.jar
dependencies_path:
  description: Path of the installed dependencies jar.
  returned: when the arguments are valid, also when the module fails
  type: str
  sample: /home/looker/looker/looker-dependencies.jar
api_called:
  description: Whether a request was sent to the download API, whatever came of it (also when the module fails).
  returned: when the arguments are valid, also when the module fails
  type: bool
downloaded:
  description:
    - Whether both jars were transferred and verified by checksum (also when the module then refuses them because
      their manifest names another release; they are not installed then).
  returned: when the arguments are valid, also when the module fails
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
    without_query,
)
from ansible_collections.lookerops.cluster.plugins.module_utils.looker_release import (
    ReleaseError,
    api_request,
    jar_release,
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
        """What dest holds, as a dict:
        version: the release the manifest of looker.jar names (None: no pair, or no release in it);
        recorded: the release the record names for exactly these two files (None: no such record);
        sha256, dependencies_sha256: of the two files (None when the pair is incomplete)."""
        state = dict(version=None, recorded=None, sha256=None, dependencies_sha256=None)
        if not (os.path.isfile(self.jar) and os.path.isfile(self.dependencies)):
            return state
        state.update(sha256=sha256_file(self.jar), dependencies_sha256=sha256_file(self.dependencies))
        try:
            state["version"] = jar_release(self.jar)[0]
        except ReleaseError:
            pass
        try:
            with open(self.record) as stream:
                record = json.load(stream)
        except (IOError, OSError, ValueError):
            record = {}
        if isinstance(record, dict) and (record.get("sha256"), record.get("dependencies_sha256")) == (
                state["sha256"], state["dependencies_sha256"]):
            state["recorded"] = record.get("version")
        return state

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


def wanted_release(module, installed, result):
    """The target: a dict of version, checksums and where to get both jars; None when the exact
    release asked for is installed and known to be it (its manifest and its record say so).
    Sets result["api_called"] before the download API is asked."""
    params = module.params
    if params["source"] != "api":
        return {
            "version": params["version"], "sha256": params["jar_sha256"].lower(),
            "dependencies_sha256": params["dependencies_sha256"].lower(),
            "jar_src": params["jar_src"], "dependencies_src": params["dependencies_src"],
        }
    if request_kind(params["version"]) == "exact" and installed["version"] == params["version"] == installed["recorded"]:
        return None
    body = api_request(params["version"], params["license_key"], params["license_email"])
    result["api_called"] = True
    answer = request_links(module, params["api_url"], body, params["attempts"], params["retry_delay"], version=params["version"])
    return {
        "version": version_from_text(answer["version_text"]), "sha256": answer["sha256"].lower(),
        "dependencies_sha256": answer["depSha256"].lower(), "jar_src": answer["url"], "dependencies_src": answer["depUrl"],
    }


def sources(params, target):
    """The pair of jars a target comes from, as a user may look for it (never a link's signature)."""
    jar, dependencies = target["jar_src"], target["dependencies_src"]
    if params["source"] == "file":
        return "jar_src %s, dependencies_src %s" % (jar, dependencies)
    if params["source"] == "url":
        return "jar_src %s, dependencies_src %s" % (without_query(jar), without_query(dependencies))
    return "the download API's links %s and %s" % (without_query(jar), without_query(dependencies))


def check_release(params, target, jar, shown, outcome):
    """Raise ReleaseError unless the manifest of the looker.jar at `jar` names the target's release.

    `shown` names the pair in the message; `outcome` says what was left as it was."""
    asked = target["version"]
    try:
        release, value = jar_release(jar, shown="looker.jar")
    except ReleaseError as exc:
        raise ReleaseError("release: %s was asked for, but the release of the jars cannot be read: %s (%s). %s; looker_jar installs "
                           "only jars whose looker.jar manifest names their release (Implementation-Version)"
                           % (asked, exc, shown, outcome))
    if release == asked:
        return
    if params["source"] == "api":
        hint = "the download API named release %s but its files are %s: run again, and report it to Looker support if it persists" % (
            asked, release)
    else:
        hint = "set version to %s if these are the jars you want, or give the jars of %s" % (release, asked)
    raise ReleaseError("version: %s was asked for, but the jars are Looker %s (Implementation-Version %s in the manifest of looker.jar): "
                       "%s. %s; %s" % (asked, release, value, shown, outcome, hint))


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
                                             params["attempts"], params["retry_delay"], params["timeout"],
                                             signed=params["source"] == "api"))
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
    params = module.params

    jars = LookerJars(params["dest"])
    installed = jars.installed()
    previous = installed["version"]
    # What a failure returns: nothing changed, and no release claimed.
    result = dict(changed=False, previous_version=previous, jar_path=jars.jar, dependencies_path=jars.dependencies,
                  api_called=False, downloaded=False)
    if installed["recorded"] is not None and installed["recorded"] != previous:
        module.warn("%s names release %s for the jars in %s, but the manifest of looker.jar says %s: the record is not trusted "
                    "(it is rewritten when a release is installed)" % (RECORD, installed["recorded"], jars.dest, previous or "no release"))
    try:
        target = wanted_release(module, installed, result)
    except (DownloadError, ReleaseError) as exc:
        module.fail_json(msg=str(exc), **result)
    if target is None:  # the exact release asked for is installed, intact, and its manifest says so
        target = {"version": previous, "sha256": installed["sha256"], "dependencies_sha256": installed["dependencies_sha256"]}

    changed = False
    diff = None
    if (installed["sha256"], installed["dependencies_sha256"]) != (target["sha256"], target["dependencies_sha256"]):
        changed = True
        diff = dict(before="version: %s\n" % (previous or "none"), after="version: %s\n" % target["version"],
                    before_header=jars.dest, after_header=jars.dest)
        if module.check_mode:
            # Files on the target can be read now, when they are already the ones given by checksum (a
            # play may copy them there only after this check, over leftovers of an earlier run).
            if params["source"] == "file" and os.path.isfile(target["jar_src"]) and sha256_file(target["jar_src"]) == target["sha256"]:
                try:
                    check_release(params, target, target["jar_src"], sources(params, target), "Nothing would be installed")
                except ReleaseError as exc:
                    module.fail_json(msg=str(exc), **result)
        else:
            try:
                new_jar, new_dependencies = stage(module, target)
            except DownloadError as exc:
                module.fail_json(msg="%s; the installed jars were left untouched" % exc, **result)
            result["downloaded"] = params["source"] != "file"
            try:
                check_release(params, target, new_jar, sources(params, target), "Nothing was installed")
            except ReleaseError as exc:
                for path in (new_jar, new_dependencies):
                    os.unlink(path)
                module.fail_json(msg=str(exc), **result)
            jars.replace(new_jar, new_dependencies, target["version"], target["sha256"], target["dependencies_sha256"], params["backup"])
    elif (previous, installed["recorded"]) != (target["version"], target["version"]):
        # The installed files are exactly those asked for, but not known to be the release asked for:
        # their manifest must say so; then the record is written (for example after an install by hand).
        try:
            shown = "%s and %s in %s, identical to %s" % (JAR, DEPENDENCIES, jars.dest, sources(params, target))
            check_release(params, target, jars.jar, shown, "Nothing was changed")
        except ReleaseError as exc:
            module.fail_json(msg=str(exc), **result)
        changed = True
        if not module.check_mode:
            jars.write_record(target["version"], installed["sha256"], installed["dependencies_sha256"])

    result.update(changed=changed, version=target["version"], sha256=target["sha256"], dependencies_sha256=target["dependencies_sha256"])
    if diff:
        result["diff"] = diff
    if not module.check_mode:
        for path in (jars.jar, jars.dependencies, jars.record):
            if os.path.exists(path):
                file_args = module.load_file_common_arguments(module.params, path=path)
                result["changed"] = module.set_fs_attributes_if_different(file_args, result["changed"])
    module.exit_json(**result)


if __name__ == "__main__":
    main()
