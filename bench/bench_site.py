"""Benchmark the site step: 10,000 packages' records in memory, the site written to disk.

    .venv/bin/python bench/bench_site.py [--packages 10000] [--versions 3]

No tarballs are made or read: the site is built from the model alone, as in a
real build. Prints the site's build time and the bytes of the home page and of
the search index (raw and gzipped, as nginx sends them).
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import random
import resource
import shutil
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from staticreg import layout
from staticreg.config import Config
from staticreg.model import build_registry
from staticreg.output import Staging
from staticreg.reader import TarballRecord, pack_manifest
from staticreg.readmes import ReadmeStore
from staticreg.site import write_site
from staticreg.writers import write_documents

WORDS = (
    "fast small tiny safe async stream parser json http client server cache config logger color "
    "string array object date time path file glob test mock build bundle css html markdown yaml "
    "queue retry pool worker event emitter promise utility helper format validate schema types"
).split()


def readme(rng: random.Random, name: str, version: str) -> str:
    words = lambda n: " ".join(rng.choice(WORDS) for _ in range(n))  # noqa: E731
    sections = [f"# {name}\n\n{words(40).capitalize()}.\n", f"## Install\n\n```sh\nnpm install {name}@{version}\n```\n"]
    sections.append(f"## Usage\n\n```js\nconst x = require('{name}');\nx.{rng.choice(WORDS)}({{ {rng.choice(WORDS)}: true }});\n```\n")
    sections.append("## Options\n\n| option | default | what |\n| --- | --- | --- |\n" + "".join(
        f"| `{rng.choice(WORDS)}` | `{rng.randint(0, 100)}` | {words(8)} |\n" for _ in range(6)
    ))
    sections.append("## Notes\n\n" + "".join(f"- {words(12)} ~~{rng.choice(WORDS)}~~ **{rng.choice(WORDS)}**\n" for _ in range(8)))
    sections.append(f"\n{words(60).capitalize()}. See [the docs](https://example.com/{name}).\n")
    return "\n".join(sections)


def records(packages: int, versions: int, readmes: ReadmeStore, seed: int = 1) -> list[TarballRecord]:
    rng = random.Random(seed)
    out = []
    names = set()
    while len(names) < packages:
        base = "-".join(rng.choice(WORDS) for _ in range(rng.randint(1, 3))) + f"-{len(names)}"
        names.add(f"@scope{rng.randint(1, 40)}/{base}" if rng.random() < 0.3 else base)
    mtime = datetime(2024, 1, 1, tzinfo=timezone.utc).timestamp()
    for name in sorted(names):
        count = max(1, min(2 * versions - 1, int(rng.expovariate(1 / versions)) + 1))
        deps = dict.fromkeys(rng.sample(sorted(names), 3), "^1.0.0")
        for minor in range(count):
            version = f"1.{minor}.0"
            manifest = {
                "name": name,
                "version": version,
                "description": " ".join(rng.choice(WORDS) for _ in range(rng.randint(5, 15))).capitalize(),
                "keywords": rng.sample(WORDS, rng.randint(0, 6)),
                "license": "MIT",
                "repository": {"type": "git", "url": f"git+https://github.com/example/{name.replace('@', '')}.git"},
                "homepage": f"https://example.com/{name}",
                "author": "Example Person <person@example.com> (https://example.com)",
                "dependencies": deps,
            }
            digest = hashlib.sha512(f"{name}@{version}".encode()).digest()
            out.append(TarballRecord(
                source=f"{name.replace('/', '-')}-{version}.tgz", size=1000, mtime=mtime + minor * 86400,
                shasum=hashlib.sha1(digest).hexdigest(), integrity="sha512-" + digest.hex()[:86] + "==",
                manifest_packed=pack_manifest(manifest), file_count=3, unpacked_size=4000, has_binding_gyp=False, has_shrinkwrap=False,
                readme=readmes.put(readme(rng, name, version)), readme_filename="README.md",
            ))  # fmt: skip
    return out


def cpu_seconds() -> float:
    """CPU time of this process and its finished workers (wall time is noisy on a shared machine)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def folder_bytes(folder: Path) -> tuple[int, int]:
    files = [p for p in folder.rglob("*") if p.is_file()]
    return len(files), sum(p.stat().st_size for p in files)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--packages", type=int, default=10_000)
    parser.add_argument("--versions", type=int, default=3, help="mean versions per package")
    parser.add_argument("-j", "--jobs", type=int, default=0, help="worker processes (default: one per core)")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="staticreg-bench-site-"))
    try:
        store = ReadmeStore(work / "readmes")
        started = time.perf_counter()
        recs = records(args.packages, args.versions, store)
        made = time.perf_counter() - started
        config = Config(input_dir=work / "in", output_dir=work / "out", base_url="https://npm.example.com/", jobs=args.jobs)
        registry = build_registry(recs, config, {}, datetime.now(timezone.utc))
        assert not registry.problems, registry.problems[:3]
        readmes = {(e.record.readme, e.record.readme_filename) for p in registry.packages.values() for e in p.versions.values()}
        with Staging(config.output_dir) as staging:
            mark = time.perf_counter()
            write_documents(registry, staging, config, store)  # for scale: the registry's own step
            documents_seconds = time.perf_counter() - mark
            mark, cpu = time.perf_counter(), cpu_seconds()
            write_site(registry, staging, config, store)
            site_seconds, site_cpu = time.perf_counter() - mark, cpu_seconds() - cpu
            staging.commit()
        out = config.output_dir
        home = (out / layout.SITE_HOME).read_bytes()
        index = (out / layout.SITE_SEARCH_INDEX).read_bytes()
        package_page = (out / layout.site_package_page(next(iter(registry.packages)))).read_bytes()
        files, total = folder_bytes(out)
        # A second build over the first: unchanged pages are compared and linked, not written.
        with Staging(config.output_dir) as staging:
            mark = time.perf_counter()
            write_site(registry, staging, config, store)
            again_seconds = time.perf_counter() - mark
            staging.commit()
    finally:
        shutil.rmtree(work, ignore_errors=True)

    gz = lambda data: len(gzip.compress(data, 6))  # noqa: E731
    print(f"packages                 {len(registry.packages):>10,}")
    print(f"versions                 {registry.version_count:>10,}   (records made in {made:.1f} s)")
    print(f"site build               {site_seconds:>10.2f} s  (output: {files:,} files, {total / 1e6:.1f} MB with the documents; "
          f"{site_cpu:.1f} CPU s, {config.workers} worker{'s' if config.workers != 1 else ''})")
    print(f"site build, unchanged    {again_seconds:>10.2f} s")
    print(f"distinct READMEs         {len(readmes):>10,}   (each rendered once; most of the site's time)")
    print(f"documents step           {documents_seconds:>10.2f} s  (the same model's JSON documents, for scale)")
    print(f"per package              {site_seconds / len(registry.packages) * 1000:>10.2f} ms")
    print(f"home page                {len(home):>10,} B  ({gz(home):,} B gzipped)")
    print(f"search index             {len(index):>10,} B  ({gz(index):,} B gzipped), loaded on first search")
    print(f"a package page           {len(package_page):>10,} B")


if __name__ == "__main__":
    main()
