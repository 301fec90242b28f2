"""Every build's start, up to whether anything changed since the last one, and its report.

`build` walks the input (discovery, in forked walkers), takes the output's lock
(output.Staging), makes the input's signature (`input_signature`: the tarballs' stat keys,
the settings, the kept publish times) and compares it with the one in the head of the
build cache (its first line, see incremental). Equal: nothing changed, and the build ends
here, reporting the last build's summary (a no-op rebuild). Otherwise the stages it is
given (pipeline.stages) read, model, write and commit, under the same lock.

This module and what it imports are all that a no-op rebuild loads: nothing of the stages
(the model, semver, the reader, the writers, msgspec, the site, process pools). The
command line passes stages that import pipeline only when they run
(tests/test_noop_imports.py checks it). The signature is made here, by the same functions,
for the no-op check and for the cache a build saves (incremental re-exports them).
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import json
import marshal
import os
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import BinaryIO

from staticreg import __version__
from staticreg.build import times
from staticreg.build.discovery import Discovery
from staticreg.build.output import OutputBusy, Staging, WriteFailed, write_file_atomic
from staticreg.config import Config, builtin_template_dir
from staticreg.errors import BuildError, Problem
from staticreg.npm import layout, upstream_meta

FORMAT = 16  # of the build cache's file (incremental writes it; its head is read here too)


# -- the build cache's head -------------------------------------------------


def cache_path(output: Path) -> Path:
    return layout.beside(output, layout.BESIDE_CACHE)


def output_token(folder: Path) -> str | None:
    """What tells the output a cache describes: a digest of its state file, which changes
    whenever any package's files do (it holds every package's fingerprint). Unlike the
    folder's inode, it is the same in a copy of the folder. None: not a staticreg output."""
    try:
        return hashlib.sha256((folder / layout.REGISTRY_STATE).read_bytes()).hexdigest()
    except OSError:
        return None


def read_head(f: BinaryIO, output: Path) -> dict | None:
    """The head (first line) of the cache file open in `f`, if this staticreg wrote it for
    `output` as the output is now; else None. Raises ValueError for one that is not JSON."""
    head = json.loads(f.readline())
    if not isinstance(head, dict) or head.get("format") != FORMAT or head.get("staticreg") != __version__:
        return None
    if not head.get("output_id") or head["output_id"] != output_token(output):
        return None
    if not isinstance(head.get("signature"), str) or not isinstance(head.get("summary"), dict):
        return None  # not written by incremental.save
    return head


def cache_head(output: Path) -> dict | None:
    """read_head of the output's cache file; None when there is none or it cannot be read."""
    try:
        with open(cache_path(output), "rb") as f:
            return read_head(f, output)
    except (OSError, ValueError):
        return None


# -- the input's signature ----------------------------------------------------


def _tree_stamp(folder: Path | None) -> list:
    """Each file of a template folder with a digest of its bytes: by content, not by mtime,
    so that a fresh checkout (new mtimes) or another machine makes the same fingerprints."""
    if folder is None or not folder.is_dir():
        return []
    stamp = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames.sort()
        for name in sorted(filenames):
            path = os.path.join(dirpath, name)
            try:
                with open(path, "rb") as f:
                    digest = hashlib.sha256(f.read()).hexdigest()
            except OSError:
                digest = None
            stamp.append((os.path.relpath(path, folder), digest))
    return stamp


def settings_key(config: Config) -> str:
    """Everything outside the packages themselves that shapes the files of every package."""
    shape = (
        __version__,
        layout.GENERATION,
        config.base_url,
        config.title,
        config.site,
        config.index_html,
        config.precompress,
        _tree_stamp(config.template_dir),
        _tree_stamp(builtin_template_dir()),
        config.signing.settings() if config.signing else None,  # key ids: a new key signs every document again
    )
    return hashlib.sha256(repr(shape).encode()).hexdigest()


def times_digest(kept: dict[str, str]) -> str:
    """Of the kept publish times: made while discovery runs, for the input's signature.
    marshal's version 2: equal values, equal bytes (see incremental.fingerprint), in a fifth of repr's time."""
    return hashlib.sha256(marshal.dumps(sorted(kept.items()), 2)).hexdigest()


