"""Changing a hosted registry in place: publish, unpublish, dist-tag, deprecate.

Each command reads from the store only what the change needs (the registry's
state, and the documents and state of the packages it touches), makes the
touched packages with the same model, documents and pages as `staticreg build`,
and writes them in an order no reader can catch half done:

    tarballs (created only where there is none)   -> per-version documents
    -> the package's state -> the package document (the commit point)
    -> its abbreviated and dist-tags documents, its pages
    -> the files it no longer has (removed versions' documents, pages no version needs)
    -> the registry's state -> the shared pages (lists, scopes, search index)

A registry an older staticreg laid out (its state names an older layout.GENERATION)
is brought to this layout by the first change to it: every package's documents and
pages are written where they are now, and the files of the old layout removed,
before its state names the new layout.

The package state, the package document and the registry's state are written
with compare-and-swap (see `store`): a writer that lost a race reads again,
applies its change again and retries. Files made from a committed document are
written again until the document they were made from is still the latest, so the
last writer's files are the ones left. A writer killed at any moment leaves a
registry clients install from; the same command run again completes it. In a
folder, the package and abbreviated documents take their gzip copies with them
when the registry has them (its settings' `precompress`), in the order `store`
gives: the old copy removed, the document replaced, the new copy written.
"""

from __future__ import annotations

import hashlib
import json
import random
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path

from staticreg.build import incremental
from staticreg.build.reader import read_tarball, sri
from staticreg.build.readmes import ReadmeStore
from staticreg.build.writers import depends_on, registry_settings, upstream_entry, upstream_of, write_package
from staticreg.config import Config, Override
from staticreg.errors import StaticregError, TarballError
from staticreg.hosting.store import ABSENT, Blob, Conflict, Store
from staticreg.npm import documents, layout, names, registry_state, upstream_meta
from staticreg.npm.model import Package, build_registry, normalize_manifest, record_from_document
from staticreg.npm.records import TarballRecord
from staticreg.npm.registry_state import PackageState, RegistryState, Settings, StateError, VersionState

ATTEMPTS = 30  # compare-and-swap rounds before giving up: eight writers at once need a few each


class UpdateError(StaticregError):
    """The change was refused; the registry is as it was, or as the message says."""


@dataclass
class UpdateReport:
    target: str
    published: list[str] = field(default_factory=list)  # name@version
    unchanged: list[str] = field(default_factory=list)  # name@version already there, same bytes
    removed: list[str] = field(default_factory=list)
    packages: list[str] = field(default_factory=list)  # packages whose files were written
    retries: int = 0
    requests: int | None = None  # S3 requests sent (None for a folder)

    def summary(self) -> str:
        parts = []
        if self.published:
            parts.append(f"published {', '.join(self.published)}")
        if self.unchanged:
            parts.append(f"already there with the same bytes: {', '.join(self.unchanged)}")
        if self.removed:
            parts.append(f"removed {', '.join(self.removed)}")
        if not parts:
            parts.append(f"updated {', '.join(self.packages) or 'nothing'}")
        return f"{self.target}: " + "; ".join(parts)


@dataclass(frozen=True)
class Incoming:
    """A tarball to publish: read and checked, its bytes in a local file; with the sidecar
    `staticreg mirror` wrote beside it, if there is one (upstream_meta)."""

    record: TarballRecord
    name: str
    version: str
    copy: Path
    upstream: upstream_meta.UpstreamMeta | None = None


# A change to one package's state: (the state, the versions there) -> None, in place.
# It may raise UpdateError. Applied again on every compare-and-swap round.
StateChange = Callable[[PackageState, set], None]


@dataclass
class Change:
    """What to do to one package."""

    name: str
    add: list[Incoming] = field(default_factory=list)
    remove: set[str] = field(default_factory=set)  # versions
    remove_all: bool = False
    state_change: StateChange | None = None


# -- the commands ------------------------------------------------------------------


