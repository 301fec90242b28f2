"""The reader's two ways of reading a tarball, side by side: the fast path (the tarball
whole in memory, its headers walked in one loop) against the streaming reader (tarfile's
walk over the inflating stream), on the same tarballs, in one process, alternating.

    .venv/bin/python bench/bench_reader.py --count 10000 --tarballs 3000 --runs 5

Each run reads the first --tarballs tarballs of the corpus (bench/corpus.py, generated
if missing) with `reader.read_tarball`, both ways, first without a copy (the CPU's
cost), then copying each into bench/runs/reader-scratch as the build does (the disk's
too); the read floor (sha1, sha512 and inflate of the same bytes) runs beside them.
Prints the medians and the ratios; writes every figure to bench/runs/reader-<count>.json.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from bench.corpus import DEFAULT_ROOT, generate  # noqa: E402
from bench.run import WORK, _read_file, log  # noqa: E402
from staticreg.build import reader  # noqa: E402


def read_all(files: list[Path], scratch: Path | None, whole: bool) -> float:
    """Seconds to read every file, copying each into `scratch` (as the build does) if given."""
    if scratch is not None:
        shutil.rmtree(scratch, ignore_errors=True)
        scratch.mkdir(parents=True)
    started = time.monotonic()
    for i, path in enumerate(files):
        reader.read_tarball(path, path.name, None if scratch is None else scratch / f"{i}.tgz", whole=whole)
    return time.monotonic() - started


def floor(files: list[Path]) -> float:
    started = time.monotonic()
    for path in files:
        _read_file(str(path))
    return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=10000, help="the corpus (bench/corpus.py) to read from")
    parser.add_argument("--tarballs", type=int, default=3000, help="how many of its tarballs each run reads")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    corpus = generate(args.count, DEFAULT_ROOT)
    files = sorted((corpus / "tarballs").rglob("*.tgz"))[: args.tarballs]
    scratch = WORK / "reader-scratch"
    read_all(files, scratch, whole=True)  # the page cache, and the imports
    figures: dict[str, list[float]] = {"floor": [], "fast": [], "streaming": [], "fast+copy": [], "streaming+copy": []}
    for run in range(args.runs):
        figures["floor"].append(floor(files))
        figures["fast"].append(read_all(files, None, whole=True))
        figures["streaming"].append(read_all(files, None, whole=False))
        figures["fast+copy"].append(read_all(files, scratch, whole=True))
        figures["streaming+copy"].append(read_all(files, scratch, whole=False))
        log(f"run {run + 1}: " + ", ".join(f"{k} {v[-1]:.2f} s" for k, v in figures.items()))
    shutil.rmtree(scratch, ignore_errors=True)
    medians = {k: statistics.median(v) for k, v in figures.items()}
    print(
        f"{len(files)} tarballs, medians of {args.runs}: read floor {medians['floor']:.2f} s, "
        f"fast path {medians['fast']:.2f} s ({medians['fast'] / medians['floor']:.1f}x the floor), "
        f"streaming {medians['streaming']:.2f} s ({medians['streaming'] / medians['floor']:.1f}x); "
        f"streaming / fast {medians['streaming'] / medians['fast']:.2f}x. With the copies: fast "
        f"{medians['fast+copy']:.2f} s, streaming {medians['streaming+copy']:.2f} s "
        f"({medians['streaming+copy'] / medians['fast+copy']:.2f}x)"
    )
    out = WORK / f"reader-{args.count}.json"
    out.write_text(json.dumps({"tarballs": len(files), "runs": figures, "medians": medians}, indent=1))


if __name__ == "__main__":
    main()
