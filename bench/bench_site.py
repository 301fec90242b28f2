"""Benchmark the site step: 10,000 packages' records in memory, the site written to disk.

    .venv/bin/python bench/bench_site.py [--packages 10000] [--versions 3] [--corpus bench/corpus/10000]

No tarballs are made or read: the site is built from the model alone, as in a
real build. Prints the site's build time and the bytes of the home page and of
the search index (raw and gzipped, as nginx sends them). Then the READMEs' part
of it side by side: the site's renderer (cmark-gfm) against markdown-it-py
(what rendered them before), each over every distinct README, alternating,
medians of 3, and nh3 (the sanitizer) over the same READMEs; with --corpus, over
the READMEs of a corpus that bench/corpus.py made instead of the bench's own.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import random
import resource
import shutil
import statistics
import sys
import tarfile
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from staticreg.build.output import Staging
from staticreg.build.readmes import ReadmeStore
from staticreg.build.writers import write_documents
from staticreg.config import Config
from staticreg.npm import layout
from staticreg.npm.model import build_registry
from staticreg.npm.records import TarballRecord, pack_manifest
from staticreg.site import untrusted
from staticreg.site.pages import write_site

WORDS = (
    "fast small tiny safe async stream parser json http client server cache config logger color "
    "string array object date time path file glob test mock build bundle css html markdown yaml "
    "queue retry pool worker event emitter promise utility helper format validate schema types"
).split()


def readme(rng: random.Random, name: str, version: str) -> str:
    words = lambda n: " ".join(rng.choice(WORDS) for _ in range(n))  # noqa: E731
    sections = [f"# {name}\n\n{words(40).capitalize()}.\n", f"## Install\n\n```sh\nnpm install {name}@{version}\n```\n"]
    sections.append(
        f"## Usage\n\n```js\nconst x = require('{name}');\nx.{rng.choice(WORDS)}({{ {rng.choice(WORDS)}: true }});\n```\n"
    )
    sections.append(
        "## Options\n\n| option | default | what |\n| --- | --- | --- |\n"
        + "".join(f"| `{rng.choice(WORDS)}` | `{rng.randint(0, 100)}` | {words(8)} |\n" for _ in range(6))
    )
    sections.append(
        "## Notes\n\n" + "".join(f"- {words(12)} ~~{rng.choice(WORDS)}~~ **{rng.choice(WORDS)}**\n" for _ in range(8))
    )
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
            out.append(
                TarballRecord(
                    source=f"{name.replace('/', '-')}-{version}.tgz",
                    size=1000,
                    mtime=mtime + minor * 86400,
                    shasum=hashlib.sha1(digest).hexdigest(),
                    integrity="sha512-" + digest.hex()[:86] + "==",
                    manifest_packed=pack_manifest(manifest),
                    file_count=3,
                    unpacked_size=4000,
                    has_binding_gyp=False,
                    has_shrinkwrap=False,
                    readme=readmes.put(readme(rng, name, version)),
                    readme_filename="README.md",
                )
            )
    return out


def cpu_seconds() -> float:
    """CPU time of this process and its finished workers (wall time is noisy on a shared machine)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def folder_bytes(folder: Path) -> tuple[int, int]:
    files = [p for p in folder.rglob("*") if p.is_file()]
    return len(files), sum(p.stat().st_size for p in files)


def corpus_readmes(corpus: Path) -> list[str]:
    """The README each tarball of a bench/corpus.py corpus has (the reader's pick: README.md)."""
    texts = []
    for path in sorted((corpus / "tarballs").rglob("*.tgz")):
        with tarfile.open(path) as archive:
            member = next((m for m in archive if m.name.lower() == "package/readme.md"), None)
            if member is not None:
                texts.append(archive.extractfile(member).read().decode("utf-8", errors="replace"))
    return texts


def compare_renderers(texts: list[str], rounds: int = 3) -> dict[str, float]:
    """Seconds (medians of `rounds`, taken in turn) to render every text as Markdown with the
    site's renderer and with markdown-it-py as the site had it, and to sanitize the HTML."""
    from markdown_it import MarkdownIt  # only here: the site no longer uses it

    before = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])
    renderers = {"cmark-gfm": untrusted.markdown_to_html, "markdown-it-py": before.render}
    seconds: dict[str, list[float]] = {name: [] for name in renderers}
    for _ in range(rounds):
        for name, render in renderers.items():
            mark = time.perf_counter()
            for text in texts:
                render(text)
            seconds[name].append(time.perf_counter() - mark)
    html = [untrusted.markdown_to_html(text) for text in texts]
    sanitize = []
    for _ in range(rounds):
        mark = time.perf_counter()
        for page in html:
            untrusted.sanitize_html(page)
        sanitize.append(time.perf_counter() - mark)
    medians = {name: statistics.median(times) for name, times in seconds.items()}
    medians["nh3"] = statistics.median(sanitize)
    return medians


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--packages", type=int, default=10_000)
    parser.add_argument("--versions", type=int, default=3, help="mean versions per package")
    parser.add_argument("-j", "--jobs", type=int, default=0, help="worker processes (default: one per core)")
    parser.add_argument("--corpus", type=Path, help="compare the renderers on this bench/corpus.py corpus's READMEs")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="staticreg-bench-site-"))
    try:
        store = ReadmeStore(work / "readmes")
        started = time.perf_counter()
        recs = records(args.packages, args.versions, store)
        made = time.perf_counter() - started
        config = Config(
            input_dir=work / "in", output_dir=work / "out", base_url="https://npm.example.com/", jobs=args.jobs
        )
        registry = build_registry(recs, config, {}, datetime.now(timezone.utc))
        assert not registry.problems, registry.problems[:3]
        readmes = {
            (e.record.readme, e.record.readme_filename) for p in registry.packages.values() for e in p.versions.values()
        }
        if args.corpus:
            texts, source = sorted(set(corpus_readmes(args.corpus))), f"of {args.corpus}"
        else:
            texts, source = sorted({store.get(readme_id) for readme_id, _ in readmes}), "of this bench"
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
    print(
        f"site build               {site_seconds:>10.2f} s  (output: {files:,} files, {total / 1e6:.1f} MB with the documents; "
        f"{site_cpu:.1f} CPU s, {config.workers} worker{'s' if config.workers != 1 else ''})"
    )
    print(f"site build, unchanged    {again_seconds:>10.2f} s")
    print(f"distinct READMEs         {len(readmes):>10,}   (each rendered once; most of the site's time)")
    print(f"documents step           {documents_seconds:>10.2f} s  (the same model's JSON documents, for scale)")
    print(f"per package              {site_seconds / len(registry.packages) * 1000:>10.2f} ms")
    print(f"home page                {len(home):>10,} B  ({gz(home):,} B gzipped)")
    print(f"search index             {len(index):>10,} B  ({gz(index):,} B gzipped), loaded on first search")
    print(f"a package page           {len(package_page):>10,} B")
    render = compare_renderers(texts)
    ratio = render["markdown-it-py"] / render["cmark-gfm"]
    print(
        f"READMEs, side by side    {len(texts):>10,}   distinct READMEs {source}, {sum(map(len, texts)) / 1e6:.1f} MB; "
        "medians of 3, one process"
    )
    print(f"  cmark-gfm (the site's) {render['cmark-gfm']:>10.3f} s")
    print(f"  markdown-it-py         {render['markdown-it-py']:>10.3f} s  ({ratio:.1f}x cmark-gfm's time)")
    print(f"  nh3 on cmark-gfm's     {render['nh3']:>10.3f} s")


if __name__ == "__main__":
    main()