def publish(store: Store, tarballs: list[Path], config: Config, tag: str | None = None) -> UpdateReport:
    """Add tarballs to the registry: each package's versions in one update of that package."""
    with tempfile.TemporaryDirectory(prefix="staticreg-publish-") as work:
        readmes = ReadmeStore(Path(work) / "readmes")
        changes: dict[str, Change] = {}
        problems = []
        for i, path in enumerate(tarballs):
            incoming = _read(path, Path(work) / f"{i}.tgz", readmes, config)
            if isinstance(incoming, str):
                problems.append(incoming)
                continue
            change = changes.setdefault(incoming.name, Change(incoming.name))
            if any(a.version == incoming.version for a in change.add):
                other = next(a for a in change.add if a.version == incoming.version)
                if other.record.integrity != incoming.record.integrity:
                    problems.append(
                        f"{path}: {incoming.name}@{incoming.version} is also in {other.record.source} "
                        "with different bytes; publish one of them"
                    )
                continue
            change.add.append(incoming)
        if problems:
            raise UpdateError("nothing was published:\n" + "\n".join(f"  {p}" for p in problems))
        if tag is not None:
            for change in changes.values():
                newest = max((a.version for a in change.add), key=names.version_key)
                change.state_change = _set_tag(tag, newest)
        return apply(store, list(changes.values()), config, readmes)


def unpublish(store: Store, name: str, version: str | None, config: Config, force: bool = False) -> UpdateReport:
    """npm unpublish NAME@VERSION, or the whole package with `force` (npm's --force)."""
    if version is None and not force:
        raise UpdateError(f"unpublishing all of {name} removes every version: give NAME@VERSION, or --force")
    change = Change(name, remove={version} if version else set(), remove_all=version is None)
    return apply(store, [change], config)


def dist_tag_add(store: Store, name: str, version: str, tag: str, config: Config) -> UpdateReport:
    return apply(store, [Change(name, state_change=_set_tag(tag, version))], config)


def dist_tag_rm(store: Store, name: str, tag: str, config: Config) -> UpdateReport:
    def change(state: PackageState, versions: set) -> None:
        if tag == "latest":
            raise UpdateError(
                f"{name}: the latest tag cannot be removed (npm refuses it too); move it with dist-tag add"
            )
        if tag not in state.dist_tags:
            raise UpdateError(f"{name} has no dist-tag {tag!r}")
        del state.dist_tags[tag]

    return apply(store, [Change(name, state_change=change)], config)


def deprecate(store: Store, name: str, spec: str, message: str, config: Config) -> UpdateReport:
    """npm deprecate NAME@RANGE MESSAGE; an empty message takes the deprecation back."""
    from staticreg.npm.semver import RangeProblem, parse_range, satisfies

    try:
        wanted = parse_range(spec)
    except RangeProblem as exc:
        raise UpdateError(f"{name}@{spec}: {exc}") from None

    def change(state: PackageState, versions: set) -> None:
        if not any(satisfies(v, wanted) for v in versions):
            raise UpdateError(f"{name}@{spec} matches no version of {name}")
        # An empty message takes back what was set for this range (a deprecation in a
        # tarball's own package.json stays: it is part of the published version).
        state.deprecations = [d for d in state.deprecations if d[0] != spec] + ([(spec, message)] if message else [])

    return apply(store, [Change(name, state_change=change)], config)


def _set_tag(tag: str, version: str) -> StateChange:
    def change(state: PackageState, versions: set) -> None:
        try:
            names.check_tag(tag)
        except names.NameProblem as exc:
            raise UpdateError(f"dist-tag {tag!r}: {exc}") from None
        if version not in versions:
            raise UpdateError(f"there is no version {version} to tag {tag!r}")
        state.dist_tags[tag] = version

    return change


def _read(path: Path, copy: Path, readmes: ReadmeStore, config: Config) -> Incoming | str:
    """The tarball, read and checked as a build reads it; a problem as text."""
    try:
        record = read_tarball(path, str(path), copy, readmes)
    except TarballError as exc:
        return f"{path}: {exc.reason}"
    except OSError as exc:
        return f"{path}: cannot read it ({exc.strerror or exc})"
    try:
        name, version, _, _ = normalize_manifest(record, config.base_url)
    except (names.NameProblem, layout.UnsafePath) as exc:
        return f"{path}: {exc}"
    sidecar = Path(f"{path}{upstream_meta.SUFFIX}")
    try:
        meta = upstream_meta.load(sidecar)
    except upstream_meta.SidecarProblem as exc:
        return f"{sidecar}: {exc}; run staticreg mirror again, or delete the file"
    if meta is not None and (why := upstream_meta.mismatch(meta, name, version, record.integrity)):
        return f"{sidecar} {why}; run staticreg mirror again, or delete the file"
    return Incoming(record, name, version, copy, meta)


