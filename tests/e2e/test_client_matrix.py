"""The client x host matrix: each cell is a cold install of the fixture project
(fresh cache, no lockfile, only this registry reachable), a check of what Node
loads and of the lockfile, then a second install from that lockfile with a
fresh cache. Every host is a real server on 127.0.0.1 serving one build."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.e2e import hosts
from tests.e2e.clients import NAMES, client
from tests.e2e.project import DEPRECATION, build, check_installed, make_input, new_project
from tests.e2e.servers import free_port
from tests.e2e.test_check import run_check

pytestmark = pytest.mark.e2e

# Every client on nginx; npm and others on every other host.
MATRIX = [(name, "nginx") for name in NAMES] + [
    ("npm", "nginx_prefix"), ("yarn4", "nginx_prefix"),
    ("npm", "http_server"), ("pnpm", "http_server"), ("yarn4", "http_server"),
    ("npm", "apache"), ("pnpm", "apache"), ("yarn4", "apache"), ("npm", "apache_prefix"),
    ("npm", "caddy"), ("pnpm", "caddy"), ("bun", "caddy"), ("npm", "caddy_prefix"),
    ("npm", "s3"), ("pnpm", "s3"), ("yarn1", "s3"),
]  # fmt: skip
# How each client reports the deprecated demo-utils@1.0.0 it installs (yarn 4
# and bun print nothing for a deprecated dependency on install).
DEPRECATION_SHOWN = {
    "npm": f"deprecated demo-utils@1.0.0: {DEPRECATION}",
    "pnpm": "deprecated subdependencies found: demo-utils@1.0.0",
    "yarn1": f"demo-utils@1.0.0: {DEPRECATION}",
}


@pytest.fixture(scope="module")
def scratch():
    with hosts.readable_scratch() as folder:
        yield folder


@pytest.fixture(scope="module")
def input_dir(scratch) -> Path:
    return make_input(scratch / "input", scratch / "src")


# Hosts that run staticreg's own configuration: (start, URL path prefix).
CONFIGURED = {
    "nginx": (hosts.nginx, "/"), "nginx_prefix": (hosts.nginx, "/npm/"),
    "apache": (hosts.apache, "/"), "apache_prefix": (hosts.apache, "/npm/"),
    "caddy": (hosts.caddy, "/"), "caddy_prefix": (hosts.caddy, "/npm/"),
}  # fmt: skip


def _registry(scratch: Path, input_dir: Path, name: str, prefix: str = "/") -> tuple[int, Path]:
    port = free_port()
    return port, build(input_dir, scratch / f"registry-{name}", f"http://127.0.0.1:{port}{prefix}", scratch)


def _configured(scratch: Path, input_dir: Path, label: str):
    start, prefix = CONFIGURED[label]
    port, output = _registry(scratch, input_dir, label, prefix)
    with hosts.running(start(output, scratch / f"state-{label}", port, prefix=prefix)) as server:
        yield server.url(prefix)


@pytest.fixture(scope="module")
def nginx(scratch, input_dir):
    yield from _configured(scratch, input_dir, "nginx")


@pytest.fixture(scope="module")
def nginx_prefix(scratch, input_dir):
    yield from _configured(scratch, input_dir, "nginx_prefix")


@pytest.fixture(scope="module")
def apache(scratch, input_dir):
    yield from _configured(scratch, input_dir, "apache")


@pytest.fixture(scope="module")
def apache_prefix(scratch, input_dir):
    yield from _configured(scratch, input_dir, "apache_prefix")


@pytest.fixture(scope="module")
def caddy(scratch, input_dir):
    yield from _configured(scratch, input_dir, "caddy")


@pytest.fixture(scope="module")
def caddy_prefix(scratch, input_dir):
    yield from _configured(scratch, input_dir, "caddy_prefix")


@pytest.fixture(scope="module")
def http_server(scratch, input_dir):
    port, output = _registry(scratch, input_dir, "plain")
    with hosts.running(hosts.http_server(output, port)) as server:
        yield server.url()


@pytest.fixture(scope="module")
def s3(scratch, input_dir):
    with hosts.running(hosts.moto(scratch / "state-moto", free_port())) as server:
        yield hosts.deploy_to_s3(server, input_dir, scratch)


@pytest.mark.parametrize("name,host", MATRIX, ids=[f"{n}-{h}" for n, h in MATRIX])
def test_install_then_install_from_lockfile(name, host, request, scratch):
    registry = request.getfixturevalue(host)
    user = client(name, scratch / f"client-{name}-{host}", registry)
    project = new_project(scratch / f"project-{name}-{host}")

    result = user.install(project)
    check_installed(project)
    assert user.lock_problems(project) == []
    if name in DEPRECATION_SHOWN:
        assert DEPRECATION_SHOWN[name] in result.stdout + result.stderr

    shutil.rmtree(project / "node_modules")
    user.fresh()
    user.install(project, frozen=True)
    check_installed(project)


@pytest.mark.parametrize("host", [*CONFIGURED, "s3"])
def test_check_is_clean_on_every_configured_host(host, request):
    registry = request.getfixturevalue(host)
    result = run_check(registry, "--all")
    assert result.returncode == 0, result.stdout
    assert result.stdout.splitlines()[-1] == f"Checked 8 packages and 12 tarballs at {registry}: 0 problems."


def test_check_on_a_zero_config_host_names_what_clients_put_up_with(http_server):
    """python -m http.server: every client installs (the matrix shows it), but
    documents come as text/html with no Cache-Control, after a redirect."""
    result = run_check(http_server, "--all")
    problems = [line for line in result.stdout.splitlines() if line.startswith("problem: ")]
    assert result.returncode == 1
    assert [p.split(": ", 2)[2].split(" (")[0].split(":")[0] for p in problems] == ["Content-Type is text/html, not application/json", "no Cache-Control"]
    assert "redirects (301) before the document" in result.stdout
