"""Whether the wait for a Looker start should go on (lookerops.cluster.looker_node, tasks/start_wait.yml).

Run on the node while the role waits for /alive after starting the unit: reads the unit's state and
restart counter (systemctl show) and prints one JSON object on stdout:

    {"verdict": "starting" | "failed" | "crash-loop" | "exited" | "stopped",
     "reason": "...", "state": {ActiveState, SubState, NRestarts, ...},
     "journal": [last lines of the unit's journal], "log": [last lines of Looker's log file],
     "details": the same lines as text for a message}

"starting" means keep waiting (the unit runs, systemd has not restarted it since the start): a start
takes minutes, a schema migration up to an hour. Anything else ends the wait at once: the unit
failed (systemd gave up, e.g. its start limit), systemd restarted the process since the start (it
keeps exiting), the process exited and waits for its automatic restart, or the unit stopped. The
log lines are read only then.
"""
import argparse
import json
import subprocess
import sys

PROPERTIES = ("ActiveState", "SubState", "Result", "NRestarts", "ExecMainCode", "ExecMainStatus")
# si_code of the main process's end, as systemctl show prints ExecMainCode (CLD_* of waitid(2)).
CLD_EXITED, CLD_KILLED, CLD_DUMPED = 1, 2, 3


def parse_show(text):
    """The KEY=VALUE lines of `systemctl show` as a dict."""
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


def _int(value, default=0):
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def last_exit(state):
    """How the unit's main process last ended, in words ('' when it has not ended)."""
    code, status = _int(state.get("ExecMainCode")), _int(state.get("ExecMainStatus"))
    if code == CLD_EXITED:
        return "exit status %d" % status
    if code in (CLD_KILLED, CLD_DUMPED):
        return "killed by signal %d%s" % (status, " (core dumped)" if code == CLD_DUMPED else "")
    return ""


def decide(state, restarts_before):
    """(verdict, reason) for a unit's state; restarts_before is NRestarts right after the role's start."""
    active, sub, result = state.get("ActiveState", ""), state.get("SubState", ""), state.get("Result", "")
    restarts = _int(state.get("NRestarts"), restarts_before) - restarts_before
    ended = last_exit(state)
    ended = " (last %s)" % ended if ended else ""
    if active == "failed":
        if result == "start-limit-hit":
            return "failed", ("the unit failed: systemd hit its start limit (StartLimitBurst within StartLimitIntervalSec) "
                              "and stopped restarting Looker%s" % ended)
        return "failed", "the unit failed (%s)%s" % (result or "unknown result", ended)
    if restarts > 0:
        return "crash-loop", ("Looker keeps exiting: systemd restarted it %d time%s since the start%s"
                              % (restarts, "" if restarts == 1 else "s", ended))
    if sub == "auto-restart":
        return "exited", "Looker exited%s and systemd is about to restart it" % ended
    if active in ("inactive", "deactivating"):
        return "stopped", "the unit is %s (%s)%s: Looker exited or was stopped" % (active, sub or "dead", ended)
    return "starting", "the unit is %s (%s)" % (active or "unknown", sub or "unknown")


def merge_logs(journal, log):
    """The journal's lines that are not also in the log file's tail (Looker may copy its log to stdout)."""
    seen = {line.strip() for line in log}
    return [line for line in journal if line.strip() not in seen]


def tail(path, lines):
    """The last lines of a file ([] when it cannot be read)."""
    try:
        with open(path, "rb") as handle:
            handle.seek(0, 2)
            size = handle.tell()
            handle.seek(max(0, size - 64 * 1024))
            data = handle.read().decode("utf-8", "replace")
    except OSError:
        return []
    return data.splitlines()[-lines:] if lines > 0 else []


def run(argv):
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    return proc.returncode, proc.stdout


def report(unit, restarts_before, log_file, lines, systemctl="systemctl", journalctl="journalctl"):
    """The JSON-ready answer for the unit."""
    argv = [systemctl, "show", unit] + ["--property=" + p for p in PROPERTIES]
    rc, out = run(argv)
    if rc != 0:
        return {"verdict": "starting", "reason": "systemctl show %s answered %d" % (unit, rc), "state": {}, "journal": [], "log": [],
                "details": ""}
    state = parse_show(out)
    verdict, reason = decide(state, restarts_before)
    answer = {"verdict": verdict, "reason": reason, "state": state, "journal": [], "log": []}
    if verdict != "starting":
        answer["log"] = tail(log_file, lines) if log_file else []
        _rc, out = run([journalctl, "--unit", unit, "--lines", str(lines), "--no-pager", "--output", "cat"])
        answer["journal"] = merge_logs(out.splitlines()[-lines:], answer["log"])
    answer["details"] = details(unit, answer["journal"], log_file, answer["log"])
    return answer


def details(unit, journal, log_file, log):
    """The log lines for a message, each section on its own lines ('' when there are none)."""
    text = ""
    for title, lines in (("journalctl -u " + unit, journal), (log_file, log)):
        if lines:
            text += "\nLast lines of %s:\n" % title + "\n".join("  " + line for line in lines)
    return text


def main(args=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--unit", required=True)
    parser.add_argument("--restarts-before", type=int, default=0)
    parser.add_argument("--log-file", default="")
    parser.add_argument("--lines", type=int, default=15)
    opts = parser.parse_args(args)
    print(json.dumps(report(opts.unit, opts.restarts_before, opts.log_file, opts.lines)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
