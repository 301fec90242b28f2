"""Fixtures the end-to-end modules share, each made once per module: a scratch folder
every server can read, moto's S3-compatible server with the registry's bucket, and the
input of the matrix's fixture project (tests/e2e/project.py). Plain helpers are in the
modules beside this one: servers.py, hosts.py, clients.py, npm.py, project.py, browser.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e import hosts
from tests.e2e.project import make_input
from tests.e2e.servers import free_port


@pytest.fixture(scope="module")
def scratch():
    """The module's folder for inputs, builds, servers' state and projects; Apache's
    unprivileged workers can read it (pytest's own is private to its user)."""
    with hosts.readable_scratch() as folder:
        yield folder


@pytest.fixture(scope="module")
def moto(scratch):
    """moto's S3-compatible server on 127.0.0.1, with the public-read bucket hosts.BUCKET."""
    with hosts.running(hosts.moto(scratch / "moto", free_port())) as server:
        hosts.make_bucket(server)
        yield server


@pytest.fixture(scope="module")
def matrix_input(scratch) -> Path:
    """The tarballs of the matrix's fixture project (project.make_input)."""
    return make_input(scratch / "input", scratch / "src")
