"""Bad input to the bcp_replication role is refused before any host is changed, with a message that
names the variable, the bad value and the fix. Only tasks/validate.yml runs, on the controller."""
import pytest

# A throw-away key pair made for these tests only.
PRIVATE = ("-----BEGIN OPENSSH PRIVATE KEY-----\nTOPSECRETBCPKEYMATERIAL0123456789\n-----END OPENSSH PRIVATE KEY-----\n")
PUBLIC = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJ8b0t1Z1m1kR6q2e4dF3x7Qv0n5yH2u8c9w0a1b2c3d bcp-test"

HOSTS = [
    ("lkr-a-db", ["looker_appdb_primary", "looker_site_a"], "a"),
    ("lkr-a-n1", ["looker_nodes", "looker_site_a"], "a"),
    ("lkr-a-n2", ["looker_nodes", "looker_site_a"], "a"),
    ("lkr-b-db", ["looker_appdb_primary", "looker_site_b"], "b"),
    ("lkr-b-n1", ["looker_nodes", "looker_site_b"], "b"),
]
GOOD = {"bcp_replication_ssh_private_key": PRIVATE, "bcp_replication_ssh_public_key": PUBLIC}


def plays(hosts=None, run_on="lkr-a-n1"):
    hosts = HOSTS if hosts is None else hosts
    add = [{"name": f"Add {name}", "ansible.builtin.add_host": {
        "name": name, "groups": groups, "looker_site": site, "ansible_connection": "local",
        "ansible_python_interpreter": "{{ ansible_playbook_python }}"}} for name, groups, site in hosts]
    return [
        {"hosts": "localhost", "gather_facts": False, "tasks": add},
        {"hosts": run_on, "gather_facts": False, "tasks": [{
            "name": "Run the validation", "ansible.builtin.include_role": {
                "name": "lookerops.cluster.bcp_replication", "tasks_from": "validate"}}]},
    ]


def flat(output):
    return " ".join(output.split())


def test_a_good_inventory_passes(run_play):
    result = run_play(plays(), extra_vars=dict(GOOD, bcp_replication_interval="1h 30min", bcp_replication_cycle_timeout=900))
    assert not result.failed, result.output[-3000:]


@pytest.mark.parametrize("extra_vars, message", [
    ({"bcp_replication_sites": ["a", "a"]},
     'bcp_replication_sites is ["a", "a"]: name the two sites of the pair once each'),
    ({"bcp_replication_sites": ["a"]},
     'bcp_replication_sites is ["a"]: name the two sites of the pair once each'),
    ({"bcp_replication_active_site": "c"},
     'bcp_replication_active_site is "c", which is not one of bcp_replication_sites (a, b)'),
    ({"bcp_replication_sites": ["a", "c"]},
     "Site c (group looker_site_c) has 0 hosts, 0 in looker_nodes and 0 in looker_appdb_primary"),
    ({"bcp_replication_interval": "5min"},
     "bcp_replication_interval is \"5min\" (300 s) and bcp_replication_cycle_timeout is 600 s: the interval must be at "
     "least 60 s and longer than the time a cycle may take"),
    ({"bcp_replication_interval": "30s", "bcp_replication_cycle_timeout": 60},
     "bcp_replication_interval is \"30s\" (30 s)"),
    ({"bcp_replication_interval": "every 5 minutes"},
     "(not a systemd time span such as 5min, 15min or 1h)"),
    ({"bcp_replication_leader_mode": "fixed", "bcp_replication_fixed_leader": "lkr-b-n1"},
     "use bully, or fixed with a Looker node of the active site a (lkr-a-n1, lkr-a-n2)"),
    ({"bcp_replication_receivers": {"b": "lkr-a-n1"}},
     "map a site name (a, b) to one of that site's Looker nodes"),
    ({"bcp_replication_staging_dir": "/mnt/looker-share/bcp"},
     "the staging area outside the shared storage"),
])
def test_bad_options_are_refused_with_the_fix(run_play, extra_vars, message):
    result = run_play(plays(), extra_vars=dict(GOOD, **extra_vars))
    assert result.failed
    assert message in flat(result.output), result.output[-3000:]


def test_missing_ssh_key_is_refused(run_play):
    result = run_play(plays(), extra_vars={"bcp_replication_ssh_public_key": PUBLIC})
    assert result.failed
    assert "bcp_replication_ssh_private_key is missing and bcp_replication_ssh_public_key is set" in flat(result.output)
    assert "ssh-keygen -t ed25519" in flat(result.output)


def test_a_public_key_given_as_private_key_is_refused_without_showing_it(run_play):
    result = run_play(plays(), extra_args=["-vvv"], extra_vars={
        "bcp_replication_ssh_private_key": "TOPSECRETBCPKEYMATERIAL not a key", "bcp_replication_ssh_public_key": PUBLIC})
    assert result.failed
    assert "bcp_replication_ssh_private_key is set but not a PEM/OpenSSH private key" in flat(result.output)
    assert "TOPSECRETBCPKEYMATERIAL" not in result.output


def test_the_private_key_never_shows_in_a_verbose_run(run_play):
    result = run_play(plays(), extra_args=["-vvv"], extra_vars=dict(GOOD, bcp_replication_interval="1min"))
    assert result.failed
    assert "TOPSECRETBCPKEYMATERIAL" not in result.output


def test_a_host_in_both_sites_is_refused(run_play):
    hosts = HOSTS + [("lkr-a-n2", ["looker_nodes", "looker_site_b"], "a")]
    result = run_play(plays(hosts), extra_vars=GOOD)
    assert result.failed
    assert "lkr-a-n2 is in both sites (a and b): the two sites of an active-standby pair must be fully independent" \
        in flat(result.output)


def test_duplicate_bully_ids_are_refused(run_play):
    play = plays()
    play[0]["tasks"].append({"name": "Same id", "ansible.builtin.set_fact": {"bcp_replication_node_id": "1"},
                             "delegate_to": "{{ item }}", "delegate_facts": True, "loop": ["lkr-a-n1", "lkr-a-n2"]})
    result = run_play(play, extra_vars=GOOD)
    assert result.failed
    assert "Site a has duplicate bcp_replication_node_id values (1, 1)" in flat(result.output)


def test_a_host_outside_the_sites_is_refused(run_play):
    hosts = HOSTS + [("lkr-c-n1", ["looker_nodes"], "c")]
    result = run_play(plays(hosts, run_on="lkr-c-n1"), extra_vars=GOOD)
    assert result.failed
    assert 'lkr-c-n1 has looker_site "c"' in flat(result.output)


def test_validation_runs_first():
    from pathlib import Path
    import yaml
    tasks = yaml.safe_load((Path(__file__).resolve().parents[2] / "roles/bcp_replication/tasks/main.yml").read_text())
    assert tasks[0]["ansible.builtin.include_tasks"] == "validate.yml"
