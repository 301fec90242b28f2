"""`staticreg serve` as a user runs it: a subprocess on a free port, the real npm against it,
files landing in the watched folder while it runs."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest

from tests.e2e.npm import Npm, make_project, pack
from tests.e2e.project import copy_examples, resolved_version
from tests.e2e.servers import Serve, fetch, until

pytestmark = pytest.mark.e2e


@pytest.fixture
def input_dir(tmp_path: Path) -> Path:
    return copy_examples(tmp_path / "input", times=False)


@pytest.fixture
def serve(input_dir, tmp_path):
    server = Serve(input_dir, tmp_path)
    yield server
    server.stop()


def npm_for(server: Serve, folder: Path, publish: bool = False) -> Npm:
    npm = Npm(folder, server.url)
    if publish:  # npm publish wants credentials; the dev server takes any on loopback
        with (npm.home / ".npmrc").open("a") as f:
            f.write(f"//127.0.0.1:{server.port}/:_authToken=dev\n")
    return npm


def test_a_tarball_copied_in_slowly_is_taken_when_complete(serve, input_dir, tmp_path):
    tarball = pack(
        tmp_path / "src",
        tmp_path / "packed",
        {"name": "slow-pkg", "version": "1.0.0"},
        {"index.js": "module.exports = 'slow'\n" + "// padding\n" * 4000},
    )
    data = tarball.read_bytes()
    target = input_dir / tarball.name
    with target.open("wb") as f:  # pauses longer than the debounce: the server sees it half-written
        for i in range(0, len(data), len(data) // 4 + 1):
            f.write(data[i : i + len(data) // 4 + 1])
            f.flush()
            time.sleep(0.4)
    until(lambda: serve.status("/slow-pkg") == 200, serve.process, what="slow-pkg to be served")
    served = json.loads(fetch(serve.url + "slow-pkg")[2])
    assert served["versions"]["1.0.0"]["dist"]["tarball"] == serve.url + "slow-pkg/-/slow-pkg-1.0.0.tgz"
    assert fetch(serve.url + "slow-pkg/-/slow-pkg-1.0.0.tgz")[2] == data
    project = make_project(tmp_path / "project", {"slow-pkg": "1.0.0"})
    npm_for(serve, tmp_path / "npm").run("install", "--no-audit", cwd=project)
    assert resolved_version("slow-pkg", project) == "1.0.0"
    assert "Rebuild failed" not in serve.err.read_text()  # half-written is "wait", not "broken"


def test_a_broken_tarball_shows_its_error_and_the_rest_still_installs(serve, input_dir, tmp_path):
    pack(tmp_path / "src", input_dir, {"name": "good-pkg", "version": "1.0.0"}, {"index.js": ""})
    until(lambda: serve.status("/good-pkg") == 200, serve.process, what="good-pkg")
    broken = input_dir / "broken-1.0.0.tgz"
    subprocess.run(["tar", "czf", str(broken), "-C", str(tmp_path / "src"), "index.js"], check=True)  # no package/
    until(lambda: b"broken-1.0.0.tgz" in fetch(serve.url)[2], serve.process, what="the error banner")
    home = fetch(serve.url)[2].decode()
    assert "the last build failed" in home and "broken-1.0.0.tgz" in home
    assert "broken-1.0.0.tgz" in serve.err.read_text()
    project = make_project(tmp_path / "project", {"good-pkg": "1.0.0", "demo-cli": "^1.0.0"})
    npm_for(serve, tmp_path / "npm").run("install", "--no-audit", cwd=project)
    assert resolved_version("good-pkg", project) == "1.0.0"
    broken.unlink()
    until(lambda: b"the last build failed" not in fetch(serve.url)[2], serve.process, what="the banner to go")


def test_npm_publish_to_the_dev_server_then_install(serve, input_dir, tmp_path):
    npm = npm_for(serve, tmp_path / "npm", publish=True)
    source = tmp_path / "pub"
    pack(
        source,
        tmp_path / "ignored",
        {"name": "@fixture/pub", "version": "1.0.0", "dependencies": {"demo-utils": "^1.1.0"}},
        {"index.js": "module.exports = require('demo-utils')\n"},
    )
    npm.run("publish", cwd=source)
    assert (input_dir / "@fixture/pub-1.0.0.tgz").is_file()  # a scoped package goes into its scope's folder
    project = make_project(tmp_path / "project", {"@fixture/pub": "^1.0.0"})
    npm.run("install", "--no-audit", cwd=project)  # no waiting: publish answers after the rebuild
    assert resolved_version("@fixture/pub", project) == "1.0.0"
    # the same version with other bytes is refused, as the public npm registry does
    (source / "index.js").write_text("module.exports = 'changed'\n")
    again = npm.run("publish", "--force", cwd=source, check=False)
    assert again.returncode != 0
    assert "403" in again.stderr and "You cannot publish over the previously published versions: 1.0.0" in again.stderr
    # a new version with a tag other than latest
    manifest = json.loads((source / "package.json").read_text())
    (source / "package.json").write_text(json.dumps({**manifest, "version": "2.0.0-rc.1"}))
    npm.run("publish", "--tag", "next", cwd=source)
    tags = npm.run("dist-tag", "ls", "@fixture/pub", cwd=tmp_path).stdout.split("\n")
    assert tags[:2] == ["latest: 1.0.0", "next: 2.0.0-rc.1"]


def test_dist_tag_add_and_deprecate_write_the_config(serve, tmp_path):
    npm = npm_for(serve, tmp_path / "npm", publish=True)
    npm.run("dist-tag", "add", "demo-utils@1.1.0", "beta", cwd=tmp_path)
    assert "beta: 1.1.0" in npm.run("dist-tag", "ls", "demo-utils", cwd=tmp_path).stdout
    npm.run("deprecate", "demo-utils@1.1.0", "1.1.0 is slow; use 1.2.0", cwd=tmp_path)
    view = json.loads(npm.run("view", "demo-utils@1.1.0", "deprecated", "--json", cwd=tmp_path).stdout)
    assert view == "1.1.0 is slow; use 1.2.0"
    config = (tmp_path / "staticreg.yml").read_text()  # created next to the input, where serve runs
    assert "beta: 1.1.0" in config and "demo-utils@1.1.0: 1.1.0 is slow; use 1.2.0" in config
    # the file is the user's from now on: serve reads it back after a restart
    serve.stop()
    again = Serve(tmp_path / "input", tmp_path)
    try:
        assert json.loads(fetch(again.url + "demo-utils")[2])["dist-tags"]["beta"] == "1.1.0"
    finally:
        again.stop()


def test_npm_unpublish_a_version_then_the_package(serve, input_dir, tmp_path):
    npm = npm_for(serve, tmp_path / "npm", publish=True)
    source = tmp_path / "gone"
    for version in ("1.0.0", "1.1.0"):
        pack(source, tmp_path / "ignored", {"name": "fixture-gone", "version": version}, {"index.js": "1\n"})
        npm.run("publish", cwd=source)
    npm.run("unpublish", "fixture-gone@1.1.0", cwd=tmp_path)
    doc = json.loads(fetch(serve.url + "fixture-gone")[2])
    assert list(doc["versions"]) == ["1.0.0"] and doc["dist-tags"]["latest"] == "1.0.0"
    assert not (input_dir / "fixture-gone-1.1.0.tgz").exists() and (input_dir / "fixture-gone-1.0.0.tgz").exists()
    npm.run("unpublish", "fixture-gone", "--force", cwd=tmp_path)
    assert fetch(serve.url + "fixture-gone")[0] == 404 and not list(input_dir.glob("fixture-gone-*"))