# -- applying changes --------------------------------------------------------------


def apply(store: Store, changes: list[Change], config: Config, readmes: ReadmeStore | None = None) -> UpdateReport:
    """Apply each package's change, then bring the registry's state and shared pages up to date."""
    report = UpdateReport(store.label)
    now = datetime.now(timezone.utc)
    with store.exclusive():
        states = _States(store)
        state_blob = store.read(layout.REGISTRY_STATE)
        before = states.parse(state_blob) if state_blob else None
        settings = _settings(store, before, config)
        config = _config_for(config, settings)
        first = before is None
        migrating = not first and settings.layout != layout.GENERATION  # see the module's docstring
        before = before or RegistryState(settings)
        names_here = (set(before.fingerprints) | {c.name for c in changes if c.add}) - {
            c.name for c in changes if c.remove_all
        }
        packages = {
            c.name: _update_package(store, c, config, names_here, readmes, now, report, migrating) for c in changes
        }
        names_after = (set(before.fingerprints) | {n for n, p in packages.items() if p}) - {
            n for n, p in packages.items() if p is None
        }
        settings_key = incremental.settings_key(config)
        entries: dict[str, tuple[dict, list[str], str] | None] = {
            name: (_row(p, config), depends_on(p), incremental.fingerprint(p, settings_key, names_after)) if p else None
            for name, p in packages.items()
        }
        if migrating:  # every package, its dependents among them
            entries.update(_migrate(store, before, names_after, packages, config, settings_key, now, report))
        else:
            entries.update(_dependents(store, before, names_after, packages, config, settings_key, now, report))
        _update_registry(store, states, settings, config, entries, first, report, migrating)
    if hasattr(store, "requests"):
        report.requests = store.requests
    return report


class _States:
    """The registry's state as read, parsed once for each version of it (at 100,000 tarballs
    the file is 14 MB: parsing it again for every step took most of a publish)."""

    def __init__(self, store: Store):
        self.store = store
        self.known: dict[str, RegistryState] = {}

    def parse(self, blob: Blob) -> RegistryState:
        state = self.known.get(blob.etag)
        if state is None:
            state = registry_state.parse_registry_state(blob.data, _label(self.store, layout.REGISTRY_STATE))
            self.known = {blob.etag: state}
        return RegistryState(state.settings, dict(state.rows), dict(state.depends_on), dict(state.fingerprints))

    def wrote(self, etag: str | None, state: RegistryState) -> None:
        if etag:
            self.known = {etag: state}


def _settings(store: Store, state: RegistryState | None, config: Config) -> Settings:
    """The registry's settings; for a registry that has none yet, the configuration's."""
    wanted = registry_settings(config)
    if state is None:
        if not config.base_url:
            raise UpdateError(f"{store.label} is not a registry yet: give --base-url (the URL it will be served at)")
        return wanted
    settings = state.settings
    if config.base_url and config.base_url != settings.base_url:
        raise UpdateError(
            f"{store.label} is served at {settings.base_url}, not {config.base_url}: every document names "
            "its tarballs' URLs, so moving a registry means building it again (staticreg build)"
        )
    if wanted.signing_key != settings.signing_key:
        raise UpdateError(
            f"{store.label} "
            + (
                f"signs its versions with the key {settings.signing_key}"
                if settings.signing_key
                else "does not sign its versions"
            )
            + (
                f", and this one would with {wanted.signing_key}"
                if wanted.signing_key
                else ", and no signing key was given"
            )
            + ": give its key (--signing-key, $STATICREG_SIGNING_KEY or signing_key in staticreg.yml); "
            "a new key or an end to signing is a build's to make (staticreg build, then deploy)"
        )
    if wanted.templates != settings.templates:
        raise UpdateError(
            f"{store.label}'s pages were made with "
            + ("staticreg's own templates" if not settings.templates else "other templates (template_dir)")
            + ": give the same templates (-c staticreg.yml with its template_dir) so that its pages stay alike"
        )
    return settings


