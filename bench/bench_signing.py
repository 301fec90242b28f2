"""Benchmark signing: making every package's documents with and without a signing key.

    .venv/bin/python bench/bench_signing.py [--packages 10000] [--versions 3] [--runs 3]

The registry is made in memory as bench_site.py makes it (no tarballs). Each run makes
every package's manifests and its full and abbreviated documents' bytes, as
writers.write_package does, unsigned and signed alternating; nothing is written to disk
(writing files is the build's cost whether it signs or not, and the shared disk's noise
would hide the difference). Prints the medians, their ratio and the cost per version.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_site import records
from staticreg.build.readmes import ReadmeStore
from staticreg.config import Config
from staticreg.keyfiles import generate
from staticreg.npm import documents
from staticreg.npm.model import build_registry
from staticreg.npm.signatures import Keyring


def make_documents(registry, keyring) -> int:
    made = 0
    for package in registry.packages.values():
        manifests = documents.version_manifests(package, keyring)
        made += len(documents.dumps(documents.packument(package, manifests, None)))
        made += len(documents.dumps(documents.abbreviated(package, manifests)))
    return made


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--packages", type=int, default=10_000)
    parser.add_argument("--versions", type=int, default=3, help="mean versions per package")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="staticreg-bench-signing-"))
    try:
        store = ReadmeStore(work / "readmes")
        recs = records(args.packages, args.versions, store)
        config = Config(input_dir=work / "in", output_dir=work / "out", base_url="https://npm.example.com/")
        keyring = Keyring(generate(work / "key.pem"))
        registry = build_registry(recs, config, {}, datetime.now(timezone.utc))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    seconds: dict[str, list[float]] = {"unsigned": [], "signed": []}
    for _ in range(args.runs):
        for label, ring in (("unsigned", None), ("signed", keyring)):
            mark = time.process_time()
            make_documents(registry, ring)
            seconds[label].append(time.process_time() - mark)
    unsigned, signed = statistics.median(seconds["unsigned"]), statistics.median(seconds["signed"])
    versions = registry.version_count
    print(f"packages, versions       {len(registry.packages):,}, {versions:,}")
    print(
        f"documents, unsigned      {unsigned:.2f} CPU s   (runs: {', '.join(f'{s:.2f}' for s in seconds['unsigned'])})"
    )
    print(f"documents, signed        {signed:.2f} CPU s   (runs: {', '.join(f'{s:.2f}' for s in seconds['signed'])})")
    print(f"signed / unsigned        {signed / unsigned:.2f}x")
    print(
        f"per signed version       {(signed - unsigned) / versions * 1e6:.0f} us ({(signed - unsigned) / versions * 1e5:.1f} s per 100,000 versions)"
    )


if __name__ == "__main__":
    main()
