"""The benchmark: staticreg against the hashing floor and against Verdaccio, side by side.

    .venv/bin/python bench/run.py --sizes 1000,10000 --peer 10000

For every size: generate (or reuse) the corpus, then, alternating, the hashing
floor and staticreg's cold build; then a no-op rebuild and an add-one-tarball
rebuild into the same output, all through the `staticreg build` command line,
with the peak resident memory of the build's whole process tree. For the
--peer size it also installs Verdaccio into bench/work (no uplinks), publishes
the same tarballs into it, serves staticreg's output with nginx, and compares:
the publish loop against the build, documents per second, bytes, and cold
pnpm and npm installs. Everything listens on 127.0.0.1 on free ports. Ratios
are printed, and written with the raw figures to bench/work/results-*.json.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import http.client
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import threading
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from bench.corpus import DEFAULT_ROOT, flat, generate  # noqa: E402
from tests.e2e.npm import DEAD_PROXY, Npm  # noqa: E402
from tests.e2e.servers import Server, free_port, start_nginx, wait_for  # noqa: E402

WORK = HERE / "work"
TOOLS = WORK / "tools"
CHUNK = 1024 * 1024


def log(message: str) -> None:
    print(f"[{datetime.now().strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# -- the hashing floor ----------------------------------------------------------
def _hash_file(path: str) -> int:
    sha1, sha512, size = hashlib.sha1(), hashlib.sha512(), 0
    with open(path, "rb") as f:
        while data := f.read(CHUNK):
            sha1.update(data)
            sha512.update(data)
            size += len(data)
    return size


def hashing_floor(files: list[str], workers: int) -> float:
    """Seconds to sha1 and sha512 every byte of every tarball on `workers` cores."""
    started = time.monotonic()
    with ProcessPoolExecutor(workers) as pool:
        sum(pool.map(_hash_file, files, chunksize=64))
    return time.monotonic() - started


# -- staticreg through its command line, with the peak memory of its process tree --
def _memory(pid: int) -> tuple[int, int]:
    """(proportional set size, resident set size) of one process, in bytes.
    PSS counts pages a forked reader shares with its parent once, not twice."""
    rss = pss = 0
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            if line.startswith("Rss:"):
                rss = int(line.split()[1]) * 1024
            elif line.startswith("Pss:"):
                pss = int(line.split()[1]) * 1024
    return pss, rss


def _tree_rss(root_pid: int) -> tuple[int, int]:
    """(PSS of root_pid and all its descendants, RSS of root_pid) in bytes."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat.rpartition(")")[2].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    total, main, todo = 0, 0, [root_pid]
    while todo:
        pid = todo.pop()
        try:
            pss, rss = _memory(pid)
        except OSError:
            continue
        total += pss
        main = rss if pid == root_pid else main
        todo += children.get(pid, [])
    return total, main


def run_staticreg(config: Path) -> dict:
    """Run `staticreg build -c config -q`; wall seconds and peak RSS (tree and main process)."""
    command = [sys.executable, "-m", "staticreg", "build", "-c", str(config), "-q"]
    started = time.monotonic()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=config.parent)
    peak_tree = peak_main = 0

    def sample() -> None:
        nonlocal peak_tree, peak_main
        while process.poll() is None:
            tree, main = _tree_rss(process.pid)
            peak_tree, peak_main = max(peak_tree, tree), max(peak_main, main)
            time.sleep(0.05)

    sampler = threading.Thread(target=sample)
    sampler.start()
    out, err = process.communicate()
    seconds = time.monotonic() - started
    sampler.join()
    if process.returncode != 0:
        raise RuntimeError(f"staticreg build failed ({process.returncode}):\n{out.decode()}\n{err.decode()}")
    return {"seconds": seconds, "peak_rss_tree": peak_tree, "peak_rss_main": peak_main}


