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
import tempfile
import time

from ansible.module_utils.common.text.converters import to_native
from ansible.module_utils.urls import fetch_url

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
    body = info.get("body") or b""
    try:
        answer = json.loads(to_native(body))
        if isinstance(answer, dict):
            for key in ("message", "error", "msg"):
                if answer.get(key):
                    return to_native(answer[key])
    except ValueError:
        pass
    return to_native(body)[:300] or to_native(info.get("msg", ""))


def request_links(module, api_url, body, attempts=3, delay=2.0, timeout=60):
    """POST the request body to the download API and return its JSON answer (a dict).

    Raises DownloadError with a message a user can act on: API down, license refused, EULA.
    """

    def call():
        response, info = fetch_url(
            module, api_url, data=json.dumps(body), method="POST", timeout=timeout,
            headers={"Content-Type": "application/json", "Accept": "application/json"},
        )
        status = info.get("status", -1)
        if status == -1 or status >= 500:
            raise _Retriable("the download API at %s did not answer (%s)" % (api_url, info.get("msg", "no response")))
        if status >= 400:
            raise DownloadError(
                "the download API at %s refused the request (HTTP %s: %s): check the license key and e-mail"
                % (api_url, status, _server_message(info)))
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


def fetch_verified(module, url, directory, expected_sha256, label, attempts=3, delay=2.0, timeout=600):
    """Download url into a temporary file in `directory` and return its path once its SHA-256
    matches. The temporary file is removed on any failure; nothing else is touched."""

    def fetch():
        fd, tmp_path = tempfile.mkstemp(prefix=".%s." % label, suffix=".part", dir=directory)
        try:
            with os.fdopen(fd, "wb") as out:
                digest, size = _stream(module, url, out, label, timeout)
            if digest != expected_sha256.lower():
                raise _Retriable("%s from %s has SHA-256 %s but %s was expected (%d bytes received)"
                                 % (label, _without_query(url), digest, expected_sha256, size))
            return tmp_path
        except Exception:
            os.unlink(tmp_path)
            raise

    return _retrying(attempts, delay, fetch, lambda exc: isinstance(exc, _Retriable))


def _without_query(url):
    # Signed download links carry credentials in the query string: never show them.
    return url.split("?", 1)[0]


def _stream(module, url, out, label, timeout):
    response, info = fetch_url(module, url, timeout=timeout)
    status = info.get("status", -1)
    if status in (401, 403, 404, 410):
        raise DownloadError("the download link for %s was refused (HTTP %s): links expire after about 10 minutes; run again to get fresh ones"
                            % (label, status))
    if status != 200 or response is None:
        raise _Retriable("fetching %s from %s failed: %s" % (label, _without_query(url), info.get("msg", "HTTP %s" % status)))
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
