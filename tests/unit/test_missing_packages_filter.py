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