def _config_for(config: Config, settings: Settings) -> Config:
    return replace(
        config,
        base_url=settings.base_url,
        title=settings.title,
        site=settings.site,
        index_html=settings.index_html,
        precompress=settings.precompress,
        dist_tags=(),
        deprecations=(),
        publish_times=(),
    )


def _label(store: Store, path: str) -> str:
    return f"{store.label}: {path}"


def _backoff(attempt: int) -> None:
    time.sleep(min(2.0, 0.02 * 2**attempt) * random.random())


def _update_package(
    store: Store,
    change: Change,
    config: Config,
    names_here: set[str],
    readmes: ReadmeStore | None,
    now: datetime,
    report: UpdateReport,
    migrating: bool = False,
) -> Package | None:
    """Commit one package's change with compare-and-swap; its package, or None when it is gone.
    `migrating`: the registry is in an older layout (see the module's docstring)."""
    name = change.name
    for attempt in range(ATTEMPTS):
        doc_blob = store.read(layout.packument_path(name))
        state_blob = store.read(layout.package_state_path(name))
        stored = _existing(store, name, doc_blob, state_blob)
        existing, state = stored.records, stored.state
        if doc_blob is None and not change.add:
            raise UpdateError(f"{store.label} has no package {name}")
        missing = sorted(change.remove - set(existing))
        if missing:
            raise UpdateError(f"{name} has no version {', '.join(missing)} in {store.label}")
        keep = {} if change.remove_all else {v: r for v, r in existing.items() if v not in change.remove}
        added = []
        for incoming in change.add:
            there = keep.get(incoming.version)
            if there is None:
                added.append(incoming)
            elif there.integrity != incoming.record.integrity:
                raise UpdateError(
                    f"{incoming.record.source}: {name}@{incoming.version} is already in {store.label} with other "
                    "bytes; a published version never changes (the public npm registry refuses it too): "
                    "publish it as a new version"
                )
        versions = set(keep) | {a.version for a in added}
        if change.state_change is not None:
            change.state_change(state, versions)
        state.dist_tags = {t: v for t, v in state.dist_tags.items() if v in versions}
        for incoming in added:
            readme = incoming.record.readme
            state.versions[incoming.version] = VersionState(
                readme, incoming.record.readme_filename if readme else None, upstream_entry(incoming.upstream)
            )
            if readme and readmes is not None:
                state.readmes[readme] = readmes.get(readme)
        for version in set(state.versions) - set(keep) - {a.version for a in added}:
            del state.versions[version]
        if not keep and not added:
            _remove_package(store, name, existing, stored.doc, config, report)
            if migrating:
                _remove_legacy(store, name, existing, stored.doc, config)
            return None
        package = _model(name, keep, added, stored, config, now)
        made = _files(package, config, state, stored.doc)
        files = made.files
        touched = _version_documents(package) if migrating else _changed_version_documents(stored.doc, package, files)
        try:
            for incoming in added:
                _put_tarball(store, name, incoming)
                bundle = incoming.upstream.attestation_bundle if incoming.upstream else None
                if bundle is not None:
                    store.write(layout.attestation_path(name, incoming.version), documents.dumps(bundle))
            for path in touched:
                store.write(path, files[path])
            store.write(
                layout.package_state_path(name),
                registry_state.package_state_bytes(state),
                expect=state_blob.etag if state_blob else ABSENT,
            )
            committed = store.write(
                layout.packument_path(name),
                files[layout.packument_path(name)],
                expect=doc_blob.etag if doc_blob else ABSENT,
                precompress=config.precompress,
            )
        except Conflict:
            report.retries += 1
            _backoff(attempt)
            continue
        for incoming in change.add:
            (report.published if incoming in added else report.unchanged).append(f"{name}@{incoming.version}")
        shown = _refresh_package(
            store, name, config, names_here | {name}, touched, now, report, (committed, package, made, state)
        )
        if config.site:  # a README page that no version shows any more (a version went, or came between)
            for path in sorted(_site_pages(name, existing) - _site_pages(name, shown.versions)):
                store.delete(path)
        for version in sorted(set(existing) - set(package.versions)):
            _remove_version(store, name, version, config)
            report.removed.append(f"{name}@{version}")
        for tag in sorted(_tag_documents(existing, stored.doc) - set(package.dist_tags)):
            _remove_document(store, layout.version_document_path(name, tag))
        if migrating:
            _remove_legacy(store, name, existing, stored.doc, config)
        return package
    raise UpdateError(f"{name}: {ATTEMPTS} other writers changed it while this one tried; run the same command again")


