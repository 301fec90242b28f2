"""npm installs from a registry that staticreg built, served by real nginx and by
python -m http.server on 127.0.0.1, with no other registry reachable."""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.npm import Npm, make_project
from tests.e2e.project import DEPRECATION, EXAMPLES, build, new_project, resolved_version
from tests.e2e.project import check_installed as check_fixture
from tests.e2e.servers import fetch, free_port, start_http_server, start_nginx

pytestmark = pytest.mark.e2e

CORGI_ACCEPT = "application/vnd.npm.install-v1+json; q=1.0, application/json; q=0.8, */*"


@pytest.fixture(scope="module")
def nginx(scratch, matrix_input):
    port = free_port()
    base_url = f"http://127.0.0.1:{port}/"
    output = scratch / "registry"
    build(matrix_input, output, base_url, scratch)
    server = start_nginx(output, scratch / "nginx", port)
    yield server, output
    server.stop()


def check_installed(project: Path, result: subprocess.CompletedProcess) -> None:
    """What the client x host matrix checks, and npm's deprecation warning."""
    check_fixture(project)
    assert f"deprecated demo-utils@1.0.0: {DEPRECATION}" in result.stderr


def test_npm_installs_from_nginx(nginx, scratch):
    server, _ = nginx
    npm = Npm(scratch / "npm-nginx", server.url())
    project = new_project(scratch / "project-nginx")
    result = npm.run("install", "--no-audit", cwd=project)
    check_installed(project, result)
    lock = json.loads((project / "package-lock.json").read_text())
    resolved = [p["resolved"] for k, p in lock["packages"].items() if k]
    assert resolved and all(r.startswith(server.url()) for r in resolved)
    log = server.log.read_text()
    assert "GET /@demo%2fgreet " in log and "GET /@demo/greet/-/greet-1.0.0.tgz " in log


def test_npm_view_shows_what_hashlib_computes(nginx, scratch):
    server, _ = nginx
    npm = Npm(scratch / "npm-view", server.url())
    view = json.loads(npm.run("view", "demo-utils", "--json", cwd=scratch).stdout)
    assert view["versions"] == ["1.0.0", "1.1.0", "1.2.0", "2.0.0-beta.1"]
    assert view["dist-tags"] == {"latest": "1.2.0", "next": "2.0.0-beta.1"}
    data = (EXAMPLES / "demo-utils-1.2.0.tgz").read_bytes()
    assert view["dist"]["integrity"] == "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()
    assert view["dist"]["shasum"] == hashlib.sha1(data).hexdigest()
    assert view["time"]["1.0.0"] == "2025-01-10T10:00:00.000Z"
    scoped = json.loads(npm.run("view", "@demo/greet@1.0.0", "dist", "--json", cwd=scratch).stdout)
    greet = (EXAMPLES / "demo-greet-1.0.0.tgz").read_bytes()
    assert scoped["shasum"] == hashlib.sha1(greet).hexdigest()


def test_npm_ping_and_dist_tag_ls(nginx, scratch):
    server, _ = nginx
    npm = Npm(scratch / "npm-misc", server.url())
    npm.run("ping", cwd=scratch)
    tags = npm.run("dist-tag", "ls", "demo-utils", cwd=scratch).stdout
    assert tags.split("\n")[:2] == ["latest: 1.2.0", "next: 2.0.0-beta.1"]
    scoped = npm.run("dist-tag", "ls", "@demo/greet", cwd=scratch).stdout
    assert scoped.strip() == "latest: 1.0.0"


def test_nginx_serves_documents_as_the_protocol_needs(nginx):
    server, output = nginx
    full = (output / "@demo/greet/index.json").read_bytes()
    for path in ("/@demo%2fgreet", "/@demo%2Fgreet", "/@demo/greet"):
        status, headers, body = fetch(server.url(path))
        assert (status, body) == (200, full), path
        assert headers["content-type"] == "application/json"
        assert headers["cache-control"] == "public, max-age=0, must-revalidate"
        assert "Accept" in headers["vary"] and headers["etag"] and headers["last-modified"]
    status, headers, body = fetch(server.url("/@demo%2Fgreet"), accept=CORGI_ACCEPT)
    assert status == 200 and headers["content-type"] == "application/vnd.npm.install-v1+json"
    assert "time" not in json.loads(body) and json.loads(body)["dist-tags"] == {"latest": "1.0.0"}
    status, headers, _ = fetch(server.url("/@demo%2fgreet/-/greet-1.0.0.tgz"))
    assert status == 200 and headers["cache-control"] == "public, max-age=31536000, immutable"
    assert fetch(server.url("/-/ping"))[2] == b"{}"
    assert fetch(server.url("/nope"))[0] == 404
    assert fetch(server.url("/demo-utils/1.1.0"))[0] == 200


def test_npm_installs_under_a_path_prefix(scratch, matrix_input):
    port = free_port()
    output = scratch / "registry-prefix"
    build(matrix_input, output, f"http://127.0.0.1:{port}/npm/", scratch)
    server = start_nginx(output, scratch / "nginx-prefix", port, prefix="/npm/")
    try:
        assert fetch(server.url("/demo-cli"))[0] == 404
        npm = Npm(scratch / "npm-prefix", server.url("/npm/"))
        project = new_project(scratch / "project-prefix")
        check_installed(project, npm.run("install", "--no-audit", cwd=project))
    finally:
        server.stop()


def test_npm_installs_from_plain_http_server(scratch, matrix_input):
    """python -m http.server knows nothing of npm: the index.html copies carry it."""
    port = free_port()
    output = scratch / "registry-plain"
    build(matrix_input, output, f"http://127.0.0.1:{port}/", scratch)
    server = start_http_server(output, port)
    try:
        npm = Npm(scratch / "npm-plain", server.url())
        project = new_project(scratch / "project-plain")
        check_installed(project, npm.run("install", "--no-audit", cwd=project))
        npm.run("ping", cwd=scratch)
    finally:
        server.stop()


def test_npm_installs_from_staticreg_serve(scratch, matrix_input):
    """The dev server answers as the nginx configuration does."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "staticreg", "serve", str(matrix_input), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=scratch,
    )
    try:
        banner = process.stdout.readline()
        assert banner.startswith(f"Serving 8 packages (12 versions) at http://127.0.0.1:{port}/"), banner
        status, headers, body = fetch(f"http://127.0.0.1:{port}/@demo%2Fgreet", accept=CORGI_ACCEPT)
        assert status == 200 and headers["content-type"] == "application/vnd.npm.install-v1+json"
        status, headers, body = fetch(f"http://127.0.0.1:{port}/no-such-package")
        assert status == 404 and headers["content-type"].startswith("text/html")  # the site's 404 page, as nginx
        assert b"<title>Not found" in body
        npm = Npm(scratch / "npm-serve", f"http://127.0.0.1:{port}/")
        project = make_project(
            scratch / "project-serve", {"demo-cli": "^1.0.0", "fixture-pre": "2.0.0-beta.1"}
        )  # no config: no tags
        npm.run("install", "--no-audit", cwd=project)
        assert resolved_version("demo-utils", project / "node_modules/demo-cli") == "1.2.0"
    finally:
        process.terminate()
        process.wait(10)
