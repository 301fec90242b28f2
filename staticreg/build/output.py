"""Writing the output folder so that nobody ever sees it half-written.

A build writes into a staging folder beside the output, then exchanges the two
in one atomic rename (renameat2 RENAME_EXCHANGE on Linux; elsewhere two renames,
repaired at the next build if a crash falls between them). A lock file beside
the output keeps two builds from writing at once. Files whose bytes did not
change are hard-linked from the previous output, so they keep their mtime and
the web server's Last-Modified and ETag stay put. This module knows nothing of npm.
"""

from __future__ import annotations

import errno
import filecmp
import glob
import os
import shutil
import struct
import sys
import tempfile
import time
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Protocol, TextIO

from staticreg.errors import BuildError
from staticreg.npm import layout
from staticreg.npm.layout import PING, checked, precompressed_copy, safe_join

if sys.platform != "win32":  # Windows has no fcntl: a build there takes no lock
    import fcntl

# Every registry staticreg writes has this file; an output folder without it is someone else's.
MARKER = PING
_RENAME_EXCHANGE = 2
_CREATED_CHUNK = 10_000  # paths joined into one string, see Staging._created
_AT_FDCWD = -100

# Lock files this process holds. A forked child (a reader worker) shares them, and
# flock holds while any copy is open: a worker orphaned by a killed build would
# keep the output locked. Children point their copies at /dev/null instead.
_held_locks: set[int] = set()


def _drop_locks_in_child() -> None:
    if not _held_locks:
        return
    null = os.open(os.devnull, os.O_RDONLY)
    for fd in _held_locks:
        os.dup2(null, fd)
    os.close(null)
    _held_locks.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_drop_locks_in_child)


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths; False where the system cannot."""
    if not sys.platform.startswith("linux"):
        return False
    import ctypes.util  # here: only a commit needs it, and a no-op rebuild makes none

    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    renameat2 = getattr(libc, "renameat2", None)
    if renameat2 is None:
        return False
    result = renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    if result == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
        return False
    raise OSError(err, os.strerror(err), str(a))


def write_file_atomic(path: Path, data: bytes | Iterable[bytes]) -> None:
    """Write a state file (report, cache) so that a reader sees old or new, never half.
    `data` may come in pieces, so that a big file is never whole in memory."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            for piece in [data] if isinstance(data, bytes) else data:
                f.write(piece)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    _remove_stale_temporaries(path)


