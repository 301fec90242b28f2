"""`staticreg build`: tarballs in, a complete registry out, or the old one untouched.

discover -> read (in parallel, one pass per tarball) -> model -> write into a
staging folder -> swap it in -> keep publish times -> report.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from staticreg import __version__, layout, times
from staticreg.config import Config
from staticreg.errors import BuildError, TarballError
from staticreg.model import Problem, RecordSlimmer, Registry, build_registry
from staticreg.output import Staging, write_file_atomic
from staticreg.progress import Progress
from staticreg.reader import TarballRecord, read_tarball
from staticreg.site import write_site
from staticreg.writers import write_documents

TARBALL_SUFFIXES = (".tgz", ".tar.gz")
_INCOMING = ".incoming"


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

    def to_json(self) -> bytes:
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
            "files": {"written": self.files_written, "unchanged": self.files_reused},
            "timings_seconds": {k: round(v, 3) for k, v in self.timings.items()},
        }
        return (json.dumps(data, indent=2) + "\n").encode()


def discover(input_dir: Path, skip: list[Path]) -> tuple[list[tuple[Path, str]], list[Problem]]:
    """Every tarball below input_dir as (path, path relative to input_dir), sorted."""
    if not input_dir.is_dir():
        raise BuildError(f"the input folder {input_dir} does not exist or is not a folder")
    root = input_dir.resolve()
    skip_real = {s.resolve() for s in skip}
    found: list[tuple[Path, str]] = []
    problems: list[Problem] = []

    def on_error(exc: OSError) -> None:
        problems.append(Problem(os.path.relpath(exc.filename, input_dir), f"cannot be read ({exc.strerror})"))

    for dirpath, dirnames, filenames in os.walk(input_dir, onerror=on_error):
        here = Path(dirpath)
        for d in sorted(dirnames):
            if d.lower().endswith(TARBALL_SUFFIXES):
                problems.append(Problem(os.path.relpath(here / d, input_dir), "is a folder, not a tarball"))
        dirnames[:] = sorted(
            d for d in dirnames
            if not d.startswith(".") and (here / d).resolve() not in skip_real and not (here / d).is_symlink()
        )  # fmt: skip
        for f in sorted(filenames):
            if not f.lower().endswith(TARBALL_SUFFIXES) or f.startswith("."):
                continue
            path = here / f
            rel = os.path.relpath(path, input_dir).replace(os.sep, "/")
            if path.is_symlink():
                target = path.resolve()
                if root not in target.parents:
                    problems.append(
                        Problem(rel, "is a link to a file outside the input folder; copy the file in instead")
                    )
                    continue
            found.append((path, rel))
    found.sort(key=lambda item: item[1])
    return found, problems


def _read_one(task: tuple[str, str, str]) -> tuple[str, TarballRecord | None, str | None]:
    path, rel, copy_to = task
    try:
        return rel, read_tarball(path, rel, copy_to), None
    except TarballError as exc:
        try:
            os.unlink(copy_to)
        except OSError:
            pass
        return rel, None, exc.reason


def read_all(tasks: list[tuple[str, str, str]], workers: int, progress: Progress):
    """Read every tarball, in parallel when it pays; yields (rel, record, error)."""
    if workers > 1 and len(tasks) >= 4 * workers:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            for result in pool.map(_read_one, tasks, chunksize=max(1, min(64, len(tasks) // (workers * 8)))):
                progress.step()
                yield result
    else:
        for task in tasks:
            result = _read_one(task)
            progress.step()
            yield result


def build(config: Config, now: datetime | None = None, show_progress: bool = True) -> BuildReport:
    """Build the registry; raises BuildError (output untouched) when it must not be written."""
    now = now or datetime.now(timezone.utc)
    report = BuildReport(config=config)
    started = time.monotonic()
    output = config.output_dir.absolute()
    try:
        return _build(config, now, report, started, output, show_progress)
    except BuildError:
        report.status = "failed"
        report.timings["total"] = time.monotonic() - started
        _save_report(config, report)
        raise


def _build(config: Config, now: datetime, report: BuildReport, started: float, output: Path, show_progress: bool):
    mark = started
    sources, problems = discover(config.input_dir, skip=[output])
    report.tarballs = len(sources)
    report.timings["discover"] = time.monotonic() - mark

    with Staging(output) as staging:
        incoming = staging.root / _INCOMING
        incoming.mkdir()
        # Plain strings, not Paths: at 100,000 tarballs Path objects alone take
        # about 100 MB, in this process and again in every forked reader.
        tasks = [(str(path), rel, os.path.join(incoming, f"{i}.tgz")) for i, (path, rel) in enumerate(sources)]
        sources.clear()
        copies = {rel: copy for _, rel, copy in tasks}
        mark = time.monotonic()
        progress = Progress("Reading tarballs", len(tasks), enabled=show_progress)
        records: list[TarballRecord] = []
        slimmer = RecordSlimmer(config)
        for rel, record, error in read_all(tasks, config.workers, progress):
            if record is not None:
                records.append(slimmer.add(record))
            else:
                problems.append(Problem(rel, error))
        progress.close()
        report.timings["read"] = time.monotonic() - mark

        mark = time.monotonic()
        remembered = times.from_previous_output(
            output, sorted({r.manifest.get("name") for r in records if isinstance(r.manifest.get("name"), str)})
        )
        kept = times.load(config.times_path)
        remembered.update(kept)
        registry = build_registry(records, config, remembered, now)
        slimmer.restore_readmes(registry)
        problems += registry.problems
        report.timings["model"] = time.monotonic() - mark
        report.rejected = sorted(problems, key=lambda p: p.source)
        report.warnings = registry.warnings
        report.duplicates = registry.duplicates
        if not tasks:
            report.warnings.append(Problem(str(config.input_dir), "no .tgz files found"))
        if problems and not config.keep_going:
            raise BuildError(
                f"{len(problems)} problem{'s' if len(problems) != 1 else ''} found; nothing was written "
                f"(the previous output is unchanged). Fix them, or use --keep-going to build without them:",
                [str(p) for p in report.rejected],
            )

        mark = time.monotonic()
        _place_tarballs(registry, staging, copies)
        shutil.rmtree(incoming)
        write_documents(registry, staging, config)
        if config.site:
            write_site(registry, staging, config)
        report.timings["write"] = time.monotonic() - mark
        mark = time.monotonic()
        staging.commit()
        report.timings["commit"] = time.monotonic() - mark
        report.files_written, report.files_reused = staging.written, staging.reused

    report.packages = len(registry.packages)
    report.versions = registry.version_count
    _keep_times(config, registry, kept, report)
    report.timings["total"] = time.monotonic() - started
    _save_report(config, report)
    return report


def _place_tarballs(registry: Registry, staging: Staging, copies: dict[str, str]) -> None:
    for package in registry.packages.values():
        for version, entry in package.versions.items():
            staging.move_in(copies[entry.record.source], layout.tarball_path(package.name, version))


def _keep_times(config: Config, registry: Registry, kept: dict[str, str], report: BuildReport) -> None:
    merged = dict(kept)
    for package in registry.packages.values():
        for version, entry in package.versions.items():
            if entry.time_source != "config":
                merged.setdefault(f"{package.name}@{version}", entry.time)
    try:
        times.save(config.times_path, merged)
    except OSError as exc:
        report.warnings.append(
            Problem(str(config.times_path), f"could not keep publish times ({exc.strerror or exc}); set times_file")
        )


def _save_report(config: Config, report: BuildReport) -> None:
    try:
        write_file_atomic(config.report_path, report.to_json())
    except OSError as exc:
        print(f"warning: could not write the build report {config.report_path}: {exc.strerror or exc}", file=sys.stderr)
