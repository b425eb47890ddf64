"""Test client (copied into a sandbox host): GET a URL at a steady rate, one new connection per
request, each request in its own thread so a slow one never delays the next. Prints one JSON line
per request: start and end time (epoch seconds), ok, HTTP status, the node that answered
(X-Standin-Node) or the error. Bounded: rate * duration requests, each with a timeout.

    lb_client.py URL RATE DURATION [TIMEOUT]
"""
import json
import ssl
import sys
import threading
import time
import urllib.error
import urllib.request


def one(url, timeout, context, out, lock):
    started = time.time()
    row = {"start": started}
    try:
        with urllib.request.urlopen(url, timeout=timeout, context=context) as answer:
            answer.read()
            row.update(status=answer.status, node=answer.headers.get("X-Standin-Node"), ok=answer.status == 200)
    except urllib.error.HTTPError as exc:
        row.update(status=exc.code, node=exc.headers.get("X-Standin-Node"), ok=False, error="HTTP %d" % exc.code)
    except Exception as exc:  # every failure is a failed request
        row.update(status=None, node=None, ok=False, error="%s: %s" % (type(exc).__name__, exc))
    row["end"] = time.time()
    with lock:
        out.write(json.dumps(row) + "\n")
        out.flush()


def main():
    url, rate, duration = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
    timeout = float(sys.argv[4]) if len(sys.argv) > 4 else 10.0
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    lock = threading.Lock()
    threads = []
    begin = time.time()
    for index in range(int(rate * duration)):
        delay = begin + index / rate - time.time()
        if delay > 0:
            time.sleep(delay)
        thread = threading.Thread(target=one, args=(url, timeout, context, sys.stdout, lock))
        thread.start()
        threads.append(thread)
    for thread in threads:
        thread.join()


if __name__ == "__main__":
    main()
