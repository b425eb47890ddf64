# -*- coding: utf-8 -*-
"""Stand-in for Looker's jar download API (https://apidownload.looker.com/download), for the tests of
lookerops.cluster. It is not Looker's service: it serves the stand-in jars built by build.sh.

    python3 download_api.py --jars-dir DIR --license KEY --email EMAIL [--bind 127.0.0.1] [--port 8080]
                            [--ttl 600] [--mode MODE] [--public-url URL] [--tls-cert CERT --tls-key KEY]

DIR holds one directory per release: DIR/25.6.12/looker.jar and DIR/25.6.12/looker-dependencies.jar.

POST /download with {"lic", "email", "latest": "latest"} or {"lic", "email", "latest": "specific",
"specific": "looker-25.6.jar" | "looker-25.6-latest.jar" | "looker-25.6.12.jar"} answers
{"url", "depUrl", "version_text", "sha256", "depSha256"}; the links expire after --ttl seconds.
"looker-X.Y.jar" is the first patch of X.Y we hold, "looker-X.Y-latest.jar" the newest.

Failure modes (--mode, or POST /_control {"mode": ...}; GET /_control shows mode and counters):
  ok            normal answers
  eula          200 with only "eulaMessage" (EULA not accepted)
  bad_license   403 for every license
  expired_link  links are issued but every file fetch answers 403 "Request has expired"
  truncated     file fetches announce the full Content-Length and cut the transfer half-way
  bad_checksum  sha256/depSha256 in the answer do not match the files
  down          503 on every endpoint but /_control
  closed        connections to /download and the files are closed without an answer
Python standard library only; runs on the controller and in the sandbox hosts.
"""
import argparse
import hashlib
import hmac
import json
import os
import re
import secrets
import ssl
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, quote, urlparse

MODES = ("ok", "eula", "bad_license", "expired_link", "truncated", "bad_checksum", "down", "closed")
VERSION_RE = re.compile(r"^\d+\.\d+\.\d+$")
SPECIFIC_RE = re.compile(r"^looker-(\d+)\.(\d+)(?:\.(\d+)|(-latest))?\.jar$")
FILE_RE = re.compile(r"^/files/looker-(dependencies-)?(\d+\.\d+\.\d+)\.jar$")
EULA_MESSAGE = ("The Looker End User License Agreement (EULA) has not been accepted for this license and e-mail "
                "(download API stand-in). Accept it at https://download.looker.com/validate")
CHUNK = 256 * 1024


def vkey(version):
    return tuple(int(p) for p in version.split("."))


class State:
    """Configuration and the switchable failure mode, shared by the request threads."""

    def __init__(self, args):
        self.jars_dir = args.jars_dir
        self.license = args.license
        self.email = args.email
        self.ttl = args.ttl
        self.mode = args.mode
        self.public_url = args.public_url.rstrip("/") if args.public_url else None
        self.secret = secrets.token_bytes(32)
        self.lock = threading.Lock()
        self.sha_cache = {}
        self.counters = {"download": 0, "files": 0}
        self.fetched = []

    def releases(self):
        out = []
        try:
            names = os.listdir(self.jars_dir)
        except OSError:
            return out
        for name in names:
            base = os.path.join(self.jars_dir, name)
            if VERSION_RE.match(name) and all(os.path.isfile(os.path.join(base, f)) for f in ("looker.jar", "looker-dependencies.jar")):
                out.append(name)
        return sorted(out, key=vkey)

    def sha256(self, path):
        st = os.stat(path)
        key = (path, st.st_size, st.st_mtime_ns)
        with self.lock:
            if key in self.sha_cache:
                return self.sha_cache[key]
        digest = hashlib.sha256()
        with open(path, "rb") as stream:
            for block in iter(lambda: stream.read(CHUNK), b""):
                digest.update(block)
        with self.lock:
            self.sha_cache[key] = digest.hexdigest()
        return digest.hexdigest()

    def sign(self, name, expires):
        return hmac.new(self.secret, f"{name}:{expires}".encode(), hashlib.sha256).hexdigest()


