"""Kill-safe output: SIGKILL the real `staticreg build` at random moments, again and
again, alternating between two inputs, while a reader keeps checking the tree.

Every time, the output must be a complete old or a complete new registry: every
package document parses and every tarball it names is there with the right
sha512. The kept publish times and the report must parse after every kill, and a
finished build must leave no staging or old folder behind.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import random
import shutil
import signal
import threading
import time
from pathlib import Path
from urllib.parse import unquote

from tests.conftest import make_tarball
from tests.process import run_cli, start
from staticreg import incremental, times
from staticreg.reader import read_tarball

BASE_URL = "http://registry.test/"
KILLS = 50
NOT_PACKAGES = {"-", "index.html", "404.html", ".nojekyll"}


class Swapped(Exception):
    """The tree being checked was swapped out while it was read: not a fault, check again."""


def make_inputs(root: Path) -> tuple[Path, Path]:
    """Two inputs that share some versions (same bytes) and differ in others."""
    a, b = root / "a", root / "b"
    b.mkdir()
    for i in range(12):
        path = make_tarball(a, {"name": f"pkg{i}", "version": "1.0.0", "description": "x" * 2000}, {"README.md": f"# {i}"})
        if i % 2 == 0:
            shutil.copy2(path, b / path.name)
        else:
            make_tarball(b, {"name": f"pkg{i}", "version": "2.0.0"}, {"index.js": "y" * 3000})
    for i in range(3):
        make_tarball(a, {"name": f"@a/only{i}", "version": "1.0.0"})
        make_tarball(b, {"name": f"@b/only{i}", "version": "3.0.0-beta.1"})
    return a, b


def expected_state(folder: Path) -> frozenset:
    records = [read_tarball(path, path.name) for path in folder.glob("*.tgz")]
    return frozenset((r.manifest["name"], r.manifest["version"], r.integrity) for r in records)


def _read(fd: int, rel: str) -> bytes:
    handle = os.open(rel, os.O_RDONLY, dir_fd=fd)
    with os.fdopen(handle, "rb") as f:
        return f.read()


def _listdir(fd: int, rel: str) -> list[str]:
    handle = os.open(rel, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
    try:
        return os.listdir(handle)
    finally:
        os.close(handle)


def _state(fd: int) -> frozenset:
    json.loads(_read(fd, "-/ping"))
    assert _read(fd, "index.html").startswith(b"<!")
    packages = []
    for entry in os.listdir(fd):
        if entry in NOT_PACKAGES or entry.endswith(".json"):
            continue
        packages += [f"{entry}/{n}" for n in _listdir(fd, entry)] if entry.startswith("@") else [entry]
    state = set()
    for name in packages:
        doc = json.loads(_read(fd, f"{name}/index.json"))
        corgi = json.loads(_read(fd, f"{name}/index.corgi"))
        assert doc["name"] == corgi["name"] == name
        assert doc["versions"].keys() == corgi["versions"].keys() and doc["versions"]
        assert json.loads(_read(fd, f"-/package/{name}/dist-tags")) == doc["dist-tags"]
        json.loads(_read(fd, f"{name}/latest.json"))
        for version, manifest in doc["versions"].items():
            dist = manifest["dist"]
            assert dist["tarball"].startswith(BASE_URL)
            tarball = _read(fd, unquote(dist["tarball"][len(BASE_URL) :]))
            assert dist["integrity"] == "sha512-" + base64.b64encode(hashlib.sha512(tarball).digest()).decode()
            assert json.loads(_read(fd, f"{name}/{version}.json"))["dist"] == dist
            state.add((name, version, dist["integrity"]))
    return frozenset(state)


def registry_state(out: Path) -> frozenset | None:
    """What the tree at `out` holds, read through one directory handle so that a
    swap during the check cannot mix two trees; AssertionError if it is incomplete."""
    try:
        fd = os.open(out, os.O_RDONLY | os.O_DIRECTORY)
    except FileNotFoundError:
        return None
    try:
        try:
            return _state(fd)
        except (FileNotFoundError, NotADirectoryError):
            held, live = os.fstat(fd), os.stat(out)
            if (held.st_dev, held.st_ino) != (live.st_dev, live.st_ino):
                raise Swapped() from None  # the old tree is being deleted under us: fine
            raise AssertionError("the output is missing a file while it is live") from None
    finally:
        os.close(fd)


def checked_state(out: Path) -> frozenset | None:
    while True:
        try:
            return registry_state(out)
        except Swapped:
            continue


def test_sigkill_at_random_moments_never_tears_the_output(tmp_path: Path):
    a, b = make_inputs(tmp_path)
    states = {expected_state(a), expected_state(b)}
    out = tmp_path / "site" / "out"
    first = run_cli("build", a, "-o", out, "--base-url", BASE_URL, "-q")
    assert first.returncode == 0, first.stderr
    assert checked_state(out) == expected_state(a)
    duration = max(0.2, _timed_build(b, out))

    failures: list[str] = []
    checks = [0]
    stop = threading.Event()

    def reader() -> None:
        while not stop.is_set():
            try:
                state = checked_state(out)
                if state not in states:
                    failures.append(f"the output is neither registry: {sorted(state or ())[:3]}...")
                checks[0] += 1
            except (AssertionError, ValueError, KeyError) as exc:
                failures.append(f"concurrent reader: {exc!r}")
            time.sleep(0.005)  # leave the build most of the CPU

    watcher = threading.Thread(target=reader, daemon=True)
    watcher.start()
    rng = random.Random(7)
    kills = attempts = 0
    phases: dict[str, int] = {}
    try:
        while kills < KILLS:
            attempts += 1
            assert attempts < KILLS * 3, f"only {kills} of {attempts} builds could be killed before they finished"
            source = a if attempts % 2 else b
            before = checked_state(out)
            proc = start("build", source, "-o", out, "--base-url", BASE_URL, "-q")
            time.sleep(rng.uniform(0, duration * 1.4))
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                kills += 1
            proc.wait()
            state = checked_state(out)
            assert state in states
            staged = any("staging" in p.name for p in out.parent.iterdir())
            phase = "finished" if proc.returncode == 0 else "swapped" if state != before else "writing" if staged else "starting"
            phases[phase] = phases.get(phase, 0) + 1
            for folder in (a, b):
                times.load(folder / "staticreg-times.json")  # raises if a kill tore it
            report = out.parent / "out.report.json"
            if report.exists():
                json.loads(report.read_bytes())
            cache = out.parent / ".out.staticreg-cache"  # the incremental cache, replaced atomically
            if cache.exists():
                head, entries = incremental.read_entries(cache)
                assert head["signature"] and len(entries) == head["entries"] > 0
            # its records, each file replaced atomically: every file a kill left is whole
            records, shards = incremental.load_records(incremental.records_path(out))
            assert shards is not None and all(r.integrity.startswith("sha512-") for _, r in records.values())
    finally:
        stop.set()
        watcher.join()
    assert not failures, failures[:5]
    assert checks[0] > 0

    last = run_cli("build", b, "-o", out, "--base-url", BASE_URL, "-q")
    assert last.returncode == 0, last.stderr
    assert checked_state(out) == expected_state(b)
    leftovers = sorted(p.name for p in out.parent.iterdir() if "staging" in p.name or p.name.endswith("-old"))
    assert leftovers == []
    # Workers (readers, site renderers) die with a killed build (PR_SET_PDEATHSIG) instead of waiting forever.
    assert not [pid for pid in _processes_mentioning(str(out)) if pid != os.getpid()]
    print(f"{kills} kills in {attempts} builds {phases}; the concurrent reader checked the tree {checks[0]} times")


def _timed_build(source: Path, out: Path) -> float:
    started = time.monotonic()
    result = run_cli("build", source, "-o", out, "--base-url", BASE_URL, "-q")
    assert result.returncode == 0, result.stderr
    return time.monotonic() - started


def _processes_mentioning(text: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and text.encode() in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
        except OSError:
            continue
    return found
