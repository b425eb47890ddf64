# -*- coding: utf-8 -*-
# Copyright: lookerops.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Talking to Looker's download API and fetching files that must match a SHA-256.

Shared by the modules that download or verify Looker jars. Nothing here ever puts the license
key or e-mail into a message.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import json
import os
import re
import tempfile
import time

from ansible.module_utils.common.text.converters import to_native
from ansible.module_utils.urls import fetch_url
from ansible_collections.lookerops.cluster.plugins.module_utils.looker_release import suggestion

CHUNK = 1024 * 1024
# The public EULA page; the API's own eulaMessage is shown too when it names another.
EULA_HINT = "accept the EULA for this license at https://download.looker.com/validate, then run again"


class DownloadError(Exception):
    pass


def sha256_file(path):
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def _retrying(attempts, delay, action, retriable):
    """Run action() up to `attempts` times, doubling the delay after each retriable failure."""
    for attempt in range(1, attempts + 1):
        try:
            return action()
        except DownloadError as exc:
            if attempt == attempts or not retriable(exc):
                raise
            time.sleep(delay * 2 ** (attempt - 1))
    raise AssertionError("unreachable")


class _Retriable(DownloadError):
    """A failure worth another try: the server was down, busy, or the transfer broke."""


def _server_message(info):
    """The server's own short explanation of an error answer, and whether it came as JSON.

    JSON: its message/error/msg; XML (object stores behind signed links): its Code and Message only,
    never the rest (an S3 SignatureDoesNotMatch answer echoes the signature); otherwise the status
    line's reason."""
    body = to_native(info.get("body") or b"")
    try:
        answer = json.loads(body)
        if isinstance(answer, dict):
            for key in ("message", "error", "msg"):
                if answer.get(key):
                    return to_native(answer[key])[:300], True
    except ValueError:
        pass
    parts = [match.group(1).strip() for match in (re.search(r"<%s>([^<]{1,200})</%s>" % (tag, tag), body) for tag in ("Code", "Message"))
             if match]
    if parts:
        return ": ".join(parts), False
    reason = re.sub(r"^HTTP Error \d+: ", "", to_native(info.get("msg", "")))
    return reason or "no explanation", False


def _retriable_status(status):
    """No answer, a server error, a timeout or too many requests: worth another try."""
    return status == -1 or status >= 500 or status in (408, 429)


def request_links(module, api_url, body, attempts=3, delay=2.0, timeout=60, version=None):
    """POST the request body to the download API and return its JSON answer (a dict).

    `version` is the release asked for, as the user wrote it (for the messages). Raises DownloadError
    with a message a user can act on, one per kind of failure: API down, license refused, no such
    release, EULA not accepted.
    """
    asked = version or body.get("specific") or body.get("latest")

    def call():
        response, info = fetch_url(
            module, api_url, data=json.dumps(body), method="POST", timeout=timeout,
            headers={"Content-Type": "application/json", "Accept": "application/json"},
        )
        status = info.get("status", -1)
        if _retriable_status(status):
            raise _Retriable("the download API at %s did not answer (%s)" % (api_url, info.get("msg", "no response")))
        if status >= 400:
            reason, from_api = _server_message(info)
            if status in (401, 403):
                raise DownloadError(
                    "the download API at %s refused the license (HTTP %s: %s): check license_key and license_email "
                    "(the e-mail address the license is registered to)" % (api_url, status, reason))
            if status == 404 and from_api:
                raise DownloadError("the download API at %s has no release %s (HTTP 404: %s): check version; ask for %s"
                                    % (api_url, asked, reason, suggestion(asked)))
            if status == 404:
                raise DownloadError(
                    "the download API at %s answered HTTP 404 (%s) without a JSON explanation: either it has no release %s "
                    "(ask for %s) or api_url is not the download API" % (api_url, reason, asked, suggestion(asked)))
            raise DownloadError("the download API at %s rejected the request for release %s (HTTP %s: %s)"
                                % (api_url, asked, status, reason))
        try:
            answer = json.loads(to_native(response.read()))
        except ValueError:
            raise _Retriable("the download API at %s answered something that is not JSON" % api_url)
        if not isinstance(answer, dict):
            raise DownloadError("the download API at %s answered %r, expected a JSON object" % (api_url, type(answer).__name__))
        return answer

    answer = _retrying(attempts, delay, call, lambda exc: isinstance(exc, _Retriable))
    if answer.get("eulaMessage"):
        raise DownloadError("the Looker EULA has not been accepted: %s. To fix: %s" % (answer["eulaMessage"], EULA_HINT))
    missing = [key for key in ("url", "depUrl", "version_text", "sha256", "depSha256") if not answer.get(key)]
    if missing:
        raise DownloadError("the download API at %s answered without %s" % (api_url, ", ".join(missing)))
    return answer


