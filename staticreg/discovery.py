"""Finding the input's tarballs: `discover`, and `Discovery`, which runs it beside the build.

At 100,000 tarballs discovery takes about 0.8 s, most of it in the kernel (a stat per
tarball, a listing per folder), and loading the build cache takes about as long on the
CPU. A forked child discovers while the build loads its cache, on another core, and
sends back what it found (marshal, a few megabytes). Where a fork is not safe (no fork,
or threads running, as in `staticreg serve`) or the child fails, discovery runs in
the build's own process: the child is only ever a shortcut.
"""

from __future__ import annotations

import marshal
import os
import signal
import sys
import threading
from pathlib import Path

from staticreg import incremental, upstream_meta, workers
from staticreg.errors import BuildError
from staticreg.model import Problem

TARBALL_SUFFIXES = (".tgz", ".tar.gz")
# a stat key is None for a dangling link: reading it names the problem
Found = tuple[list[str], dict[str, incremental.StatKey | None], list[Problem]]


def _require_folder(input_dir: Path) -> None:
    if not input_dir.is_dir():
        raise BuildError(f"the input folder {input_dir} does not exist or is not a folder")


def discover(input_dir: Path, skip: list[Path]) -> Found:
    """Every tarball below input_dir as its path relative to input_dir, sorted; with each
    one's stat key (size, mtime, inode), taken in the same pass. The stat keys also hold
    those of the mirror's sidecars (`<tarball>.upstream.json`, see upstream_meta)."""
    _require_folder(input_dir)
    root = os.path.realpath(input_dir)
    # Folders to skip (the output, when it is inside the input): by name, then by device
    # and inode, so that only a folder of the same name costs a stat, and no path is resolved.
    skip_ids = set()
    skip_names = set()
    for skipped in skip:
        try:
            info = os.stat(skipped)
            skip_ids.add((info.st_dev, info.st_ino))
            skip_names.add(os.path.basename(os.path.realpath(skipped)))
        except OSError:
            pass
    found: list[str] = []
    stats: dict[str, incremental.StatKey | None] = {}
    problems: list[Problem] = []
    pending = [(os.fspath(input_dir), "")]
    while pending:  # os.scandir: the kind of each entry comes with the listing, without a stat
        folder, prefix = pending.pop()
        try:
            with os.scandir(folder) as listing:
                entries = list(listing)
        except OSError as exc:
            problems.append(Problem(prefix.rstrip("/") or str(input_dir), f"cannot be read ({exc.strerror})"))
            continue
        for entry in entries:
            name = entry.name
            rel = sys.intern(prefix + name)  # the same string as its record's source, see model.shared
            try:
                is_dir = entry.is_dir()  # a link to a folder too, but only real folders are walked into
            except OSError:
                is_dir = False  # a loop of links: reading it names the problem
            if is_dir:
                if name.lower().endswith(TARBALL_SUFFIXES):
                    problems.append(Problem(rel, "is a folder, not a tarball"))
                elif not name.startswith(".") and not entry.is_symlink():
                    if name in skip_names:
                        info = entry.stat(follow_symlinks=False)
                        if (info.st_dev, info.st_ino) in skip_ids:
                            continue
                    pending.append((entry.path, rel + "/"))
                continue
            if name.startswith(".") or not name.lower().endswith(TARBALL_SUFFIXES):
                if name.endswith(upstream_meta.SUFFIX) and not name.startswith("."):  # a mirrored tarball's sidecar
                    try:
                        stats[rel] = incremental.key_of(entry.stat(follow_symlinks=False))
                    except OSError:
                        pass
                continue
            if entry.is_symlink():
                target = os.path.realpath(entry.path)  # never raises, even for a loop of links
                if not target.startswith(root + os.sep):
                    problems.append(
                        Problem(rel, "is a link to a file outside the input folder; copy the file in instead")
                    )
                    continue
            try:
                stats[rel] = incremental.key_of(entry.stat())
            except OSError:
                stats[rel] = None  # a dangling link: reading it names the problem
            found.append(rel)
    found.sort()
    problems.sort(key=lambda p: p.source)
    return found, stats, problems


class Discovery:
    """`discover(input_dir, skip)` in a forked child; `result()` waits for it.
    Use it as a context manager: leaving early ends the child."""

    def __init__(self, input_dir: Path, skip: list[Path]):
        self.input_dir, self.skip = input_dir, skip
        self._pid: int | None = None
        self._pipe: int | None = None
        _require_folder(input_dir)  # here, before the build takes its lock and makes its staging folder
        if not hasattr(os, "fork") or threading.active_count() > 1:
            return
        read_end, write_end = os.pipe()
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:  # the child: never returns
            status = 1
            try:
                os.close(read_end)
                workers.die_with(parent)  # as the readers do: a killed build leaves no child behind
                signal.signal(signal.SIGINT, signal.SIG_DFL)  # Ctrl-C: the build says what happened
                found, stats, problems = discover(input_dir, skip)
                sidecars = [(rel, key) for rel, key in stats.items() if rel.endswith(upstream_meta.SUFFIX)]
                data = marshal.dumps((found, [stats[rel] for rel in found], [(p.source, p.reason) for p in problems], sidecars))
                with open(write_end, "wb") as pipe:
                    pipe.write(data)
                status = 0
            finally:
                os._exit(status)  # no cleanup of the build's: its files, locks and atexit are not the child's
        os.close(write_end)
        self._pid, self._pipe = pid, read_end

    def result(self) -> Found:
        if self._pid is None or self._pipe is None:  # no child (they are set together)
            return discover(self.input_dir, self.skip)
        with open(self._pipe, "rb") as pipe:
            self._pipe = None
            data = pipe.read()
        _, status = os.waitpid(self._pid, 0)
        self._pid = None
        if status != 0:  # the child failed (a bug, memory): discover here, where errors show
            return discover(self.input_dir, self.skip)
        found, keys, problems, sidecars = marshal.loads(data)  # strings interned in the child come back interned
        stats = dict(zip(found, keys, strict=True))
        stats.update(sidecars)
        return found, stats, [Problem(source, reason) for source, reason in problems]

    def __enter__(self) -> Discovery:
        return self

    def __exit__(self, *exc) -> None:
        if self._pipe is not None:
            os.close(self._pipe)
        if self._pid is not None:
            os.kill(self._pid, signal.SIGKILL)
            os.waitpid(self._pid, 0)