@dataclass
class _Stored:
    """A package as the store has it: its versions as records, their publish times, its state,
    and the sidecars of its mirrored versions (by record source, as build_registry takes them)."""

    records: dict[str, TarballRecord] = field(default_factory=dict)
    times: dict[str, str] = field(default_factory=dict)
    state: PackageState = field(default_factory=PackageState)
    upstream: dict = field(default_factory=dict)
    doc: dict = field(default_factory=dict)  # the package document, parsed; {} when there is none


def _existing(store: Store, name: str, doc_blob: Blob | None, state_blob: Blob | None) -> _Stored:
    """The package as the store has it."""
    if doc_blob is None:
        return _Stored()
    label = _label(store, layout.packument_path(name))
    if state_blob is None:
        raise StateError(
            f"{label} has no {layout.package_state_path(name)} beside it; build the registry "
            "again with staticreg build (this staticreg writes it), or restore it"
        )
    state = registry_state.parse_package_state(state_blob.data, _label(store, layout.package_state_path(name)))
    try:
        doc = json.loads(doc_blob.data)
    except ValueError as exc:
        raise StateError(f"{label} is not JSON ({exc}); build the registry again") from None
    versions, times = (
        doc.get("versions") if isinstance(doc, dict) else None,
        doc.get("time") if isinstance(doc, dict) else None,
    )
    if not isinstance(versions, dict) or not isinstance(times, dict) or doc.get("name") != name:
        raise StateError(f"{label} is not a package document of {name}; build the registry again")
    stored = _Stored(times={f"{name}@{v}": times.get(v, "") for v in versions}, state=state, doc=doc)
    for version, manifest in versions.items():
        if not isinstance(times.get(version), str):
            raise StateError(f"{label}: version {version!r} has no publish time; build the registry again")
        kept = state.versions.get(version, VersionState())
        try:
            record = record_from_document(name, version, manifest, kept.readme, kept.readme_filename)
            meta = upstream_of(kept.upstream)
        except (ValueError, upstream_meta.SidecarProblem) as exc:
            raise StateError(f"{label}: {exc}; build the registry again") from None
        stored.records[version] = record
        if meta is not None:
            stored.upstream[record.source] = meta
    return stored


def _model(
    name: str, keep: dict[str, TarballRecord], added: list[Incoming], stored: _Stored, config: Config, now: datetime
) -> Package:
    state = stored.state
    where = f"the dist-tags and deprecations of {name}"
    tags = tuple(Override(name, where, tag=t, version=v) for t, v in sorted(state.dist_tags.items()))
    deprecations = tuple(Override(name, where, range=r, message=m) for r, m in state.deprecations)
    records = list(keep.values()) + [a.record for a in added]
    upstream = {**stored.upstream, **{a.record.source: a.upstream for a in added if a.upstream is not None}}
    registry = build_registry(
        records, replace(config, dist_tags=tags, deprecations=deprecations), stored.times, now, upstream
    )
    problems = list(registry.problems)
    if problems or name not in registry.packages:
        raise UpdateError(f"{name} cannot be made: " + "; ".join(str(p) for p in problems))
    return registry.packages[name]


class _TextReadmes:
    """README texts by id, as the site and documents ask a ReadmeStore for them."""

    def __init__(self, texts: dict[str, str]):
        self.texts = texts

    def get(self, readme_id: str) -> str:
        return self.texts[readme_id]


