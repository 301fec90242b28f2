"""What a build remembers for the next one, so that it redoes only what changed.

The cache sits beside the output like the lock file (`.OUTNAME.staticreg-cache`),
replaced atomically: a build killed at any moment leaves the old cache or the
new one, never half of one. Its first line is JSON: the format, which output it
describes, the input's signature and the last build's summary (what a no-op
rebuild reports); then come batches of entries (`(kind, key, ...)`
tuples: a package, a page, the versions and times) in Python's marshal format,
each after its length, a batch at a time so that the file is never whole in memory. At 100,000 tarballs
marshal reads the entries ten times faster than JSON lines did. It holds two things:

- per input tarball, keyed by its path relative to the input folder, size,
  mtime_ns and inode: the TarballRecord read from it. A hit skips reading the
  tarball; this part is valid whatever the output looks like. The records are
  not in the cache file but in a folder beside it (`.OUTNAME.staticreg-records`),
  in SHARDS files by a hash of the path, each replaced atomically: a build
  rewrites only the files whose records changed.
- what the output folder holds: each name@version's integrity, each package's
  fingerprint, the publish times in its documents, and a signature of the whole
  input. This part counts only while the output holds the very state file the
  build wrote (`layout.REGISTRY_STATE`, which names every package's fingerprint):
  a build that died before its swap, or a publish since, never misleads the next
  build, and an output copied elsewhere with the cache beside it (`cp -a`, a CI
  cache) is still the one the cache describes.

A new staticreg version drops everything; a change of a setting that shapes
every file (base URL, title, site, templates...) changes every fingerprint, and
so does a new layout (layout.GENERATION): an output an older staticreg laid out
is written again whole, and none of its files is left where nothing links to it.

The cache's head (read_head), the stat keys (key_of) and the input's signature
(input_signature) are made in start and discovery, which a no-op rebuild loads without
this module; they are named here too, with the rest of what the cache holds.
"""

from __future__ import annotations

import gc
import hashlib
import json
import marshal
import operator
import os
import zlib
from collections.abc import Container, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from staticreg import __version__
from staticreg.build.discovery import StatKey as StatKey
from staticreg.build.discovery import key_of as key_of
from staticreg.build.discovery import stats_digest as stats_digest
from staticreg.build.output import write_file_atomic
from staticreg.build.start import FORMAT as FORMAT
from staticreg.build.start import cache_path as cache_path
from staticreg.build.start import input_signature as input_signature
from staticreg.build.start import output_token as output_token
from staticreg.build.start import read_head
from staticreg.build.start import settings_key as settings_key
from staticreg.build.start import times_digest as times_digest
from staticreg.npm import layout
from staticreg.npm.model import Package, identity
from staticreg.npm.records import TarballRecord

RECORDS_FORMAT = 14  # of the records files
_COLUMN = 10_000  # name@version keys per columns entry
_BATCH = 1000  # entries per marshal batch
SHARDS = 64  # records files: about 1,500 records, 1.5 MB, each at 100,000 tarballs
# A record as a flat tuple; not astuple(), whose deep copy costs more than the rest.
_record_values = operator.attrgetter(*(f.name for f in fields(TarballRecord)))


@dataclass(slots=True)  # slots: one per package, tens of thousands at once
class Built:
    """What a build left of one package: what its files were made from (fingerprint), its
    files ("\n"-joined, sorted: one string costs a tenth of a list of them), its list row.
    The files of no package (the root pages, the assets) are kept under the name ""."""

    fingerprint: str | None = None
    files: str | None = None
    row: dict | None = None


