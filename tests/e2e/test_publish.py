"""`staticreg publish` into a real S3-compatible server (moto, on 127.0.0.1) and into a
folder served by nginx: clients install after each change, two pipelines never lose a
version, eight publishers at once lose nothing, a lost race (412 from the store, an
injected 409) is retried, and a publish killed at any moment is completed by running it again."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from staticreg.build.reader import sri
from staticreg.config import Config
from staticreg.hosting import hosted
from staticreg.hosting.store import FolderStore, S3Store
from tests.e2e import hosts
from tests.e2e.clients import client
from tests.e2e.npm import make_project, pack
from tests.e2e.servers import fetch, free_port

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def packed(scratch):
    """Versions the tests publish, made with npm pack (and the examples')."""
    out = scratch / "packed"
    out.mkdir()
    for version in ("1.0.0", "1.1.0", "1.2.0", "1.3.0", "2.0.0"):
        pack(
            scratch / f"src-lib-{version}",
            out,
            {"name": "@team/lib", "version": version, "main": "index.js"},
            {"index.js": f"module.exports = '{version}'\n", "README.md": f"# lib {version}\n"},
        )
    for i in range(8):
        pack(
            scratch / f"src-tool-{i}",
            out,
            {"name": f"team-tool-{i}", "version": "1.0.0"},
            {"index.js": f"module.exports = {i}\n"},
        )
    return out


def tarball(packed: Path, name: str, version: str) -> Path:
    return packed / f"{name.lstrip('@').replace('/', '-')}-{version}.tgz"


_PREFIXES = iter(f"p{i}" for i in range(1000))


def fresh_target() -> str:
    return f"s3://{hosts.BUCKET}/{next(_PREFIXES)}"


def s3_publish(server, target: str, *args: str, env_extra: dict | None = None) -> subprocess.CompletedProcess:
    env = hosts.s3_env() | (env_extra or {})
    return subprocess.run(
        [sys.executable, "-m", "staticreg", *args, "--to", target, "--endpoint-url", server.url()],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


def url_of(server, target: str) -> str:
    return server.url("/" + target.removeprefix("s3://") + "/")


def in_process_store(server, target: str) -> S3Store:
    saved = dict(os.environ)
    os.environ.update(hosts.s3_env())
    try:
        return S3Store(target, server.url())
    finally:
        os.environ.clear()
        os.environ.update(saved)


def gzip_keys(server, target: str) -> list[str]:
    """Keys of precompressed copies in the bucket: a store has none (it cannot choose by Accept-Encoding)."""
    store = in_process_store(server, target)
    listed = store.s3.list_objects_v2(Bucket=store.bucket, Prefix=store.prefix)
    keys = [item["Key"] for item in listed.get("Contents", [])]
    assert keys, target
    return [key for key in keys if key.endswith(".gz")]


def get_gzip(url: str) -> tuple[int, dict[str, str], bytes]:
    """GET as clients do, with Accept-Encoding: gzip; the body inflated when it came gzipped."""
    import gzip
    import urllib.error
    import urllib.request

    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(urllib.request.Request(url, headers={"Accept-Encoding": "gzip"}), timeout=10) as response:
            got = {k.lower(): v for k, v in response.headers.items()}
            body = response.read()
            return response.status, got, gzip.decompress(body) if got.get("content-encoding") == "gzip" else body
    except urllib.error.HTTPError as exc:
        return exc.code, {}, b""


def config_for(url: str) -> Config:
    return Config(input_dir=Path("."), output_dir=Path("."), base_url=url)


def assert_consistent(base: str, names: list[str]) -> dict[str, dict]:
    """Every document names only tarballs that are there, with the integrity it states."""
    docs = {}
    for name in names:
        status, _, body = fetch(base + name.replace("/", "%2f"))
        assert status == 200, f"{name}: {status}"
        doc = json.loads(body)
        for version, manifest in doc["versions"].items():
            status, _, data = fetch(manifest["dist"]["tarball"])
            assert status == 200, f"{name}@{version}: tarball {status}"
            assert sri(hashlib.sha512(data)) == manifest["dist"]["integrity"], f"{name}@{version}"
        docs[name] = doc
    return docs


def install(scratch: Path, tool: str, registry: str, deps: dict[str, str], label: str) -> subprocess.CompletedProcess:
    project = make_project(scratch / f"project-{label}-{tool}", deps)
    runner = client(tool, scratch / f"client-{label}-{tool}", registry)
    runner.fresh()
    return runner.install(project)


def test_publish_into_an_empty_bucket_then_npm_and_pnpm_install(scratch, moto, packed):
    target = fresh_target()
    url = url_of(moto, target)
    first = s3_publish(moto, target, "publish", str(tarball(packed, "@team/lib", "1.0.0")), "--base-url", url)
    assert first.returncode == 0, first.stderr
    assert "published @team/lib@1.0.0" in first.stdout
    for tool in ("npm", "pnpm"):
        install(scratch, tool, url, {"@team/lib": "^1.0.0"}, "empty")
    second = s3_publish(
        moto,
        target,
        "publish",
        str(tarball(packed, "@team/lib", "1.1.0")),
        str(tarball(packed, "team-tool-0", "1.0.0")),
    )
    assert second.returncode == 0, second.stderr
    docs = assert_consistent(url, ["@team/lib", "team-tool-0"])
    assert (
        list(docs["@team/lib"]["versions"]) == ["1.0.0", "1.1.0"]
        and docs["@team/lib"]["dist-tags"]["latest"] == "1.1.0"
    )
    for tool in ("npm", "pnpm"):
        install(scratch, tool, url, {"@team/lib": "^1.1.0", "team-tool-0": "1.0.0"}, "second")
    # the site and search index follow: a package page, the home page lists both
    status, _, home = fetch(url)
    assert status == 200 and b"team-tool-0" in home and b"@team/lib" in home
    status, _, index = fetch(url + "-/web/search-index.json")
    assert status == 200 and [p[0] for p in json.loads(index)["packages"]] == ["@team/lib", "team-tool-0"]
    assert fetch(url + "-/web/package/@team/lib/")[0] == 200
    assert gzip_keys(moto, target) == []


def test_publish_into_a_bucket_a_build_filled(scratch, moto, packed):
    """build + deploy once, then publish: the CI job that adds versions to a deployed registry."""
    from tests.e2e.project import build, make_input

    target = fresh_target()
    url = url_of(moto, target)
    input_dir = make_input(scratch / "built-input", scratch / "built-src")
    registry = build(input_dir, scratch / "built-registry", url, scratch)
    deployed = subprocess.run(
        [sys.executable, "-m", "staticreg", "deploy", str(registry), target, "--endpoint-url", moto.url(), "-q"],
        capture_output=True,
        text=True,
        env=hosts.s3_env(),
    )
    assert deployed.returncode == 0, deployed.stderr
    assert list(registry.rglob("*.gz")) and gzip_keys(moto, target) == []  # the build's copies stay behind
    result = s3_publish(moto, target, "publish", str(tarball(packed, "@team/lib", "1.0.0")))
    assert result.returncode == 0, result.stderr
    assert gzip_keys(moto, target) == []
    docs = assert_consistent(url, ["@team/lib", "demo-utils", "demo-cli", "@demo/greet"])
    assert docs["demo-utils"]["dist-tags"]["next"] == "2.0.0-beta.1"  # the build's settings stand
    install(scratch, "npm", url, {"@team/lib": "1.0.0", "demo-cli": "^1.0.0"}, "filled")
    install(scratch, "pnpm", url, {"@team/lib": "1.0.0", "demo-cli": "^1.0.0"}, "filled")


def test_two_pipelines_keep_both_versions(scratch, moto, packed):
    """Pipeline A adds a version of a package while pipeline B adds another package: both stay."""
    target = fresh_target()
    url = url_of(moto, target)
    assert (
        s3_publish(moto, target, "publish", str(tarball(packed, "@team/lib", "1.0.0")), "--base-url", url).returncode
        == 0
    )
    a = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "staticreg",
            "publish",
            str(tarball(packed, "@team/lib", "1.1.0")),
            "--to",
            target,
            "--endpoint-url",
            moto.url(),
        ],
        env=hosts.s3_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    b = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "staticreg",
            "publish",
            str(tarball(packed, "team-tool-1", "1.0.0")),
            "--to",
            target,
            "--endpoint-url",
            moto.url(),
        ],
        env=hosts.s3_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    for p in (a, b):
        _out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    docs = assert_consistent(url, ["@team/lib", "team-tool-1"])
    assert sorted(docs["@team/lib"]["versions"]) == ["1.0.0", "1.1.0"]
    index = json.loads(fetch(url + "-/web/search-index.json")[2])
    assert [p[0] for p in index["packages"]] == ["@team/lib", "team-tool-1"]