class _Collect:
    """Takes what writers.write_package writes: {path: bytes}, and the twins to link."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.links: list[tuple[str, str]] = []

    def write(self, path: str, data: bytes) -> None:
        self.files[path] = data

    def link(self, existing: str, path: str) -> None:
        self.links.append((existing, path))


def _files(package: Package, config: Config, state: PackageState, doc: dict) -> _Collect:
    """The package's documents, as write_package makes them; `doc` the stored document, whose
    versions keep their signatures."""
    collect = _Collect()
    write_package(package, collect, config, _TextReadmes(state.readmes), doc.get("versions") or {})
    return collect


def _put_tarball(store: Store, name: str, incoming: Incoming) -> None:
    path = layout.tarball_path(name, incoming.version)
    if store.create(path, incoming.copy):
        return
    there = store.read(path)  # a tarball is there already: one with the same bytes is fine
    if there is not None and sri(hashlib.sha512(there.data)) == incoming.record.integrity:
        return
    raise UpdateError(
        f"{incoming.record.source}: {store.label} already has a different tarball at {path}; a published "
        "version never changes: publish it as a new version"
    )


def _refresh_package(
    store: Store,
    name: str,
    config: Config,
    names_here: set[str],
    touched: list[str],
    now: datetime,
    report: UpdateReport,
    committed: tuple[str | None, Package, _Collect, PackageState],
) -> Package:
    """Write the files made from the package document (and the version documents this change
    touched): first from what this change committed, then, if another writer committed since,
    from the document as it is, until it is still the one they were made from after. Returns
    the package they were made from last."""
    etag, package, made, state = committed
    for _ in range(ATTEMPTS):
        for path in (layout.abbreviated_path(name), layout.dist_tags_path(name), *touched):
            if path in made.files:
                store.write(path, made.files[path], precompress=config.precompress)
        if store.folder_host:
            for existing_path, twin in made.links:
                store.link(existing_path, twin)
        if config.site:
            from staticreg.site import pages as site

            for path, data in site.render_package(
                names_here, package, config, _site(config), _TextReadmes(state.readmes)
            ):
                store.write(path, data)
        after = store.read(layout.packument_path(name))
        if after is None or after.etag == etag:
            if name not in report.packages:
                report.packages.append(name)
            return package
        report.retries += 1  # another writer committed the package since: its document is the one to follow
        stored = _existing(store, name, after, store.read(layout.package_state_path(name)))
        etag, state = after.etag, stored.state
        package = _model(name, stored.records, [], stored, config, now)
        made = _files(package, config, state, stored.doc)
    return package


def _site_pages(name: str, versions: dict) -> set[str]:
    """The site's pages of a package with these versions (records or model entries, by version)."""
    from staticreg.site import pages as site

    return site.page_paths(name, {v: getattr(e, "record", e) for v, e in versions.items()})


def _version_documents(package: Package) -> list[str]:
    """Every version and tag document of the package."""
    tags = [t for t in package.dist_tags if t not in package.versions]
    return [layout.version_document_path(package.name, v) for v in [*package.versions, *tags]]


def _changed_version_documents(doc: dict, package: Package, files: dict[str, bytes]) -> list[str]:
    """The version and tag documents whose bytes differ from the stored package document's."""
    before, tags = doc.get("versions") or {}, doc.get("dist-tags") or {}
    changed = []
    for version in package.versions:
        path = layout.version_document_path(package.name, version)
        if version not in before or documents.dumps(before[version]) != files[path]:
            changed.append(path)
    for tag, version in package.dist_tags.items():
        if tag not in package.versions:
            target = layout.version_document_path(package.name, version)
            if tags.get(tag) != version or target in changed:
                changed.append(layout.version_document_path(package.name, tag))
    return changed


def _tag_documents(existing: dict, doc: dict) -> set[str]:
    """The tags of a stored document that have documents of their own (those not named as a version)."""
    return {t for t in doc.get("dist-tags") or {} if isinstance(t, str) and t not in existing}


def _remove_document(store: Store, path: str) -> None:
    store.delete(path)
    if store.folder_host and path.endswith("/" + layout.FULL_DOCUMENT):  # the package document's twin
        store.delete(layout.zero_config_copy(path))


def _remove_version(store: Store, name: str, version: str, config: Config) -> None:
    """After the package document stopped naming it (and its pages were made without it):
    its document, then its tarball."""
    _remove_document(store, layout.version_document_path(name, version))
    store.delete(layout.attestation_path(name, version))
    store.delete(layout.tarball_path(name, version))


def _remove_legacy(store: Store, name: str, existing: dict, doc: dict, config: Config) -> None:
    """The files an older layout gave the package's versions and tags (layout.legacy_*), once
    their files in this layout are written. In an object store a version document's key is the
    same in both layouts: only the pages go there."""
    versions = sorted(existing)
    if store.folder_host:
        for version_or_tag in versions + sorted(_tag_documents(existing, doc)):
            for path in layout.legacy_document_paths(name, version_or_tag):
                store.delete(path)
    if config.site:
        for version in versions:
            store.delete(layout.legacy_version_page(name, version))