@dataclass
class Cache:
    """What the last build left, as the next one reads it. When it does not describe the
    output as it is now (`describes_output` false), everything but the summary is empty:
    a build from it reads and writes everything, as a first build does."""

    records: dict[str, tuple[StatKey, TarballRecord]] = field(default_factory=dict)
    record_shards: list[list[str]] | None = None  # the paths in each records file as loaded; None: rewrite all
    output_id: str | None = None  # output_token() of the output it describes
    describes_output: bool = False
    complete: bool = True  # false: only the head was read (a no-op rebuild needs no more)
    versions: dict[str, str] = field(default_factory=dict)  # "name@version" -> integrity in that output
    packages: dict[str, Built] = field(default_factory=dict)  # what is in that output, by package
    pages: dict[str, str] = field(default_factory=dict)  # list, scope, 404 page -> digest of what made it
    times: dict[str, str] = field(default_factory=dict)  # "name@version" -> time in that output
    # The spare: the output before this one, kept aside as the next build's staging folder.
    spare_id: str | None = None
    spare: dict[str, Built] = field(default_factory=dict)  # fingerprints and files (no rows)
    signature: str = ""  # of the whole input, for the nothing-changed check
    summary: dict = field(default_factory=dict)  # counts and problems of that build, for its report
    # Read back from the output itself when there is no cache for it (from_output): its
    # versions by integrity, as records, so that a tarball with those bytes is hashed, not read.
    by_integrity: dict[str, TarballRecord] = field(default_factory=dict)


def spare_path(output: Path) -> Path:
    return layout.beside(output, layout.BESIDE_SPARE)


def records_path(output: Path) -> Path:
    """The folder of the cache's records, in SHARDS files."""
    return layout.beside(output, layout.BESIDE_RECORDS)


def readmes_path(output: Path) -> Path:
    """The ReadmeStore the build's records point into."""
    return layout.beside(output, layout.BESIDE_READMES)


def stat_key(path: Path) -> StatKey | None:
    try:
        return key_of(os.stat(path))
    except OSError:
        return None


def load(path: Path, output: Path, signature: str | None = None) -> Cache:
    """The cache; with describes_output false when it does not describe `output` as it is
    now. A missing, unreadable or foreign cache is an empty one: the build reads everything.
    `signature`: the input's, when it is already known; when it is the cache's, the load
    stops after the head, which is all a no-op rebuild needs (`complete` false)."""
    # Loading makes a million objects and no reference cycles: the cycle collector would
    # only walk them, again and again as they pile up (0.4 of 1.1 s at 100,000 tarballs).
    # They live as long as the build, so they are frozen, out of the collector's sight,
    # before it runs again: its next collection would walk all of them (0.15 s), and each
    # full one after it again. build() hands them back when it ends.
    collecting = gc.isenabled()
    gc.disable()
    try:
        cache = _load(path, output, signature)
        if (
            cache.describes_output and cache.complete
        ):  # else every tarball is read again: its records would only take memory
            cache.records, cache.record_shards = load_records(records_path(output))
        return cache
    finally:
        gc.freeze()
        if collecting:
            gc.enable()


def _load(path: Path, output: Path, signature: str | None) -> Cache:
    cache = Cache()
    try:
        with open(path, "rb") as f:
            head = read_head(f, output)
            if head is None:
                return Cache()
            if signature is not None and signature == head["signature"]:
                return _head_only(head)
            count = 0
            for entry in _entries(f):
                kind, key, *rest = entry
                if kind == "columns":  # name@version keys, then their integrities and times (None: none)
                    for version, integrity, time in zip(*rest, strict=True):
                        if integrity is not None:
                            cache.versions[version] = integrity
                        if time is not None:
                            cache.times[version] = time
                elif kind == "page":
                    cache.pages[key] = rest[0]
                elif kind == "package":
                    cache.packages[key] = Built(rest[0], rest[1], rest[2])
                elif kind == "spare":
                    # True: a package unchanged in the last two builds: the same files, one string
                    files = cache.packages[key].files if rest[1] is True else rest[1]
                    cache.spare[key] = Built(rest[0], files)
                else:
                    raise ValueError(kind)
                count += 1
        if count != head["entries"]:
            return Cache()  # cut short: not written by save()
        cache.output_id = head.get("output_id") or None
        cache.spare_id = head.get("spare_id") or None
        cache.signature, cache.summary = head["signature"], head["summary"]
    except (OSError, ValueError, TypeError, KeyError, AttributeError, EOFError):
        return Cache()
    cache.describes_output = True
    return cache


def _head_only(head: dict) -> Cache:
    """A cache of which only the head was read: enough for a no-op rebuild, nothing more."""
    cache = Cache(describes_output=True, complete=False)
    cache.output_id = head.get("output_id") or None
    cache.spare_id = head.get("spare_id") or None
    cache.signature, cache.summary = head["signature"], head["summary"]
    return cache


