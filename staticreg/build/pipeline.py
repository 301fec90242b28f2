"""`staticreg build`: tarballs in, a complete registry out, or the old one untouched.

A build starts in start.build: discovery (in child processes), the lock, the input's
signature -> nothing changed? stop. Otherwise the stages here, each a function of its own below:

    load the cache -> read (in parallel, one pass per tarball; only what the cache does not know)
    -> model -> plan (plan.plan_packages: keep, link or write each package)
    -> write into a staging folder -> site -> commit (save the cache, swap it in)
    -> keep publish times -> report.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

from staticreg.build import incremental, start, times
from staticreg.build import workers as workers_module
from staticreg.build.output import Staging
from staticreg.build.plan import KEEP_SPARE, LINK, plan_packages
from staticreg.build.reader import read_tarball, same_tarball
from staticreg.build.readmes import ReadmeStore
from staticreg.build.start import BuildReport, Inputs, Started
from staticreg.build.writers import write_attestations, write_documents, write_registry_state
from staticreg.config import Config
from staticreg.errors import BuildError, TarballError
from staticreg.npm import layout, upstream_meta
from staticreg.npm.model import Problem, Registry, build_registry, identify, shared
from staticreg.npm.records import TarballRecord
from staticreg.progress import Progress

_INCOMING = ".incoming"


# (path, path in the input folder, where to copy it, READMEs, the record the cache has for the path)
ReadTask = tuple[str, str, str, ReadmeStore, "TarballRecord | None"]


def _read_one(task: ReadTask) -> tuple[TarballRecord | None, Problem | None, bool]:
    """(record, problem, whether the tarball was copied to the task's copy path)."""
    path, rel, copy_to, readmes, known = task
    if known is not None and (same := same_tarball(path, known)) is not None:
        return same, None, False  # the output has these bytes already: linked, not copied
    try:
        record = read_tarball(path, rel, copy_to, readmes)
        return replace(record, identity=identify(record)), None, True
    except TarballError as exc:
        try:
            os.unlink(copy_to)
        except OSError:
            pass
        return None, Problem(rel, exc.reason, exc.ends_early), False


def read_all(tasks: list[ReadTask], workers: int, progress: Progress):
    """Read every tarball, in parallel when it pays; yields _read_one's results in order."""
    if workers > 1 and len(tasks) >= 4 * workers:
        pool = ProcessPoolExecutor(workers, initializer=workers_module.die_with, initargs=(os.getpid(),))
        with workers_module.start(pool):
            try:
                for result in pool.map(_read_one, tasks, chunksize=max(1, min(64, len(tasks) // (workers * 8)))):
                    progress.step()
                    yield result
            except BaseException:  # Ctrl-C, or serve stopping: do not read the rest first
                pool.shutdown(wait=True, cancel_futures=True)
                raise
    else:
        for task in tasks:
            result = _read_one(task)
            progress.step()
            yield result


@dataclass
class _Read:
    """The read stage's result: every record, the new cache's entries, and the copies made."""

    records: list[TarballRecord]
    entries: dict[str, tuple]  # path -> (stat key, record): the new cache's records
    copies: dict[str, str]  # path -> where its copy is in staging (tarballs read now)
    incoming: Path  # the folder of those copies


def build(
    config: Config, now: datetime | None = None, show_progress: bool = True, process_ends: bool = False
) -> BuildReport:
    """Build the registry; raises BuildError (output untouched) when it must not be written.
    `process_ends`: the caller exits right after; the build's objects are left for it to free.
    start.build with these stages: the command line calls that itself, so that a no-op
    rebuild does not import this module."""
    return start.build(config, stages, now, show_progress, process_ends)


def stages(begun: Started) -> BuildReport:
    """Everything a build does once start.build found that something changed, still under
    the output's lock: from loading the whole cache to the report."""
    config, now, report, output, staging = begun.config, begun.now, begun.report, begun.output, begun.staging
    settings, inputs, timed, started = begun.settings, begun.inputs, begun.timed, begun.started
    show_progress, process_ends = begun.show_progress, begun.process_ends
    readmes = ReadmeStore(incremental.readmes_path(output))
    with timed("cache"):
        previous = incremental.load(incremental.cache_path(output), output)
        if not previous.describes_output and output.is_dir():
            previous = incremental.from_output(output, readmes)  # a registry with no cache beside it
    with timed("read"):
        read = _read_stage(config, inputs, previous, readmes, staging, report, show_progress)
    with timed("model"):
        registry, problems = _model_stage(config, inputs, read, previous, output, now, report)
    with timed("write"):
        fingerprints = {
            n: incremental.fingerprint(p, settings, registry.packages) for n, p in registry.packages.items()
        }
        spare = incremental.spare_path(output)
        spare_usable = previous.spare_id is not None and incremental.output_token(spare) == previous.spare_id
        decisions = plan_packages(fingerprints, previous.packages, previous.spare if spare_usable else None)
        kept = _write_stage(config, registry, decisions, read, previous, staging, spare, spare_usable, readmes)
    rows: dict[str, dict] = {}
    pages: dict[str, str] = {}
    if config.site:
        with timed("site"):
            rows, pages = _site_stage(
                config, registry, fingerprints, previous, staging, readmes, settings, show_progress
            )
    token = write_registry_state(staging, config, registry, rows, fingerprints)  # output_token() of the new output
    with timed("commit"):
        trash, merged_times = _commit_stage(
            config,
            registry,
            fingerprints,
            kept,
            rows,
            pages,
            inputs,
            problems,
            read,
            previous,
            staging,
            output,
            settings,
            token,
            report,
        )
    report.files_written, report.files_reused = staging.written, staging.reused
    # Still under the lock, so that two builds never interleave their times or reports.
    if trash is not None:  # the old output: the next build's staging folder, see _reuse_spare
        _discard(spare)
        os.rename(trash, spare)
    readmes.keep_only({r.readme for r in read.records if r.readme})
    _keep_times(config, merged_times, inputs.kept_times, report)
    report.timings["total"] = time.monotonic() - started
    start.save_report(config, report)
    if process_ends:
        start.left_for_exit.append(locals())
    return report


def _read_stage(
    config: Config,
    inputs: Inputs,
    previous: incremental.Cache,
    readmes: ReadmeStore,
    staging: Staging,
    report: BuildReport,
    show_progress: bool,
) -> _Read:
    """Read the tarballs the cache does not know as they are now (in parallel), and hash
    those whose stat changed (same bytes: the record stands). Problems go to inputs.problems."""
    incoming = staging.root / _INCOMING
    incoming.mkdir()
    present = readmes.ids() if previous.describes_output else set()
    entries, known = _cache_hits(previous, inputs.stats, present)
    # Paths as strings: a Path each costs tens of megabytes at 100,000 tarballs.
    folder = os.fspath(config.input_dir)
    tasks = [
        (os.path.join(folder, rel), rel, f"{incoming}/{i}.tgz", readmes, known.get(rel))
        for i, rel in enumerate(inputs.sources)
        if rel not in entries
    ]
    records: list[TarballRecord] = [record for _, record in entries.values()]
    if (
        previous.by_integrity
    ):  # no cache, but an output: a tarball with the bytes of a version there is hashed, not read
        for rel, record in _known_by_content(tasks, previous.by_integrity, config.workers).items():
            records.append(record)
            entries[rel] = (inputs.stats[rel], record)
            report.tarballs_hashed += 1
        tasks = [task for task in tasks if task[1] not in entries]
    by_content = report.tarballs_hashed
    copies = {task[1]: task[2] for task in tasks}
    progress = Progress("Reading tarballs", len(tasks), enabled=show_progress)
    for record, problem, copied in read_all(tasks, config.workers, progress):
        if record is not None:
            record = shared(record)
            records.append(record)
            if inputs.stats.get(record.source):  # not a dangling link
                entries[record.source] = (inputs.stats[record.source], record)
            if not copied:
                report.tarballs_hashed += 1
                del copies[record.source]  # placed from the previous output, as a cache hit is
        else:
            inputs.problems.append(problem)
    progress.close()
    report.tarballs_read = len(tasks) - (report.tarballs_hashed - by_content)
    # The listing is not needed again: tens of megabytes at 100,000 tarballs, better spent on what comes next.
    inputs.sources, inputs.stats = [], {}
    return _Read(records, entries, copies, incoming)


def _known_by_content(tasks: list, by_integrity: dict[str, TarballRecord], workers: int) -> dict[str, TarballRecord]:
    """path -> the output's record of the same bytes, for the tarballs that have one (hashed in
    threads: hashlib lets go of the interpreter's lock)."""
    from concurrent.futures import ThreadPoolExecutor

    from staticreg.build.reader import content_of

    found = {}
    with ThreadPoolExecutor(max(1, workers)) as pool:
        for task, content in zip(tasks, pool.map(lambda task: content_of(task[0]), tasks), strict=True):
            if content is None:
                continue
            integrity, size, mtime = content
            record = by_integrity.get(integrity)
            if record is not None:
                record = replace(record, source=task[1], size=size, mtime=mtime)
                found[task[1]] = shared(replace(record, identity=identify(record)))
    return found


def _model_stage(
    config: Config,
    inputs: Inputs,
    read: _Read,
    previous: incremental.Cache,
    output: Path,
    now: datetime,
    report: BuildReport,
) -> tuple[Registry, list[Problem]]:
    """The registry's model, and every problem; raises BuildError for problems without --keep-going."""
    problems = inputs.problems
    if previous.describes_output:
        remembered, previous.times = previous.times, {}  # not copied, and let go with the model: 100,000 entries
    else:
        names = sorted({name for name in (r.manifest.get("name") for r in read.records) if isinstance(name, str)})
        remembered = times.from_previous_output(output, names)
    remembered.update(inputs.kept_times)
    upstream, sidecar_problems = upstream_meta.load_beside(config.input_dir, inputs.sidecars)
    problems += [Problem(source, reason) for source, reason in sidecar_problems]
    registry = build_registry(read.records, config, remembered, now, upstream)
    problems += registry.problems
    start.freeze()
    report.rejected = sorted(problems, key=lambda p: p.source)
    report.warnings = registry.warnings
    report.duplicates = registry.duplicates
    if not report.tarballs:
        report.warnings.append(Problem(str(config.input_dir), "no .tgz files found"))
    if problems and not config.keep_going:
        raise BuildError(
            f"{plural(len(problems), 'problem')} found; nothing was written "
            f"(the previous output is unchanged). Fix them, or use --keep-going to build without them:",
            [str(p) for p in report.rejected],
            ends_early=any(p.ends_early for p in problems),
        )
    return registry, problems


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _write_stage(
    config: Config,
    registry: Registry,
    decisions: dict[str, str],
    read: _Read,
    previous: incremental.Cache,
    staging: Staging,
    spare: Path,
    spare_usable: bool,
    readmes: ReadmeStore,
) -> dict[str, str]:
    """Carry out the plan for each package's documents and tarballs; returns the packages
    kept from the previous builds, with their files. Pages are the site stage's."""
    kept = _reuse_spare(staging, spare, previous, decisions) if spare_usable else {}
    _discard(spare)  # a spare that is not described by the cache, or is in use now
    for name, decision in decisions.items():
        if decision == LINK and staging.keep(
            layout.package_folders(name), (previous.packages[name].files or "").split("\n")
        ):
            kept[name] = previous.packages[name].files
    written = [n for n in registry.packages if n not in kept]
    previous_versions, previous.versions = previous.versions, {}  # 100,000 entries, not needed again
    _place_tarballs(registry, staging, read.copies, previous_versions, config.input_dir, read.incoming)
    shutil.rmtree(read.incoming)
    read.copies = {}  # a path for each tarball read: 10 MB at 100,000
    write_documents(replace(registry, packages={n: registry.packages[n] for n in written}), staging, config, readmes)
    write_attestations(registry, staging, config.input_dir)  # in no package's folders: written for every package
    return kept


def _site_stage(
    config: Config,
    registry: Registry,
    fingerprints: dict[str, str],
    previous: incremental.Cache,
    staging: Staging,
    readmes: ReadmeStore,
    settings: str,
    show_progress: bool,
) -> tuple[dict[str, dict], dict[str, str]]:
    """The browsable site; each package's row, and the digest of what made each shared page."""
    from staticreg.site.pages import write_site  # jinja2 and cmark-gfm: not loaded by a no-op rebuild

    # rows depend on nothing but what the fingerprint covers
    known = {
        n: b.row for n, b in previous.packages.items() if b.row is not None and fingerprints.get(n) == b.fingerprint
    }
    return write_site(
        registry,
        staging,
        config,
        readmes,
        show_progress=show_progress,
        known_rows=known,
        known_pages=previous.pages,
        salt=settings,
        row_ids=fingerprints,
    )


def _commit_stage(
    config: Config,
    registry: Registry,
    fingerprints: dict[str, str],
    kept: dict[str, str],
    rows: dict[str, dict],
    pages: dict[str, str],
    inputs: Inputs,
    problems: list[Problem],
    read: _Read,
    previous: incremental.Cache,
    staging: Staging,
    output: Path,
    settings: str,
    token: str,
    report: BuildReport,
) -> tuple[Path | None, dict[str, str]]:
    """Report what changed, save the cache for the next build, and swap the staging folder
    in; returns the old output (the next build's spare), if there was one, and the publish
    times to keep."""
    report.added, report.changed = staging.added_paths(), sorted(staging.changed)
    staging.added, staging.changed = set(), set()  # handed over to the report, not kept twice
    before = {n: b.files for n, b in previous.packages.items() if b.files is not None}
    written = [n for n in registry.packages if n not in kept]
    made = incremental.files_by_package(staging.each_created(), written, before)
    files = {**kept, **made}
    # The cache lists every file of the output it describes: what is gone is the difference.
    report.removed = incremental.removed_files(before, files) if previous.describes_output else staging.removed()
    report.packages = len(registry.packages)
    report.versions = registry.version_count
    integrities, published, merged = _by_version(registry, inputs.kept_times)
    kept_digest = inputs.kept_digest if merged == inputs.kept_times else start.times_digest(merged)
    cache = incremental.Cache(
        records=read.entries,
        output_id=token,
        versions=integrities,
        packages={n: incremental.Built(fingerprints.get(n), f, rows.get(n)) for n, f in files.items()},
        pages=pages,
        spare_id=incremental.output_token(output) if previous.describes_output else None,
        spare={n: incremental.Built(b.fingerprint, b.files) for n, b in previous.packages.items()},
        times=published,
        signature=start.input_signature(config, settings, inputs.stats_digest, problems, kept_digest),
        summary=start.summary(report),
    )
    _save_cache(incremental.cache_path(output), cache, previous, output, report)
    return staging.commit(remove_old=False), merged


def _reuse_spare(staging: Staging, spare: Path, previous: incremental.Cache, decisions: dict[str, str]) -> dict:
    """Build on the output before the previous one instead of an empty folder.

    Making thousands of folders is the slow part of a rebuild, and the spare (the
    previous output, kept aside by the last build) already holds the folders of
    every package. Packages the plan keeps there (KEEP_SPARE) stay as they are; the
    files of all others, and the files of no package, are deleted and written again.
    Returns the packages kept, with their files."""
    os.rename(staging.root / _INCOMING, spare / _INCOMING)
    os.rmdir(staging.root)
    os.rename(spare, staging.root)  # a build that fails from here on deletes it with the staging folder
    kept = {}
    for name, built in previous.spare.items():
        files = built.files or ""
        if name and decisions.get(name) == KEEP_SPARE:
            kept[name] = files
            continue
        for folder in layout.package_folders(name) if name else []:
            shutil.rmtree(staging.path(folder), ignore_errors=True)
            _remove_empty_parents(staging, folder)  # "@scope" or "-/package/@scope" with nothing left in it
        if not name and files:
            for relative in files.split("\n"):
                staging.path(relative).unlink(missing_ok=True)
                _remove_empty_parents(staging, relative)  # a folder of list or scope pages no longer made
    for name, files in kept.items():
        staging.kept.update(layout.package_folders(name))
        staging.reused += files.count("\n") + 1
    return kept


def _remove_empty_parents(staging: Staging, relative: str) -> None:
    parent = os.path.dirname(relative)
    while parent:
        try:
            os.rmdir(staging.path(parent))
        except OSError:
            break
        parent = os.path.dirname(parent)


def _discard(folder: Path) -> None:
    """Remove a folder in the background: on a busy disk removing thousands of folders is slow.
    Not a daemon thread: the process waits for it before it exits."""
    if not folder.exists():
        return
    # named as Staging names the old outputs it removes later, should this process die first
    trash = folder.with_name(
        folder.name.replace(
            f"staticreg{layout.BESIDE_SPARE}", f"staticreg{layout.BESIDE_TRASH}{os.getpid()}-{time.monotonic_ns()}"
        )
    )
    os.rename(folder, trash)
    threading.Thread(target=shutil.rmtree, args=(trash,), kwargs={"ignore_errors": True}).start()


def _cache_hits(
    cache: incremental.Cache, stats: dict, present: set[str]
) -> tuple[dict[str, tuple], dict[str, TarballRecord]]:
    """The cache's entries, (stat key, record), of tarballs unchanged since it was written;
    and the records of tarballs still there whose stat changed (touched, copied or checked
    out again), which are hashed before they are read: with the same bytes the record stands.
    Either only if its README is still there (one deleted by hand is read again), and only
    when the output is the one the cache describes: a hit saves reading a tarball because
    the output has its bytes to link; without the output every tarball is read again, by
    the parallel readers, to be copied anyway."""
    hits, known = {}, {}
    for rel, entry in cache.records.items():
        key, record = entry
        if rel not in stats or (record.readme is not None and record.readme not in present):
            continue
        if stats[rel] == key:
            hits[rel] = entry
        else:
            known[rel] = record
    return hits, known


def _save_cache(
    path: Path, cache: incremental.Cache, before: incremental.Cache, output: Path, report: BuildReport
) -> None:
    try:
        incremental.save_records(incremental.records_path(output), cache.records, before)
        incremental.save(path, cache)
    except OSError as exc:
        try:
            path.unlink()
        except OSError:
            pass
        report.warnings.append(Problem(str(path), f"could not write the build cache ({exc.strerror or exc})"))


def _place_tarballs(
    registry: Registry,
    staging: Staging,
    copies: dict[str, str],
    previous: dict[str, str],
    input_dir: Path,
    incoming: Path,
) -> None:
    for package in registry.packages.values():
        if package.name in staging.kept:  # the package's folder, kept whole with its tarballs
            continue
        for version, entry in package.versions.items():
            path = layout.tarball_path(package.name, version)
            if staging.is_kept(path):
                continue
            source = entry.record.source
            if source in copies:
                staging.move_in(Path(copies[source]), path)
                continue
            # A cache hit: the previous output has these bytes, unless it was built otherwise.
            if previous.get(f"{package.name}@{version}") == entry.record.integrity and staging.link_previous(path):
                continue
            copy = incoming / "again.tgz"
            try:
                again = read_tarball(layout.safe_join(input_dir, source), source, copy)
            except TarballError as exc:
                raise BuildError(f"{source} changed while it was being built ({exc.reason}); build again") from None
            if again.integrity != entry.record.integrity:
                raise BuildError(f"{source} changed while it was being built; build again")
            staging.move_in(copy, path)


def _by_version(registry: Registry, kept: dict[str, str]) -> tuple[dict[str, str], dict[str, str], dict[str, str]]:
    """Each name@version's integrity and publish time, and the times to keep: `kept` with
    every time no setting gave added. One pass, one key string for all three."""
    integrities, published, merged = {}, {}, dict(kept)
    for package in registry.packages.values():
        for version, entry in package.versions.items():
            key = f"{package.name}@{version}"
            integrities[key] = entry.record.integrity
            published[key] = entry.time
            if entry.time_source != "config":
                merged.setdefault(key, entry.time)
    return integrities, published, merged


def _keep_times(config: Config, merged: dict[str, str], kept: dict[str, str], report: BuildReport) -> None:
    if merged == kept:
        return
    try:
        times.save(config.times_path, merged)
    except OSError as exc:
        report.warnings.append(
            Problem(str(config.times_path), f"could not keep publish times ({exc.strerror or exc}); set times_file")
        )