def _migrate(
    store: Store,
    before: RegistryState,
    names_after: set[str],
    packages: dict,
    config: Config,
    settings_key: str,
    now: datetime,
    report: UpdateReport,
) -> dict[str, tuple[dict, list[str], str]]:
    """A registry in an older layout: every package this change did not touch, its files written
    where this layout puts them and the old ones removed. Their new entries."""
    entries = {}
    for name in sorted(before.fingerprints):
        if name in packages or name not in names_after:
            continue
        if (entry := _rewrite(store, name, names_after, config, settings_key, now, documents=True)) is not None:
            entries[name] = entry
            report.packages.append(name)
    return entries


def _rewrite(
    store: Store,
    name: str,
    names_after: set[str],
    config: Config,
    settings_key: str,
    now: datetime,
    documents: bool,
) -> tuple[dict, list[str], str] | None:
    """A package no change touched, made again from what the store holds: its pages, and with
    `documents` its documents where this layout puts them (the old layout's removed). Its new
    entry; None when the store has no document for it."""
    doc_blob = store.read(layout.packument_path(name))
    if doc_blob is None:
        return None
    stored = _existing(store, name, doc_blob, store.read(layout.package_state_path(name)))
    package = _model(name, stored.records, [], stored, config, now)
    if documents:
        made = _files(package, config, stored.state, stored.doc)
        for path in (layout.abbreviated_path(name), layout.dist_tags_path(name), *_version_documents(package)):
            store.write(path, made.files[path])
        if store.folder_host:
            for existing_path, twin in made.links:
                store.link(existing_path, twin)
    if config.site:
        from staticreg.site import pages as site

        readmes = _TextReadmes(stored.state.readmes)
        for path, data in site.render_package(names_after, package, config, _site(config), readmes):
            store.write(path, data)
    if documents:
        _remove_legacy(store, name, stored.records, stored.doc, config)
    return _row(package, config), depends_on(package), incremental.fingerprint(package, settings_key, names_after)


_SITE_CACHE: dict = {}


def _site(config: Config) -> dict:
    from staticreg.site import pages as site

    key = (config.title, config.base_url, config.template_dir)
    if key not in _SITE_CACHE:
        _SITE_CACHE[key] = site.site_context(config, site.asset_digests(site.assets(config)))
    return _SITE_CACHE[key]


def _row(package: Package, config: Config) -> dict:
    from staticreg.site import pages as site

    return site.summary(package) if config.site else {}


def _dependents(
    store: Store,
    before: RegistryState,
    names_after: set[str],
    packages: dict,
    config: Config,
    settings_key: str,
    now: datetime,
    report: UpdateReport,
) -> dict[str, tuple[dict, list[str], str]]:
    """Pages link the dependencies that are in the registry, and fingerprints count them: a
    package that came or went changes the packages that depend on it. Their new entries."""
    came_or_went = {n for n, p in packages.items() if (p is None) == (n in before.fingerprints)}
    entries = {}
    for name in sorted(before.depends_on):
        if name in packages or name not in names_after or not came_or_went.intersection(before.depends_on[name]):
            continue
        if (entry := _rewrite(store, name, names_after, config, settings_key, now, documents=False)) is not None:
            entries[name] = entry
            report.packages.append(name)
    return entries


def _remove_package(store: Store, name: str, existing: dict, doc: dict, config: Config, report: UpdateReport) -> None:
    """The last version went: the documents first, so that no document names a missing tarball."""
    if doc:
        _remove_document(store, layout.packument_path(name))
        if store.folder_host:
            store.delete(layout.abbreviated_path(name))
    store.delete(layout.dist_tags_path(name))
    for tag in _tag_documents(existing, doc):
        _remove_document(store, layout.version_document_path(name, tag))
    if config.site:
        for path in sorted(_site_pages(name, existing)):
            store.delete(path)
    for version in existing:
        _remove_version(store, name, version, config)
        report.removed.append(f"{name}@{version}")
    store.delete(layout.package_state_path(name))


