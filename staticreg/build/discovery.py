"""Finding the input's tarballs: `discover`, and `Discovery`, which runs it beside the build.

At 100,000 tarballs discovery takes about 0.9 s of CPU, most of it in the kernel (a stat
per tarball, a listing per folder), and loading the build cache takes about as long. Two
forked children discover, one core each, each its share of the input's top folder, and
send back what they found (marshal, a few megabytes); the build loads its cache after
them, only its head when the input is the one the cache describes (a no-op rebuild).
Where a fork is not safe (no fork, or threads running, as in `staticreg serve`) or a
child fails, discovery runs in the build's own process: the children are only ever a
shortcut.
"""

from __future__ import annotations

import hashlib
import marshal
import os
import signal
import sys
import threading
import zlib
from pathlib import Path

from staticreg.build import workers
from staticreg.errors import BuildError, Problem
from staticreg.npm import upstream_meta

TARBALL_SUFFIXES = (".tgz", ".tar.gz")
StatKey = tuple  # (size, mtime_ns, inode): a tarball unchanged since the last build has the same
# a stat key is None for a dangling link: reading it names the problem
Found = tuple[list[str], dict[str, StatKey | None], list[Problem]]


def key_of(st: os.stat_result) -> StatKey:
    return (st.st_size, st.st_mtime_ns, st.st_ino)


def stats_digest(sources: list[str], stats: dict[str, StatKey | None]) -> str:
    """Of every tarball's path (`sources`, sorted, as discovery gives them) and stat key:
    made once a build, for both of its signatures. No path holds a NUL."""
    digest = hashlib.sha256("\0".join(sources).encode("utf-8", "surrogateescape"))
    # marshal's version 2: equal values, equal bytes, in a twentieth of repr's time (see incremental.fingerprint)
    digest.update(marshal.dumps([stats[rel] for rel in sources], 2))
    return digest.hexdigest()


def _require_folder(input_dir: Path) -> None:
    if not input_dir.is_dir():
        raise BuildError(f"the input folder {input_dir} does not exist or is not a folder")


def discover(input_dir: Path, skip: list[Path], share: tuple[int, int] = (0, 1)) -> Found:
    """Every tarball below input_dir as its path relative to input_dir, sorted; with each
    one's stat key (size, mtime, inode), taken in the same pass. The stat keys also hold
    those of the mirror's sidecars (`<tarball>.upstream.json`, see upstream_meta).
    `share` (i, n): only the i-th of every n entries of the top folder, for n walkers at once."""
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
    stats: dict[str, StatKey | None] = {}
    problems: list[Problem] = []
    pending = [(os.fspath(input_dir), "")]
    while pending:  # os.scandir: the kind of each entry comes with the listing, without a stat
        folder, prefix = pending.pop()
        try:
            with os.scandir(folder) as listing:
                entries = list(listing)
        except OSError as exc:
            if prefix or share[0] == 0:  # the top folder: one walker says it
                problems.append(Problem(prefix.rstrip("/") or str(input_dir), f"cannot be read ({exc.strerror})"))
            continue
        if not prefix and share[1] > 1:  # by name, so that walkers whose listings differ in order agree
            entries = [
                e for e in entries if zlib.crc32(e.name.encode("utf-8", "surrogateescape")) % share[1] == share[0]
            ]
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
                        stats[rel] = key_of(entry.stat(follow_symlinks=False))
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
                stats[rel] = key_of(entry.stat())
            except OSError:
                stats[rel] = None  # a dangling link: reading it names the problem
            found.append(rel)
    found.sort()
    problems.sort(key=lambda p: p.source)
    return found, stats, problems


def digest_of(found: list[str], stats: dict[str, StatKey | None]) -> str:
    """Of every tarball's path and stat key, and of the mirror's sidecars beside them: what
    the build's signature says of the input folder."""
    sidecars = upstream_meta.sidecar_keys(found, stats)
    return stats_digest(found, stats) + upstream_meta.keys_digest(sidecars)


Discovered = tuple[list[str], dict[str, StatKey | None], list[Problem], str]  # Found and its digest_of()


def _with_digest(found: Found) -> Discovered:
    return (*found, digest_of(found[0], found[1]))


class Discovery:
    """`discover(input_dir, skip)` in forked children, one per core (up to CHILDREN), each
    walking its share of the input's top folder; `result()` waits for them and puts the
    shares together. Use it as a context manager: leaving early ends the children."""

    CHILDREN = 2

    def __init__(self, input_dir: Path, skip: list[Path]):
        self.input_dir, self.skip = input_dir, skip
        self._children: list[tuple[int, int]] = []  # (pid, read end of its pipe)
        _require_folder(input_dir)  # here, before the build takes its lock and makes its staging folder
        if not hasattr(os, "fork") or threading.active_count() > 1:
            return
        parent = os.getpid()
        count = max(1, min(self.CHILDREN, os.cpu_count() or 1))
        for part in range(count):
            read_end, write_end = os.pipe()
            pid = os.fork()
            if pid == 0:  # a child: never returns
                status = 1
                try:
                    os.close(read_end)
                    for _, other in self._children:
                        os.close(other)
                    workers.die_with(parent)  # as the readers do: a killed build leaves no child behind
                    signal.signal(signal.SIGINT, signal.SIG_DFL)  # Ctrl-C: the build says what happened
                    found, stats, problems = discover(input_dir, skip, share=(part, count))
                    sidecars = [(rel, key) for rel, key in stats.items() if rel.endswith(upstream_meta.SUFFIX)]
                    data = marshal.dumps(
                        (found, [stats[rel] for rel in found], [(p.source, p.reason) for p in problems], sidecars)
                    )
                    with open(write_end, "wb") as pipe:
                        pipe.write(data)
                    status = 0
                finally:
                    os._exit(status)  # no cleanup of the build's: its files, locks and atexit are not the child's
            os.close(write_end)
            self._children.append((pid, read_end))

    @property
    def forked(self) -> bool:
        """Whether walkers were forked (else result() discovers in this process)."""
        return bool(self._children)

    def result(self) -> Discovered:
        """What discover() finds, and its digest_of()."""
        if not self._children:
            return _with_digest(discover(self.input_dir, self.skip))
        shares, failed = [], False
        while self._children:
            pid, pipe = self._children.pop()
            with open(pipe, "rb") as f:
                data = f.read()
            _, status = os.waitpid(pid, 0)
            failed = failed or status != 0
            if not failed:
                shares.append(marshal.loads(data))  # strings interned in a child come back interned
        if failed:  # a child failed (a bug, memory): discover here, where errors show
            return _with_digest(discover(self.input_dir, self.skip))
        found: list[str] = []
        stats: dict[str, StatKey | None] = {}
        problems: list[Problem] = []
        for share_found, keys, share_problems, sidecars in shares:
            found += share_found
            stats.update(zip(share_found, keys, strict=True))
            stats.update(sidecars)
            problems += [Problem(source, reason) for source, reason in share_problems]
        found.sort()
        problems.sort(key=lambda p: p.source)
        return found, stats, problems, digest_of(found, stats)

    def __enter__(self) -> Discovery:
        return self

    def __exit__(self, *exc) -> None:
        while self._children:
            pid, pipe = self._children.pop()
            os.close(pipe)
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
