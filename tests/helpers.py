"""Plain functions the tests share (fixtures are in conftest.py; running the real
command in a subprocess is tests/process.py):

- tarballs made by the tests themselves: tar_bytes, file_member, link_member,
  special_member, make_tarball, make_set;
- trees on disk: snapshot and changes (what changed under a folder), contents (every
  file's bytes, to compare two builds);
- in-memory records and registries, with no tarball: record, registry, registry_config;
- what a reader sees of a built registry, even while a build replaces it:
  registry_state, checked_state, with the two inputs make_inputs writes and the
  state expected_state says each must give.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import os
import shutil
import stat
import tarfile
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import unquote

from staticreg.build.reader import read_tarball
from staticreg.config import Config
from staticreg.npm.model import build_registry
from staticreg.npm.records import TarballRecord, pack_manifest

OLD_MTIME = 1_600_000_000  # 2020-09-13: past yarn berry's one-day age gate
BASE_URL = "http://registry.test/"  # the base URL of the tests' builds (make_config's default)


# --- tarballs ---------------------------------------------------------------------------


def tar_bytes(members: list[tuple[tarfile.TarInfo, bytes | None]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def file_member(name: str, data: bytes, mode: int = 0o644) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = mode
    info.mtime = 499162500
    return info, data


def link_member(name, target, kind=tarfile.SYMTYPE):
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    return info, None


def special_member(name, kind):
    info = tarfile.TarInfo(name)
    info.type = kind
    return info, None


def make_tarball(
    folder: Path,
    manifest: dict | bytes | None = None,
    files: dict[str, bytes | str] | None = None,
    root: str = "package",
    filename: str | None = None,
    compress: bool = True,
    mtime: float | None = OLD_MTIME,
    extra: list[tuple[tarfile.TarInfo, bytes | None]] | None = None,
) -> Path:
    """A tarball like npm pack makes, with anything a test wants to change."""
    folder.mkdir(parents=True, exist_ok=True)
    members = []
    if manifest is not None:
        data = manifest if isinstance(manifest, bytes) else json.dumps(manifest, indent=2).encode()
        members.append(file_member(f"{root}/package.json", data))
    for name, content in (files or {}).items():
        members.append(file_member(f"{root}/{name}", content.encode() if isinstance(content, str) else content))
    members += extra or []
    raw = tar_bytes(members)
    if compress:
        raw = gzip.compress(raw, mtime=0)
    if filename is None:
        m = manifest if isinstance(manifest, dict) else {}
        name = str(m.get("name", "pkg")).lstrip("@").replace("/", "-")
        filename = f"{name}-{m.get('version', '0.0.0')}.tgz"
    path = folder / filename
    path.write_bytes(raw)
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return path


def make_set(folder: Path) -> None:
    """Three versions of two packages: a README, a dependency, a scoped package with a bin."""
    make_tarball(folder, {"name": "a", "version": "1.0.0"}, {"README.md": "# a"})
    make_tarball(folder, {"name": "a", "version": "1.1.0", "dependencies": {"@s/b": "^1"}}, mtime=1_600_000_100)
    make_tarball(folder, {"name": "@s/b", "version": "1.0.0", "bin": {"b": "b.js"}}, {"b.js": "#!/usr/bin/env node"})


# --- trees on disk ----------------------------------------------------------------------


def snapshot(root: Path) -> dict[str, tuple]:
    """Everything under root (links not followed), by relative path: ("file", sha256,
    mtime in ns), ("dir",), ("link", target) or ("other", file type)."""
    found: dict[str, tuple] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath, name)
            rel = path.relative_to(root).as_posix()
            info = path.lstat()
            if stat.S_ISLNK(info.st_mode):
                found[rel] = ("link", os.readlink(path))
            elif stat.S_ISDIR(info.st_mode):
                found[rel] = ("dir",)
            elif stat.S_ISREG(info.st_mode):
                try:
                    digest = hashlib.sha256(path.read_bytes()).hexdigest()
                except PermissionError:
                    digest = "unreadable"
                found[rel] = ("file", digest, info.st_mtime_ns)
            else:
                found[rel] = ("other", stat.S_IFMT(info.st_mode))
    return found


def changes(before: dict[str, tuple], after: dict[str, tuple]) -> set[str]:
    """The paths two snapshots disagree on: added, removed or changed."""
    return {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}


def contents(root: Path) -> dict[str, bytes]:
    """Every file under root with its bytes, by relative path: two trees compared with
    this show the files that differ."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


# --- in-memory records and registries ---------------------------------------------------

NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)
BASE = "https://npm.example.com/sub/"


def record(manifest, source=None, integrity=None, mtime=1_600_000_000.0, **kw) -> TarballRecord:
    """What reading a tarball with this manifest gives, without a tarball."""
    name = str(manifest.get("name", "x")).lstrip("@").replace("/", "-")
    fields = dict(
        source=source or f"{name}-{manifest.get('version')}.tgz",
        size=10,
        mtime=mtime,
        shasum="ab" * 20,
        integrity=integrity or f"sha512-{manifest.get('name')}{manifest.get('version')}",
        manifest_packed=pack_manifest(manifest),
        file_count=1,
        unpacked_size=5,
        has_binding_gyp=False,
        has_shrinkwrap=False,
        readme=None,
        readme_filename=None,
    )
    fields.update(kw)
    return TarballRecord(**fields)


def registry_config(**kw) -> Config:
    return Config(input_dir=Path("in"), output_dir=Path("out"), base_url=BASE, **kw)


def registry(*records, remembered=None, **kw):
    """The registry model of these records, built at NOW with base URL BASE."""
    return build_registry(records, registry_config(**kw), remembered or {}, NOW)


# --- what a reader sees of a built registry ---------------------------------------------

NOT_PACKAGES = {"-", "index.html", "404.html", ".nojekyll"}


class Swapped(Exception):
    """The tree being checked was swapped out while it was read: not a fault, check again."""


def make_inputs(root: Path) -> tuple[Path, Path]:
    """Two inputs that share some versions (same bytes) and differ in others."""
    a, b = root / "a", root / "b"
    b.mkdir()
    for i in range(12):
        path = make_tarball(
            a, {"name": f"pkg{i}", "version": "1.0.0", "description": "x" * 2000}, {"README.md": f"# {i}"}
        )
        if i % 2 == 0:
            shutil.copy2(path, b / path.name)
        else:
            make_tarball(b, {"name": f"pkg{i}", "version": "2.0.0"}, {"index.js": "y" * 3000})
    for i in range(3):
        make_tarball(a, {"name": f"@a/only{i}", "version": "1.0.0"})
        make_tarball(b, {"name": f"@b/only{i}", "version": "3.0.0-beta.1"})
    return a, b


def expected_state(folder: Path) -> frozenset:
    """(name, version, integrity) of every tarball in folder: what a build of it must serve."""
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
    """What the tree at `out` (built with BASE_URL) holds, read through one directory
    handle so that a swap during the check cannot mix two trees; AssertionError if it
    is incomplete."""
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
    """registry_state, read again when the tree was swapped during the read."""
    while True:
        try:
            return registry_state(out)
        except Swapped:
            continue