def _update_registry(
    store: Store,
    states: _States,
    settings: Settings,
    config: Config,
    rows: dict,
    first: bool,
    report: UpdateReport,
    migrating: bool = False,
) -> None:
    """Merge the touched packages' rows into the registry's state (compare-and-swap), then write
    the shared pages from the state as it is, until it is still the same after. The state names
    this layout from now on (`migrating`: the change brought every package to it)."""
    for attempt in range(ATTEMPTS):
        blob = store.read(layout.REGISTRY_STATE)
        state = states.parse(blob) if blob else RegistryState(settings)
        replaced = (registry_state.state_digest(blob.data) if blob else "", dict(state.rows))
        state.settings = replace(state.settings, layout=layout.GENERATION)
        for name, entry in rows.items():
            if entry is None:
                for table in (state.rows, state.depends_on, state.fingerprints):
                    table.pop(name, None)
                continue
            row, deps, fingerprint = entry
            state.fingerprints[name] = fingerprint
            if config.site:
                state.rows[name] = row
            if deps:
                state.depends_on[name] = deps
            else:
                state.depends_on.pop(name, None)
        data = registry_state.registry_state_bytes(state)
        if blob is not None and blob.data == data:
            break
        try:
            states.wrote(store.write(layout.REGISTRY_STATE, data, expect=blob.etag if blob else ABSENT), state)
            break
        except Conflict:
            report.retries += 1
            _backoff(attempt)
    else:
        raise UpdateError(
            f"{store.label}: {ATTEMPTS} other writers changed the registry's state meanwhile; "
            "run the same command again"
        )
    if first:
        store.write(layout.PING, documents.dumps(documents.PING_DOCUMENT))
        if config.signing is not None and config.signing.keys:
            store.write(layout.KEYS, documents.dumps(config.signing.keys_document()))
        if config.index_html and store.folder_host:
            store.write(layout.NOJEKYLL, b"")
    if config.site:
        _write_shared_pages(store, states, config, replaced, first, report, migrating)


def _write_shared_pages(
    store: Store,
    states: _States,
    config: Config,
    replaced: tuple[str, dict],
    first: bool,
    report: UpdateReport,
    migrating: bool = False,
) -> None:
    """Write the shared pages from the registry's state as it is, until it is still the same after.

    Only the pages that differ from what they show are made: the marker beside the state
    names the state they were made from. While pages are being written the marker names
    none, so a writer killed meanwhile leaves them to be made whole by the next one."""
    from staticreg.site import pages as site

    if first or migrating:  # the pages of this layout are made with this staticreg's assets
        for name, data in site.assets(config).items():
            store.write(layout.site_asset(name), data)
    marker = store.read(layout.SHARED_PAGES_STATE)
    made_from, shown_rows = replaced
    shown: list[dict] | None = [shown_rows[n] for n in sorted(shown_rows)]
    if first or migrating or registry_state.shared_pages_state(marker.data if marker else None) != made_from:
        shown = None  # not known: every shared page is made again
    was = site.shared_pages([shown_rows[n] for n in sorted(shown_rows)], config)
    for _ in range(ATTEMPTS):
        blob = store.read(layout.REGISTRY_STATE)
        assert blob is not None
        state = states.parse(blob)
        rows_now = [state.rows[n] for n in sorted(state.rows)]
        pages = site.shared_pages(rows_now, config)
        if shown is not None:
            before = {page.path: page for page in (was if shown is not None else [])}
            changed = [page for page in pages if before.get(page.path) != page] if shown != rows_now else []
        else:
            changed = pages
        if changed or shown != rows_now:
            store.write(layout.SHARED_PAGES_STATE, registry_state.shared_pages_bytes(None))
            store.write(layout.SITE_SEARCH_INDEX, site.search_index(rows_now))
            for path, data in site.render_pages(changed, config, _site(config)):
                store.write(path, data)
        for path in sorted({p.path for p in was} - {p.path for p in pages}):
            store.delete(path)  # a list page past the last, the page of a scope with no package left
        if migrating:
            for path in site.legacy_shared_pages(shown_rows.values()):
                store.delete(path)
        after = store.read(layout.REGISTRY_STATE)
        if after is not None and after.etag == blob.etag:
            store.write(
                layout.SHARED_PAGES_STATE, registry_state.shared_pages_bytes(registry_state.state_digest(blob.data))
            )
            return
        shown, was = rows_now, pages
        report.retries += 1
