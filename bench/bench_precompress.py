"""What the build's gzip copies of package documents cost and what they pay, side by side.

    .venv/bin/python bench/bench_precompress.py --count 2000 --runs 3

On one corpus (bench/corpus.py, generated if missing): cold builds with and
without the copies (`precompress: false`), alternating, and add-one rebuilds the
same way; which files would pay for a copy (bytes, gzip level 9 bytes, seconds to
compress, for each kind of file the build writes); then both outputs served by
nginx with `staticreg server-config nginx --standalone`, each on its own port on
127.0.0.1: bytes on the wire for the package documents of the install project's
dependency closure (a Python client sending Accept-Encoding: gzip, with npm's and
with pnpm's Accept header), and documents per second with wrk (every package's
document in turn, pnpm's Accept header and gzip; apt-get install wrk), alternating.
Writes every figure to bench/runs/precompress-<count>.json.
"""

from __future__ import annotations

import argparse
import http.client
import json
import resource
import shutil
import statistics
import sys
import time
from pathlib import Path

import semantic_version

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from bench.corpus import DEFAULT_ROOT, flat, generate  # noqa: E402
from bench.run import WORK, clean_output, log, run_staticreg, write_config, wrk_binary, wrk_documents  # noqa: E402
from staticreg.build.output import gzip_copy  # noqa: E402
from staticreg.npm import layout  # noqa: E402
from tests.e2e.servers import free_port, start_nginx  # noqa: E402

FULL = "application/json"
ABBREVIATED = "application/vnd.npm.install-v1+json; q=1.0, application/json; q=0.8, */*"
SETTINGS = ("with", "without")


