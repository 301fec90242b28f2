"""`staticreg deploy` against moto's S3-compatible server on 127.0.0.1: what it
uploads, in which order, with which headers; what it skips and deletes."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from urllib.parse import urljoin

import pytest

from tests.e2e import hosts
from tests.e2e.project import EXAMPLES, build, make_input
from tests.e2e.servers import fetch

pytestmark = pytest.mark.e2e


def uploaded_keys(stdout: str) -> list[str]:
    return [line.removeprefix("upload ") for line in stdout.splitlines() if line.startswith("upload ")]


def test_deploy_uploads_in_order_skips_unchanged_and_deletes_only_when_asked(scratch, moto):
    url = hosts.s3_registry_url(moto)
    input_dir = make_input(scratch / "input", scratch / "src")
    registry = build(input_dir, scratch / "registry", url, scratch)

    first = hosts.staticreg_deploy(registry, moto)
    assert first.returncode == 0, first.stderr
    keys = uploaded_keys(first.stdout)
    kinds = [
        "tarball" if k.endswith(".tgz") else "root" if k.count("/") == 1 and k.endswith(".html") else "other"
        for k in keys
    ]
    assert kinds.index("other") > max(i for i, k in enumerate(kinds) if k == "tarball")
    assert keys[-1] == "npm/-/staticreg/state.json" and kinds[-2] == "root" and "npm/index.html" in keys
    assert "npm/@demo/greet" in keys and "npm/demo-utils/1.0.0" in keys and "npm/-/ping" in keys
    assert (
        not [k for k in keys if k.endswith(("/index.json", "/index.corgi"))] and "npm/demo-utils/index.html" not in keys
    )

    status, headers, body = fetch(url + "@demo%2Fgreet")
    assert (status, headers["content-type"], headers["cache-control"]) == (
        200,
        "application/json",
        "public, max-age=0, must-revalidate",
    )
    assert body == (registry / "@demo/greet/index.json").read_bytes()
    status, headers, body = fetch(url + "@demo%2fgreet/-/greet-1.0.0.tgz")
    assert (status, headers["cache-control"]) == (200, "public, max-age=31536000, immutable")
    assert body == (registry / "@demo/greet/-/greet-1.0.0.tgz").read_bytes()
    assert fetch(url + "-/package/demo-utils/dist-tags")[1]["content-type"] == "application/json"
    # the site as its pages link it, folders and all, from the store's plain endpoint
    status, headers, body = fetch(url + "-/web/package/demo-utils/")
    assert (status, headers["content-type"]) == (200, "text/html; charset=utf-8")
    assert body == (registry / "-/web/package/demo-utils/index.html").read_bytes()
    for name in ("demo-utils", "@demo/greet"):  # the package page's link to its document, followed
        page = f"-/web/package/{name}/"
        href = re.search(r'<a href="([^"]+)">Package document \(JSON\)</a>', fetch(url + page)[2].decode())[1]
        status, headers, body = fetch(urljoin(url + page, href))
        assert (status, headers["content-type"]) == (200, "application/json")
        assert body == (registry / name / "index.json").read_bytes()
    assert fetch(url)[2] == (registry / "index.html").read_bytes()

    again = hosts.staticreg_deploy(registry, moto)
    assert again.returncode == 0 and uploaded_keys(again.stdout) == []
    assert f", {len(keys)} unchanged, 0 deleted" in again.stdout

    # fixture-opt leaves the registry: refused without --delete (nothing is dropped unasked), removed with it.
    os.remove(next(input_dir.glob("fixture-opt-*.tgz")))
    shutil.rmtree(registry)
    build(input_dir, registry, url, scratch)
    kept = hosts.staticreg_deploy(registry, moto)
    assert kept.returncode == 1 and "fixture-opt (every version)" in kept.stderr and "--delete" in kept.stderr
    assert "nothing was uploaded" in kept.stderr and "upload " not in kept.stdout
    assert fetch(url + "fixture-opt")[0] == 200
    deleted = hosts.staticreg_deploy(registry, moto, "--delete")
    assert deleted.returncode == 0, deleted.stderr
    assert "delete npm/fixture-opt/-/fixture-opt-1.0.0.tgz" in deleted.stdout
    # only the package that went and the packages that depend on it were looked at again
    uploaded = uploaded_keys(deleted.stdout)
    assert "npm/demo-utils" not in uploaded and "npm/@fixture/hello" in uploaded
    assert not [k for k in uploaded if k.startswith("npm/-/web/assets/")]  # shared files the same: not sent again
    assert "npm/index.html" in uploaded  # the home page lists one package less
    assert fetch(url + "fixture-opt")[0] in (403, 404)
    assert fetch(url + "demo-utils")[0] == 200


def test_deploy_errors_are_one_clear_line(scratch, moto):
    registry = scratch / "not-a-registry"
    registry.mkdir()
    result = hosts.staticreg_deploy(registry, moto)
    assert result.returncode == 1 and "is not a built registry" in result.stderr and "Traceback" not in result.stderr
    built = build(
        make_input(scratch / "input-errors", scratch / "src-errors"),
        scratch / "registry-errors",
        hosts.s3_registry_url(moto),
        scratch,
    )
    import subprocess
    import sys

    missing = subprocess.run(
        [
            sys.executable,
            "-m",
            "staticreg",
            "deploy",
            str(built),
            "s3://no-such-bucket/npm",
            "--endpoint-url",
            moto.url(),
        ],
        capture_output=True,
        text=True,
        env=hosts.s3_env(),
    )
    assert missing.returncode == 1 and "NoSuchBucket" in missing.stderr and "Traceback" not in missing.stderr
    bad = subprocess.run(
        [sys.executable, "-m", "staticreg", "deploy", str(built), "https://example.invalid/x"],
        capture_output=True,
        text=True,
        env=hosts.s3_env(),
    )
    assert bad.returncode == 1 and "must look like s3://bucket" in bad.stderr


def test_two_pipelines_deploying_never_drop_a_version(scratch, moto):
    """A and B start from the same deployed registry; A adds demo-utils 1.2.0 and deploys;
    B, built without it, adds demo-cli: B's deploy is refused, and nothing of A's is lost."""
    url = hosts.s3_registry_url(moto).replace(f"/{hosts.S3_PREFIX}/", "/ab/")
    target = f"s3://{hosts.BUCKET}/ab"
    base = scratch / "ab-base"
    base.mkdir()
    for name in ("demo-utils-1.0.0.tgz", "demo-utils-1.1.0.tgz", "demo-greet-1.0.0.tgz"):
        shutil.copy2(EXAMPLES / name, base)

    def deploy_folder(folder, *flags):
        registry = scratch / f"{folder.name}-registry"
        shutil.rmtree(registry, ignore_errors=True)
        result = subprocess.run(
            [sys.executable, "-m", "staticreg", "build", "-q", str(folder), "-o", str(registry), "--base-url", url],
            capture_output=True,
            text=True,
        )
        assert result.returncode == 0, result.stderr
        return subprocess.run(
            [
                sys.executable,
                "-m",
                "staticreg",
                "deploy",
                "-q",
                str(registry),
                target,
                "--endpoint-url",
                moto.url(),
                *flags,
            ],
            capture_output=True,
            text=True,
            env=hosts.s3_env(),
        )

    assert deploy_folder(base).returncode == 0
    a, b = scratch / "ab-a", scratch / "ab-b"
    shutil.copytree(base, a)
    shutil.copytree(base, b)
    shutil.copy2(EXAMPLES / "demo-utils-1.2.0.tgz", a)
    shutil.copy2(EXAMPLES / "demo-cli-1.0.0.tgz", b)
    assert deploy_folder(a).returncode == 0
    refused = deploy_folder(b)
    assert refused.returncode == 1 and "demo-utils@1.2.0" in refused.stderr and "Traceback" not in refused.stderr
    assert "1.2.0" in json.loads(fetch(url + "demo-utils")[2])["versions"]
    assert fetch(url + "demo-cli")[0] in (403, 404)  # nothing of B's was uploaded
    # B publishes its package instead: both are there
    published = subprocess.run(
        [
            sys.executable,
            "-m",
            "staticreg",
            "publish",
            str(EXAMPLES / "demo-cli-1.0.0.tgz"),
            "--to",
            target,
            "--endpoint-url",
            moto.url(),
        ],
        capture_output=True,
        text=True,
        env=hosts.s3_env(),
    )
    assert published.returncode == 0, published.stderr
    assert "1.2.0" in json.loads(fetch(url + "demo-utils")[2])["versions"] and fetch(url + "demo-cli")[0] == 200


def test_a_deploy_over_a_bucket_an_older_staticreg_filled_leaves_none_of_its_pages(scratch, moto):
    """A page per version (-/web/package/NAME/v/VERSION/), list and scope pages as folders:
    stale pages, removed without --delete (no page is anyone's version); the documents keep
    their keys. The bucket then holds exactly the keys of the registry, and no page links to
    what is not there."""
    from tests.legacy_layout import to_generation_one

    target, prefix = f"s3://{hosts.BUCKET}/gen1", "gen1/"
    url = hosts.s3_registry_url(moto).replace(f"/{hosts.S3_PREFIX}/", "/gen1/")
    input_dir = make_input(scratch / "input-gen1", scratch / "src-gen1")
    old = build(input_dir, scratch / "registry-gen1-old", url, scratch)
    to_generation_one(old)

    def deploy(registry):
        return subprocess.run(
            [sys.executable, "-m", "staticreg", "deploy", "-q", str(registry), target, "--endpoint-url", moto.url()],
            capture_output=True,
            text=True,
            env=hosts.s3_env(),
        )

    assert deploy(old).returncode == 0
    before = hosts.bucket_keys(moto, prefix)
    assert {
        "gen1/-/web/package/demo-utils/v/1.0.0/",
        "gen1/-/web/scope/@demo/index.html",
        "gen1/demo-utils/1.0.0",
    } <= before
    new = build(input_dir, scratch / "registry-gen1-new", url, scratch)
    done = deploy(new)
    assert done.returncode == 0, done.stderr
    keys = hosts.bucket_keys(moto, prefix)
    assert keys == hosts.registry_keys(new, prefix)
    assert hosts.dead_links(url, keys, prefix) == []
    assert json.loads(fetch(url + "demo-utils/1.0.0")[2])["_id"] == "demo-utils@1.0.0"
