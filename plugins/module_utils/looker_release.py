# -*- coding: utf-8 -*-
# Copyright: lookerops.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Looker release names: what a user may ask for and how the download API names it."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

LATEST = "latest"
_MINOR = re.compile(r"^(\d+)\.(\d+)$")
_EXACT = re.compile(r"^(\d+)\.(\d+)\.(\d+)$")
_VERSION_TEXT = re.compile(r"^looker-(\d+\.\d+\.\d+)\.jar$")

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