def timed_build(config: Path) -> dict:
    """One build through the command line: wall seconds, CPU seconds of the build and its
    workers (less disturbed than wall time by others on a shared machine), and the seconds
    of its write stage (where the copies are made), from its report."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    seconds = run_staticreg(config)["seconds"]
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    report = json.loads((config.parent / "report.json").read_text())
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return {"seconds": seconds, "cpu_seconds": cpu, "write_seconds": report["timings_seconds"].get("write", 0.0)}


def kind(relative: str) -> str:
    filename = relative.rpartition("/")[2]
    if layout.package_of_document(relative):
        return "package documents (full)"
    if filename == layout.ABBREVIATED_DOCUMENT:
        return "package documents (abbreviated)"
    if layout.is_version_document(relative):
        return "version and tag documents"
    if relative == layout.SITE_SEARCH_INDEX:
        return "the site's search index"
    if relative.endswith(".html") and (relative.startswith(layout.SITE_DIR) or relative == layout.SITE_HOME):
        return "the site's pages"
    if layout.kind_of(relative) == layout.DOCUMENT:
        return "dist-tags, ping, keys"
    return ""


def candidates(root: Path) -> dict[str, dict]:
    """For each kind of file: files, bytes, gzip level 9 bytes, seconds to compress them all."""
    found: dict[str, dict] = {}
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root).as_posix()
        what = kind(relative) if path.is_file() and not relative.endswith(layout.PRECOMPRESSED_SUFFIX) else ""
        if not what:
            continue
        data = path.read_bytes()
        started = time.perf_counter()
        packed = gzip_copy(data)
        row = found.setdefault(what, {"files": 0, "bytes": 0, "gzip_bytes": 0, "seconds": 0.0, "under_512": 0})
        row["seconds"] += time.perf_counter() - started
        row["files"] += 1
        row["bytes"] += len(data)
        row["gzip_bytes"] += len(packed)
        row["under_512"] += len(data) < 512
    return found


def closure(root: Path, project: dict[str, str]) -> list[str]:
    """The packages an install of `project` fetches a document of: its dependencies, and theirs,
    each at the highest version its range allows (read from the built documents)."""
    seen: set[str] = set()
    todo = list(project.items())
    while todo:
        name, wanted = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        document = json.loads((root / layout.packument_path(name)).read_bytes())
        spec = semantic_version.NpmSpec(wanted)
        version = max(
            (v for v in document["versions"] if semantic_version.Version(v) in spec), key=semantic_version.Version
        )
        todo += list((document["versions"][version].get("dependencies") or {}).items())
    return sorted(seen)


def wire_bytes(port: int, names: list[str], accept: str, encoding: str | None) -> int:
    """Body bytes as sent (nothing inflated), every document in turn on one keep-alive connection."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    total = 0
    try:
        for name in names:
            asked = {"Accept": accept} | ({"Accept-Encoding": encoding} if encoding else {})
            connection.request("GET", "/" + name.replace("/", "%2f"), headers=asked)
            response = connection.getresponse()
            body = response.read()
            if response.status != 200:
                raise RuntimeError(f"{name}: {response.status}")
            total += len(body)
    finally:
        connection.close()
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=2000, help="corpus size (tarballs)")
    parser.add_argument("--runs", type=int, default=3, help="runs of each timed step (medians are reported)")
    parser.add_argument("--seconds", type=float, default=10, help="length of each wrk round")
    parser.add_argument("--corpus-root", type=Path, default=DEFAULT_ROOT, help="where corpora are (and are generated)")
    parser.add_argument("--work", type=Path, default=WORK, help="where the outputs and results go")
    args = parser.parse_args()
    wrk_binary()  # before the builds, not after them
    corpus = generate(args.count, args.corpus_root)  # reused when it is there
    described = json.loads((corpus / "corpus.json").read_text())
    ports = {setting: free_port() for setting in SETTINGS}
    works = {setting: args.work / f"precompress-{args.count}-{setting}" for setting in SETTINGS}
    configs = {}
    for setting, work in works.items():
        work.mkdir(parents=True, exist_ok=True)
        configs[setting] = write_config(work, corpus, f"http://127.0.0.1:{ports[setting]}/")
        if setting == "without":
            with configs[setting].open("a") as f:
                f.write("precompress: false\n")
    results: dict = {
        "count": args.count,
        "runs": args.runs,
        "cold": {s: [] for s in SETTINGS},
        "add_one": {s: [] for s in SETTINGS},
    }

    log(f"{args.count}: warming the page cache")
    clean_output(works["with"])
    run_staticreg(configs["with"])
    for run in range(args.runs):  # cold builds, alternating which goes first
        for setting in SETTINGS if run % 2 == 0 else SETTINGS[::-1]:
            clean_output(works[setting])
            results["cold"][setting].append(timed_build(configs[setting]))
            log(f"{args.count}: cold build {setting} copies: {results['cold'][setting][-1]}")
    extra = described["extra"]
    source = corpus / "extra" / f"{flat(extra['name'])}-{extra['version']}.tgz"
    added = corpus / "tarballs" / "zz-bench-extra" / source.name
    for run in range(args.runs):  # add one tarball, then take it out again
        for setting in SETTINGS if run % 2 == 0 else SETTINGS[::-1]:
            added.parent.mkdir(exist_ok=True)
            shutil.copy2(source, added)
            try:
                results["add_one"][setting].append(timed_build(configs[setting]))
            finally:
                shutil.rmtree(added.parent)
            run_staticreg(configs[setting])
            log(f"{args.count}: add-one rebuild {setting} copies: {results['add_one'][setting][-1]}")
    outputs = {setting: work / "out" for setting, work in works.items()}
    results["copies"] = sum(1 for _ in outputs["with"].rglob(f"*{layout.PRECOMPRESSED_SUFFIX}"))
    results["candidates"] = candidates(outputs["without"])

    names = [p["name"] for p in described["packages"]]
    installed = closure(outputs["with"], described["project"])
    names_file = args.work / f"precompress-{args.count}-names.txt"
    names_file.write_text("\n".join(names) + "\n")
    servers = {s: start_nginx(outputs[s], works[s] / "nginx", ports[s]) for s in SETTINGS}
    try:
        results["install_documents"] = len(installed)
        results["bytes"] = {
            s: {
                f"{client} {encoding or 'plain'}": wire_bytes(ports[s], installed, accept, encoding)
                for client, accept in (("npm", FULL), ("pnpm", ABBREVIATED))
                for encoding in ("gzip", None)
            }
            for s in SETTINGS
        }
        rounds: dict[str, list] = {s: [] for s in SETTINGS}
        for run in range(args.runs):
            for setting in SETTINGS if run % 2 == 0 else SETTINGS[::-1]:
                got = wrk_documents(
                    f"http://127.0.0.1:{ports[setting]}/", names_file, args.seconds, [servers[setting].process.pid]
                )
                if got["failures"]:
                    raise RuntimeError(f"wrk against the registry {setting} copies: {got}")
                rounds[setting].append(got)
                log(f"{args.count}: wrk {setting} copies: {got['rate']:.0f} documents/s")
        results["wrk"] = rounds
    finally:
        for server in servers.values():
            server.stop()
    out = args.work / f"precompress-{args.count}.json"
    out.write_text(json.dumps(results, indent=2))
    print(summary(results))
    log(f"wrote {out}")