def write_config(work: Path, corpus: Path, base_url: str) -> Path:
    config = work / "staticreg.yml"
    config.write_text(
        f"input: {json.dumps(str(corpus / 'tarballs'))}\n"
        f"output: {json.dumps(str(work / 'out'))}\n"
        f"base_url: {json.dumps(base_url)}\n"
        f"times_file: {json.dumps(str(work / 'times.json'))}\n"
        f"report: {json.dumps(str(work / 'report.json'))}\n"
    )
    return config


def clean_output(work: Path) -> None:
    for path in (work / "out", work / "times.json"):
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()


def bench_build(corpus: Path, work: Path, runs: int, base_url: str, rebuilds: bool = True) -> dict:
    """Hashing floor and cold build (alternating), no-op and add-one rebuilds of one corpus."""
    count = json.loads((corpus / "corpus.json").read_text())["count"]
    work.mkdir(parents=True, exist_ok=True)
    config = write_config(work, corpus, base_url)
    files = sorted(str(p) for p in (corpus / "tarballs").rglob("*.tgz"))
    total_bytes = sum(os.path.getsize(f) for f in files)
    workers = os.cpu_count() or 1
    log(f"{count}: {len(files)} tarballs, {total_bytes / 1e6:.0f} MB; warming the page cache")
    hashing_floor(files, workers)

    floors, colds = [], []
    for run in range(runs):
        floors.append(hashing_floor(files, workers))
        clean_output(work)
        colds.append(run_staticreg(config))
        log(f"{count}: floor {floors[-1]:.2f} s, cold build {colds[-1]['seconds']:.2f} s "
            f"({colds[-1]['seconds'] / floors[-1]:.2f}x), peak {colds[-1]['peak_rss_tree'] / 2**20:.0f} MiB")  # fmt: skip
    report = json.loads((work / "report.json").read_text())

    cold = statistics.median(r["seconds"] for r in colds)
    floor = statistics.median(floors)
    result = {
        "tarballs": len(files),
        "bytes": total_bytes,
        "packages": report["counts"]["packages"],
        "versions": report["counts"]["versions"],
        "floor_seconds": floors,
        "cold": colds,
        "build_timings": report["timings_seconds"],
        "floor": floor,
        "cold_seconds": cold,
        "cold_over_floor": statistics.median(c["seconds"] / f for c, f in zip(colds, floors)),
        "peak_rss_tree_mib": max(r["peak_rss_tree"] for r in colds) / 2**20,
        "peak_rss_main_mib": max(r["peak_rss_main"] for r in colds) / 2**20,
    }
    if not rebuilds:
        return result

    noops = [run_staticreg(config) for _ in range(runs)]
    log(f"{count}: no-op rebuild {statistics.median(r['seconds'] for r in noops):.2f} s")

    extra = json.loads((corpus / "corpus.json").read_text())["extra"]
    source = corpus / "extra" / f"{flat(extra['name'])}-{extra['version']}.tgz"
    added = corpus / "tarballs" / "zz-bench-extra" / source.name
    # The first rebuild after a cold build links every unchanged file into a new tree; from
    # the second on, a rebuild starts from the output before the previous one (the spare),
    # which is what `staticreg serve` does all day. Both are reported; the target is on the second.
    add_ones = []
    for _ in range(runs + 1):
        added.parent.mkdir(exist_ok=True)
        shutil.copy2(source, added)
        try:
            add_ones.append(run_staticreg(config))
        finally:
            shutil.rmtree(added.parent)
        run_staticreg(config)  # back to the corpus as it was
    first, add_ones = add_ones[0], add_ones[1:]
    log(f"{count}: add-one rebuild {statistics.median(r['seconds'] for r in add_ones):.2f} s "
        f"(the first after the cold build: {first['seconds']:.2f} s)")  # fmt: skip

    everything = colds + noops + add_ones + [first]
    result.update(
        noop=noops,
        add_one=add_ones,
        first_add_one=first,
        noop_seconds=statistics.median(r["seconds"] for r in noops),
        add_one_seconds=statistics.median(r["seconds"] for r in add_ones),
        first_add_one_seconds=first["seconds"],
        peak_rss_tree_mib=max(r["peak_rss_tree"] for r in everything) / 2**20,
        peak_rss_main_mib=max(r["peak_rss_main"] for r in everything) / 2**20,
    )
    return result