def fetch_verified(module, url, directory, expected_sha256, label, attempts=3, delay=2.0, timeout=600, signed=False):
    """Download url into a temporary file in `directory` and return its path once its SHA-256
    matches. The temporary file is removed on any failure; nothing else is touched.

    `signed`: the URL is a short-lived link the download API returned (not a mirror's), which
    changes what a refusal means."""

    def fetch():
        fd, tmp_path = tempfile.mkstemp(prefix=".%s." % label, suffix=".part", dir=directory)
        try:
            with os.fdopen(fd, "wb") as out:
                digest, size = _stream(module, url, out, label, timeout, signed)
            if digest != expected_sha256.lower():
                raise _Retriable("%s from %s has SHA-256 %s but %s was expected (%d bytes received)"
                                 % (label, without_query(url), digest, expected_sha256, size))
            return tmp_path
        except Exception:
            os.unlink(tmp_path)
            raise

    return _retrying(attempts, delay, fetch, lambda exc: isinstance(exc, _Retriable))


def without_query(url):
    # Signed download links carry credentials in the query string: never show them.
    return url.split("?", 1)[0]


def _refusal(label, url, status, reason, signed):
    """The message for a 4xx answer to a file fetch: what it means depends on who gave the URL."""
    where = without_query(url)
    if signed:
        if status in (401, 403) or "expire" in reason.lower():
            return ("the download link the API returned for %s was refused (HTTP %s: %s): these links expire about "
                    "10 minutes after the API call; run again to get fresh ones" % (label, status, reason))
        if status in (404, 410):
            return ("the download link the API returned for %s points to no file (%s, HTTP %s: %s): run again; if it "
                    "persists, the release's files are missing on the download server (ask Looker support)"
                    % (label, where, status, reason))
        return "the download link the API returned for %s failed (%s, HTTP %s: %s)" % (label, where, status, reason)
    if status in (404, 410):
        return ("%s: nothing at %s (HTTP %s: %s): the file is not at that URL; check the URL and that the mirror holds "
                "this release" % (label, where, status, reason))
    if status in (401, 403):
        return ("%s: the mirror refused access to %s (HTTP %s: %s): check that it lets this host read the file"
                % (label, where, status, reason))
    return "fetching %s from %s failed (HTTP %s: %s)" % (label, where, status, reason)


def _stream(module, url, out, label, timeout, signed=False):
    response, info = fetch_url(module, url, timeout=timeout)
    status = info.get("status", -1)
    if 400 <= status < 500 and not _retriable_status(status):
        raise DownloadError(_refusal(label, url, status, _server_message(info)[0], signed))
    if status != 200 or response is None:
        raise _Retriable("fetching %s from %s failed: %s" % (label, without_query(url), info.get("msg", "HTTP %s" % status)))
    expected_length = response.headers.get("Content-Length") if hasattr(response, "headers") else None
    digest = hashlib.sha256()
    size = 0
    try:
        for block in iter(lambda: response.read(CHUNK), b""):
            out.write(block)
            digest.update(block)
            size += len(block)
    except Exception as exc:  # the connection broke mid-transfer
        raise _Retriable("the transfer of %s broke after %d bytes: %s" % (label, size, to_native(exc)))
    if expected_length is not None and int(expected_length) != size:
        raise _Retriable("the transfer of %s was cut: %d of %s bytes received" % (label, size, expected_length))
    return digest.hexdigest(), size