def summary(r: dict) -> str:
    median = statistics.median
    lines = [
        (
            f"{r['count']} tarballs, medians of {r['runs']} (every run in precompress-{r['count']}.json); "
            f"{r['copies']} copies"
        )
    ]
    for step, label in (("cold", "cold build"), ("add_one", "add-one rebuild")):
        for key, what in (("seconds", "wall"), ("cpu_seconds", "CPU"), ("write_seconds", "write stage")):
            got = {s: [run[key] for run in r[step][s]] for s in SETTINGS}
            w, o = median(got["with"]), median(got["without"])
            lines.append(
                f"{label}, {what} s: with copies {w:.2f}, without {o:.2f}: {w / o:.3f}x "
                f"(runs: {[round(x, 2) for x in got['with']]} / {[round(x, 2) for x in got['without']]})"
            )
    lines.append("what a copy would pay for, by kind (gzip level 9, one core):")
    for what, c in sorted(r["candidates"].items()):
        lines.append(
            f"  {what:34} {c['files']:6} files {c['bytes'] / 1e6:8.2f} MB -> {c['gzip_bytes'] / 1e6:7.2f} MB "
            f"({c['gzip_bytes'] / c['bytes']:.2f}) in {c['seconds']:.2f} s; {c['under_512']} under 512 B"
        )
    lines.append(f"bytes on the wire, the {r['install_documents']} package documents of the install project's closure:")
    for key in r["bytes"]["with"]:
        w, o = r["bytes"]["with"][key], r["bytes"]["without"][key]
        lines.append(f"  {key:12} with copies {w:>10,} B, without {o:>10,} B: {w / o:.3f}x")
    rate = {s: median(x["rate"] for x in r["wrk"][s]) for s in SETTINGS}
    cpu = {s: median(x["server_cpu_seconds"] / x["seconds"] for x in r["wrk"][s]) for s in SETTINGS}
    lines.append(
        f"documents/s with wrk: with copies {rate['with']:.0f}, without {rate['without']:.0f}: "
        f"{rate['with'] / rate['without']:.2f}x (nginx's cores busy: {cpu['with']:.2f} vs {cpu['without']:.2f}); "
        f"rounds with {[round(x['rate']) for x in r['wrk']['with']]}, "
        f"without {[round(x['rate']) for x in r['wrk']['without']]}"
    )
    per = {s: median(x["server_cpu_seconds"] / x["requests"] * 1e6 for x in r["wrk"][s]) for s in SETTINGS}
    lines.append(f"nginx CPU per document: with copies {per['with']:.0f} us, without {per['without']:.0f} us")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