def gzip_copy(data: bytes) -> bytes:
    """The precompressed copy of a file's bytes: gzip at level 9 (zlib's), with no file
    name and no time in its header, so that the same bytes always give the same copy."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    return packer.compress(data) + packer.flush()


def copy_holds(copy: Path, data: bytes) -> bool:
    """Whether the gzip file at `copy` holds `data`, by its header and trailer (the CRC-32
    and length of what it holds): a stale or damaged copy fails it, without inflating."""
    try:
        with open(copy, "rb") as f:
            if f.read(2) != b"\x1f\x8b":
                return False
            f.seek(-8, os.SEEK_END)
            trailer = f.read(8)
    except OSError:  # missing, or shorter than a trailer
        return False
    return struct.unpack("<II", trailer) == (zlib.crc32(data), len(data) & 0xFFFFFFFF)


STALE_TEMPORARY_SECONDS = 600


def _remove_stale_temporaries(path: Path) -> None:
    """Temporary files of writers that were killed: a live writer keeps one for milliseconds."""
    cutoff = time.time() - STALE_TEMPORARY_SECONDS
    for stale in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
        try:
            if stale.lstat().st_mtime < cutoff:
                stale.unlink()
        except OSError:
            pass


def not_a_registry(folder: Path) -> str | None:
    """Why `folder` may not be written as a registry ("... is not a folder", "... has other
    content"), or None: it is a registry staticreg made, an empty folder, or nothing yet."""
    if folder.exists() and not folder.is_dir():
        return f"{folder} exists and is not a folder"
    if folder.is_dir() and any(folder.iterdir()) and not (folder / MARKER).is_file():
        return f"{folder} is a folder with other content (it has no {MARKER}, so staticreg did not make it)"
    return None


def lock_path(output: Path) -> Path:
    """The lock file beside an output: builds and publishes into it take it."""
    return layout.beside(output, layout.BESIDE_LOCK)


class OutputBusy(BuildError):
    """Another build holds the output's lock."""


class WriteFailed(BuildError):
    """Writing the output failed (a full disk, a read-only folder); nothing was swapped in."""

    def __init__(self, error: OSError, output: Path):
        where = str(error.filename or output)
        # Name the file as it would be in the output, not in the hidden staging folder.
        staging = layout.beside(output, f"{layout.BESIDE_STAGING}{os.getpid()}")
        where = where.replace(str(staging), str(output), 1)
        super().__init__(
            f"cannot write {where}: {error.strerror or error}; the build stopped and "
            f"the previous output {output} is unchanged"
        )


class FileSink(Protocol):
    """Where the writers put a package's files: a Staging, or what a publish to a hosted
    registry collects (hosted)."""

    def write(self, relative: str, data: bytes, /) -> None: ...

    def link(self, existing: str, relative: str, /) -> None: ...


class Staging:
    """A folder the build writes into, swapped in for the output by `commit`."""

    def __init__(self, output: Path, precompress: bool = False):
        self.output = output.absolute()
        # Write a gzip copy beside each file layout.precompressed_copy names (see `write`).
        self.precompress = precompress
        self.lock_path = lock_path(self.output)
        self.old = layout.beside(self.output, layout.BESIDE_OLD)
        self.root = layout.beside(self.output, f"{layout.BESIDE_STAGING}{os.getpid()}")
        self._root = os.fspath(self.root)
        self._lock_file: TextIO | None = None
        self.reused = 0
        self.written = 0
        # Incremental builds: folders linked whole from the previous output (writes
        # into them are skipped), and the output paths this build adds or changes.
        self.kept: set[str] = set()
        self.added: set[str] = set()  # not kept when there is no previous output: see added_paths
        self.changed: set[str] = set()
        self.fresh = False  # no previous output: everything is added, and nothing is compared
        # Every file this build put in staging, but for kept folders: "\n"-joined, 10,000 to a
        # string, not a string each. A rebuild of everything at 100,000 tarballs puts 563,263
        # paths here, and 563,263 strings took 32 MB more (a set's table, another 32 MB).
        self._created: list[str] = []
        self._creating: list[str] = []
        self._made: set[str] = set()  # folders made in staging lately: one mkdir each, not one per file

    # -- life cycle -------------------------------------------------------
    def __enter__(self) -> Staging:
        parent = self.output.parent
        try:
            parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise BuildError(f"cannot create the output's parent folder {parent}: {exc.strerror or exc}") from None
        foreign = not_a_registry(self.output)
        if foreign:
            raise BuildError(f"the output {foreign}; a build replaces the whole folder, so choose a new or empty one")
        self._lock()
        self._recover()
        self.fresh = not self.output.is_dir()
        staging, trashed = (
            layout.beside(self.output, layout.BESIDE_STAGING),
            layout.beside(self.output, layout.BESIDE_TRASH),
        )
        for stale in parent.glob(f"{staging.name}*"):
            shutil.rmtree(stale, ignore_errors=True)
        for trash in parent.glob(f"{trashed.name}*"):
            if not trash.name.startswith(f"{trashed.name}{os.getpid()}-"):
                shutil.rmtree(trash, ignore_errors=True)  # left by a process that ended before removing it
        self.root.mkdir()
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        shutil.rmtree(self.root, ignore_errors=True)
        self._unlock()

    def _lock(self) -> None:
        self._lock_file = open(self.lock_path, "a+")  # noqa: SIM115 - held until _unlock()
        if sys.platform == "win32":
            return
        try:
            fcntl.flock(self._lock_file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock_file.close()
            self._lock_file = None
            raise OutputBusy(
                f"another staticreg build is writing {self.output} right now; "
                "wait for it to finish and run this build again"
            ) from None
        _held_locks.add(self._lock_file.fileno())

    def _unlock(self) -> None:
        if self._lock_file is not None:
            _held_locks.discard(self._lock_file.fileno())
            self._lock_file.close()
            self._lock_file = None

    def _recover(self) -> None:
        """Finish or undo what a build that died during `commit` left behind."""
        if self.old.exists():
            if not self.output.exists():
                os.rename(self.old, self.output)  # died between the two renames
            else:
                shutil.rmtree(self.old, ignore_errors=True)

    def commit(self, remove_old: bool = True) -> Path | None:
        """Make the staging folder the output, atomically, and drop the old output.
        With remove_old=False the old output is only renamed aside, and its new path
        returned for the caller to remove (in the background: on a busy disk removing
        thousands of folders takes longer than the whole incremental build)."""
        if self.output.exists():
            if _exchange(self.root, self.output):
                os.rename(self.root, self.old)
            else:
                os.rename(self.output, self.old)
                os.rename(self.root, self.output)
            if remove_old:
                shutil.rmtree(self.old, ignore_errors=True)
                return None
            trash = layout.beside(self.output, f"{layout.BESIDE_TRASH}{os.getpid()}-{time.monotonic_ns()}")
            os.rename(self.old, trash)
            return trash
        os.rename(self.root, self.output)
        return None

    # -- writing ----------------------------------------------------------
    def path(self, relative: str) -> Path:
        return safe_join(self.root, relative)

    def previous(self, relative: str) -> Path:
        return safe_join(self.output, relative)

    def _target(self, relative: str) -> str | None:
        """Where a new file goes in staging, its folder made; None inside a kept folder.
        A string, not a Path: pathlib's joins took a tenth of the write stage."""
        if self.is_kept(relative):
            return None
        target = f"{self._root}/{checked(relative)}"
        folder = relative.rpartition("/")[0]
        if folder not in self._made:
            os.makedirs(f"{self._root}/{folder}" if folder else self._root, exist_ok=True)
            if len(self._made) >= 10_000:  # bounded: files come a package at a time, and a
                self._made.clear()  # forgotten folder costs one more mkdir, not memory
            self._made.add(folder)
        self._creating.append(relative)
        if len(self._creating) == _CREATED_CHUNK:
            self._created.append("\n".join(self._creating))
            self._creating = []
        return target

    def write(self, relative: str, data: bytes) -> None:
        """Write a file; when the previous output has the same bytes, link that file instead.
        With `precompress`, a file that layout gives a precompressed copy gets it too: the
        previous output's when the file is unchanged and the copy holds it, else a new one."""
        target = self._target(relative)
        if target is None:
            return
        copy = precompressed_copy(relative) if self.precompress else None
        unchanged = self._link_if_same(relative, target, len(data), lambda old: old.read_bytes() == data)
        if unchanged:
            self.reused += 1
        else:
            with open(target, "wb") as f:
                f.write(data)
            self.written += 1
            self._note(relative)
        if copy is not None:
            self._write_copy(copy, data, unchanged)

    def _write_copy(self, relative: str, data: bytes, unchanged: bool) -> None:
        target = self._target(relative)
        if target is None:
            return
        if unchanged and copy_holds(self.previous(relative), data):
            try:
                os.link(self.previous(relative), target)  # no level-9 compression again
                self.reused += 1
                return
            except OSError:
                pass
        with open(target, "wb") as f:
            f.write(gzip_copy(data))
        self.written += 1
        self._note(relative)

    def link(self, existing: str, relative: str) -> None:
        """A second name for a file already in staging (hard link, or a copy)."""
        target = self._target(relative)
        if target is None:
            return
        try:
            os.link(self.path(existing), target)
        except OSError:
            shutil.copyfile(self.path(existing), target)
        if existing in self.added or existing in self.changed:
            self._note(relative)

    def move_in(self, source: Path, relative: str) -> None:
        """Move a new file in; if the previous output has the same bytes, link that one instead."""
        target = self._target(relative)
        if target is None:
            return
        if self._link_if_same(relative, target, source.stat().st_size, lambda old: filecmp.cmp(old, source, False)):
            os.unlink(source)
            return
        os.replace(source, target)
        self._note(relative)

    def _link_if_same(self, relative: str, target: str, size: int, same) -> bool:
        """Link the previous output's file at `relative` to `target` if it is `size` bytes and
        `same(its path)`: unchanged files keep their mtime, so the server's validators stay."""
        if self.fresh:
            return False
        old = self.previous(relative)
        try:
            if old.stat().st_size == size and same(old):
                os.link(old, target)
                return True
        except OSError:
            pass
        return False

    def link_previous(self, relative: str) -> bool:
        """Take a file unchanged from the previous output; False if it is not there."""
        target = self._target(relative)
        if target is None:
            return True
        try:
            os.link(self.previous(relative), target)
        except FileNotFoundError:
            return False
        return True

    # -- incremental builds -----------------------------------------------
    def _note(self, relative: str) -> None:
        if not self.fresh:  # a set of every path would cost tens of megabytes at 100,000 tarballs
            (self.changed if self.previous(relative).exists() else self.added).add(relative)

    def each_created(self) -> Iterator[str]:
        """Every file this build put in staging (kept folders aside), in no order, some twice."""
        for chunk in self._created:
            yield from chunk.split("\n")
        yield from self._creating

    def created_paths(self) -> list[str]:
        """Every file this build put in staging (kept folders aside), sorted, each once.
        Sorted in place: a copy, or a set on the way, would double what this costs."""
        paths = list(self.each_created())
        paths.sort()
        paths[:] = [p for i, p in enumerate(paths) if i == 0 or p != paths[i - 1]]
        return paths

    def added_paths(self) -> list[str]:
        """The files this build adds to the output, sorted."""
        return self.created_paths() if self.fresh else sorted(self.added)

    def is_kept(self, relative: str) -> bool:
        if not self.kept:
            return False
        parts = relative.split("/")
        return any("/".join(parts[:i]) in self.kept for i in range(1, len(parts)))

    def keep(self, folders: list[str], files: list[str]) -> bool:
        """Take `files` (which a previous build wrote under `folders`) from the previous output as
        hard links; later writes into the folders are skipped. False, and nothing kept, if one is
        missing. Folders are made as needed, without listing the previous output: on a busy disk
        that is what costs."""
        roots = tuple(f + "/" for f in folders)
        made: set[str] = set()
        root, output = str(self.root), str(self.output)
        try:
            for relative in files:
                if not relative.startswith(roots) or ".." in relative.split("/"):
                    raise ValueError(relative)
                folder = os.path.dirname(relative)
                if folder not in made:
                    os.makedirs(os.path.join(root, folder), exist_ok=True)
                    made.add(folder)
                os.link(os.path.join(output, relative), os.path.join(root, relative))
        except (OSError, ValueError):
            for folder in folders:
                shutil.rmtree(self.path(folder), ignore_errors=True)
            return False
        self.reused += len(files)
        self.kept.update(folders)
        return True

    def removed(self) -> list[str]:
        """Files of the previous output that this build does not have."""
        gone = []
        for dirpath, dirnames, filenames in os.walk(self.output):
            rel_dir = os.path.relpath(dirpath, self.output).replace(os.sep, "/")
            prefix = "" if rel_dir == "." else rel_dir + "/"
            dirnames[:] = [d for d in dirnames if prefix + d not in self.kept]
            gone += [prefix + f for f in filenames if not os.path.lexists(self.root / (prefix + f))]
        return sorted(gone)
