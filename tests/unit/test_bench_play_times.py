"""bench/play_times.py: seconds per play from profile_tasks' running totals, last run of a log."""
import importlib.util
from pathlib import Path

SPEC = importlib.util.spec_from_file_location("play_times", Path(__file__).resolve().parents[2] / "bench" / "play_times.py")
play_times = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(play_times)


def stamp(total):
    # On a terminal (not under molecule) profile_tasks ends the line with a blank.
    return f"Saturday 28 November 2026  19:07:39 +0000 (0:00:01.000)       0:{total // 60:02d}:{total % 60:02d}.000 ***** \n"


def run(first, second, end):
    return ("PLAY [Preflight] ***\n", "TASK [a] ***\n", stamp(first), "PLAY [Tiers] ***\n", "TASK [b] ***\n",
            stamp(second), "TASK [c] ***\n", stamp(end), "PLAY RECAP ***\n")


def test_each_play_lasts_until_the_next_one_starts_in_the_last_run(tmp_path):
    log = tmp_path / "run.log"
    log.write_text("".join(run(1, 70, 95) + ("ok\n",) + run(2, 9, 30)))
    assert play_times.plays(str(log)) == [("Preflight", 7.0), ("Tiers", 21.0)]
