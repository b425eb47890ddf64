# -*- coding: utf-8 -*-
# Copyright: lookerops.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Looker release names: what a user may ask for, how the download API names it, and which release a
pair of jars is (the Implementation-Version of looker.jar's manifest)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re
import zipfile
import zlib

LATEST = "latest"
_MINOR = re.compile(r"^(\d+)\.(\d+)$")
_EXACT = re.compile(r"^(\d+)\.(\d+)\.(\d+)$")
_VERSION_TEXT = re.compile(r"^looker-(\d+\.\d+\.\d+)\.jar$")
# An Implementation-Version names the release it starts with: '25.6.12', '25.6.12-b3', '25.6.12.20250901'.
_MANIFEST_RELEASE = re.compile(r"^(\d+\.\d+\.\d+)(?:$|[-+._ ])")
MANIFEST = "META-INF/MANIFEST.MF"

VERSION_HELP = 'use "latest", a minor release such as "25.6" (its newest patch) or an exact release such as "25.6.12"'


class ReleaseError(ValueError):
    pass


def request_kind(version):
    """Return "latest", "minor" or "exact" for a requested version, or raise ReleaseError."""
    version = str(version).strip()
    if version == LATEST:
        return LATEST
    if _MINOR.match(version):
        return "minor"
    if _EXACT.match(version):
        return "exact"
    raise ReleaseError("version %r is not a Looker release: %s" % (version, VERSION_HELP))


def api_request(version, license_key, email):
    """The JSON body of a download API request for the requested version."""
    kind = request_kind(version)
    body = {"lic": license_key, "email": email}
    if kind == LATEST:
        body["latest"] = "latest"
    elif kind == "minor":
        body.update(latest="specific", specific="looker-%s-latest.jar" % version)
    else:
        body.update(latest="specific", specific="looker-%s.jar" % version)
    return body


def version_from_text(version_text):
    """'looker-25.6.12.jar' -> '25.6.12' (the API's version_text field)."""
    match = _VERSION_TEXT.match(str(version_text or "").strip())
    if not match:
        raise ReleaseError("the download API answered version_text %r, expected looker-X.Y.Z.jar" % (version_text,))
    return match.group(1)


def version_key(version):
    """Sortable key of an exact release ('25.10.2' sorts after '25.9.30')."""
    if not _EXACT.match(str(version)):
        raise ReleaseError("%r is not an exact release (X.Y.Z)" % (version,))
    return tuple(int(part) for part in str(version).split("."))


def schema_of(version):
    """Releases of one minor version share an application-database schema ('25.6.12' -> '25.6')."""
    version_key(version)
    return version.rsplit(".", 1)[0]


def suggestion(version):
    """What to ask for instead of a release the download API does not have."""
    if str(version).strip() == LATEST:
        return 'an exact release (X.Y.Z) or a minor release (X.Y) the download API offers'
    match = _EXACT.match(str(version).strip())
    if match:
        return '"latest", or "%s.%s" for the newest patch of %s.%s' % (match.group(1), match.group(2), match.group(1), match.group(2))
    return '"latest", or another minor release (X.Y)'


def manifest_attribute(manifest, name):
    """The value of attribute `name` in the main section of a jar manifest (text), or None.

    Follows the JAR specification: names are case-insensitive, a line that starts with one space
    continues the previous one, the main section ends at the first empty line."""
    lines = []
    for line in manifest.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        if not line:
            break
        if line.startswith(" ") and lines:
            lines[-1] += line[1:]
        else:
            lines.append(line)
    for line in lines:
        key, sep, value = line.partition(":")
        if sep and key.strip().lower() == name.lower():
            return value.strip()
    return None


def manifest_release(implementation_version):
    """The X.Y.Z release an Implementation-Version names ('25.6.12-b3' -> '25.6.12'), or None."""
    match = _MANIFEST_RELEASE.match(str(implementation_version or "").strip())
    return match.group(1) if match else None


def jar_release(path, shown=None):
    """The release of a Looker jar, read from its manifest: (X.Y.Z, Implementation-Version).

    Raises ReleaseError, naming the file as `shown` (default: its path), when it is no jar or its
    manifest names no release."""
    shown = shown or path
    try:
        with zipfile.ZipFile(path) as jar:
            manifest = jar.read(MANIFEST).decode("utf-8", "replace")
    except KeyError:
        raise ReleaseError("%s has no %s, so its release cannot be read" % (shown, MANIFEST))
    except (IOError, OSError, EOFError, RuntimeError, NotImplementedError, zipfile.BadZipfile, zlib.error) as exc:
        raise ReleaseError("%s is not a jar (zip) file, so its release cannot be read (%s)" % (shown, exc))
    value = manifest_attribute(manifest, "Implementation-Version")
    if value is None:
        raise ReleaseError("%s names no release: there is no Implementation-Version in its %s" % (shown, MANIFEST))
    release = manifest_release(value)
    if release is None:
        raise ReleaseError("%s names no release: its Implementation-Version %r does not start with X.Y.Z" % (shown, value))
    return release, value


def request_names(request, release):
    """Whether `request` (latest, X.Y or X.Y.Z) names the exact release `release`: latest names any
    release, X.Y its patches, X.Y.Z itself."""
    kind = request_kind(request)
    if kind == LATEST:
        return True
    if kind == "minor":
        return schema_of(release) == str(request).strip()
    return str(request).strip() == release


# What a node's record may say instead of a release (see recorded_releases in plugins/filter/releases.py).
NO_RECORD = ""
UNREADABLE = ("unknown", "unreachable")


def releases_in_use(node_releases):
    """{release: [nodes]} from (node, release) pairs, leaving out nodes without Looker and unreadable
    releases. A cluster is sound with at most one key: Looker must never run two releases against one
    application database (a deployment refuses to pick one, an upgrade refuses to start from it)."""
    groups = {}
    for node, release in node_releases:
        release = str(release or NO_RECORD)
        if release not in UNREADABLE and release != NO_RECORD and node not in groups.setdefault(release, []):
            groups[release].append(node)
    return groups


def release_plan(request, records, allow_change=False):
    """What a deployment does about the release of one cluster, from the requested version and the
    records of its nodes ({node: {"version": ..., "sha256": ..., "dependencies_sha256": ...}}, the
    version "" where a node has no Looker yet, "unknown"/"unreachable" where its record could not be read).

    A cluster that runs Looker keeps its release ("keep", with the release and its checksums from a node
    that runs it): only an upgrade, which backs up the database and can roll back, may change it
    (allow_change; it resolves latest and X.Y again). "resolve": ask the download source for `request` (a first install, or an allowed
    change). "refuse", with the reason, when the request names another release than the one running."""
    request = str(request).strip()
    running = releases_in_use((node, (records[node] or {}).get("version")) for node in sorted(records))
    # moving: latest and X.Y may name a newer release tomorrow; a kept release says whether they do now.
    plan = {"action": "resolve", "running": sorted(running, key=version_key), "release": {}, "reason": "",
            "moving": request_kind(request) != "exact"}
    if not running:
        return plan
    if len(running) > 1:
        if allow_change:
            return plan
        plan.update(action="refuse", reason=(
            "The nodes of the cluster run different releases (%s), as an interrupted upgrade leaves them. A deployment "
            "never picks one: finish the upgrade, or roll it back, with playbooks/upgrade.yml. Nothing was changed."
            % ", ".join("%s: %s" % (node, version) for version in plan["running"] for node in running[version])))
        return plan
    version, nodes = next(iter(running.items()))
    # An upgrade asks the download source what latest or X.Y names now; an exact request of the running
    # release (a restart, a rollback's start) keeps it, without the download source.
    if request_names(request, version) and not (allow_change and plan["moving"]):
        record = records[nodes[0]]
        plan.update(action="keep", release={"version": version, "sha256": record.get("sha256") or "",
                                            "dependencies_sha256": record.get("dependencies_sha256") or ""})
        return plan
    # Even an upgrade never goes back: Looker migrates its database forward only.
    if allow_change and not older_than(request, version):
        return plan
    plan["action"] = "refuse"
    if older_than(request, version):
        plan["reason"] = (
            "The cluster runs Looker %s (%s), and %s asks for %s, an older release. Looker migrates its application "
            "database forward only: going back needs the backup taken before the upgrade (playbooks/upgrade.yml rolls "
            "back a failed upgrade itself). To keep %s, set looker_version to %s, %s or latest. Nothing was changed."
            % (version, ", ".join(nodes), "the upgrade" if allow_change else "looker_node_version (looker_version in the inventory)",
               request, version, version, schema_of(version)))
        return plan
    plan["reason"] = (
        "The cluster runs Looker %s (%s), and looker_node_version (looker_version in the inventory) asks for %s. "
        "A deployment keeps the release a cluster runs; a change of release is an upgrade: run playbooks/upgrade.yml, "
        "which takes looker_version from the inventory, backs up the application database first and rolls back on "
        "failure. To keep %s, set looker_version to %s, %s or latest. Nothing was changed."
        % (version, ", ".join(nodes), request, version, version, schema_of(version)))
    return plan


def older_than(request, release):
    """Whether the request (latest, X.Y or X.Y.Z) names a release older than the exact release
    `release`: an X.Y older than its minor release, an X.Y.Z older than it. The one downgrade rule of
    the collection: a deployment, an upgrade and the upgrade plan refuse such a request."""
    if request_kind(request) == LATEST:
        return False
    if request_kind(request) == "minor":
        return version_key(request + ".0")[:2] < version_key(release)[:2]
    return version_key(request) < version_key(release)