def shard_of(rel: str) -> int:
    return zlib.crc32(rel.encode("utf-8", "surrogateescape")) % SHARDS


def load_records(folder: Path) -> tuple[dict[str, tuple[StatKey, TarballRecord]], list[list[str]] | None]:
    """Every record in the records files, and the paths in each file; a missing, broken or
    foreign file loses only its own records (read again, and the file written whole)."""
    records: dict[str, tuple[StatKey, TarballRecord]] = {}
    shards: list[list[str]] = []
    for shard in range(SHARDS):
        try:
            with open(folder / f"{shard:02d}", "rb") as f:
                form, version, entries = marshal.loads(f.read())
            if (form, version) != (RECORDS_FORMAT, __version__):
                raise ValueError("another format")
            loaded = {rel: (stat, TarballRecord(*values)) for rel, stat, values in entries}
        except FileNotFoundError:
            loaded = {}  # files are written only where there are records
        except (OSError, ValueError, TypeError, EOFError):
            continue
        records.update(loaded)
        shards.append(list(loaded))
    return records, shards if len(shards) == SHARDS else None  # None: write every file


def save_records(folder: Path, records: dict[str, tuple[StatKey, TarballRecord]], before: Cache) -> None:
    """Write the records files whose records changed since `before` was loaded: adding one
    tarball to 100,000 rewrites one file of 1.5 MB, not 92 MB. Each file is replaced atomically,
    and is right on its own: a record counts only while its tarball's stat key matches."""
    if before.record_shards is None:
        groups: list[list[str]] = [[] for _ in range(SHARDS)]
        for rel in records:
            groups[shard_of(rel)].append(rel)
        dirty = dict(enumerate(groups))
    else:
        old = before.records
        added: dict[int, list[str]] = {}
        changed: set[int] = {shard_of(rel) for rel in old.keys() - records.keys()}  # removed
        for rel, entry in records.items():
            was = old.get(rel)
            if was is None:
                added.setdefault(shard_of(rel), []).append(rel)
            elif was is not entry and was != entry:  # a hit's entry is the loaded one itself
                changed.add(shard_of(rel))
        dirty = {
            shard: [rel for rel in before.record_shards[shard] if rel in records] + added.get(shard, [])
            for shard in changed | added.keys()
        }
    for shard, keys in dirty.items():
        path = folder / f"{shard:02d}"
        if not keys:
            path.unlink(missing_ok=True)
            continue
        entries = [(rel, tuple(records[rel][0]), _record_values(records[rel][1])) for rel in sorted(keys)]
        write_file_atomic(path, marshal.dumps((RECORDS_FORMAT, __version__, entries)))


def _entries(f) -> Iterator[tuple]:
    """The entries after the head, a batch at a time. Each batch is its length (4 bytes) and
    its marshal bytes, read whole: marshal.load(f) reads a file in pieces, ten times slower."""
    while True:
        head = f.read(4)
        if len(head) != 4:
            raise ValueError("cut short")
        size = int.from_bytes(head, "big")
        if size == 0:
            return
        data = f.read(size)
        if len(data) != size:
            raise ValueError("cut short")
        batch = marshal.loads(data)
        if not isinstance(batch, list):
            raise ValueError("not a batch")
        yield from batch


def read_entries(path: Path) -> tuple[dict, list[tuple]]:
    """The head and every entry of a cache file, for tests and for looking into one by hand."""
    with open(path, "rb") as f:
        return json.loads(f.readline()), list(_entries(f))


