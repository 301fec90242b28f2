"""The benchmark: staticreg against the read floor and against Verdaccio, side by side.

    .venv/bin/python bench/run.py --sizes 1000,10000 --peer 10000

For every size: generate (or reuse) the corpus, then, alternating, the read floor
(sha1, sha512 and inflate of every byte, in as many processes as the build uses)
and staticreg's cold build, and the write floor (the cold build's output written
again from memory: its folders and files, and nothing else); then a no-op rebuild and an add-one-tarball
rebuild into the same output, all through the `staticreg build` command line,
with the peak resident memory of the build's whole process tree and the files
and folders the cold build wrote. For the
--peer size it also installs Verdaccio into bench/runs (no uplinks), publishes
the same tarballs into it, serves staticreg's output with nginx, and compares:
the publish loop against the build, documents per second (wrk, which the peer
comparison needs: apt-get install wrk; and the Node.js client), bytes, and cold
pnpm and npm installs; then all of it again with the build's gzip copies of the
package documents (NAME.gz, which nginx's gzip_static sends) moved out of the
served tree, and pnpm's own cost with no network. Everything listens on 127.0.0.1 on free ports. Ratios
are printed, and written with the raw figures to bench/runs/results-*.json.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import http.client
import io
import itertools
import json
import os
import resource
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
from staticreg.build import reader  # noqa: E402
from staticreg.npm import layout  # noqa: E402
from tests.e2e.npm import Npm  # noqa: E402
from tests.e2e.servers import Server, free_port, start_nginx, wait_for  # noqa: E402

WORK = HERE / "runs"  # outputs, tools and figures of every run (ignored by git)
TOOLS = WORK / "tools"
CHUNK = 1024 * 1024


def log(message: str) -> None:
    print(f"[{datetime.now().astimezone().strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# -- the read floor -------------------------------------------------------------
def _read_file(path: str) -> int:
    """sha1 and sha512 of every byte of one tarball, and every byte inflated with the
    inflate the build uses: what any build must do to a tarball, and nothing more."""
    sha1, sha512, size = hashlib.sha1(), hashlib.sha512(), 0
    inflate = reader.gunzip()  # the reader's own inflate (ISA-L where installed)
    with open(path, "rb") as f:
        while data := f.read(CHUNK):
            sha1.update(data)
            sha512.update(data)
            size += len(data)
            while data:
                inflate.decompress(data, 4 * CHUNK)
                data = inflate.unconsumed_tail
    return size


def read_floor(files: list[str], workers: int) -> float:
    """Seconds to sha1, sha512 and inflate every tarball in `workers` processes (as many as the build uses)."""
    started = time.monotonic()
    with ProcessPoolExecutor(workers) as pool:
        sum(pool.map(_read_file, files, chunksize=64))
    return time.monotonic() - started


# -- the write floor --------------------------------------------------------------
def load_tree(folder: Path) -> tuple[list[str], list[tuple[str, bytes]]]:
    """Every folder and file (with its bytes) under `folder`, relative to it; links are
    taken as files (the build makes a few as hard links)."""
    folders, files = [], []
    for dirpath, _, filenames in os.walk(folder):
        relative = os.path.relpath(dirpath, folder)
        folders.append(relative)
        for name in filenames:
            with open(os.path.join(dirpath, name), "rb") as f:
                files.append((name if relative == "." else f"{relative}/{name}", f.read()))
    return folders, files


def write_floor(tree: tuple[list[str], list[tuple[str, bytes]]], target: Path) -> float:
    """Seconds to make the folders and write the files of `tree` (load_tree of a cold
    build's output) under `target`, from memory, in one process: what the disk charges
    for the files a registry is, with no work of the build's at all. `target` is removed
    after, outside the time."""
    folders, files = tree
    shutil.rmtree(target, ignore_errors=True)
    started = time.monotonic()
    for relative in folders:
        os.makedirs(target / relative, exist_ok=True)
    for relative, data in files:
        with open(target / relative, "wb") as f:
            f.write(data)
    seconds = time.monotonic() - started
    shutil.rmtree(target)
    return seconds


def least_of(tree: tuple[list[str], list[tuple[str, bytes]]]) -> tuple[list[str], list[tuple[str, bytes]]]:
    """The least a registry is, of a load_tree: the tarballs and the package documents
    (every client needs them; nothing else is), with their folders."""
    files = [(rel, data) for rel, data in tree[1] if rel.endswith(".tgz") or layout.package_of_document(rel)]
    folders = sorted({os.path.dirname(rel) for rel, _ in files})
    return folders, files


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


def _children() -> dict[int, list[int]]:
    """Every process's children, from /proc."""
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
    return children


def _tree_rss(root_pid: int) -> tuple[int, int]:
    """(PSS of root_pid and all its descendants, RSS of root_pid) in bytes."""
    children = _children()
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


def tree_cpu_seconds(root_pid: int) -> float:
    """CPU seconds (user + system) used so far by root_pid and its living descendants."""
    children, ticks = _children(), os.sysconf("SC_CLK_TCK")
    total, todo = 0, [root_pid]
    while todo:
        pid = todo.pop()
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rpartition(")")[2].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
        todo += children.get(pid, [])
    return total / ticks


def run_staticreg(config: Path) -> dict:
    """Run `staticreg build -c config -q`; wall seconds and peak RSS (tree and main process)."""
    command = [sys.executable, "-m", "staticreg", "build", "-c", str(config), "-q"]
    started = time.monotonic()
    # As an installed staticreg runs: with its bytecode compiled once (pip compiles it at
    # install), also where the environment says not to write bytecode.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(WORK / "pycache")
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=config.parent, env=env)
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


