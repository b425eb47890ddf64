"""The run_play fixture reports failures and their messages (the bad-input tests rely on it)."""


def test_run_play_reports_assert_message(run_play):
    play = [{"name": "p", "hosts": "localhost", "gather_facts": False,
             "tasks": [{"name": "check", "ansible.builtin.assert": {"that": ["x > 1"], "fail_msg": "x is {{ x }}, must be > 1"}}]}]
    assert not run_play(play, {"x": 5}).failed
    bad = run_play(play, {"x": 0})
    assert bad.failed and "x is 0, must be > 1" in bad.output