def save(path: Path, cache: Cache) -> None:
    """A JSON first line (format, output, signature, the summary a no-op rebuild reports), then
    every package and page, and the integrities and times in columns, as `(kind, key, ...)`, in
    marshal batches of a thousand, then an empty batch. The records are not in it: see save_records."""

    def entries():
        # Integrities and times in columns, 10,000 name@version keys an entry (each in a batch of its
        # own): an entry for each of 100,000 versions cost 0.3 s to save and load, and one entry for
        # all of them made a 17 MB batch in memory.
        for start in range(0, len(keys), _COLUMN):
            chunk = keys[start : start + _COLUMN]
            yield ("columns", "", chunk, [cache.versions.get(k) for k in chunk], [cache.times.get(k) for k in chunk])
        yield from (("page", path, digest) for path, digest in cache.pages.items())
        for name in sorted(cache.packages):
            built = cache.packages[name]
            yield ("package", name, built.fingerprint, built.files, built.row)
        for name in sorted(cache.spare):
            files, now = cache.spare[name].files, cache.packages.get(name)
            same = files is not None and now is not None and files == now.files  # True: written once, with the package
            yield ("spare", name, cache.spare[name].fingerprint, True if same else files, None)

    keys = list(cache.versions) + [k for k in cache.times if k not in cache.versions]

    def pieces():
        count = -(-len(keys) // _COLUMN) + len(cache.pages) + len(cache.packages) + len(cache.spare)
        head = {
            "format": FORMAT,
            "staticreg": __version__,
            "output_id": cache.output_id,
            "spare_id": cache.spare_id,
            "signature": cache.signature,
            "summary": cache.summary,
            "entries": count,
        }
        yield json.dumps(head, separators=(",", ":")).encode() + b"\n"  # json.dumps writes no raw newline
        batch = []
        for entry in entries():
            batch.append(entry)
            if len(batch) == _BATCH or entry[0] == "columns":
                yield _batch(batch)
                batch = []
        yield _batch(batch) + bytes(4)  # then a batch of length 0: the end

    write_file_atomic(path, pieces())


def _batch(entries: list[tuple]) -> bytes:
    data = marshal.dumps(entries)
    return len(data).to_bytes(4, "big") + data


def files_by_package(
    paths: Iterable[str], packages: Iterable[str], previous: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Which package's folders (layout.package_folders) each path is in; "" for the files of
    no package. Each package's paths come sorted, each once, "\n"-joined: one string costs a
    tenth of a list of them. A package's string equal to its string in `previous` is that very
    string: when a setting changed and every package was written again, that is 22 MB not held
    twice at 100,000 tarballs."""
    owner = {folder: name for name in packages for folder in layout.package_folders(name)}
    # Runs of paths of one package, "\n"-joined as they come (a package's files are written
    # together, its pages later): a string per path for every path of a cold build held
    # 90 MB at the build's peak at 100,000 tarballs (see bench/RESULTS.md).
    runs: dict[str, list[str]] = {}
    current = ""  # the package of the paths in run ("": no package's, as owner_of says)
    run: list[str] = []
    for path in paths:
        name = layout.owner_of(path, owner)
        if name != current:
            if run:
                runs.setdefault(current, []).append("\n".join(run))
            current, run = name, []
        run.append(path)
    if run:
        runs.setdefault(current, []).append("\n".join(run))
    joined = {}
    for name in list(runs):
        parts = runs.pop(name)  # the runs let go as each package's string is made
        joined[name] = "\n".join(sorted(set("\n".join(parts).split("\n")))) if len(parts) > 1 else _sorted_run(parts[0])
    for name, files in (previous or {}).items():
        if joined.get(name) == files:
            joined[name] = files
    return joined


def _sorted_run(run: str) -> str:
    paths = run.split("\n")
    ordered = sorted(set(paths))
    return run if ordered == paths else "\n".join(ordered)


def removed_files(before: dict[str, str], after: dict[str, str]) -> list[str]:
    """The files in `before` but not in `after` (both as files_by_package makes them)."""
    gone = []
    for name, files in before.items():
        now = after.get(name)
        if now is files or now == files:
            continue
        kept = set(now.split("\n")) if now else set()
        gone += [path for path in files.split("\n") if path not in kept]
    return sorted(gone)


def fingerprint(package: Package, settings: str, registry_names: Container[str] = ()) -> str:
    """Everything a package's own files are rendered from. Equal fingerprints, equal files:
    a record's bytes (its integrity) and a mirrored tarball's sidecar (its digest) fix its
    manifest; settings fix the rest; and the site
    page links the dependencies that are in this registry, so which of them are counts too."""
    depended_on = {d for entry in package.versions.values() for d in identity(entry.record)[3]}
    shape = (
        settings,
        package.name,
        sorted(package.dist_tags.items()),
        package.created,
        package.modified,
        [
            (v, e.record.integrity, e.time, e.deprecated) + ((e.upstream.digest,) if e.upstream else ())
            for v, e in package.versions.items()
        ],
        sorted(d for d in depended_on if d in registry_names),
    )
    # marshal's version 2 writes plain values plainly (no back-references, no interning marks),
    # so equal shapes give equal bytes; in a third of repr's time.
    return hashlib.sha256(marshal.dumps(shape, 2)).hexdigest()


def from_output(output: Path, readmes) -> Cache:
    """What an output says of itself, for a build with no cache for it (a registry restored
    or synced from where it is hosted): its versions (as records, by integrity), publish
    times, each package's fingerprint, files and row, from its state files and documents.
    An empty Cache when it is no staticreg output, or one that cannot be read whole: then
    the build reads everything, as a first build does. READMEs go into `readmes`."""
    from staticreg.npm import registry_state
    from staticreg.npm.model import identify, record_from_document

    try:
        state = registry_state.parse_registry_state((output / layout.REGISTRY_STATE).read_bytes(), "")
    except (OSError, registry_state.StateError):
        return Cache()
    if state.settings.layout != layout.GENERATION:
        return Cache()  # laid out by an older staticreg: none of its files is where this build puts it
    cache = Cache(output_id=output_token(output), describes_output=True)
    owner: dict[str, str] = {}
    try:
        for name, fingerprint in state.fingerprints.items():
            doc = json.loads(layout.safe_join(output, layout.packument_path(name)).read_bytes())
            package = registry_state.parse_package_state(
                layout.safe_join(output, layout.package_state_path(name)).read_bytes(), ""
            )
            for version, manifest in doc["versions"].items():
                kept = package.versions.get(version, registry_state.VersionState())
                readme = readmes.put(package.readmes[kept.readme]) if kept.readme else None
                record = record_from_document(name, version, manifest, readme, kept.readme_filename)
                record = replace(record, identity=identify(record))
                cache.by_integrity[record.integrity] = record
                cache.versions[f"{name}@{version}"] = record.integrity
                cache.times[f"{name}@{version}"] = doc["time"][version]
            cache.packages[name] = Built(fingerprint, None, state.rows.get(name))
            owner.update((folder, name) for folder in layout.package_folders(name))
    except (OSError, ValueError, KeyError, TypeError, AttributeError, layout.UnsafePath, registry_state.StateError):
        return Cache()
    _drop_changed_tarballs(output, cache)
    files: dict[str, list[str]] = {}
    for dirpath, _, filenames in os.walk(output):
        rel_dir = os.path.relpath(dirpath, output)
        for filename in filenames:
            rel = filename if rel_dir == "." else f"{rel_dir}/{filename}".replace(os.sep, "/")
            parts = rel.split("/")
            name = next((owner[f] for i in range(1, len(parts)) if (f := "/".join(parts[:i])) in owner), "")
            files.setdefault(name, []).append(rel)
    for name, paths in files.items():
        built = cache.packages.setdefault(name, Built())
        built.files = "\n".join(sorted(paths))
    return cache


def _drop_changed_tarballs(output: Path, cache: Cache) -> None:
    """With no cache, the output's tarballs are taken only where their bytes are what its
    documents say (hashed, in threads): a package with one that is not is written again."""
    from concurrent.futures import ThreadPoolExecutor

    from staticreg.build.reader import content_of

    keys = list(cache.versions)

    def check(key: str) -> bool:
        name, _, version = key.rpartition("@")
        found = content_of(os.fspath(layout.safe_join(output, layout.tarball_path(name, version))))
        return found is not None and found[0] == cache.versions[key]

    with ThreadPoolExecutor(max(1, min(8, os.cpu_count() or 1))) as pool:
        bad = [key for key, ok in zip(keys, pool.map(check, keys), strict=True) if not ok]
    for key in bad:
        cache.by_integrity.pop(cache.versions.pop(key), None)  # read again, and copied from the input
        cache.packages.pop(key.rpartition("@")[0], None)