def pick_release(releases, body):
    """The release a request asks for, or (None, error message)."""
    latest = body.get("latest")
    if latest == "latest":
        if not releases:
            return None, "no release available"
        return releases[-1], None
    if latest != "specific":
        return None, "'latest' must be \"latest\" or \"specific\""
    specific = body.get("specific")
    match = SPECIFIC_RE.match(specific) if isinstance(specific, str) else None
    if not match:
        return None, "'specific' must name a core jar like looker-25.6.jar, looker-25.6-latest.jar or looker-25.6.12.jar"
    major, minor, patch, newest = match.groups()
    candidates = [r for r in releases if r.startswith(f"{major}.{minor}.")]
    if patch is not None:
        candidates = [r for r in candidates if r == f"{major}.{minor}.{patch}"]
    if not candidates:
        return None, f"no such release: {specific}"
    return (candidates[-1] if newest or patch is not None else candidates[0]), None


class Handler(BaseHTTPRequestHandler):
    server_version = "looker-download-api-standin/1"
    protocol_version = "HTTP/1.1"

    @property
    def state(self):
        return self.server.state

    def log_message(self, format, *args):  # pylint: disable=redefined-builtin
        # Never log query strings (link signatures) or bodies (license key, e-mail).
        sys.stderr.write("download-api-standin: %s %s -> %s\n" % (self.command, self.path.split("?", 1)[0], args[1] if len(args) > 1 else "-"))

    def send_json(self, status, obj):
        data = (json.dumps(obj) + "\n").encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def send_text(self, status, text, content_type="text/plain"):
        data = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def read_body(self):
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def blocked(self):
        """Handles the 'down' and 'closed' modes; True when the request was answered that way."""
        mode = self.state.mode
        if mode == "down":
            self.read_body()
            self.send_json(503, {"error": "Service Unavailable (download API stand-in is down)"})
            return True
        if mode == "closed":
            self.close_connection = True
            try:
                self.connection.shutdown(2)
            except OSError:
                pass
            return True
        return False

    def do_GET(self):  # noqa: N802 (http.server naming)
        path = urlparse(self.path).path
        if path == "/_control":
            self.control_view()
        elif self.blocked():
            return
        elif FILE_RE.match(path):
            self.serve_file(path)
        else:
            self.send_json(404, {"error": "not found"})

    def do_POST(self):  # noqa: N802
        path = urlparse(self.path).path
        if path == "/_control":
            self.control_update()
        elif self.blocked():
            return
        elif path == "/download":
            self.download()
        else:
            self.read_body()
            self.send_json(404, {"error": "not found"})

    def control_view(self):
        st = self.state
        with st.lock:
            self.send_json(200, {"mode": st.mode, "ttl": st.ttl, "releases": st.releases(), "requests": dict(st.counters),
                                 "fetched": list(st.fetched)})

    def control_update(self):
        try:
            body = json.loads(self.read_body() or b"{}")
        except ValueError:
            self.send_json(400, {"error": "body must be JSON"})
            return
        st = self.state
        if "mode" in body and body["mode"] not in MODES:
            self.send_json(400, {"error": f"mode must be one of {', '.join(MODES)}"})
            return
        with st.lock:
            st.mode = body.get("mode", st.mode)
            if "ttl" in body:
                st.ttl = float(body["ttl"])
            if body.get("reset"):
                st.counters = {"download": 0, "files": 0}
                st.fetched = []
        sys.stderr.write(f"download-api-standin: mode {st.mode}, ttl {st.ttl}\n")
        self.control_view()

    def download(self):
        st = self.state
        with st.lock:
            st.counters["download"] += 1
        try:
            body = json.loads(self.read_body() or b"")
            if not isinstance(body, dict):
                raise ValueError("not an object")
        except ValueError:
            self.send_json(400, {"error": "the body must be a JSON object with lic, email and latest"})
            return
        if st.mode == "bad_license" or body.get("lic") != st.license or body.get("email") != st.email:
            self.send_json(403, {"error": "Invalid license key or email address"})
            return
        if st.mode == "eula":
            self.send_json(200, {"eulaMessage": EULA_MESSAGE})
            return
        release, error = pick_release(st.releases(), body)
        if error:
            self.send_json(404 if error.startswith("no ") else 400, {"error": error})
            return
        base = st.public_url or "%s://%s" % ("https" if self.server.tls else "http", self.headers.get("Host"))
        expires = int(time.time() + st.ttl)
        answer = {"version_text": f"looker-{release}.jar"}
        for key, sha_key, jar, name in (("url", "sha256", "looker.jar", f"looker-{release}.jar"),
                                        ("depUrl", "depSha256", "looker-dependencies.jar", f"looker-dependencies-{release}.jar")):
            answer[key] = f"{base}/files/{name}?Expires={expires}&Signature={quote(st.sign(name, expires))}"
            digest = st.sha256(os.path.join(st.jars_dir, release, jar))
            if st.mode == "bad_checksum":
                digest = hashlib.sha256(("tampered:" + digest).encode()).hexdigest()
            answer[sha_key] = digest
        self.send_json(200, answer)

    def serve_file(self, path):
        st = self.state
        match = FILE_RE.match(path)
        is_deps, release = match.group(1) is not None, match.group(2)
        name = path[len("/files/"):]
        query = parse_qs(urlparse(self.path).query)
        expires = (query.get("Expires") or ["0"])[0]
        signature = (query.get("Signature") or [""])[0]
        if not hmac.compare_digest(signature, st.sign(name, expires)):
            self.send_text(403, "<Error><Code>SignatureDoesNotMatch</Code><Message>bad or missing signature</Message></Error>",
                           "application/xml")
            return
        if st.mode == "expired_link" or not expires.isdigit() or time.time() > int(expires):
            self.send_text(403, "<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>", "application/xml")
            return
        file_path = os.path.join(st.jars_dir, release, "looker-dependencies.jar" if is_deps else "looker.jar")
        if not os.path.isfile(file_path):
            self.send_text(404, "<Error><Code>NoSuchKey</Code></Error>", "application/xml")
            return
        with st.lock:
            st.counters["files"] += 1
            st.fetched.append(name)
        size = os.path.getsize(file_path)
        self.send_response(200)
        self.send_header("Content-Type", "application/java-archive")
        self.send_header("Content-Length", str(size))
        self.end_headers()
        limit = size // 2 if st.mode == "truncated" else size
        sent = 0
        with open(file_path, "rb") as stream:
            while sent < limit:
                block = stream.read(min(CHUNK, limit - sent))
                if not block:
                    break
                self.wfile.write(block)
                sent += len(block)
        if sent < size:
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(2)