def input_signature(config: Config, settings: str, stats: str, problems: list[Problem], kept_times: str) -> str:
    """Changes when anything a build reads changes: tarballs (`stats`, discovery.digest_of),
    settings, overrides, kept times (`kept_times`, a times_digest)."""
    shape = (
        settings,
        config.keep_going,
        config.dist_tags,
        config.deprecations,
        config.publish_times,
        stats,
        sorted((p.source, p.reason) for p in problems),
        kept_times,
    )
    return hashlib.sha256(repr(shape).encode()).hexdigest()


# -- the report ---------------------------------------------------------------


@dataclass
class BuildReport:
    config: Config
    status: str = "ok"
    tarballs: int = 0
    packages: int = 0
    versions: int = 0
    rejected: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    duplicates: list[Problem] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    files_written: int = 0
    files_reused: int = 0
    # Tarballs read whole, and found unchanged by their bytes' hash (see reader.same_tarball);
    # the rest were unchanged by their stat and not opened.
    tarballs_read: int = 0
    tarballs_hashed: int = 0
    # Output paths this build added, changed and removed (for a sync to S3 or a CDN purge).
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)

    def json_pieces(self) -> Iterator[bytes]:
        """The report as JSON, in pieces: at 100,000 tarballs a cold build's list of added
        paths alone is tens of megabytes, and is never made into one string."""
        c = self.config
        data = {
            "staticreg": __version__,
            "status": self.status,
            "input": str(c.input_dir),
            "output": str(c.output_dir),
            "base_url": c.base_url,
            "counts": {
                "tarballs": self.tarballs,
                "packages": self.packages,
                "versions": self.versions,
                "rejected": len(self.rejected),
                "warnings": len(self.warnings),
                "duplicates": len(self.duplicates),
            },
            "rejected": [{"file": p.source, "reason": p.reason} for p in self.rejected],
            "warnings": [{"file": p.source, "reason": p.reason} for p in self.warnings],
            "duplicates": [{"file": p.source, "reason": p.reason} for p in self.duplicates],
            "tarballs": {
                "read": self.tarballs_read,
                "same_bytes": self.tarballs_hashed,
                "same_stat": self.tarballs - self.tarballs_read - self.tarballs_hashed,
            },
            "files": {"written": self.files_written, "unchanged": self.files_reused},
            "paths": {"added": self.added, "changed": self.changed, "removed": self.removed},
            "timings_seconds": {k: round(v, 3) for k, v in self.timings.items()},
        }
        batch: list[str] = []
        for chunk in json.JSONEncoder(indent=2).iterencode(data):
            batch.append(chunk)
            if len(batch) == 10_000:
                yield "".join(batch).encode()
                batch = []
        batch.append("\n")
        yield "".join(batch).encode()


def summary(report: BuildReport) -> dict:
    """What the cache's head keeps of a build's report, for the no-op rebuilds after it."""
    return {
        "packages": report.packages,
        "versions": report.versions,
        **{
            name: [[p.source, p.reason] for p in getattr(report, name)]
            for name in ("rejected", "warnings", "duplicates")
        },
    }


def save_report(config: Config, report: BuildReport) -> None:
    try:
        write_file_atomic(config.report_path, report.json_pieces())
    except OSError as exc:
        print(f"warning: could not write the build report {config.report_path}: {exc.strerror or exc}", file=sys.stderr)


class Timings:
    """report.timings[name] for each named stage: `with timed("read"): ...`."""

    def __init__(self, report: BuildReport):
        self.report = report

    @contextlib.contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        mark = time.monotonic()
        try:
            yield
        finally:
            self.report.timings[name] = time.monotonic() - mark


# -- the start ----------------------------------------------------------------


def freeze() -> None:
    """Move what the build has made so far out of the cycle collector's sight: it has no
    cycles, lives to the build's end, and every full collection would walk it all again
    (see bench/RESULTS.md, "the collector"). build() hands it back when it ends."""
    gc.freeze()