def tree_counts(folder: Path) -> tuple[int, int]:
    """(files, folders) under `folder`, the folder itself counted: what `find folder -type f`
    and `find folder -type d` count."""
    files, folders = 0, 0
    for _, _, filenames in os.walk(folder):
        folders += 1
        files += len(filenames)
    return files, folders


def clean_output(work: Path) -> None:
    """Everything a build leaves, so that the next one is cold: the output, the times file,
    and the state beside the output (cache, READMEs, spare, lock)."""
    for path in [work / "out", work / "times.json", *work.glob(".out.staticreg*")]:
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()


def bench_build(corpus: Path, work: Path, runs: int, base_url: str, rebuilds: bool = True) -> dict:
    """Read floor and cold build (alternating), no-op and add-one rebuilds of one corpus."""
    count = json.loads((corpus / "corpus.json").read_text())["count"]
    work.mkdir(parents=True, exist_ok=True)
    config = write_config(work, corpus, base_url)
    files = sorted(str(p) for p in (corpus / "tarballs").rglob("*.tgz"))
    total_bytes = sum(os.path.getsize(f) for f in files)
    workers = os.cpu_count() or 1
    log(f"{count}: {len(files)} tarballs, {total_bytes / 1e6:.0f} MB; warming the page cache")
    read_floor(files, workers)

    floors, colds, write_floors, least_floors = [], [], [], []
    tree = least = None  # the first cold build's output, and its least part: what every write floor writes
    for _ in range(runs):
        floors.append(read_floor(files, workers))
        clean_output(work)
        colds.append(run_staticreg(config))
        if tree is None:
            tree = load_tree(work / "out")
            least = least_of(tree)
        write_floors.append(write_floor(tree, work / "write-floor"))
        least_floors.append(write_floor(least, work / "write-floor"))
        log(
            f"{count}: read floor {floors[-1]:.2f} s, write floor {write_floors[-1]:.2f} s "
            f"(tarballs and package documents alone {least_floors[-1]:.2f} s), cold build "
            f"{colds[-1]['seconds']:.2f} s ({colds[-1]['seconds'] / floors[-1]:.2f}x the read floor, "
            f"{colds[-1]['seconds'] / (floors[-1] + write_floors[-1]):.2f}x both), "
            f"peak {colds[-1]['peak_rss_tree'] / 2**20:.0f} MiB"
        )
    del tree, least
    report = json.loads((work / "report.json").read_text())
    files_written, folders_written = tree_counts(work / "out")
    log(f"{count}: the output holds {files_written} files in {folders_written} folders")

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
        "cold_over_floor": statistics.median(c["seconds"] / f for c, f in zip(colds, floors, strict=True)),
        "write_floor_seconds": write_floors,
        "write_floor": statistics.median(write_floors),
        "least_write_floor_seconds": least_floors,
        "least_write_floor": statistics.median(least_floors),
        "cold_over_floors": statistics.median(
            c["seconds"] / (f + w) for c, f, w in zip(colds, floors, write_floors, strict=True)
        ),
        "peak_rss_tree_mib": max(r["peak_rss_tree"] for r in colds) / 2**20,
        "peak_rss_main_mib": max(r["peak_rss_main"] for r in colds) / 2**20,
        "output_files": files_written,
        "output_folders": folders_written,
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
    log(
        f"{count}: add-one rebuild {statistics.median(r['seconds'] for r in add_ones):.2f} s "
        f"(the first after the cold build: {first['seconds']:.2f} s)"
    )

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
    """Verdaccio and pnpm, installed by name with npm into bench/runs/tools."""
    bin_dir = TOOLS / "node_modules" / ".bin"
    if not (bin_dir / "verdaccio").exists() or not (bin_dir / "pnpm").exists():
        TOOLS.mkdir(parents=True, exist_ok=True)
        # verdaccio-audit asks for node-fetch by a dist-tag ("cjs") that not every mirror keeps.
        (TOOLS / "package.json").write_text(
            json.dumps({"private": True, "overrides": {"verdaccio-audit": {"node-fetch": "^2.7.0"}}})
        )
        log("installing verdaccio@6 and pnpm@10 into bench/runs/tools")
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
    """Verdaccio in its own folder; `reuse` keeps the storage an earlier run published into."""

    def __init__(self, bin_dir: Path, folder: Path, port: int, reuse: bool = False):
        if not reuse:
            if folder.exists():
                shutil.rmtree(folder)
            folder.mkdir(parents=True)
            (folder / "config.yaml").write_text(VERDACCIO_CONFIG)
        self.output = open(folder / "verdaccio.log", "wb")  # noqa: SIM115 - the server's log while it runs: stop() closes it
        process = subprocess.Popen(
            [str(bin_dir / "verdaccio"), "-c", str(folder / "config.yaml"), "-l", f"127.0.0.1:{port}"],
            cwd=folder,
            stdout=self.output,
            stderr=subprocess.STDOUT,
        )
        super().__init__(process, port, folder / "verdaccio.log")
        wait_for(port, process, timeout=60)
        if reuse:
            return  # nothing to publish, no user needed
        status, body = self.request(
            "PUT",
            "/-/user/org.couchdb.user:bench",
            {"name": "bench", "password": "bench-password", "type": "user", "roles": []},
        )
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
                conn.request(
                    "PUT",
                    "/" + name.replace("/", "%2f"),
                    body,
                    {"content-type": "application/json", "authorization": f"Bearer {verdaccio.token}"},
                )
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
def wrk_binary() -> str:
    found = shutil.which("wrk")
    if not found:
        raise RuntimeError("the peer comparison fetches documents with wrk: apt-get install wrk")
    return found