def test_eight_publishers_at_once_lose_nothing(scratch, moto, packed):
    target = fresh_target()
    url = url_of(moto, target)
    assert (
        s3_publish(moto, target, "publish", str(tarball(packed, "team-tool-7", "1.0.0")), "--base-url", url).returncode
        == 0
    )
    jobs = [tarball(packed, "@team/lib", v) for v in ("1.0.0", "1.1.0", "1.2.0", "1.3.0")]
    jobs += [tarball(packed, f"team-tool-{i}", "1.0.0") for i in range(4)]
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "staticreg", "publish", str(t), "--to", target, "--endpoint-url", moto.url()],
            env=hosts.s3_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for t in jobs
    ]
    for p in procs:
        _out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    names = ["@team/lib"] + [f"team-tool-{i}" for i in (0, 1, 2, 3, 7)]
    docs = assert_consistent(url, names)
    assert sorted(docs["@team/lib"]["versions"]) == ["1.0.0", "1.1.0", "1.2.0", "1.3.0"]
    assert docs["@team/lib"]["dist-tags"]["latest"] == "1.3.0"
    abbreviated = json.loads(fetch(url + "-/package/@team/lib/dist-tags")[2])
    assert abbreviated == {"latest": "1.3.0"}
    index = json.loads(fetch(url + "-/web/search-index.json")[2])
    assert [p[0] for p in index["packages"]] == names
    page = fetch(url + "-/web/package/@team/lib/")[2]
    assert all(v.encode() in page for v in ("1.0.0", "1.1.0", "1.2.0", "1.3.0"))