@dataclass
class Inputs:
    """What discovery found: the tarballs (paths relative to the input folder, sorted), their
    stat keys, the problems found on the way, the mirror's sidecars, and the signature of
    it all with the settings (equal signatures: nothing to do)."""

    sources: list[str]
    stats: dict
    problems: list[Problem]
    sidecars: dict
    stats_digest: str
    kept_times: dict[str, str]
    kept_digest: str
    signature: str


def discovered(discovery: Discovery, config: Config, settings: str, report: BuildReport, started: float) -> Inputs:
    """Wait for discovery, and make the input's signature from what it found."""
    kept_times = times.load(config.times_path)
    kept_digest = times_digest(kept_times)
    sources, stats, problems, stats_digest = discovery.result()
    report.tarballs = len(sources)
    report.timings["discover"] = time.monotonic() - started
    freeze()
    sidecars = upstream_meta.sidecar_keys(sources, stats)  # what upstream said of mirrored tarballs
    signature = input_signature(config, settings, stats_digest, problems, kept_digest)
    return Inputs(sources, stats, problems, sidecars, stats_digest, kept_times, kept_digest, signature)


@dataclass
class Started:
    """A build past its start, with something to do: what the stages are given. The output's
    lock is held (by `staging`) until they return."""

    config: Config
    now: datetime
    report: BuildReport
    started: float  # time.monotonic() at the build's start
    output: Path  # config.output_dir, absolute
    show_progress: bool
    process_ends: bool
    staging: Staging
    settings: str  # settings_key(config)
    inputs: Inputs
    timed: Timings


# What builds whose process ends right after them (the build command) made: freeing a
# million objects one by one took 0.2 s at 100,000 tarballs; the process's end frees them at once.
left_for_exit: list[dict] = []


def build(
    config: Config,
    stages: Callable[[Started], BuildReport],
    now: datetime | None = None,
    show_progress: bool = True,
    process_ends: bool = False,
) -> BuildReport:
    """Build the registry: stop here if nothing changed, else run `stages` (pipeline.stages);
    raises BuildError (output untouched) when it must not be written.
    `process_ends`: the caller exits right after; the build's objects are left for it to free."""
    now = now or datetime.now(timezone.utc)
    report = BuildReport(config=config)
    started = time.monotonic()
    output = config.output_dir.absolute()
    try:
        try:
            return _start(config, stages, now, report, started, output, show_progress, process_ends)
        except OSError as exc:  # writing failed: a full disk, a read-only folder
            raise WriteFailed(exc, output) from None
    except OutputBusy:
        raise  # the report beside the output belongs to the build that is writing it
    except BuildError:
        report.status = "failed"
        report.timings["total"] = time.monotonic() - started
        save_report(config, report)
        raise
    finally:
        gc.unfreeze()  # see freeze(): `serve` builds again and again in one process


def _start(
    config: Config,
    stages: Callable[[Started], BuildReport],
    now: datetime,
    report: BuildReport,
    started: float,
    output: Path,
    show_progress: bool,
    process_ends: bool,
) -> BuildReport:
    timed = Timings(report)
    # Discovery runs in child processes while this one takes the lock. They have both cores
    # to themselves: the cache is read after them, so that a no-op rebuild, which needs no
    # more of it than its head, ends as soon as they do (bench/RESULTS.md: 1.5 s of 1.8 at
    # 100,000 tarballs went to the cache's load and the walkers sharing the cores).
    with Discovery(config.input_dir, skip=[output]) as discovery, Staging(output, config.precompress) as staging:
        settings = settings_key(config)
        inputs = discovered(discovery, config, settings, report, started)
        with timed("cache"):
            head = cache_head(output)
        if head is not None and head["signature"] == inputs.signature:
            if process_ends:
                left_for_exit.append(locals())
            return _unchanged(report, head["summary"], started)  # a no-op rebuild: nothing read, nothing written
        return stages(
            Started(config, now, report, started, output, show_progress, process_ends, staging, settings, inputs, timed)
        )


def _unchanged(report: BuildReport, last: dict, started: float) -> BuildReport:
    report.packages, report.versions = last["packages"], last["versions"]
    for name in ("rejected", "warnings", "duplicates"):
        setattr(report, name, [Problem(source, reason) for source, reason in last[name]])
    report.timings["total"] = time.monotonic() - started
    save_report(report.config, report)
    return report
