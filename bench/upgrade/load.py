"""Bounded load through the load balancer during an upgrade (used by bench/upgrade/run and by
molecule/upgrade's tests): a writer POSTs records with unique uids to /standin/records, a reader
GETs /standin/records?limit=1, each at a steady rate, one request at a time, each with a timeout,
until stop() or `max_seconds`. Afterwards missing() lists the acknowledged uids the cluster no
longer has. Standard library only; TLS certificates are not checked (the stand-in's are self-signed)."""
import json
import ssl
import threading
import time
import urllib.error
import urllib.request

CONTEXT = ssl.create_default_context()
CONTEXT.check_hostname = False
CONTEXT.verify_mode = ssl.CERT_NONE


def request(url, body=None, timeout=5.0):
    """(status, parsed JSON or None, error text)."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method="POST" if body is not None else "GET",
                                 headers={"Content-Type": "application/json"} if body is not None else {})
    try:
        with urllib.request.urlopen(req, timeout=timeout, context=CONTEXT) as answer:
            text = answer.read().decode()
            return answer.status, (json.loads(text) if text.startswith("{") else None), ""
    except urllib.error.HTTPError as exc:
        return exc.code, None, "HTTP %d" % exc.code
    except Exception as exc:  # every other failure is a failed request
        return None, None, "%s: %s" % (type(exc).__name__, exc)


class Load:
    def __init__(self, base_url, tag, rate=5.0, max_seconds=600.0):
        self.base = base_url.rstrip("/")
        self.tag = tag
        self.rate = rate
        self.max_seconds = max_seconds
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self.events = []  # (time, kind, ok, detail)
        self.acked = []
        self.started = self.ended = None
        self.threads = [threading.Thread(target=self._loop, args=(kind,), daemon=True) for kind in ("write", "read")]

    def start(self):
        self.started = time.time()
        for thread in self.threads:
            thread.start()
        return self

    def stop(self):
        self.stopping.set()
        for thread in self.threads:
            thread.join(30)
        self.ended = time.time()

    def _loop(self, kind):
        number = 0
        while not self.stopping.is_set() and time.time() - self.started < self.max_seconds:
            begin = time.time()
            if kind == "write":
                uid = "%s-%d" % (self.tag, number)
                status, body, error = request(self.base + "/standin/records", {"uid": uid, "payload": "upgrade load " + uid})
                ok = status in (200, 201) and body is not None and body.get("uid") == uid
                if ok:
                    with self.lock:
                        self.acked.append(uid)
            else:
                status, body, error = request(self.base + "/standin/records?after_id=999999999&limit=1")
                ok = status == 200 and body is not None and "count" in body
            with self.lock:
                self.events.append((begin, kind, ok, error or status))
            number += 1
            self.stopping.wait(max(0.0, 1.0 / self.rate - (time.time() - begin)))

    def figures(self):
        """failed writes/reads, seconds with no successful request, duration."""
        with self.lock:
            events = list(self.events)
        failed = {kind: sum(1 for e in events if e[1] == kind and not e[2]) for kind in ("write", "read")}
        total = {kind: sum(1 for e in events if e[1] == kind) for kind in ("write", "read")}
        ok_seconds = {int(e[0] - self.started) for e in events if e[2]}
        duration = (self.ended or time.time()) - self.started
        dark = sum(1 for second in range(int(duration)) if second not in ok_seconds)
        errors = sorted({str(e[3]) for e in events if not e[2]})[:5]
        return dict(requests=total, failed=failed, dark_seconds=dark, duration_s=round(duration, 1),
                    acked_writes=len(self.acked), errors=errors)

    def missing(self, timeout=60):
        """The acknowledged uids absent from the cluster (read through the balancer)."""
        deadline = time.time() + timeout
        while True:
            present, after, error = set(), 0, ""
            while True:
                status, body, error = request(self.base + "/standin/records?after_id=%d&limit=5000" % after, timeout=20)
                if status != 200 or body is None:
                    break
                records = body.get("records", [])
                present.update(r.get("uid") for r in records)
                if len(records) < 5000:
                    error = ""
                    break
                after = records[-1]["id"]
            if not error:
                return sorted(set(self.acked) - present)
            if time.time() > deadline:
                raise RuntimeError("cannot read the records back: %s" % error)
            time.sleep(2)
