# lookerops_appdb_alert.py: the alert of the daily backup check of Looker's application database
# (installed by the lookerops.cluster.mysql_appdb role, run by lookerops-appdb-backup).
#
#   python3 lookerops_appdb_alert.py SUBJECT < BODY
#
# Sends SUBJECT and BODY by e-mail through a relay and/or to a webhook (a JSON POST with text,
# subject, body and host: the payload lookerops-bcp posts, so one receiver serves both). The route
# is /etc/lookerops-appdb/alert.json (email_to, email_from, smtp_host, smtp_port) and the webhook
# URL, which may carry a token, /etc/lookerops-appdb/alert-webhook-url (root only). The URL is
# never printed. Exit 0 when every configured route took the alert (or none is configured), 1
# otherwise. Standard library only (Python 3.9+).
import json
import os
import smtplib
import socket
import sys
import urllib.error
import urllib.request
from email.message import EmailMessage

CONF_DIR = "/etc/lookerops-appdb"
CONFIG_FILE = os.path.join(CONF_DIR, "alert.json")
WEBHOOK_FILE = os.path.join(CONF_DIR, "alert-webhook-url")
TIMEOUT = 30


def say(msg):
    print(f"alert: {msg}", flush=True)


def read(path, default):
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except FileNotFoundError:
        return default


def send_email(route, host, subject, body):
    msg = EmailMessage()
    msg["Subject"] = subject
    msg["From"] = route.get("email_from") or f"lookerops-appdb-backup@{host}"
    msg["To"] = ", ".join(route["email_to"])
    msg.set_content(body)
    relay = f"{route.get('smtp_host', 'localhost')}:{route.get('smtp_port', 25)}"
    try:
        with smtplib.SMTP(route.get("smtp_host", "localhost"), int(route.get("smtp_port", 25)), timeout=TIMEOUT) as smtp:
            smtp.send_message(msg)
    except (OSError, smtplib.SMTPException) as exc:
        say(f"NOT SENT by e-mail through {relay}: {exc}")
        return False
    say(f"e-mailed to {msg['To']} through {relay}")
    return True


def post_webhook(url, host, subject, body):
    data = json.dumps({"text": f"{subject}\n{body}", "subject": subject, "body": body, "host": host}).encode()
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=TIMEOUT) as resp:  # nosec - URL from the root-only file
            say(f"posted to the webhook (HTTP {resp.status})")
            return True
    except urllib.error.HTTPError as exc:
        say(f"NOT SENT to the webhook: HTTP {exc.code}")
    except urllib.error.URLError as exc:
        say(f"NOT SENT to the webhook: {exc.reason}")
    except (OSError, ValueError) as exc:
        # The message of a malformed URL quotes the URL: name the error only.
        say(f"NOT SENT to the webhook: {type(exc).__name__}")
    return False


def main(argv):
    if len(argv) != 2:
        print("usage: lookerops_appdb_alert.py SUBJECT < BODY", file=sys.stderr)
        return 2
    subject, body = argv[1], sys.stdin.read()
    host = socket.getfqdn()
    try:
        route = json.loads(read(CONFIG_FILE, "{}"))
    except ValueError as exc:
        say(f"NOT SENT: {CONFIG_FILE} is not JSON ({exc})")
        return 1
    url = read(WEBHOOK_FILE, "").strip()
    results = []
    if route.get("email_to"):
        results.append(send_email(route, host, subject, body))
    if url:
        results.append(post_webhook(url, host, subject, body))
    if not results:
        say("NOT SENT: no alert route (set mysql_appdb_backup_alert_email_to or mysql_appdb_backup_alert_webhook_url)")
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