# -- Verdaccio ------------------------------------------------------------------
def ensure_tools() -> Path:
    """Verdaccio and pnpm, installed by name with npm into bench/work/tools."""
    bin_dir = TOOLS / "node_modules" / ".bin"
    if not (bin_dir / "verdaccio").exists() or not (bin_dir / "pnpm").exists():
        TOOLS.mkdir(parents=True, exist_ok=True)
        # verdaccio-audit asks for node-fetch by a dist-tag ("cjs") that not every mirror keeps.
        (TOOLS / "package.json").write_text(
            json.dumps({"private": True, "overrides": {"verdaccio-audit": {"node-fetch": "^2.7.0"}}})
        )
        log("installing verdaccio@6 and pnpm@10 into bench/work/tools")
        subprocess.run(["npm", "install", "--no-audit", "--no-fund", "verdaccio@6", "pnpm@10"], cwd=TOOLS, check=True)
    return bin_dir


VERDACCIO_CONFIG = """\
storage: ./storage
auth:
  htpasswd:
    file: ./htpasswd
    max_users: 10
uplinks: {}
packages:
  '@*/*':
    access: $all
    publish: $authenticated
  '**':
    access: $all
    publish: $authenticated
max_body_size: 200mb
log: {type: stdout, format: pretty, level: error}
"""


class Verdaccio(Server):
    def __init__(self, bin_dir: Path, folder: Path, port: int):
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
        (folder / "config.yaml").write_text(VERDACCIO_CONFIG)
        self.output = open(folder / "verdaccio.log", "wb")
        process = subprocess.Popen(
            [str(bin_dir / "verdaccio"), "-c", str(folder / "config.yaml"), "-l", f"127.0.0.1:{port}"],
            cwd=folder, stdout=self.output, stderr=subprocess.STDOUT,
        )  # fmt: skip
        super().__init__(process, port, folder / "verdaccio.log")
        wait_for(port, process, timeout=60)
        status, body = self.request("PUT", "/-/user/org.couchdb.user:bench",
                                    {"name": "bench", "password": "bench-password", "type": "user", "roles": []})  # fmt: skip
        if status != 201:
            raise RuntimeError(f"cannot add a Verdaccio user: {status} {body[:300]!r}")
        self.token = json.loads(body)["token"]

    def request(self, method: str, path: str, doc: dict | None = None, token: str | None = None) -> tuple[int, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=600)
        try:
            headers = {"content-type": "application/json"}
            if token:
                headers["authorization"] = f"Bearer {token}"
            conn.request(method, path, json.dumps(doc).encode() if doc is not None else None, headers)
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()

    def stop(self) -> None:
        super().stop()
        self.output.close()


def publish_document(path: Path, port: int) -> tuple[str, dict]:
    """The document `npm publish` PUTs: the manifest, its dist, and the tarball in base64."""
    data = path.read_bytes()
    manifest = readme = None
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        for member in tar:
            if member.name == "package/package.json":
                manifest = json.loads(tar.extractfile(member).read())
            elif member.name == "package/README.md":
                readme = tar.extractfile(member).read().decode()
            if manifest is not None and readme is not None:
                break
    name, version = manifest["name"], manifest["version"]
    filename = f"{name.rpartition('/')[2]}-{version}.tgz"
    manifest.update(
        _id=f"{name}@{version}",
        readme=readme or "",
        dist={
            "integrity": "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode(),
            "shasum": hashlib.sha1(data).hexdigest(),
            "tarball": f"http://127.0.0.1:{port}/{name}/-/{filename}",
        },
    )
    tag = "next" if "-" in version else "latest"
    return name, {
        "_id": name,
        "name": name,
        "description": manifest.get("description", ""),
        "dist-tags": {tag: version},
        "versions": {version: manifest},
        "access": None,
        "readme": readme or "",
        "_attachments": {
            f"{name}-{version}.tgz": {
                "content_type": "application/octet-stream",
                "data": base64.b64encode(data).decode(),
                "length": len(data),
            }
        },
    }


