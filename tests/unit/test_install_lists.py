"""Every Debian package the project's scripts rely on is in the scripts' own install lists.

No developer machine is ever new: a package installed by hand (or by an earlier run) hides a
missing install step until a new machine fails. So this test does not ask dpkg what is installed;
it reads what the scripts use and what they install, and compares.
"""
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# The scripts that run on the controller, and what they install.
SCRIPTS = ["tools/sandbox", "tools/test", "tools/demo", "tests/standin/build.sh", *sorted(
    str(p.relative_to(ROOT)) for p in (ROOT / "bench").rglob("*") if p.is_file())]

# A command (or a capability) the scripts use, the pattern that shows the use, and the Debian
# package that provides it on a new machine.
RELIES_ON = [
    ("podman", r"\bpodman\b", "podman"),
    ("runc, the runtime the sandbox's containers.conf names", r'runtime = "runc"', "runc"),
    ("CNI networks for `podman network create`", r"podman network create", "containernetworking-plugins"),
    ("container name resolution on podman networks (DNS is fixed when a network is created)",
     r"podman network create", "golang-github-containernetworking-plugin-dnsname"),
    ("debootstrap (the sandbox image)", r"\bdebootstrap\b", "debootstrap"),
    ("ssh / ssh-keygen (the sandbox transport)", r"\bssh(-keygen)?\b", "openssh-client"),
    ("shellcheck (ansible-test sanity skips shell scripts silently without it)", r"\bshellcheck\b", "shellcheck"),
    ("javac / jar (the stand-in build)", r"\bjavac\b", "openjdk-17-jdk-headless"),
    ("the MariaDB JDBC driver (the stand-in build)", r"mariadb-java-client\.jar", "libmariadb-java"),
    ("SnakeYAML, the stand-in's YAML parser (the stand-in build)", r"snakeyaml\.jar", "libyaml-snake-java"),
    ("openssl (the demo's secrets)", r"\bopenssl\b", "openssl"),
    ("curl (the demo's download-API check)", r"\bcurl\b", "curl"),
]


def _read(path):
    return (ROOT / path).read_text()


def installed_by_scripts():
    """Package names the scripts install: `apt-get install` lines and *_PACKAGES arrays."""
    names = set()
    for path in SCRIPTS:
        text = _read(path)
        for args in re.findall(r"apt-get install ([^\n;&|>)]*)", text):
            names.update(a for a in args.split() if not a.startswith(("-", "$", '"$')))
        for body in re.findall(r"^[A-Z_]*PACKAGES=\(([^)]*)\)", text, flags=re.M):
            names.update(re.sub(r"#[^\n]*", "", body).split())
    return names


def used_by_scripts(pattern):
    return [path for path in SCRIPTS if re.search(pattern, _read(path))]


def test_the_install_lists_are_read():
    """Guard the reader itself: if it finds nothing, every other test would pass vacuously."""
    found = installed_by_scripts()
    assert {"podman", "debootstrap", "shellcheck", "libmariadb-java"} <= found, found


@pytest.mark.parametrize("what,pattern,package", RELIES_ON, ids=[r[2] for r in RELIES_ON])
def test_every_package_a_script_relies_on_is_installed_by_a_script(what, pattern, package):
    users = used_by_scripts(pattern)
    assert users, f"no script uses {what} any more: drop it from RELIES_ON"
    assert package in installed_by_scripts(), (
        f"{', '.join(users)} rel{'y' if len(users) > 1 else 'ies'} on {what}, but no script installs "
        f"the package {package}: add it to tools/sandbox's HOST_PACKAGES (or the script's own apt-get "
        f"install) so that a new machine gets it")
