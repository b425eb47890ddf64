"""lookerops.cluster.missing_packages: the roles refresh apt's lists only when it names a package."""
import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.lookerops.cluster.plugins.filter.packages import missing_packages

INSTALLED = {"nftables": [{"version": "1.0.6"}], "python3-netaddr": [{"version": "0.8.0"}]}


def test_nothing_missing_when_every_package_is_installed():
    assert missing_packages(["nftables", "python3-netaddr"], INSTALLED) == []


def test_names_the_missing_ones_in_order():
    assert missing_packages(["haproxy", "nftables", "keepalived"], INSTALLED) == ["haproxy", "keepalived"]


@pytest.mark.parametrize("spec", ["nftables=1.0.6-2", "nftables>=1.0", "nftables:amd64", " nftables "])
def test_versions_and_architectures_are_not_part_of_the_name(spec):
    assert missing_packages([spec], INSTALLED) == []


def test_one_name_as_a_string():
    assert missing_packages("haproxy", INSTALLED) == ["haproxy"]


def test_refuses_what_is_not_package_facts():
    with pytest.raises(AnsibleFilterError, match="ansible_facts.packages"):
        missing_packages(["nftables"], ["nftables"])


def _when(task):
    when = task.get("when", [])
    return " ".join(when) if isinstance(when, list) else str(when)


def _tasks(items, inherited=""):
    """(task, its conditions with those of the blocks around it)."""
    for task in items or []:
        conditions = (inherited + " " + _when(task)).strip()
        yield task, conditions
        for key in ("block", "rescue", "always"):
            yield from _tasks(task.get(key), conditions)


def test_a_run_that_installs_nothing_asks_no_package_manager():
    # package_facts already says what is installed; an apt task then only opens apt's cache (about
    # 2 s a host) to find nothing to do. Every install task of the roles runs only when a package is missing.
    import yaml  # pylint: disable=import-outside-toplevel
    from pathlib import Path  # pylint: disable=import-outside-toplevel

    found, asking = [], []
    for path in sorted(Path(__file__).resolve().parents[2].glob("roles/*/tasks/*.yml")):
        for task, when in _tasks(yaml.safe_load(path.read_text())):
            module = next((k for k in ("ansible.builtin.apt", "ansible.builtin.package", "ansible.builtin.dnf") if k in task), None)
            if module is None or not isinstance(task[module], dict) or "name" not in task[module]:
                continue
            # The other systems' tasks: package_facts is gathered on Debian only.
            if task[module].get("state", "present") != "present" or "!= 'Debian'" in when:
                continue
            found.append(f"{path.parent.parent.name}: {task['name']}")
            if "missing_packages" not in when:
                asking.append(f"{path}: {task['name']}")
    assert len(found) >= 7 and not asking, asking


def test_the_tiers_of_site_yml_reuse_the_preflights_package_list():
    # package_facts costs one call per host and role (1-3 s a role on six hosts): site.yml's preflight
    # lists every host's packages once, and a role asks again only when that list is not there.
    import yaml  # pylint: disable=import-outside-toplevel
    from pathlib import Path  # pylint: disable=import-outside-toplevel

    root = Path(__file__).resolve().parents[2]
    preflight = yaml.safe_load((root / "playbooks" / "site.yml").read_text())[0]
    assert preflight["hosts"] == "all"
    listing = [t for t in preflight["tasks"] if "ansible.builtin.package_facts" in t]
    assert [t.get("register") for t in listing] == ["__lookerops_package_facts"] and "when" not in listing[0]

    asking = {}
    for path in sorted(root.glob("roles/*/tasks/*.yml")):
        for task, when in _tasks(yaml.safe_load(path.read_text())):
            if "ansible.builtin.package_facts" in task:
                asking[path.parent.parent.name] = "__lookerops_package_facts.ansible_facts.packages is not defined" in when
    # bcp_replication is not a tier of site.yml (a play of its own after it): it always asks itself.
    assert {role for role, reuses in asking.items() if not reuses} == {"bcp_replication"}, asking
    assert len(asking) >= 7
