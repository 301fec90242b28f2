"""Writing the output folder so that nobody ever sees it half-written.

A build writes into a staging folder beside the output, then exchanges the two
in one atomic rename (renameat2 RENAME_EXCHANGE on Linux; elsewhere two renames,
repaired at the next build if a crash falls between them). A lock file beside
the output keeps two builds from writing at once. Files whose bytes did not
change are hard-linked from the previous output, so they keep their mtime and
the web server's Last-Modified and ETag stay put. This module knows nothing of npm.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import shutil
import sys
import tempfile
from pathlib import Path

from staticreg.errors import BuildError
from staticreg.layout import safe_join, safe_join_str

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths; False where the system cannot."""
    if not sys.platform.startswith("linux"):
        return False
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


def write_file_atomic(path: Path, data: bytes) -> None:
    """Write a small file (state, report) so that a reader sees old or new, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


class Staging:
    """A folder the build writes into, swapped in for the output by `commit`."""

    def __init__(self, output: Path):
        self.output = output.absolute()
        parent = self.output.parent
        stem = f".{self.output.name}.staticreg"
        self.lock_path = parent / f"{stem}.lock"
        self.old = parent / f"{stem}-old"
        self.root = parent / f"{stem}-staging-{os.getpid()}"
        self._lock_file = None
        self.reused = 0
        self.written = 0
        self._folders: set[str] = set()  # made in staging already: one mkdir each, not one per file

    # -- life cycle -------------------------------------------------------
    def __enter__(self) -> "Staging":
        parent = self.output.parent
        try:
            parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise BuildError(f"cannot create the output's parent folder {parent}: {exc.strerror or exc}") from None
        if self.output.exists() and not self.output.is_dir():
            raise BuildError(f"the output {self.output} exists and is not a folder")
        self._lock()
        self._recover()
        for stale in parent.glob(f".{self.output.name}.staticreg-staging-*"):
            shutil.rmtree(stale, ignore_errors=True)
        self.root.mkdir()
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        shutil.rmtree(self.root, ignore_errors=True)
        self._unlock()

    def _lock(self) -> None:
        self._lock_file = open(self.lock_path, "a+")
        if fcntl is None:
            return
        try:
            fcntl.flock(self._lock_file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock_file.close()
            self._lock_file = None
            raise BuildError(
                f"another staticreg build is writing {self.output} right now; "
                "wait for it to finish and run this build again"
            ) from None

    def _unlock(self) -> None:
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None

    def _recover(self) -> None:
        """Finish or undo what a build that died during `commit` left behind."""
        if self.old.exists():
            if not self.output.exists():
                os.rename(self.old, self.output)  # died between the two renames
            else:
                shutil.rmtree(self.old, ignore_errors=True)

    def commit(self) -> None:
        """Make the staging folder the output, atomically, and drop the old output."""
        if self.output.exists():
            if _exchange(self.root, self.output):
                os.rename(self.root, self.old)
            else:
                os.rename(self.output, self.old)
                os.rename(self.root, self.output)
            shutil.rmtree(self.old, ignore_errors=True)
        else:
            os.rename(self.root, self.output)

    # -- writing ----------------------------------------------------------
    def path(self, relative: str) -> Path:
        return safe_join(self.root, relative)

    def previous(self, relative: str) -> Path:
        return safe_join(self.output, relative)

    def _new_file(self, relative: str) -> str:
        """The staging path for `relative`, its folder made."""
        target = safe_join_str(str(self.root), relative)
        folder = os.path.dirname(target)
        if folder not in self._folders:
            os.makedirs(folder, exist_ok=True)
            self._folders.add(folder)
        return target

    def write(self, relative: str, data: bytes) -> None:
        """Write a file; when the previous output has the same bytes, link that file instead."""
        target = self._new_file(relative)
        old = safe_join_str(str(self.output), relative)
        try:
            if os.stat(old).st_size == len(data):
                with open(old, "rb") as f:
                    same = f.read() == data
                if same:
                    os.link(old, target)
                    self.reused += 1
                    return
        except OSError:
            pass
        with open(target, "wb") as f:
            f.write(data)
        self.written += 1

    def link(self, existing: str, relative: str) -> None:
        """A second name for a file already in staging (hard link, or a copy)."""
        target = self._new_file(relative)
        source = safe_join_str(str(self.root), existing)
        try:
            os.link(source, target)
        except OSError:
            shutil.copyfile(source, target)

    def move_in(self, source: Path | str, relative: str) -> None:
        os.replace(source, self._new_file(relative))
