# lookerops_appdb_alert.py: the alert of the daily backup check of Looker's application database
# (installed by the lookerops.cluster.mysql_appdb role, run by lookerops-appdb-backup).
#
#   python3 lookerops_appdb_alert.py CONF_DIR SUBJECT < BODY
#
# Sends SUBJECT and BODY by e-mail through a relay and/or to a webhook (a JSON POST with text,
# subject, body and host: the payload lookerops-bcp posts, so one receiver serves both). The route
# is CONF_DIR/alert.json (email_to, email_from, smtp_host, smtp_port) and the webhook URL, which
# may carry a token, CONF_DIR/alert-webhook-url (root only); the role writes both. The URL is
# never printed. Exit 0 when every configured route took the alert (or none is configured), 1
# otherwise. Standard library only (Python 3.9+).
import http.client
import json
import os
import smtplib
import socket
import sys
import urllib.error
import urllib.request
from email.message import EmailMessage

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
    try:
        # A URL without a scheme is refused here already, with the URL in the message.
        req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"}, method="POST")
        with urllib.request.urlopen(req, timeout=TIMEOUT) as resp:  # nosec - URL from the root-only file
            say(f"posted to the webhook (HTTP {resp.status})")
            return True
    except urllib.error.HTTPError as exc:
        say(f"NOT SENT to the webhook: HTTP {exc.code}")
    except urllib.error.URLError as exc:
        say(f"NOT SENT to the webhook: {exc.reason}")
    except (OSError, ValueError, OverflowError, http.client.HTTPException) as exc:
        # The message of a malformed URL quotes the URL: name the error only.
        say(f"NOT SENT to the webhook: {type(exc).__name__}")
    return False


def main(argv):
    if len(argv) != 3:
        print("usage: lookerops_appdb_alert.py CONF_DIR SUBJECT < BODY", file=sys.stderr)
        return 2
    conf_dir, subject, body = argv[1], argv[2], sys.stdin.read()
    config_file = os.path.join(conf_dir, "alert.json")
    host = socket.getfqdn()
    try:
        route = json.loads(read(config_file, "{}"))
    except ValueError as exc:
        say(f"NOT SENT: {config_file} is not JSON ({exc})")
        return 1
    url = read(os.path.join(conf_dir, "alert-webhook-url"), "").strip()
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
