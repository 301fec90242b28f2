"""One tarball published into a registry of N tarballs, against today's other way of
making the same change, side by side in one run; and a first deploy, in parallel
against one object at a time.

    python bench/corpus.py 10000                       # the corpus first
    python bench/bench_publish.py --sizes 10000 --s3   # S3 through moto's server on 127.0.0.1

For each size, a cold build of the corpus is the registry. Then, alternating:

- folder: `staticreg publish EXTRA --to REGISTRY` (then `unpublish`, to go back),
  against adding EXTRA to the input folder and `staticreg build` (the incremental
  add-one rebuild, with its cache), then taking it out again;
- S3 (with --s3, in a bucket the registry was deployed to): `staticreg publish` into
  the bucket (wall time, and requests sent), against build + deploy of the same
  change, and against the deploy as it was before the registry carried a state
  (a listing and an MD5 of every object: the bucket's state removed first).

Prints each figure and the ratios; medians of --runs.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

BASE_URL = "http://127.0.0.1:9/"


def run(*args: str, env: dict | None = None) -> float:
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "staticreg", *args], capture_output=True, text=True, env=env, cwd=ROOT
    )
    if result.returncode != 0:
        raise SystemExit(f"staticreg {' '.join(args)} failed:\n{result.stderr}")
    return time.monotonic() - started


def extra_tarball(corpus: Path) -> Path:
    return sorted((corpus / "extra").glob("*.tgz"))[0]


def spec_of(tarball: Path) -> str:
    from staticreg.build.reader import read_tarball

    manifest = read_tarball(tarball, tarball.name).manifest
    return f"{manifest['name']}@{manifest['version']}"


def folder_round(size: int, work: Path, runs: int) -> dict:
    corpus = HERE / "corpus" / str(size)
    tarballs = work / "tarballs"
    if not tarballs.exists():
        shutil.copytree(corpus / "tarballs", tarballs, copy_function=os.link)
    registry = work / "registry"
    shutil.rmtree(registry, ignore_errors=True)
    cold = run("build", str(tarballs), "-o", str(registry), "--base-url", BASE_URL, "-q")
    extra = extra_tarball(corpus)
    spec = spec_of(extra)
    builds, publishes = [], []
    run("build", str(tarballs), "-o", str(registry), "--base-url", BASE_URL, "-q")  # the first rebuild is the slowest
    for _ in range(runs):
        os.link(extra, tarballs / extra.name)
        builds.append(run("build", str(tarballs), "-o", str(registry), "--base-url", BASE_URL, "-q"))
        os.unlink(tarballs / extra.name)
        run("build", str(tarballs), "-o", str(registry), "--base-url", BASE_URL, "-q")
    for _ in range(runs):  # a publish forgets the build cache: these come after the builds
        publishes.append(run("publish", str(extra), "--to", str(registry)))
        run("unpublish", spec, "--to", str(registry))
    return {
        "size": size,
        "cold_build_s": cold,
        "add_one_build_s": statistics.median(builds),
        "publish_s": statistics.median(publishes),
        "builds": builds,
        "publishes": publishes,
    }


class LatencyProxy:
    """A TCP proxy on 127.0.0.1 that holds each answer back `delay` seconds, as a store across
    a network would: moto on loopback answers in well under a millisecond of network, so one
    request at a time and sixteen at once differ only by moto's own CPU there."""

    def __init__(self, target_port: int, delay: float):
        import asyncio
        import socket
        import threading

        self.delay, self.target_port = delay, target_port
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(sock,), daemon=True)
        self.thread.start()
        self.ready.wait()

    def _run(self, sock) -> None:
        import asyncio

        async def pump(reader, writer, hold: bool) -> None:
            last = 0.0
            try:
                while data := await reader.read(1 << 16):
                    now = time.monotonic()
                    if hold and now - last > 0.002:  # the first bytes of an answer: one round trip
                        await asyncio.sleep(self.delay)
                    last = time.monotonic()
                    writer.write(data)
                    await writer.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                writer.close()

        async def handle(reader, writer) -> None:
            upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
            await asyncio.gather(pump(reader, upstream_writer, False), pump(upstream_reader, writer, True))

        async def main() -> None:
            server = await asyncio.start_server(handle, sock=sock)
            self.ready.set()
            async with server:
                await server.serve_forever()

        self.loop.run_until_complete(main())

    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def s3_round(size: int, work: Path, runs: int, latency_ms: float = 0) -> dict:
    import boto3

    from staticreg.config import Config
    from staticreg.hosting import hosted
    from staticreg.hosting.deploy import _Bucket, plan
    from staticreg.hosting.store import S3Store
    from tests.e2e.hosts import moto, s3_env
    from tests.e2e.servers import free_port

    os.environ.update(s3_env())
    server = moto(work / "moto", free_port())
    try:
        s3 = boto3.client("s3", endpoint_url=server.url())
        s3.create_bucket(Bucket="bench")
        corpus = HERE / "corpus" / str(size)
        tarballs = work / "tarballs"
        registry = work / "registry-s3"
        url = server.url("/bench/npm/")
        shutil.rmtree(registry, ignore_errors=True)
        run("build", str(tarballs), "-o", str(registry), "--base-url", url, "-q")

        # A first deploy's objects per second: one at a time, against 16 at once, on the same
        # objects; through a proxy that adds a round trip to each answer when asked.
        uploads = plan(registry, "one/")[:2000]
        endpoint = LatencyProxy(server.port, latency_ms / 1000).url() if latency_ms else server.url()
        bucket = _Bucket("s3://bench/one", endpoint, 16)
        started = time.monotonic()
        for upload in uploads:
            bucket.put(upload)
        one_rate = len(uploads) / (time.monotonic() - started)
        from concurrent.futures import ThreadPoolExecutor

        moved = [u.__class__(**{**u.__dict__, "key": "many/" + u.key[4:]}) for u in uploads]
        started = time.monotonic()
        with ThreadPoolExecutor(16) as pool:
            list(pool.map(bucket.put, moved))
        many_rate = len(moved) / (time.monotonic() - started)
        started = time.monotonic()
        run("deploy", "-q", str(registry), "s3://bench/npm", "--endpoint-url", server.url())
        first_deploy = time.monotonic() - started
        objects = len(plan(registry, "npm/"))

        extra = extra_tarball(corpus)
        spec = spec_of(extra)
        config = Config(input_dir=Path("."), output_dir=Path("."), base_url=url)
        publishes, requests = [], []
        for _ in range(runs):
            publishes.append(run("publish", str(extra), "--to", "s3://bench/npm", "--endpoint-url", server.url()))
            run("unpublish", spec, "--to", "s3://bench/npm", "--endpoint-url", server.url())
        store = S3Store("s3://bench/npm", server.url())
        requests.append(hosted.publish(store, [extra], config).requests)
        hosted.unpublish(S3Store("s3://bench/npm", server.url()), *spec.rsplit("@", 1), config)

        sync, sync_requests, old, old_requests = [], [], [], []
        from staticreg.hosting.deploy import deploy

        for _ in range(runs):
            os.link(extra, tarballs / extra.name)
            started = time.monotonic()
            run("build", str(tarballs), "-o", str(registry), "--base-url", url, "-q")
            report = deploy(registry, "s3://bench/npm", server.url())
            sync.append(time.monotonic() - started)
            sync_requests.append(report.requests)
            os.unlink(tarballs / extra.name)
            run("build", str(tarballs), "-o", str(registry), "--base-url", url, "-q")
            deploy(registry, "s3://bench/npm", server.url(), delete=True)
        # the deploy as it was: no state in the bucket, so every object is listed and hashed
        for _ in range(runs):
            os.link(extra, tarballs / extra.name)
            run("build", str(tarballs), "-o", str(registry), "--base-url", url, "-q")
            s3.delete_object(Bucket="bench", Key="npm/-/staticreg/state.json")
            started = time.monotonic()
            report = deploy(registry, "s3://bench/npm", server.url(), jobs=1)
            old.append(time.monotonic() - started)
            old_requests.append(report.requests)
            os.unlink(tarballs / extra.name)
            run("build", str(tarballs), "-o", str(registry), "--base-url", url, "-q")
            deploy(registry, "s3://bench/npm", server.url(), delete=True)
        return {
            "size": size,
            "objects": objects,
            "first_deploy_s": first_deploy,
            "objects_per_s_one_at_a_time": one_rate,
            "objects_per_s_16": many_rate,
            "publish_s": statistics.median(publishes),
            "publish_requests": requests[0],
            "build_and_deploy_s": statistics.median(sync),
            "build_and_deploy_requests": statistics.median(sync_requests),
            "stateless_deploy_s": statistics.median(old),
            "stateless_deploy_requests": statistics.median(old_requests),
        }
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10000")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--s3", action="store_true", help="also the S3 round (moto), at the first size only")
    parser.add_argument(
        "--latency-ms", type=float, default=0, help="a round trip added to each S3 answer in the upload-rate part"
    )
    args = parser.parse_args()
    results = []
    for i, size in enumerate(int(s) for s in args.sizes.split(",")):
        work = Path(
            tempfile.mkdtemp(prefix=f"bench-publish-{size}-", dir=HERE / "work" if (HERE / "work").is_dir() else None)
        )
        try:
            folder = folder_round(size, work, args.runs)
            print(
                f"{size:>7} folder: cold build {folder['cold_build_s']:.2f} s; add one: build {folder['add_one_build_s']:.2f} s, "
                f"publish {folder['publish_s']:.2f} s ({folder['add_one_build_s'] / folder['publish_s']:.1f}x faster)",
                flush=True,
            )
            results.append({"folder": folder})
            if args.s3 and i == 0:
                s3 = s3_round(size, work, args.runs, args.latency_ms)
                print(
                    f"{size:>7} S3: first deploy of {s3['objects']} objects {s3['first_deploy_s']:.1f} s; "
                    f"with {args.latency_ms:g} ms added to each answer, "
                    f"{s3['objects_per_s_16']:.0f} objects/s at 16 at once against {s3['objects_per_s_one_at_a_time']:.0f} "
                    f"one at a time ({s3['objects_per_s_16'] / s3['objects_per_s_one_at_a_time']:.1f}x)",
                    flush=True,
                )
                print(
                    f"{size:>7} S3 add one: publish {s3['publish_s']:.2f} s, {s3['publish_requests']} requests; "
                    f"build + deploy {s3['build_and_deploy_s']:.2f} s, {s3['build_and_deploy_requests']:.0f} requests; "
                    f"deploy without a state {s3['stateless_deploy_s']:.2f} s, {s3['stateless_deploy_requests']:.0f} requests",
                    flush=True,
                )
                results[-1]["s3"] = s3
        finally:
            shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
