"""Shared fixtures for the unit tests."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


class PlayResult:
    def __init__(self, rc, output):
        self.rc = rc
        self.output = output

    @property
    def failed(self):
        return self.rc != 0


@pytest.fixture
def run_play(tmp_path):
    """Run a play on the controller (connection local) and return its rc and full output.

    Used by the bad-input tests: a role's validation must fail with a clear message before any
    host is changed. `play` is a list of plays (Python data); `extra_vars` are passed as a file so
    that types survive.
    """

    def _run(play, extra_vars=None, extra_args=()):
        playbook = tmp_path / "play.yml"
        playbook.write_text(yaml.safe_dump(play, sort_keys=False))
        args = [str(Path(sys.executable).parent / "ansible-playbook"), "-i", "localhost,", "-c", "local", str(playbook)]
        if extra_vars:
            vars_file = tmp_path / "vars.yml"
            vars_file.write_text(yaml.safe_dump(extra_vars))
            args += ["-e", f"@{vars_file}"]
        env = dict(
            os.environ,
            ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"),
            ANSIBLE_COLLECTIONS_PATH=str(ROOT / ".collections"),
            ANSIBLE_NOCOLOR="1",
            # Not the checkout's jsonfile cache: facts one test sets must not leak into another.
            ANSIBLE_CACHE_PLUGIN="memory",
            ANSIBLE_PYTHON_INTERPRETER=sys.executable,
        )
        proc = subprocess.run(args + list(extra_args), cwd=tmp_path, env=env, capture_output=True, text=True, check=False)
        return PlayResult(proc.returncode, proc.stdout + proc.stderr)

    return _run
