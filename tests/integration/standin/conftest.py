"""Fixtures for the Looker stand-in tests: built jars, a real MariaDB in a sandbox host (one for the
session), stand-in nodes on the controller (each on its own loopback address and ports)."""
import subprocess

import pytest

from standin_helpers import BUILD, DB_HOST, DB_NET, RELEASES, MariaDBServer, NodeFactory


@pytest.fixture(scope="session")
def jars(tmp_path_factory):
    """{version: directory holding looker.jar and looker-dependencies.jar}, built by build.sh."""
    base = tmp_path_factory.mktemp("jars")
    out = {}
    for version, opts in RELEASES.items():
        subprocess.run([str(BUILD), version, str(base / version), *opts], check=True, capture_output=True, text=True)
        out[version] = base / version
    return out


@pytest.fixture(scope="module")
def jars_dir(jars):
    """The built releases laid out as the download API serves them (JARS_DIR/<version>/...)."""
    return next(iter(jars.values())).parent


@pytest.fixture(scope="session")
def mariadb(sandbox):
    """A real MariaDB server in a sandbox host (shared by the whole session), reachable from the controller."""
    return MariaDBServer.install(sandbox.host(DB_HOST, sandbox.network(DB_NET)))


@pytest.fixture
def nodes(tmp_path, free_port):
    """Starts stand-in nodes for one test; kills whatever is still running at the end."""
    factory = NodeFactory(tmp_path, free_port)
    try:
        yield factory
    finally:
        factory.close()


@pytest.fixture(scope="module")
def module_nodes(tmp_path_factory, free_port):
    """Like `nodes`, for nodes shared by the tests of one module."""
    factory = NodeFactory(tmp_path_factory.mktemp("nodes"), free_port)
    try:
        yield factory
    finally:
        factory.close()