def wrk_documents(base_url: str, names_file: Path, seconds: float, servers: list[int], connections: int = 8) -> dict:
    """wrk, one thread, `connections` keep-alive connections, for `seconds`: every package
    document in turn with pnpm's Accept header and gzip (bench/fetch_documents.lua).
    With the CPU seconds wrk and the server processes (`servers`, with their children) used."""
    command = [
        wrk_binary(),
        "-t",
        "1",
        "-c",
        str(connections),
        "-d",
        f"{seconds:g}s",
        "--timeout",
        "30s",
        "-s",
        str(HERE / "fetch_documents.lua"),
        base_url.rstrip("/"),
        "--",
        str(names_file),
    ]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    server_before = sum(tree_cpu_seconds(pid) for pid in servers)
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    server_cpu = sum(tree_cpu_seconds(pid) for pid in servers) - server_before
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    got = json.loads(result.stdout.strip().splitlines()[-1])
    got.update(
        rate=got["requests"] / got["seconds"],
        client_cpu_seconds=after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime,
        server_cpu_seconds=server_cpu,
    )
    return got


def fetch_documents(base_url: str, names_file: Path, mode: str, concurrency: int = 8) -> dict:
    """One pass over every document with the Node.js client: body bytes as sent, and its rate."""
    result = subprocess.run(
        ["node", str(HERE / "fetch_documents.mjs"), base_url, str(names_file), mode, str(concurrency)],
        capture_output=True,
        text=True,
        check=True,
    )
    got = json.loads(result.stdout)
    got["rate"] = got["requests"] / got["seconds"]
    return got


