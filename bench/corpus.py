"""Deterministic synthetic corpora of npm tarballs for the benchmark.

    python bench/corpus.py 10000            # writes bench/corpus/10000/

The same count and seed always give the same bytes. A corpus holds:

    tarballs/<package>/<package>-<version>.tgz   the input of `staticreg build`
    extra/<package>-<version>.tgz                one more version, for the add-one rebuild
    corpus.json                                  packages, versions, and an install project

Packages have 1 to 300 versions (a heavy-tailed mix, like a real registry), a
package.json of the usual size (description, scripts, repository, keywords,
dependencies, devDependencies, engines...; as in real packages most of it stays
the same from version to version), a README of 0.5 to 20 KiB that changes with
the minor version, and a few JavaScript files; about one in six is scoped. A few tarballs carry a 5 to 20 MB
incompressible native binary. Dependencies point only at a pool of "popular"
packages, so the install project (a few hundred direct dependencies, all at
^1.0.0) resolves to a few hundred packages, all inside the corpus.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import os
import random
import sys
import tarfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_ROOT = HERE / "corpus"
EPOCH = 1_704_067_200  # 2024-01-01T00:00:00Z: tarball mtimes, so publish times are old and fixed
POPULAR = 60  # dependencies point at the first POPULAR packages only
PROJECT_DEPENDENCIES = 250

WORDS = (
    "array async buffer cache chalk color config core data date debug deep diff emit env event fast file "
    "format glob graph hash http json lang lazy lint list lodash map merge mime mini node object parse path "
    "pipe plugin pretty promise query queue react read regex retry route schema semver sort stream string "
    "style sync table task test text time tiny token tree type util uuid valid view watch web yaml zip"
).split()
LICENSES = ("MIT", "MIT", "MIT", "ISC", "Apache-2.0", "BSD-3-Clause", "BSD-2-Clause")


def _text_pool(rng: random.Random) -> list[str]:
    """Chunks of JavaScript-like text; files are cut from them (compresses about 4:1)."""
    idents = [f"{rng.choice(WORDS)}{rng.choice(WORDS).title()}" for _ in range(400)]
    chunks = []
    for _ in range(64):
        lines = []
        while sum(map(len, lines)) < 8192:
            a, b, c = rng.sample(idents, 3)
            lines.append(
                rng.choice(
                    (
                        f"function {a}({b}, {c}) {{\n  if (!{b}) return {c};\n  return {b}.{c}({rng.randint(0, 999)});\n}}\n",
                        f"const {a} = require('./{b}');\n",
                        f"  {a}.{b} = {c} || {rng.randint(0, 99999)};\n",
                        f"module.exports.{a} = {a};\n",
                        f"// {' '.join(rng.choices(WORDS, k=rng.randint(4, 12)))}\n",
                        f"  for (let i = 0; i < {b}.length; i++) {{ {c}(i, {b}[i]); }}\n",
                    )
                )
            )
        chunks.append("".join(lines))
    return chunks


def _versions(rng: random.Random, count: int) -> list[str]:
    out, (major, minor, patch) = [], (1, 0, 0)
    while len(out) < count:
        out.append(f"{major}.{minor}.{patch}")
        r = rng.random()
        if r < 0.03 and len(out) < count:
            out.append(f"{major + 1}.0.0-beta.{rng.randint(0, 3)}")
        if r < 0.05:
            major, minor, patch = major + 1, 0, 0
        elif r < 0.30:
            minor, patch = minor + 1, 0
        else:
            patch += 1
    return out[:count]


def plan(count: int, seed: int = 1, big: int | None = None) -> dict:
    """Which packages and versions a corpus of `count` tarballs has (no I/O)."""
    rng = random.Random(f"plan-{seed}-{count}")
    packages = []
    total = 0
    while total < count:
        i = len(packages)
        n = 300 if i == 3 else min(300, max(1, int(rng.paretovariate(1.15))))  # always one package at the cap
        n = min(n, count - total)
        base = f"{rng.choice(WORDS)}-{rng.choice(WORDS)}-{i}"
        name = f"@{rng.choice(WORDS)}{i % 97}/{base}" if rng.random() < 0.16 else base
        packages.append({"name": name, "versions": _versions(rng, n), "big": False})
        total += n
    if big is None:
        big = min(10, max(3, count // 2000))
    for p in rng.sample(packages[POPULAR:] or packages, min(big, len(packages))):
        p["big"] = True
    small = [p["name"] for p in packages if not p["big"]]
    project = sorted(rng.sample(small, min(PROJECT_DEPENDENCIES, len(small))))
    return {"count": count, "seed": seed, "packages": packages, "project": dict.fromkeys(project, "^1.0.0")}


def flat(name: str) -> str:
    return name.lstrip("@").replace("/", "-")


def _manifest(seed: int, index: int, name: str, version: str, popular: list[str]) -> dict:
    """What changes between versions changes as in real packages: the version always,
    dependencies and devDependencies with the major version, the rest rarely."""
    major = version.split(".")[0]
    stable = random.Random(f"package-{seed}-{name}")
    line = random.Random(f"line-{seed}-{name}-{major}")
    pool = popular[:index] if index < len(popular) else popular
    deps = dict.fromkeys(line.sample(pool, min(len(pool), line.choice((0, 0, 1, 2, 3, 4, 6)))), "^1.0.0")
    dev = {
        f"{line.choice(WORDS)}-{line.choice(WORDS)}": f"^{line.randint(1, 9)}.{line.randint(0, 20)}.0"
        for _ in range(line.randint(3, 14))
    }
    short = flat(name)
    manifest = {
        "name": name,
        "version": version,
        "description": " ".join(stable.choices(WORDS, k=stable.randint(5, 16))).capitalize() + ".",
        "main": "index.js",
        "types": "index.d.ts",
        "files": ["index.js", "lib/", "index.d.ts"],
        "scripts": {"test": "node test.js", "build": "tsc -p .", "lint": "eslint lib/ --fix --ext .js,.ts"},
        "repository": {"type": "git", "url": f"git+https://git.example.com/{short}/{short}.git"},
        "keywords": stable.sample(WORDS, stable.randint(2, 9)),
        "author": {
            "name": f"{stable.choice(WORDS).title()} {stable.choice(WORDS).title()}",
            "email": f"{short}@example.com",
        },
        "license": stable.choice(LICENSES),
        "bugs": {"url": f"https://git.example.com/{short}/{short}/issues"},
        "homepage": f"https://git.example.com/{short}/{short}#readme",
        "engines": {"node": f">={line.choice((12, 14, 16, 18))}"},
        "dependencies": deps,
        "devDependencies": dev,
        "gitHead": hashlib.sha1(f"{name}@{version}".encode()).hexdigest(),
    }
    if stable.random() < 0.1:
        manifest["bin"] = {short: "bin/cli.js"}
    if stable.random() < 0.1 and popular:
        manifest["peerDependencies"] = {popular[0]: "^1.0.0"}
    return manifest


def _readme(rng: random.Random, name: str, pool: list[str]) -> str:
    size = int(min(20_000, max(500, rng.lognormvariate(8.3, 0.9))))
    parts = [f"# {name}\n\n", " ".join(rng.choices(WORDS, k=40)), "\n\n## Usage\n\n```js\n"]
    while sum(map(len, parts)) < size:
        chunk = rng.choice(pool)
        start = rng.randrange(0, len(chunk) - 1024)
        parts.append(chunk[start : start + rng.randint(200, 1024)])
        parts.append("```\n\n" + " ".join(rng.choices(WORDS, k=60)) + "\n\n```js\n")
    return "".join(parts)[:size] + "\n```\n"


def _add(tar: tarfile.TarFile, path: str, data: bytes, mode: int = 0o644) -> None:
    info = tarfile.TarInfo(f"package/{path}")
    info.size, info.mtime, info.mode = len(data), 499162500, mode  # npm pack's fixed mtime (1985-10-26)
    tar.addfile(info, io.BytesIO(data))


def make_tarball(seed: int, index: int, name: str, version: str, popular: list[str], big: bool) -> bytes:
    rng = random.Random(f"tarball-{seed}-{name}-{version}")
    pool = _POOL[seed]
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        _add(
            tar, "package.json", (json.dumps(_manifest(seed, index, name, version, popular), indent=2) + "\n").encode()
        )
        # The README changes with the minor version.
        minor = ".".join(version.split(".")[:2])
        _add(tar, "README.md", _readme(random.Random(f"readme-{seed}-{name}-{minor}"), name, pool).encode())
        _add(tar, "LICENSE", b"MIT License\n\nPermission is hereby granted, free of charge...\n" * 8)
        for f in range(rng.randint(1, 8)):
            body = "".join(rng.choice(pool)[: rng.randint(500, 8192)] for _ in range(rng.randint(1, 4)))
            _add(tar, "index.js" if f == 0 else f"lib/{rng.choice(WORDS)}-{f}.js", body.encode())
        if big:
            _add(tar, "prebuilds/linux-x64/addon.node", rng.randbytes(rng.randint(5, 20) * 1024 * 1024), 0o755)
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", compresslevel=6, mtime=0) as gz:
        gz.write(raw.getvalue())
    return out.getvalue()


_POOL: dict[int, list[str]] = {}


def _write_package(job: tuple) -> int:
    seed, index, package, popular, dest, extra = job
    if seed not in _POOL:
        _POOL[seed] = _text_pool(random.Random(f"pool-{seed}"))
    folder = dest / "tarballs" / flat(package["name"])
    folder.mkdir(parents=True, exist_ok=True)
    versions = package["versions"]
    for v in versions:
        path = folder / f"{flat(package['name'])}-{v}.tgz"
        path.write_bytes(make_tarball(seed, index, package["name"], v, popular, package["big"] and v == versions[-1]))
        os.utime(path, (EPOCH + index, EPOCH + index))
    if extra:
        path = dest / "extra" / f"{flat(package['name'])}-{extra}.tgz"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(make_tarball(seed, index, package["name"], extra, popular, False))
    return len(versions)


def extra_version(package: dict) -> str:
    return f"{package['versions'][0].split('.')[0]}999.0.0"


def generate(
    count: int, root: Path = DEFAULT_ROOT, seed: int = 1, workers: int | None = None, big: int | None = None
) -> Path:
    """Write the corpus of `count` tarballs (once; an existing complete corpus is reused).
    `big`: how many tarballs carry a 5-20 MB binary (default: 3 to 10 by size)."""
    dest = root / str(count)
    done = dest / "corpus.json"
    if done.exists() and json.loads(done.read_text()).get("seed") == seed:
        return dest
    layout = plan(count, seed, big)
    popular = [p["name"] for p in layout["packages"][:POPULAR] if not p["big"]]
    extra_package = layout["packages"][0]
    layout["extra"] = {"name": extra_package["name"], "version": extra_version(extra_package)}
    jobs = [
        (seed, i, p, popular, dest, layout["extra"]["version"] if p is extra_package else None)
        for i, p in enumerate(layout["packages"])
    ]
    workers = workers or os.cpu_count() or 1
    if workers > 1 and len(jobs) > 8:
        with ProcessPoolExecutor(workers) as pool:
            written = sum(pool.map(_write_package, jobs, chunksize=16))
    else:
        written = sum(map(_write_package, jobs))
    assert written == count, (written, count)
    done.write_text(json.dumps(layout, indent=1))
    return dest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("count", type=int, nargs="+", help="tarballs in the corpus (e.g. 1000 10000 100000)")
    parser.add_argument("--root", type=Path, default=DEFAULT_ROOT)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    for count in args.count:
        started = time.monotonic()
        dest = generate(count, args.root, args.seed)
        print(f"{count} tarballs in {dest} ({time.monotonic() - started:.1f} s)", file=sys.stderr)


if __name__ == "__main__":
    main()
