"""Seconds per play of ansible-playbook runs, from their output with the profile_tasks callback
(ansible.cfg enables it): each task header is followed by a timestamp line whose running total is the
time since the run started.

    python3 bench/play_times.py COLD.log NOOP.log    a table: each play of the last run in each log, side by side
"""
import re
import sys

# "Saturday 28 November 2026  19:07:39 +0000 (0:00:01.975)       0:00:39.551 ****"
STAMP = re.compile(r"^\w+day .*\(\d+:\d+:[\d.]+\)\s+(\d+):(\d+):([\d.]+) \*+\s*$")


def plays(path):
    """[(play name, seconds)] of the last ansible-playbook run in the file.

    A play lasts from its first task's timestamp to the next play's first one; the last play, to
    the last timestamp of its run (profile_tasks prints one more after PLAY RECAP)."""
    runs, events, after_recap = [], [], False
    for line in open(path, errors="replace"):
        if line.startswith("PLAY [") and after_recap:
            runs.append(events)
            events, after_recap = [], False
        if line.startswith("PLAY ["):
            events.append(("play", line[6:line.rfind("]")]))
        elif line.startswith("PLAY RECAP"):
            after_recap = True
        else:
            match = STAMP.match(line)
            if match:
                events.append(("stamp", int(match.group(1)) * 3600 + int(match.group(2)) * 60 + float(match.group(3))))
    runs.append(events)
    starts, last = [], None
    for kind, value in runs[-1]:
        if kind == "play":
            starts.append([value, None])
        elif starts and starts[-1][1] is None:
            starts[-1][1] = value
        last = value if kind == "stamp" else last
    timed = [(name, begin) for name, begin in starts if begin is not None]
    ends = [begin for _name, begin in timed[1:]] + [last]
    return [(name, round(end - begin, 3)) for (name, begin), end in zip(timed, ends)]


def main(paths):
    columns = [plays(path) for path in paths]
    names = [name for name, _seconds in columns[0]]
    width = max([len(n) for n in names] + [10])
    print("  " + "play".ljust(width) + "".join(f"{'run ' + str(i + 1):>10}" for i in range(len(paths))))
    for index, name in enumerate(names):
        cells = [f"{column[index][1]:9.1f}s" if index < len(column) and column[index][0] == name else f"{'?':>10}"
                 for column in columns]
        print("  " + name.ljust(width) + "".join(cells))
    print("  " + "total".ljust(width) + "".join(f"{sum(s for _n, s in column):9.1f}s" for column in columns))


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1:])