def set_copies_aside(root: Path, aside: Path) -> tuple[int, int, int]:
    """Move the build's gzip copies of package documents (layout.precompressed_copy) out of
    the served tree into `aside`, to measure nginx without them (it compresses on the fly).
    Returns (copies, bytes of their documents, bytes of the copies)."""
    from staticreg.npm import layout

    files = before = after = 0
    for path in sorted(root.rglob(f"*{layout.PRECOMPRESSED_SUFFIX}")):
        relative = path.relative_to(root).as_posix()
        if layout.document_of_copy(relative) is None:
            continue
        target = aside / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        files, after = files + 1, after + path.stat().st_size
        before += (root / layout.document_of_copy(relative)).stat().st_size
        os.rename(path, target)
    return files, before, after


def put_copies_back(root: Path, aside: Path) -> None:
    for path in sorted(aside.rglob("*")):
        if path.is_file():
            os.rename(path, root / path.relative_to(aside))
    shutil.rmtree(aside, ignore_errors=True)


def install(
    client: str, registry: str, project: dict, folder: Path, bin_dir: Path, *extra: str, keep: bool = False
) -> float:
    """A cold install: empty cache and store, no lockfile, nothing but `registry` reachable.
    With keep=True the cache and store are kept for the next call (and its `extra` flags)."""
    if folder.exists() and not keep:
        shutil.rmtree(folder)
    npm = Npm(folder, registry)
    project_dir = folder / "project"
    if project_dir.exists():
        shutil.rmtree(project_dir)
    project_dir.mkdir()
    (project_dir / "package.json").write_text(json.dumps(project))
    started = time.monotonic()
    if client == "npm":
        npm.run("install", *extra, cwd=project_dir)
    else:
        (npm.home / ".npmrc").write_text(
            npm.npmrc() + f"store-dir={folder / 'store'}\ncache-dir={folder / 'pnpm-cache'}\n"
        )
        result = subprocess.run(
            [str(bin_dir / "pnpm"), "install", "--reporter=silent", *extra],
            cwd=project_dir,
            env=npm.env(),
            capture_output=True,
            text=True,
            timeout=900,
        )
        if result.returncode != 0:
            raise RuntimeError(f"pnpm install failed:\n{result.stdout}\n{result.stderr}")
    seconds = time.monotonic() - started
    installed = sum(1 for _ in project_dir.glob("node_modules/**/package.json"))
    if installed < len(project["dependencies"]):
        raise RuntimeError(f"{client} from {registry} installed only {installed} package.json files")
    if not keep:
        shutil.rmtree(folder)
    return seconds


def pnpm_floor(registry: str, project: dict, folder: Path, bin_dir: Path) -> dict:
    """pnpm's own cost, whatever the registry: start-up (`pnpm --version`), a project with
    no dependencies, and the project again with store and metadata cache full and
    `--offline` (no request at all; no lockfile, no node_modules)."""
    started = time.monotonic()
    subprocess.run([str(bin_dir / "pnpm"), "--version"], capture_output=True, check=True)
    version = time.monotonic() - started
    empty = install("pnpm", registry, dict(project, dependencies={}), folder, bin_dir)
    install("pnpm", registry, project, folder, bin_dir, keep=True)
    offline = install("pnpm", registry, project, folder, bin_dir, "--offline", keep=True)
    shutil.rmtree(folder)
    return {"version": version, "empty_project": empty, "offline_warm": offline}