def publish_all(verdaccio: Verdaccio, corpus: Path, connections: int) -> float:
    """Publish every version of every package; packages in parallel, versions in order."""
    packages = json.loads((corpus / "corpus.json").read_text())["packages"]

    def publish_package(package: dict) -> None:
        folder = corpus / "tarballs" / flat(package["name"])
        conn = http.client.HTTPConnection("127.0.0.1", verdaccio.port, timeout=600)
        try:
            for version in package["versions"]:
                name, doc = publish_document(folder / f"{flat(package['name'])}-{version}.tgz", verdaccio.port)
                body = json.dumps(doc).encode()
                conn.request("PUT", "/" + name.replace("/", "%2f"), body,
                             {"content-type": "application/json", "authorization": f"Bearer {verdaccio.token}"})  # fmt: skip
                response = conn.getresponse()
                answer = response.read()
                if response.status not in (200, 201):
                    raise RuntimeError(f"publishing {name}@{version}: {response.status} {answer[:300]!r}")
        finally:
            conn.close()

    started = time.monotonic()
    with ThreadPoolExecutor(connections) as pool:
        list(pool.map(publish_package, sorted(packages, key=lambda p: -len(p["versions"]))))
    return time.monotonic() - started


# -- clients against both registries ----------------------------------------------
def fetch_documents(base_url: str, names_file: Path, mode: str, concurrency: int = 8) -> dict:
    result = subprocess.run(
        ["node", str(HERE / "fetch_documents.mjs"), base_url, str(names_file), mode, str(concurrency)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return json.loads(result.stdout)


def install(client: str, registry: str, project: dict, folder: Path, bin_dir: Path) -> float:
    """A cold install: empty cache and store, no lockfile, nothing but `registry` reachable."""
    if folder.exists():
        shutil.rmtree(folder)
    npm = Npm(folder, registry)
    project_dir = folder / "project"
    project_dir.mkdir()
    (project_dir / "package.json").write_text(json.dumps(project))
    started = time.monotonic()
    if client == "npm":
        npm.run("install", cwd=project_dir)
    else:
        (npm.home / ".npmrc").write_text(
            npm.npmrc() + f"store-dir={folder / 'store'}\ncache-dir={folder / 'pnpm-cache'}\n"
        )
        result = subprocess.run([str(bin_dir / "pnpm"), "install", "--reporter=silent"], cwd=project_dir,
                                env=npm.env(), capture_output=True, text=True, timeout=900)  # fmt: skip
        if result.returncode != 0:
            raise RuntimeError(f"pnpm install failed:\n{result.stdout}\n{result.stderr}")
    seconds = time.monotonic() - started
    installed = sum(1 for _ in project_dir.glob("node_modules/**/package.json"))
    shutil.rmtree(folder)
    if installed < len(project["dependencies"]):
        raise RuntimeError(f"{client} from {registry} installed only {installed} package.json files")
    return seconds


def bench_peer(count: int, runs: int, nginx_port: int, build: dict) -> dict:
    corpus = DEFAULT_ROOT / str(count)
    work = WORK / str(count)
    layout = json.loads((corpus / "corpus.json").read_text())
    bin_dir = ensure_tools()
    nginx = start_nginx(work / "out", work / "nginx", nginx_port)
    verdaccio = Verdaccio(bin_dir, work / "verdaccio", free_port())
    results: dict = {}
    try:
        log(f"{count}: publishing into Verdaccio on port {verdaccio.port}")
        results["verdaccio_publish_seconds"] = publish_all(verdaccio, corpus, connections=4)
        results["publish_over_build"] = results["verdaccio_publish_seconds"] / build["cold_seconds"]
        log(f"{count}: Verdaccio publish loop {results['verdaccio_publish_seconds']:.1f} s")

        names_file = work / "names.txt"
        names_file.write_text("\n".join(p["name"] for p in layout["packages"]) + "\n")
        registries = {"staticreg": f"http://127.0.0.1:{nginx_port}/", "verdaccio": f"http://127.0.0.1:{verdaccio.port}/"}
        docs: dict[str, list] = {"staticreg": [], "verdaccio": []}
        for run in range(max(3, runs)):
            for name in (("staticreg", "verdaccio") if run % 2 == 0 else ("verdaccio", "staticreg")):
                docs[name].append(fetch_documents(registries[name], names_file, "corgi"))
        for name, got in docs.items():
            if any(d["failures"] for d in got):
                raise RuntimeError(f"document fetches failed on {name}: {got}")
        rate = {n: statistics.median(d["requests"] / d["seconds"] for d in got) for n, got in docs.items()}
        results["documents"] = docs
        results["docs_per_second"] = rate
        results["docs_rate_ratio"] = rate["staticreg"] / rate["verdaccio"]
        full = fetch_documents(registries["staticreg"], names_file, "full")
        verdaccio_full = fetch_documents(registries["verdaccio"], names_file, "full")
        results["bytes"] = {
            "staticreg_abbreviated_gzip": docs["staticreg"][0]["bytes"],
            "staticreg_full_plain": full["bytes"],
            "verdaccio_abbreviated_gzip": docs["verdaccio"][0]["bytes"],
            "verdaccio_full_plain": verdaccio_full["bytes"],
        }
        results["bytes_ratio"] = docs["staticreg"][0]["bytes"] / full["bytes"]
        log(f"{count}: documents/s {rate}, bytes {results['bytes']}")

        project = {"name": "bench-project", "version": "1.0.0", "private": True, "dependencies": layout["project"]}
        installs: dict = {}
        for client in ("pnpm", "npm"):
            times: dict[str, list[float]] = {"staticreg": [], "verdaccio": []}
            for run in range(runs):
                for name in (("verdaccio", "staticreg") if run % 2 == 0 else ("staticreg", "verdaccio")):
                    seconds = install(client, registries[name], project, work / f"install-{client}-{name}", bin_dir)
                    times[name].append(seconds)
                    log(f"{count}: {client} install from {name}: {seconds:.1f} s")
            median = {n: statistics.median(t) for n, t in times.items()}
            installs[client] = {"runs": times, "median": median, "ratio": median["staticreg"] / median["verdaccio"]}
        results["installs"] = installs
        results["project_dependencies"] = len(layout["project"])
    finally:
        verdaccio.stop()
        nginx.stop()
    return results


# -- report ---------------------------------------------------------------------
def machine() -> str:
    mem = next(line for line in open("/proc/meminfo") if line.startswith("MemTotal")).split()[1]
    os_name = next((line.split("=", 1)[1].strip().strip('"') for line in open("/etc/os-release")
                    if line.startswith("PRETTY_NAME=")), sys.platform)  # fmt: skip
    node = subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()
    return (f"{os.cpu_count()} cores, {int(mem) / 2**20:.0f} GiB RAM, {os_name}, "
            f"Python {sys.version.split()[0]}, Node.js {node}")  # fmt: skip


def summary(builds: dict[int, dict], peer: dict | None) -> str:
    lines = [f"date: {datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}", f"machine: {machine()}", ""]
    lines.append("tarballs | MB | floor s | cold s | cold/floor | no-op s | no-op/cold | add-one s (first after cold) | peak MiB (PSS of all processes / RSS of the main one)")
    for count, b in sorted(builds.items()):
        noop = (f"{b['noop_seconds']:.2f} | {b['noop_seconds'] / b['cold_seconds']:.1%} | "
                f"{b['add_one_seconds']:.2f} ({b['first_add_one_seconds']:.2f})"
                if "noop_seconds" in b else "- | - | -")  # fmt: skip
        lines.append(
            f"{b['tarballs']} | {b['bytes'] / 1e6:.0f} | {b['floor']:.2f} | {b['cold_seconds']:.2f} | "
            f"{b['cold_over_floor']:.2f} | {noop} | {b['peak_rss_tree_mib']:.0f}/{b['peak_rss_main_mib']:.0f}"
        )
    sizes = sorted(builds)
    for small, large in zip(sizes, sizes[1:]):
        a, b = builds[small], builds[large]
        per_a = a["cold_seconds"] / a["tarballs"] * 1000
        per_b = b["cold_seconds"] / b["tarballs"] * 1000
        exponent = (b["cold_seconds"] / a["cold_seconds"]) and __import__("math").log(
            b["cold_seconds"] / a["cold_seconds"]) / __import__("math").log(b["tarballs"] / a["tarballs"])  # fmt: skip
        lines.append(f"slope {small} -> {large}: {per_a:.2f} -> {per_b:.2f} s per 1000 tarballs; "
                     f"time grows as n^{exponent:.2f}")  # fmt: skip
    if peer:
        lines += [
            "",
            f"Verdaccio publish loop {peer['verdaccio_publish_seconds']:.1f} s vs cold build "
            f"{peer['build_seconds']:.1f} s: {peer['publish_over_build']:.1f}x",
            f"package documents/s (abbreviated, gzip, 8 at a time): staticreg+nginx "
            f"{peer['docs_per_second']['staticreg']:.0f}, Verdaccio {peer['docs_per_second']['verdaccio']:.0f}: "
            f"{peer['docs_rate_ratio']:.1f}x",
            f"bytes: abbreviated+gzip {peer['bytes']['staticreg_abbreviated_gzip'] / 1e6:.1f} MB vs full plain "
            f"{peer['bytes']['staticreg_full_plain'] / 1e6:.1f} MB: {peer['bytes_ratio']:.2f}x "
            f"(Verdaccio: {peer['bytes']['verdaccio_abbreviated_gzip'] / 1e6:.1f} MB vs "
            f"{peer['bytes']['verdaccio_full_plain'] / 1e6:.1f} MB)",
        ]
        for client, r in peer["installs"].items():
            lines.append(
                f"{client} cold install of {peer['project_dependencies']} dependencies, median of "
                f"{len(r['runs']['staticreg'])}: staticreg+nginx {r['median']['staticreg']:.1f} s, "
                f"Verdaccio {r['median']['verdaccio']:.1f} s: {r['ratio']:.2f}x"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000,10000", help="corpus sizes, comma-separated")
    parser.add_argument("--runs", type=int, default=3, help="runs of each timed step (medians are reported)")
    parser.add_argument("--peer", type=int, default=0, help="the size to compare with Verdaccio at (0: none)")
    parser.add_argument("--cold-only", action="store_true", help="no no-op and add-one rebuilds (for 100,000)")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    if args.peer and args.peer not in sizes:
        sizes.append(args.peer)
    builds, peer = {}, None
    for count in sorted(sizes):
        port = free_port()
        corpus = generate(count, DEFAULT_ROOT)
        builds[count] = bench_build(corpus, WORK / str(count), args.runs, f"http://127.0.0.1:{port}/",
                                    rebuilds=not args.cold_only)  # fmt: skip
        if count == args.peer:
            peer = bench_peer(count, args.runs, port, builds[count])
            peer["build_seconds"] = builds[count]["cold_seconds"]
    text = summary(builds, peer)
    print(text)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    (WORK / f"results-{stamp}.json").write_text(json.dumps({"builds": builds, "peer": peer, "summary": text}, indent=1))


if __name__ == "__main__":
    main()
