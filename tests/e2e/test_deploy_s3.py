"""`staticreg deploy` against moto's S3-compatible server on 127.0.0.1: what it
uploads, in which order, with which headers; what it skips and deletes."""

from __future__ import annotations

import os
import shutil

import pytest

from tests.e2e import hosts
from tests.e2e.project import build, make_input
from tests.e2e.servers import fetch, free_port

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def scratch(tmp_path_factory):
    return tmp_path_factory.mktemp("deploy")


@pytest.fixture(scope="module")
def store(scratch):
    with hosts.running(hosts.moto(scratch / "moto", free_port())) as server:
        hosts.make_bucket(server)
        yield server


def uploaded_keys(stdout: str) -> list[str]:
    return [line.removeprefix("upload ") for line in stdout.splitlines() if line.startswith("upload ")]


def test_deploy_uploads_in_order_skips_unchanged_and_deletes_only_when_asked(scratch, store):
    url = hosts.s3_registry_url(store)
    input_dir = make_input(scratch / "input", scratch / "src")
    registry = build(input_dir, scratch / "registry", url, scratch)

    first = hosts.staticreg_deploy(registry, store)
    assert first.returncode == 0, first.stderr
    keys = uploaded_keys(first.stdout)
    kinds = ["tarball" if k.endswith(".tgz") else "root" if k.count("/") == 1 and k.endswith(".html") else "other" for k in keys]
    assert kinds.index("other") > max(i for i, k in enumerate(kinds) if k == "tarball")
    assert kinds[-1] == "root" and "npm/index.html" in keys
    assert "npm/@demo/greet" in keys and "npm/demo-utils/1.0.0" in keys and "npm/-/ping" in keys
    assert not [k for k in keys if k.endswith(("/index.json", "/index.corgi"))] and "npm/demo-utils/index.html" not in keys

    status, headers, body = fetch(url + "@demo%2Fgreet")
    assert (status, headers["content-type"], headers["cache-control"]) == (200, "application/json", "public, max-age=0, must-revalidate")
    assert body == (registry / "@demo/greet/index.json").read_bytes()
    status, headers, body = fetch(url + "@demo%2fgreet/-/greet-1.0.0.tgz")
    assert (status, headers["cache-control"]) == (200, "public, max-age=31536000, immutable")
    assert body == (registry / "@demo/greet/-/greet-1.0.0.tgz").read_bytes()
    assert fetch(url + "-/package/demo-utils/dist-tags")[1]["content-type"] == "application/json"
    # the site as its pages link it, folders and all, from the store's plain endpoint
    status, headers, body = fetch(url + "-/web/package/demo-utils/")
    assert (status, headers["content-type"]) == (200, "text/html; charset=utf-8")
    assert body == (registry / "-/web/package/demo-utils/index.html").read_bytes()
    assert fetch(url)[2] == (registry / "index.html").read_bytes()

    again = hosts.staticreg_deploy(registry, store)
    assert again.returncode == 0 and uploaded_keys(again.stdout) == []
    assert f", {len(keys)} unchanged, 0 deleted" in again.stdout

    # fixture-opt leaves the registry: kept without --delete, removed with it.
    os.remove(next(input_dir.glob("fixture-opt-*.tgz")))
    shutil.rmtree(registry)
    build(input_dir, registry, url, scratch)
    kept = hosts.staticreg_deploy(registry, store)
    assert kept.returncode == 0 and "no longer in the registry were kept (--delete removes them)" in kept.stdout
    assert fetch(url + "fixture-opt")[0] == 200
    deleted = hosts.staticreg_deploy(registry, store, "--delete")
    assert deleted.returncode == 0, deleted.stderr
    assert "delete npm/fixture-opt/-/fixture-opt-1.0.0.tgz" in deleted.stdout
    assert fetch(url + "fixture-opt")[0] in (403, 404)
    assert fetch(url + "demo-utils")[0] == 200


def test_deploy_errors_are_one_clear_line(scratch, store):
    registry = scratch / "not-a-registry"
    registry.mkdir()
    result = hosts.staticreg_deploy(registry, store)
    assert result.returncode == 1 and "is not a built registry" in result.stderr and "Traceback" not in result.stderr
    built = build(make_input(scratch / "input-errors", scratch / "src-errors"), scratch / "registry-errors",
                  hosts.s3_registry_url(store), scratch)  # fmt: skip
    import subprocess
    import sys

    missing = subprocess.run([sys.executable, "-m", "staticreg", "deploy", str(built), "s3://no-such-bucket/npm",
                              "--endpoint-url", store.url()], capture_output=True, text=True, env=hosts.s3_env())  # fmt: skip
    assert missing.returncode == 1 and "NoSuchBucket" in missing.stderr and "Traceback" not in missing.stderr
    bad = subprocess.run([sys.executable, "-m", "staticreg", "deploy", str(built), "https://example.invalid/x"],
                         capture_output=True, text=True, env=hosts.s3_env())  # fmt: skip
    assert bad.returncode == 1 and "must look like s3://bucket" in bad.stderr