def test_a_lost_race_is_retried_412_from_the_store_and_an_injected_409(scratch, moto, packed):
    target = fresh_target()
    url = url_of(moto, target)
    store = in_process_store(moto, target)
    hosted.publish(store, [tarball(packed, "@team/lib", "1.0.0")], config_for(url))
    from botocore.exceptions import ClientError

    real_put = store.s3.put_object
    seen = {"412": 0, "409": 0}

    def racing_put(**kwargs):
        key = kwargs["Key"]
        if key.endswith("@team/lib") and "IfMatch" in kwargs and not seen["412"]:
            # another pipeline commits its own document first: the store answers 412 to ours
            seen["412"] += 1
            other = in_process_store(moto, target)
            hosted.publish(other, [tarball(packed, "@team/lib", "1.2.0")], config_for(url))
        elif key.endswith("/@team/lib/staticreg.json") and seen["412"] and not seen["409"]:
            # then the store itself reports a conflicting write in flight (S3's 409)
            seen["409"] += 1
            raise ClientError(
                {
                    "Error": {"Code": "ConditionalRequestConflict", "Message": "injected"},
                    "ResponseMetadata": {"HTTPStatusCode": 409},
                },
                "PutObject",
            )
        return real_put(**kwargs)

    store.s3.put_object = racing_put
    report = hosted.publish(store, [tarball(packed, "@team/lib", "1.1.0")], config_for(url))
    assert seen == {"412": 1, "409": 1} and report.retries >= 2
    docs = assert_consistent(url, ["@team/lib"])
    assert sorted(docs["@team/lib"]["versions"]) == ["1.0.0", "1.1.0", "1.2.0"]