def main(argv=None):
    parser = argparse.ArgumentParser(description="Looker download API stand-in (lookerops.cluster tests; not Looker's service)")
    parser.add_argument("--jars-dir", required=True, help="directory of releases: DIR/<version>/looker.jar + looker-dependencies.jar")
    parser.add_argument("--license", required=True, help="the license key the stand-in accepts")
    parser.add_argument("--email", required=True, help="the e-mail the stand-in accepts")
    parser.add_argument("--bind", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--ttl", type=float, default=600.0, help="seconds a download link stays valid (Looker: about 10 minutes)")
    parser.add_argument("--mode", choices=MODES, default="ok")
    parser.add_argument("--public-url", help="base URL of the links (default: from the request's Host header)")
    parser.add_argument("--tls-cert", help="serve HTTPS with this certificate (PEM)")
    parser.add_argument("--tls-key", help="private key of --tls-cert (PEM)")
    args = parser.parse_args(argv)
    if not os.path.isdir(args.jars_dir):
        parser.error(f"--jars-dir {args.jars_dir} is not a directory")
    server = ThreadingHTTPServer((args.bind, args.port), Handler)
    server.daemon_threads = True
    server.state = State(args)
    server.tls = bool(args.tls_cert)
    if args.tls_cert:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(args.tls_cert, args.tls_key)
        server.socket = context.wrap_socket(server.socket, server_side=True)
    host, port = server.server_address[:2]
    print(f"download API stand-in (not Looker's service) listening on {'https' if server.tls else 'http'}://{host}:{port}"
          f" mode={args.mode} releases={','.join(server.state.releases()) or '-'}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
