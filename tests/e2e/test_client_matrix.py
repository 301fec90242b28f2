"""The client x host matrix: each cell is a cold install of the fixture project
(fresh cache, no lockfile, only this registry reachable), a check of what Node
loads and of the lockfile, then a second install from that lockfile with a
fresh cache. Every host is a real server on 127.0.0.1 serving one build."""

from __future__ import annotations

import json
import shutil

import pytest

from tests.e2e import hosts
from tests.e2e.clients import NAMES, client
from tests.e2e.hosts import run_check
from tests.e2e.project import DEPRECATION, build, check_installed, new_project
from tests.e2e.servers import fetch, free_port

pytestmark = pytest.mark.e2e

# Every client on nginx; npm and others on every other host.
MATRIX = [(name, "nginx") for name in NAMES] + [
    ("npm", "nginx_prefix"),
    ("yarn4", "nginx_prefix"),
    ("npm", "http_server"),
    ("pnpm", "http_server"),
    ("yarn1", "http_server"),
    ("yarn4", "http_server"),
    ("bun", "http_server"),
    ("npm", "apache"),
    ("pnpm", "apache"),
    ("yarn1", "apache"),
    ("yarn4", "apache"),
    ("npm", "apache_prefix"),
    ("npm", "caddy"),
    ("pnpm", "caddy"),
    ("yarn4", "caddy"),
    ("bun", "caddy"),
    ("npm", "caddy_prefix"),
    ("npm", "s3"),
    ("pnpm", "s3"),
    ("yarn1", "s3"),
    ("yarn4", "s3"),
    ("bun", "s3"),
]
# How each client reports the deprecated demo-utils@1.0.0 it installs (yarn 4
# and bun print nothing for a deprecated dependency on install).
DEPRECATION_SHOWN = {
    "npm": f"deprecated demo-utils@1.0.0: {DEPRECATION}",
    "pnpm": "deprecated subdependencies found: demo-utils@1.0.0",
    "yarn1": f"demo-utils@1.0.0: {DEPRECATION}",
}


# Hosts that run staticreg's own configuration: (start, URL path prefix);
# "http_server" (none) and "s3" (moto, filled by staticreg deploy) besides.
CONFIGURED = {
    "nginx": (hosts.nginx, "/"),
    "nginx_prefix": (hosts.nginx, "/npm/"),
    "apache": (hosts.apache, "/"),
    "apache_prefix": (hosts.apache, "/npm/"),
    "caddy": (hosts.caddy, "/"),
    "caddy_prefix": (hosts.caddy, "/npm/"),
}


@pytest.fixture(scope="module")
def registry(request, scratch, matrix_input):
    """(host, registry URL): one build per host, the host running while its tests run."""
    host = request.param
    if host == "s3":
        with hosts.running(hosts.moto(scratch / "state-moto", free_port())) as server:
            yield host, hosts.deploy_to_s3(server, matrix_input, scratch)
        return
    start, prefix = CONFIGURED.get(host, (None, "/"))
    port = free_port()
    output = build(matrix_input, scratch / f"registry-{host}", f"http://127.0.0.1:{port}{prefix}", scratch)
    server = start(output, scratch / f"state-{host}", port, prefix=prefix) if start else hosts.http_server(output, port)
    with hosts.running(server):
        yield host, server.url(prefix)


@pytest.mark.parametrize("name,registry", MATRIX, ids=[f"{n}-{h}" for n, h in MATRIX], indirect=["registry"])
def test_install_then_install_from_lockfile(name, registry, scratch):
    host, url = registry
    user = client(name, scratch / f"client-{name}-{host}", url)
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


@pytest.mark.parametrize("registry", [*CONFIGURED, "s3"], indirect=True)
def test_check_is_clean_on_every_configured_host(registry):
    _, url = registry
    result = run_check(url, "--all")
    assert result.returncode == 0, result.stdout
    assert result.stdout.splitlines()[-1] == f"Checked 8 packages and 12 tarballs at {url}: 0 problems."


@pytest.mark.parametrize("registry", [*CONFIGURED, "s3"], indirect=True)
def test_site_pages_are_served_as_utf8_html_where_they_are_linked(registry):
    _, url = registry
    for page in ("", "-/web/package/demo-utils/", "-/web/package/demo-utils/1.0.0.html", "-/web/scope/@demo.html"):
        status, headers, body = fetch(url + page)
        assert (status, headers["content-type"]) == (200, "text/html; charset=utf-8"), page
        assert body.startswith(b"<!doctype html>") or body.lower().startswith(b"<!doctype html>"), page


@pytest.mark.parametrize("registry", [*CONFIGURED, "s3"], indirect=True)
def test_version_and_tag_documents_are_served_at_their_urls_as_documents(registry):
    """Files beside the package document (NAME/VERSION.json), served at NAME/VERSION as ever."""
    host, url = registry
    files = (
        [("demo-utils/1.0.0.json", "demo-utils@1.0.0")] if host != "s3" else []
    )  # the file as it is (a store has its key)
    for path, wanted in files + [
        ("demo-utils/1.0.0", "demo-utils@1.0.0"),
        ("demo-utils/latest", "demo-utils@1.2.0"),
        ("@fixture%2fhello/1.0.0", "@fixture/hello@1.0.0"),
        ("@fixture%2Fhello/latest", "@fixture/hello@1.0.0"),
        ("@fixture/hello/1.0.0", "@fixture/hello@1.0.0"),
    ]:
        status, headers, body = fetch(url + path)
        assert (status, headers["content-type"]) == (200, "application/json"), path
        assert headers["cache-control"] == "public, max-age=0, must-revalidate", path
        assert json.loads(body)["_id"] == wanted, path
    assert fetch(url + "demo-utils/9.9.9")[0] in (403, 404)


@pytest.mark.parametrize("registry", ["http_server"], indirect=True)
def test_a_zero_config_host_has_index_html_for_package_documents_only(registry):
    """What clients ask for by a folder's URL is the package document; a version's document
    is there as the file it is."""
    _, url = registry
    assert json.loads(fetch(url + "demo-utils")[2])["name"] == "demo-utils"  # after the redirect to demo-utils/
    assert fetch(url + "demo-utils/1.0.0")[0] == 404
    assert json.loads(fetch(url + "demo-utils/1.0.0.json")[2])["_id"] == "demo-utils@1.0.0"


@pytest.mark.parametrize("registry", ["http_server"], indirect=True)
def test_check_on_a_zero_config_host_names_what_clients_put_up_with(registry):
    """python -m http.server: every client installs (the matrix shows it), but
    documents come as text/html with no Cache-Control, after a redirect."""
    result = run_check(registry[1], "--all")
    problems = [line for line in result.stdout.splitlines() if line.startswith("problem: ")]
    assert result.returncode == 1
    assert [p.split(": ", 2)[2].split(" (")[0].split(":")[0] for p in problems] == [
        "Content-Type is text/html, not application/json",
        "no Cache-Control",
    ]
    assert "redirects (301) before the document" in result.stdout
