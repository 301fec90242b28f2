"""How much `staticreg mirror` costs over the bare downloads of the same tarballs.

    .venv/bin/python bench/bench_mirror.py [--tarballs 300] [--runs 3] [--jobs 16]

Makes a deterministic corpus (bench/corpus.py; `--big N` puts a 5-20 MB binary in N
of the tarballs, none by default), builds it into a
registry served by nginx on 127.0.0.1 (the upstream), writes a package-lock.json v3
pinning every version with its integrity, then, alternating, in this process:
- bare: GET every tarball URL with 16 threads, bytes thrown away; and again, each
  saved to a file (what `curl -o` does);
- mirror: `staticreg mirror` into an empty folder (packuments, downloads, sha512 against
  the lockfile, atomic writes, sidecars, the keys request).
Prints the median of each and the ratio mirror / bare.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import statistics
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import corpus  # noqa: E402
from staticreg.build.pipeline import build  # noqa: E402
from staticreg.config import Config  # noqa: E402
from staticreg.mirror.mirror import MirrorOptions, mirror  # noqa: E402
from staticreg.npm import layout  # noqa: E402
from tests.e2e.servers import free_port, start_nginx  # noqa: E402


def lockfile(registry: Path, base_url: str) -> tuple[dict, list[str]]:
    packages, urls = {"": {"name": "bench", "version": "1.0.0"}}, []
    for document in sorted(registry.glob("**/index.json")):
        doc = json.loads(document.read_text())
        if not isinstance(doc, dict) or "versions" not in doc or "dist-tags" not in doc:
            continue
        for i, (version, manifest) in enumerate(sorted(doc["versions"].items())):
            key = f"node_modules/{doc['name']}" + (f"/node_modules/v{i}" if i else "")
            entry = {
                "version": version,
                "resolved": manifest["dist"]["tarball"],
                "integrity": manifest["dist"]["integrity"],
            }
            if i:
                entry["name"] = doc["name"]  # an alias entry: every version pinned once
            packages[key] = entry
            urls.append(manifest["dist"]["tarball"])
    return {"name": "bench", "version": "1.0.0", "lockfileVersion": 3, "requires": True, "packages": packages}, urls


def bare(urls: list[str], jobs: int, into: Path | None = None) -> float:
    """GET every URL; `into`: each saved to a file there (as `curl -o` would), else thrown away."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def get(job: tuple[int, str]) -> int:
        number, url = job
        with (
            open(into / f"{number}.tgz", "wb") if into else contextlib.nullcontext() as out,
            opener.open(url, timeout=60) as response,
        ):
            total = 0
            while chunk := response.read(256 * 1024):
                total += len(chunk)
                if out:
                    out.write(chunk)
        return total

    started = time.monotonic()
    with ThreadPoolExecutor(jobs) as pool:
        list(pool.map(get, enumerate(urls)))
    return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tarballs", type=int, default=300)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=16)
    parser.add_argument(
        "--limit-rate", default="", help="nginx limit_rate per connection (e.g. 2m), for a network slower than loopback"
    )
    parser.add_argument("--big", type=int, default=0, help="tarballs with a 5-20 MB binary in them (default: none)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="staticreg-bench-mirror-") as scratch_name:
        scratch = Path(scratch_name)
        source = corpus.generate(args.tarballs, scratch / "corpus", big=args.big)
        port = free_port()
        upstream = f"http://127.0.0.1:{port}/"
        registry = scratch / "upstream"
        build(Config(input_dir=source, output_dir=registry, base_url=upstream, site=False), show_progress=False)
        lock, urls = lockfile(registry, upstream)
        lock_path = scratch / "package-lock.json"
        lock_path.write_text(json.dumps(lock, indent=2))
        size = sum(
            (registry / layout.tarball_path(*key)).stat().st_size
            for key in (
                (p.get("name") or k.split("node_modules/")[1], p["version"]) for k, p in lock["packages"].items() if k
            )
        )
        edit = (
            (lambda text: text.replace("autoindex off;", f"autoindex off;\n    limit_rate {args.limit_rate};"))
            if args.limit_rate
            else None
        )
        server = start_nginx(registry, scratch / "nginx", port, edit=edit)
        try:
            bare_times, saved_times, mirror_times = [], [], []
            bare(urls[:10], args.jobs)  # warm nginx and the page cache alike for both
            for _ in range(args.runs):
                bare_times.append(bare(urls, args.jobs))
                saved = scratch / "saved"
                shutil.rmtree(saved, ignore_errors=True)
                saved.mkdir()
                saved_times.append(bare(urls, args.jobs, saved))
                into = scratch / "mirror"
                shutil.rmtree(into, ignore_errors=True)
                options = MirrorOptions(
                    lockfiles=(lock_path,), upstream=upstream, into=into, jobs=args.jobs, show_progress=False
                )
                started = time.monotonic()
                report = mirror(options)
                mirror_times.append(time.monotonic() - started)
                assert not report.failures and len(report.fetched) == len(urls), report.failures[:3]
            started = time.monotonic()
            again = mirror(options)
            rerun = time.monotonic() - started
            assert again.fetched == [] and again.present == len(urls)
        finally:
            server.stop()
    b, f, m = statistics.median(bare_times), statistics.median(saved_times), statistics.median(mirror_times)
    rate = f", limit_rate {args.limit_rate}" if args.limit_rate else ""
    print(
        f"{len(urls)} tarballs ({size / 1e6:.1f} MB), {args.jobs} threads, median of {args.runs}, upstream on nginx at 127.0.0.1{rate}"
    )
    print(f"  bare downloads:   {b:.2f} s  (runs: {', '.join(f'{t:.2f}' for t in bare_times)})")
    print(f"  staticreg mirror: {m:.2f} s  (runs: {', '.join(f'{t:.2f}' for t in mirror_times)})")
    print(f"  bare downloads, each saved to a file: {f:.2f} s  (runs: {', '.join(f'{t:.2f}' for t in saved_times)})")
    print(f"  ratio mirror / bare: {m / b:.2f}; mirror / bare saved to files: {m / f:.2f}")
    print(f"  re-run with everything present: {rerun:.2f} s")


if __name__ == "__main__":
    main()
