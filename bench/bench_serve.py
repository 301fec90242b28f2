"""How fast incremental builds and `staticreg serve` follow a folder of 2,000 tarballs.

    .venv/bin/python bench/bench_serve.py [--tarballs 2000] [--drops 20]

Prints, measured side by side in one run on this machine:
- a cold build, a no-op rebuild and an add-one-tarball rebuild (`staticreg build`'s
  own function, in this process), and their ratios;
- for `staticreg serve` (a subprocess on a free port): the time from a tarball
  landing in the watched folder (renamed into place, complete) to its document
  being served, p50 and p95 over the drops.
Goals from issue 5: p95 <= 1 s; no-op <= 2 % of the cold build.
Tarballs are made here with Python's tarfile; nothing is downloaded.
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import os
import socket
import statistics
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from staticreg.build.pipeline import build  # noqa: E402
from staticreg.config import Config  # noqa: E402

OLD = 1_600_000_000


def tarball(name: str, version: str) -> bytes:
    manifest = json.dumps(
        {
            "name": name,
            "version": version,
            "description": f"bench package {name}",
            "main": "index.js",
            "dependencies": {"left": "^1.0.0"},
        }
    ).encode()
    files = {
        "package/package.json": manifest,
        "package/index.js": b"module.exports = 1\n" * 50,
        "package/README.md": f"# {name}\n".encode() * 20,
    }
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for member, data in files.items():
            info = tarfile.TarInfo(member)
            info.size, info.mtime = len(data), OLD
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(raw.getvalue(), mtime=0)


def drop(folder: Path, name: str, version: str = "1.0.0") -> Path:
    """Write a tarball beside, then rename it in: it lands complete, at one instant."""
    path = folder / f"{name}-{version}.tgz"
    tmp = folder / f".{path.name}.part"
    tmp.write_bytes(tarball(name, version))
    os.utime(tmp, (OLD, OLD))
    os.replace(tmp, path)
    return path


def timed(config: Config) -> float:
    started = time.perf_counter()
    build(config, show_progress=False)
    return time.perf_counter() - started


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def status(url: str) -> int:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=10) as response:
            response.read()
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tarballs", type=int, default=2000)
    parser.add_argument("--drops", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="staticreg-bench-") as scratch:
        work = Path(scratch)
        packages = work / "packages"
        packages.mkdir()
        for i in range(args.tarballs):
            drop(packages, f"bench-{i:05d}")
        config = Config(input_dir=packages, output_dir=work / "public", base_url="http://127.0.0.1:8080/")

        cold = timed(config)
        noop = min(timed(config) for _ in range(3))
        adds = []
        for i in range(3):
            drop(packages, f"added-{i}")
            adds.append(timed(config))
        add_one = statistics.median(adds)
        print(f"{args.tarballs} tarballs, {os.cpu_count()} cores")
        print(f"cold build            {cold:8.3f} s")
        print(f"no-op rebuild         {noop:8.3f} s   {noop / cold:7.2%} of cold (goal <= 2%)")
        print(f"add-one rebuild       {add_one:8.3f} s   {add_one / cold:7.2%} of cold (median of 3)")

        serve_dir = work / "serve-packages"
        os.rename(packages, serve_dir)
        port = free_port()
        log = work / "serve.err"
        process = subprocess.Popen(
            [sys.executable, "-m", "staticreg", "serve", str(serve_dir), "--port", str(port)],
            stdout=subprocess.PIPE,
            stderr=log.open("w"),
            text=True,
            cwd=work,
        )
        try:
            first = process.stdout.readline()  # "Serving ...": the first build is done
            if not first.startswith("Serving"):
                raise SystemExit(f"staticreg serve did not start: {first}{log.read_text()}")
            threading.Thread(target=process.stdout.read, daemon=True).start()  # keep its pipe drained
            drop(serve_dir, "warm-up")  # the first rebuild has no spare folder yet; not measured
            while status(f"http://127.0.0.1:{port}/warm-up") != 200:
                time.sleep(0.01)
            latencies = []
            for i in range(args.drops):
                url = f"http://127.0.0.1:{port}/dropped-{i}"
                landed = time.perf_counter()
                drop(serve_dir, f"dropped-{i}")
                while status(url) != 200:
                    time.sleep(0.01)
                latencies.append(time.perf_counter() - landed)
                time.sleep(0.3)
        finally:
            process.terminate()
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        p50, p95 = percentile(latencies, 50), percentile(latencies, 95)
        print(f"serve: tarball landed -> document served, {args.drops} drops:")
        print(f"  p50 {p50:6.3f} s   p95 {p95:6.3f} s   max {max(latencies):6.3f} s (goal p95 <= 1 s)")
        print(f"  p95 / add-one rebuild: {p95 / add_one:5.2f}")


if __name__ == "__main__":
    main()