def test_a_publish_killed_at_any_moment_is_completed_by_running_it_again(scratch, moto, packed):
    target = fresh_target()
    url = url_of(moto, target)
    assert (
        s3_publish(moto, target, "publish", str(tarball(packed, "@team/lib", "1.0.0")), "--base-url", url).returncode
        == 0
    )
    change = [str(tarball(packed, "@team/lib", "2.0.0")), str(tarball(packed, "team-tool-5", "1.0.0"))]
    rng = random.Random(7)
    for _ in range(6):
        p = subprocess.Popen(
            [sys.executable, "-m", "staticreg", "publish", *change, "--to", target, "--endpoint-url", moto.url()],
            env=hosts.s3_env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(rng.uniform(0.3, 2.5))
        p.send_signal(signal.SIGKILL)
        p.wait()
        # whatever it left, clients can install from it
        assert_consistent(url, ["@team/lib"])
    done = s3_publish(moto, target, "publish", *change)
    assert done.returncode == 0, done.stderr
    docs = assert_consistent(url, ["@team/lib", "team-tool-5"])
    assert sorted(docs["@team/lib"]["versions"]) == ["1.0.0", "2.0.0"]
    index = json.loads(fetch(url + "-/web/search-index.json")[2])
    assert [p[0] for p in index["packages"]] == ["@team/lib", "team-tool-5"]
    install(scratch, "npm", url, {"@team/lib": "^2.0.0", "team-tool-5": "1.0.0"}, "killed")


def test_a_folder_served_by_nginx_while_eight_publishers_write_and_a_reader_checks(scratch, packed):
    root = scratch / "folder-registry"
    port = free_port()
    with hosts.running(hosts.nginx(root, scratch / "nginx-state", port)) as server:
        url = server.url("/")
        store = FolderStore(root)
        hosted.publish(store, [tarball(packed, "team-tool-7", "1.0.0")], config_for(url))
        problems: list[str] = []
        stop = threading.Event()

        def reader() -> None:
            while not stop.is_set():
                for name in ("@team/lib", "team-tool-7"):
                    status, _, body = fetch(url + name.replace("/", "%2f"))
                    if status == 404:
                        continue
                    try:
                        # publishes here only add versions: what gzip clients get (the document's
                        # gzip copy) is never older than the plain document read just before it
                        plain = set(json.loads(body)["versions"])
                        status, _, packed_body = get_gzip(url + name.replace("/", "%2f"))
                        if status == 200 and not plain <= set(json.loads(packed_body)["versions"]):
                            problems.append(f"{name}: the gzip answer is older than the plain one")
                        for version, manifest in json.loads(body)["versions"].items():
                            status, _, data = fetch(manifest["dist"]["tarball"])
                            if status != 200 or sri(hashlib.sha512(data)) != manifest["dist"]["integrity"]:
                                problems.append(f"{name}@{version}: {status}")
                    except ValueError as exc:
                        problems.append(f"{name}: half a document ({exc})")

        watcher = threading.Thread(target=reader)
        watcher.start()
        jobs = [tarball(packed, "@team/lib", v) for v in ("1.0.0", "1.1.0", "1.2.0", "1.3.0")]
        jobs += [tarball(packed, f"team-tool-{i}", "1.0.0") for i in range(4)]
        try:
            procs = [
                subprocess.Popen(
                    [sys.executable, "-m", "staticreg", "publish", str(t), "--to", str(root)],
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                )
                for t in jobs
            ]
            for p in procs:
                _out, err = p.communicate(timeout=300)
                assert p.returncode == 0, err
        finally:
            stop.set()
            watcher.join()
        assert problems == []
        docs = assert_consistent(url, ["@team/lib"] + [f"team-tool-{i}" for i in (0, 1, 2, 3, 7)])
        assert sorted(docs["@team/lib"]["versions"]) == ["1.0.0", "1.1.0", "1.2.0", "1.3.0"]
        for name in docs:  # each copy is of its document, and is what gzip clients get
            _, got, body = get_gzip(url + name.replace("/", "%2f"))
            assert got.get("content-encoding") == "gzip" and body == (root / name / "index.json").read_bytes(), name
            assert gzip.decompress((root / name / "index.json.gz").read_bytes()) == body
        install(scratch, "npm", url, {"@team/lib": "^1.3.0", "team-tool-2": "1.0.0"}, "folder")
        install(scratch, "pnpm", url, {"@team/lib": "^1.3.0", "team-tool-2": "1.0.0"}, "folder")


def test_a_publish_brings_a_bucket_an_older_staticreg_filled_to_this_layout(scratch, moto, packed):
    """Every package's pages where this layout puts them and the old ones gone: the bucket then
    holds exactly the keys a build of the same tarballs has, and no page links to what is not there."""
    import shutil

    from tests.e2e.project import build, make_input
    from tests.legacy_layout import to_generation_one

    target = fresh_target()
    url, prefix = url_of(moto, target), target.removeprefix(f"s3://{hosts.BUCKET}/") + "/"
    input_dir = make_input(scratch / "gen1-input", scratch / "gen1-src")
    registry = build(input_dir, scratch / "gen1-registry", url, scratch)
    to_generation_one(registry)
    deployed = subprocess.run(
        [sys.executable, "-m", "staticreg", "deploy", str(registry), target, "--endpoint-url", moto.url(), "-q"],
        capture_output=True,
        text=True,
        env=hosts.s3_env(),
    )
    assert deployed.returncode == 0, deployed.stderr
    assert f"{prefix}-/web/package/demo-utils/v/1.0.0/index.html" in hosts.bucket_keys(moto, prefix)
    result = s3_publish(moto, target, "publish", str(tarball(packed, "@team/lib", "1.0.0")))
    assert result.returncode == 0, result.stderr
    shutil.copy2(tarball(packed, "@team/lib", "1.0.0"), input_dir)
    cold = build(input_dir, scratch / "gen1-cold", url, scratch)
    keys = hosts.bucket_keys(moto, prefix)
    assert keys == hosts.registry_keys(cold, prefix)
    assert hosts.dead_links(url, keys, prefix) == []
    state = json.loads(fetch(url + "-/staticreg/state.json")[2])
    assert state["settings"]["layout"] == 2
    install(scratch, "npm", url, {"@team/lib": "1.0.0", "demo-cli": "^1.0.0"}, "gen1")