def compare(
    registries: dict[str, str],
    servers: dict[str, int],
    names_file: Path,
    project: dict,
    work: Path,
    bin_dir: Path,
    runs: int,
    fetch_seconds: float,
    count: int,
    label: str,
) -> dict:
    """Documents per second (wrk, then the Node.js client) and cold installs, staticreg and
    Verdaccio alternating, medians and every run."""
    names = list(registries)
    results: dict = {}
    for client_name, fetch in (
        ("wrk", lambda n: wrk_documents(registries[n], names_file, fetch_seconds, [servers[n]])),
        ("node", lambda n: fetch_documents(registries[n], names_file, "corgi")),
    ):
        got: dict[str, list] = {n: [] for n in names}
        for run in range(max(3, runs)):
            for name in names if run % 2 == 0 else names[::-1]:
                got[name].append(fetch(name))
        for name, rounds in got.items():
            if any(r["failures"] for r in rounds):
                raise RuntimeError(f"document fetches failed on {name}: {rounds}")
        rate = {n: statistics.median(r["rate"] for r in rounds) for n, rounds in got.items()}
        results[f"documents_{client_name}"] = {
            "runs": got,
            "median": rate,
            "ratio": rate["staticreg"] / rate["verdaccio"],
        }
        log(f"{count} {label}: documents/s with {client_name}: {rate}")

    full = {n: fetch_documents(registries[n], names_file, "full") for n in names}
    corgi = results["documents_node"]["runs"]
    results["bytes"] = {
        "staticreg_abbreviated_gzip": corgi["staticreg"][0]["bytes"],
        "staticreg_full_plain": full["staticreg"]["bytes"],
        "verdaccio_abbreviated_gzip": corgi["verdaccio"][0]["bytes"],
        "verdaccio_full_plain": full["verdaccio"]["bytes"],
    }
    results["bytes_ratio"] = corgi["staticreg"][0]["bytes"] / full["staticreg"]["bytes"]

    installs: dict = {}
    for client in ("pnpm", "npm"):
        times: dict[str, list[float]] = {n: [] for n in names}
        floors = []
        for run in range(runs):
            for name in names[::-1] if run % 2 == 0 else names:
                seconds = install(client, registries[name], project, work / f"install-{client}-{name}", bin_dir)
                times[name].append(seconds)
                log(f"{count} {label}: {client} install from {name}: {seconds:.1f} s")
            if client == "pnpm":
                floors.append(pnpm_floor(registries["staticreg"], project, work / "pnpm-floor", bin_dir))
                log(f"{count} {label}: pnpm's own cost {floors[-1]}")
        median = {n: statistics.median(t) for n, t in times.items()}
        installs[client] = {"runs": times, "median": median, "ratio": median["staticreg"] / median["verdaccio"]}
        if floors:
            offline = statistics.median(f["offline_warm"] for f in floors)
            installs[client].update(
                floor=floors,
                offline_over_verdaccio=offline / median["verdaccio"],
                cold_over_offline=median["staticreg"] / offline,
            )
    results["installs"] = installs
    return results


def bench_peer(
    count: int, runs: int, nginx_port: int, build: dict, fetch_seconds: float, reuse: bool, work: Path
) -> dict:
    corpus = DEFAULT_ROOT / str(count)
    layout = json.loads((corpus / "corpus.json").read_text())
    bin_dir = ensure_tools()
    wrk_binary()
    published = work / "verdaccio" / "published.json"  # written once the publish loop has finished
    if reuse and not published.exists():
        raise RuntimeError(f"--reuse-verdaccio: no finished publish loop of {count} tarballs in bench/runs to reuse")
    nginx = start_nginx(work / "out", work / "nginx", nginx_port)
    verdaccio = Verdaccio(bin_dir, work / "verdaccio", free_port(), reuse=reuse)
    results: dict = {}
    try:
        if reuse:
            results["verdaccio_publish_seconds"] = json.loads(published.read_text())["seconds"]
            results["verdaccio_reused"] = True
            log(f"{count}: Verdaccio on port {verdaccio.port}, storage published by an earlier run")
        else:
            log(f"{count}: publishing into Verdaccio on port {verdaccio.port}")
            results["verdaccio_publish_seconds"] = publish_all(verdaccio, corpus, connections=4)
            published.write_text(json.dumps({"seconds": results["verdaccio_publish_seconds"]}))
            log(f"{count}: Verdaccio publish loop {results['verdaccio_publish_seconds']:.1f} s")
        results["publish_over_build"] = results["verdaccio_publish_seconds"] / build["cold_seconds"]

        names_file = work / "names.txt"
        names_file.write_text("\n".join(p["name"] for p in layout["packages"]) + "\n")
        registries = {
            "staticreg": f"http://127.0.0.1:{nginx_port}/",
            "verdaccio": f"http://127.0.0.1:{verdaccio.port}/",
        }
        servers = {"staticreg": nginx.process.pid, "verdaccio": verdaccio.process.pid}
        project = {"name": "bench-project", "version": "1.0.0", "private": True, "dependencies": layout["project"]}
        results["project_dependencies"] = len(layout["project"])
        common = (registries, servers, names_file, project, work, bin_dir, runs, fetch_seconds, count)
        results["as_built"] = compare(*common, "as built")
        files, before, after = set_copies_aside(work / "out", work / "copies-aside")
        results["precompressed"] = {"files": files, "bytes": before, "gzip_bytes": after}
        log(f"{count}: the build's {files} gzip copies set aside ({before} -> {after} bytes)")
        results["without_copies"] = compare(*common, "without gzip copies")
    finally:
        put_copies_back(work / "out", work / "copies-aside")
        verdaccio.stop()
        nginx.stop()
    return results


# -- report ---------------------------------------------------------------------
def machine() -> str:
    mem = next(line for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal")).split()[
        1
    ]
    os_name = next(
        (
            line.split("=", 1)[1].strip().strip('"')
            for line in Path("/etc/os-release").read_text().splitlines()
            if line.startswith("PRETTY_NAME=")
        ),
        sys.platform,
    )
    node = subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()
    return (
        f"{os.cpu_count()} cores, {int(mem) / 2**20:.0f} GiB RAM, {os_name}, "
        f"Python {sys.version.split()[0]}, Node.js {node}"
    )


def summary(builds: dict[int, dict], peer: dict | None) -> str:
    lines = [f"date: {datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}", f"machine: {machine()}", ""]
    lines.append(
        "tarballs | MB | read floor s | write floor s | cold s | cold/read floor | cold/(read + write floor) | no-op s | no-op/cold | add-one s (first after cold) | peak MiB (PSS of all processes / RSS of the main one) | files/folders written"
    )
    for _, b in sorted(builds.items()):
        noop = (
            f"{b['noop_seconds']:.2f} | {b['noop_seconds'] / b['cold_seconds']:.1%} | "
            f"{b['add_one_seconds']:.2f} ({b['first_add_one_seconds']:.2f})"
            if "noop_seconds" in b
            else "- | - | -"
        )
        lines.append(
            f"{b['tarballs']} | {b['bytes'] / 1e6:.0f} | {b['floor']:.2f} | {b['write_floor']:.2f} | "
            f"{b['cold_seconds']:.2f} | {b['cold_over_floor']:.2f} | {b['cold_over_floors']:.2f} | {noop} | {b['peak_rss_tree_mib']:.0f}/{b['peak_rss_main_mib']:.0f} | "
            f"{b['output_files']}/{b['output_folders']}"
        )
    sizes = sorted(builds)
    for small, large in itertools.pairwise(sizes):
        a, b = builds[small], builds[large]
        per_a = a["cold_seconds"] / a["tarballs"] * 1000
        per_b = b["cold_seconds"] / b["tarballs"] * 1000
        exponent = (b["cold_seconds"] / a["cold_seconds"]) and __import__("math").log(
            b["cold_seconds"] / a["cold_seconds"]
        ) / __import__("math").log(b["tarballs"] / a["tarballs"])
        lines.append(
            f"slope {small} -> {large}: {per_a:.2f} -> {per_b:.2f} s per 1000 tarballs; time grows as n^{exponent:.2f}"
        )
    if peer:
        lines += [
            "",
            (
                f"Verdaccio publish loop {peer['verdaccio_publish_seconds']:.1f} s"
                f"{' (an earlier run, whose storage was reused)' if peer.get('verdaccio_reused') else ''} vs cold build "
                f"{peer['build_seconds']:.1f} s: {peer['publish_over_build']:.1f}x"
            ),
        ]
        for key, label in (
            ("as_built", "as built (with the build's gzip copies)"),
            ("without_copies", "without the gzip copies (set aside)"),
        ):
            r = peer[key]
            lines.append(f"-- staticreg {label}")
            for client, what in (
                ("wrk", f"wrk, 8 connections, {peer['fetch_seconds']:g} s a round"),
                ("node", "bench/fetch_documents.mjs, 8 at a time, one pass a round"),
            ):
                d = r[f"documents_{client}"]
                rounds = len(d["runs"]["staticreg"])
                line = (
                    f"package documents/s ({what}, median of {rounds}): staticreg+nginx "
                    f"{d['median']['staticreg']:.0f}, Verdaccio {d['median']['verdaccio']:.0f}: {d['ratio']:.1f}x"
                )
                if client == "wrk":
                    cpu = {
                        n: statistics.median(x["server_cpu_seconds"] / x["seconds"] for x in runs)
                        for n, runs in d["runs"].items()
                    }
                    wrk_cpu = {
                        n: statistics.median(x["client_cpu_seconds"] / x["seconds"] for x in runs)
                        for n, runs in d["runs"].items()
                    }
                    line += (
                        f" (cores busy, server/wrk: nginx {cpu['staticreg']:.2f}/{wrk_cpu['staticreg']:.2f}, "
                        f"Verdaccio {cpu['verdaccio']:.2f}/{wrk_cpu['verdaccio']:.2f})"
                    )
                lines.append(line)
            b = r["bytes"]
            lines.append(
                f"bytes: abbreviated+gzip {b['staticreg_abbreviated_gzip'] / 1e6:.2f} MB vs full plain "
                f"{b['staticreg_full_plain'] / 1e6:.1f} MB: {r['bytes_ratio']:.3f}x "
                f"(Verdaccio: {b['verdaccio_abbreviated_gzip'] / 1e6:.2f} MB vs {b['verdaccio_full_plain'] / 1e6:.1f} MB)"
            )
            for client, i in r["installs"].items():
                lines.append(
                    f"{client} cold install of {peer['project_dependencies']} dependencies, median of "
                    f"{len(i['runs']['staticreg'])}: staticreg+nginx {i['median']['staticreg']:.1f} s, "
                    f"Verdaccio {i['median']['verdaccio']:.1f} s: {i['ratio']:.2f}x"
                )
                if "floor" in i:
                    floor = {k: statistics.median(f[k] for f in i["floor"]) for k in i["floor"][0]}
                    lines.append(
                        f"pnpm's own cost, no registry involved (medians): --version {floor['version']:.1f} s, "
                        f"a project with no dependencies {floor['empty_project']:.1f} s, the project --offline "
                        f"from a full store and cache {floor['offline_warm']:.1f} s "
                        f"= {i['offline_over_verdaccio']:.2f}x Verdaccio's cold install; staticreg's cold install "
                        f"is {i['cold_over_offline']:.2f}x pnpm's offline install (target: at most 1.2x)"
                    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000,10000", help="corpus sizes, comma-separated")
    parser.add_argument("--runs", type=int, default=3, help="runs of each timed step (medians are reported)")
    parser.add_argument("--peer", type=int, default=0, help="the size to compare with Verdaccio at (0: none)")
    parser.add_argument("--cold-only", action="store_true", help="no no-op and add-one rebuilds (for 100,000)")
    parser.add_argument(
        "--reuse-verdaccio",
        action="store_true",
        help="serve what an earlier --peer run of the same size published (skips the publish loop)",
    )
    parser.add_argument(
        "--fetch-seconds", type=float, default=10, help="length of each wrk round of the peer comparison"
    )
    parser.add_argument(
        "--outputs",
        type=Path,
        default=WORK,
        help="where the builds write (default bench/runs); a RAM disk here separates the disk's cost from the CPU's",
    )
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    if args.peer and args.peer not in sizes:
        sizes.append(args.peer)
    if args.peer:
        wrk_binary()  # before the builds, not after them
    builds, peer = {}, None
    for count in sorted(sizes):
        port = free_port()
        corpus = generate(count, DEFAULT_ROOT)
        builds[count] = bench_build(
            corpus, args.outputs / str(count), args.runs, f"http://127.0.0.1:{port}/", rebuilds=not args.cold_only
        )
        if count == args.peer:
            peer = bench_peer(
                count,
                args.runs,
                port,
                builds[count],
                args.fetch_seconds,
                args.reuse_verdaccio,
                args.outputs / str(count),
            )
            peer.update(
                build_seconds=builds[count]["cold_seconds"],
                fetch_seconds=args.fetch_seconds,
                tarballs=builds[count]["tarballs"],
            )
    text = summary(builds, peer)
    print(text)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    (WORK / f"results-{stamp}.json").write_text(json.dumps({"builds": builds, "peer": peer, "summary": text}, indent=1))


if __name__ == "__main__":
    main()
