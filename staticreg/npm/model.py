"""From tarball records to the registry's packages: pure functions, no I/O.

`normalize_manifest` turns one tarball's package.json into a version manifest the
way `npm publish` and the public npm registry do. `build_registry` groups the
versions into packages, sets dist-tags, deprecations and publish times, and
returns every problem it found instead of stopping at the first.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any

from staticreg.config import Config, Override
from staticreg.errors import Problem as Problem  # its home is errors; the build imports it from here
from staticreg.npm import layout, names, upstream_meta
from staticreg.npm.records import TarballRecord, pack_manifest
from staticreg.npm.semver import parse_range, satisfies

DEPENDENCY_FIELDS = ("dependencies", "devDependencies", "optionalDependencies", "peerDependencies")
INSTALL_SCRIPTS = ("preinstall", "install", "postinstall")
# Hoisted from the latest version to the top of the package document, as the public registry does.
HOISTED_FIELDS = (
    "description",
    "keywords",
    "author",
    "maintainers",
    "contributors",
    "repository",
    "homepage",
    "bugs",
    "license",
)


@dataclass(slots=True)  # slots: 100,000 of them are held at once
class Version:
    name: str
    version: str
    record: TarballRecord
    base_url: str
    deprecated: str | None = None  # the config's deprecation message, over the manifest's own
    time: str = ""  # ISO 8601, milliseconds, Z
    time_source: str = ""  # "config", "upstream", "remembered", "mtime"
    upstream: upstream_meta.UpstreamMeta | None = None  # what the upstream said of a mirrored tarball

    @property
    def manifest(self) -> dict[str, Any]:
        """The version's manifest: normalised, with dist. Made again from the record on every
        call (a new dict: changing it changes nothing). At 100,000 versions keeping them all,
        even as JSON text, would take hundreds of megabytes beside the records' own."""
        manifest = normalize_manifest(self.record, self.base_url)[2]
        if self.upstream is not None:
            manifest = upstream_meta.apply(manifest, self.upstream)
        if self.deprecated:
            manifest["deprecated"] = self.deprecated
        elif self.deprecated == "":  # npm deprecate's empty message: no longer deprecated
            manifest.pop("deprecated", None)
        return manifest


@dataclass
class Package:
    name: str
    versions: dict[str, Version]  # in semver order, lowest first
    dist_tags: dict[str, str]
    created: str
    modified: str

    @property
    def latest(self) -> Version:
        return self.versions[self.dist_tags["latest"]]


@dataclass
class Registry:
    packages: dict[str, Package]  # sorted by name
    problems: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    duplicates: list[Problem] = field(default_factory=list)

    @property
    def version_count(self) -> int:
        return sum(len(p.versions) for p in self.packages.values())


def iso_time(when: datetime) -> str:
    when = when.astimezone(timezone.utc)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def _normalize_dependencies(manifest: dict[str, Any], warnings: list[str]) -> None:
    for key in DEPENDENCY_FIELDS:
        if key not in manifest:
            continue
        value = manifest[key]
        if isinstance(value, list):
            # 2010-era tarballs have arrays here; pnpm drops such versions.
            manifest[key] = {d: "*" for d in value if isinstance(d, str) and d}
            if value:
                warnings.append(f'{key} is a list; read it as {{name: "*"}}')
            continue
        if not isinstance(value, dict):
            del manifest[key]
            warnings.append(f"{key} is not an object; left out")
            continue
        bad = [k for k, v in value.items() if not isinstance(v, str)]
        if bad:
            manifest[key] = {k: v for k, v in value.items() if isinstance(v, str)}
            warnings.append(f"{key}: left out entries whose range is not text: {', '.join(sorted(bad))}")


def _normalize_bundle(manifest: dict[str, Any]) -> None:
    if "bundledDependencies" in manifest:
        legacy = manifest.pop("bundledDependencies")
        manifest.setdefault("bundleDependencies", legacy)
    if "bundleDependencies" not in manifest:
        return
    value = manifest["bundleDependencies"]
    if value is True:
        manifest["bundleDependencies"] = list(manifest.get("dependencies") or {})
    elif isinstance(value, dict):
        manifest["bundleDependencies"] = list(value)
    elif isinstance(value, list):
        manifest["bundleDependencies"] = [d for d in value if isinstance(d, str)]
    else:
        del manifest["bundleDependencies"]


def has_install_script(manifest: dict[str, Any], has_binding_gyp: bool) -> bool:
    scripts = manifest.get("scripts")
    if not isinstance(scripts, dict):
        scripts = {}
    if any(scripts.get(s) for s in INSTALL_SCRIPTS):
        return True
    # npm runs `node-gyp rebuild` for a binding.gyp when no install script is given.
    return has_binding_gyp and manifest.get("gypfile") is not False


def normalize_manifest(record: TarballRecord, base_url: str) -> tuple[str, str, dict[str, Any], list[str]]:
    """(name, version, version manifest, warnings); raises names.NameProblem or layout.UnsafePath."""
    raw = record.manifest
    warnings = names.check_name(raw.get("name"))
    name = raw["name"]
    layout.package_dir(name)
    version = names.clean_version(raw.get("version"))
    if version != raw["version"]:
        warnings.append(f"version {raw['version']!r} read as {version!r}")
    manifest = {k: v for k, v in raw.items() if not k.startswith("_")}
    manifest["name"] = name
    manifest["version"] = version
    manifest.pop("readme", None)
    manifest.pop("readmeFilename", None)
    manifest.pop("dist", None)
    if "deprecated" in manifest and not (isinstance(manifest["deprecated"], str) and manifest["deprecated"]):
        del manifest["deprecated"]
    _normalize_dependencies(manifest, warnings)
    _normalize_bundle(manifest)
    manifest["_id"] = f"{name}@{version}"
    manifest["hasInstallScript"] = has_install_script(manifest, record.has_binding_gyp)
    manifest["_hasShrinkwrap"] = record.has_shrinkwrap
    manifest["dist"] = {
        "integrity": record.integrity,
        "shasum": record.shasum,
        "tarball": layout.tarball_url(base_url, name, version),
        "fileCount": record.file_count,
        "unpackedSize": record.unpacked_size,
    }
    return name, version, manifest, warnings


def record_from_document(
    name: str, version: str, manifest: object, readme: str | None, readme_filename: str | None
) -> TarballRecord:
    """A version of a package document read back from a hosted registry, as the record its
    tarball gave when it was published: normalize_manifest makes the same manifest of it.
    Raises ValueError when the document does not hold what staticreg writes there."""
    if not isinstance(manifest, dict) or manifest.get("name") != name or manifest.get("version") != version:
        raise ValueError(f"version {version!r} is not a manifest of {name}@{version}")
    dist = manifest.get("dist")
    if not isinstance(dist, dict):
        raise ValueError(f"version {version!r} has no dist")
    integrity, shasum = dist.get("integrity"), dist.get("shasum")
    count, size = dist.get("fileCount"), dist.get("unpackedSize")
    if not (isinstance(integrity, str) and integrity.startswith("sha512-") and isinstance(shasum, str)):
        raise ValueError(f"version {version!r} has no sha512 integrity or shasum")
    if not (isinstance(count, int) and isinstance(size, int)) or isinstance(count, bool) or isinstance(size, bool):
        raise ValueError(f"version {version!r} has no fileCount or unpackedSize")
    return TarballRecord(
        source=layout.tarball_path(name, version),
        size=0,
        mtime=0.0,
        shasum=shasum,
        integrity=integrity,
        manifest_packed=pack_manifest(_as_published(manifest)),
        file_count=count,
        unpacked_size=size,
        # hasInstallScript without an install script can only have come from a binding.gyp
        has_binding_gyp=manifest.get("hasInstallScript") is True,
        has_shrinkwrap=manifest.get("_hasShrinkwrap") is True,
        readme=readme,
        readme_filename=readme_filename,
    )


def _as_published(manifest: dict[str, Any]) -> dict[str, Any]:
    """A stored manifest without what normalize_manifest adds to package.json, so that it
    makes the same manifest, keys in the same order, again. normalize_manifest puts dist
    last: what comes after it was added later, by a mirrored version's sidecar or a
    deprecation (see Version.manifest), and is applied again from the package's state."""
    keys = list(manifest)
    end = keys.index("dist") if "dist" in keys else len(keys)
    return {k: manifest[k] for k in keys[:end] if k not in ("_id", "hasInstallScript", "_hasShrinkwrap")}


# What identify() tells of a record: (reason,) when it cannot be used, else (name, version,
# warnings, the names it depends on). A plain tuple: the reader's records cache it as one.
Identity = tuple[Any, ...]


def identify(record: TarballRecord) -> Identity:
    """What grouping a record into its package needs, without its manifest:
    (name, version, warnings, the names it depends on), or (reason,) when its name or
    version cannot be used. Parsing and normalising 100,000 manifests at every rebuild
    took seconds, so this is worked out once, where the tarball is read, and cached.
    The warnings include the file name's (the record's source is its cache key)."""
    try:
        name, version, manifest, notes = normalize_manifest(record, "")
    except (names.NameProblem, layout.UnsafePath) as exc:
        return (str(exc),)
    hint = filename_warning(record.source, name)
    if hint:
        notes.append(hint)
    depends_on = {d for kind in DEPENDENCY_FIELDS for d in manifest.get(kind) or ()}
    return (name, version, tuple(notes), tuple(sorted(depends_on)))  # interned by shared(), in the build


def identity(record: TarballRecord) -> Identity:
    return record.identity or identify(record)


def shared(record: TarballRecord) -> TarballRecord:
    """The record with the text that many records repeat as one object each (sys.intern):
    a package's name in each of its versions and in every package depending on it, a
    README id in each version sharing the README, "README.md". Records come from the
    reader processes as copies, with copies of each; the build cache keeps them interned.
    About 350 bytes a record, 35 MB at 100,000 tarballs."""
    ident = record.identity
    if len(ident) == 4:
        name, version, notes, depends_on = ident
        ident = (sys.intern(name), sys.intern(version), notes, tuple(sys.intern(d) for d in depends_on))
    return replace(
        record,
        source=sys.intern(record.source),  # and the build's stat keys: one string for both
        readme=record.readme and sys.intern(record.readme),
        readme_filename=record.readme_filename and sys.intern(record.readme_filename),
        identity=ident,
    )


_FILENAME = re.compile(r"^(?P<stem>.+?)-v?\d+\.\d+\.\d+.*\.(tgz|tar\.gz|tar)$")


def filename_warning(source: str, name: str) -> str | None:
    """Warn when a file is named after another package (other names are fine)."""
    match = _FILENAME.match(source.rpartition("/")[2])  # source: a relative path with "/"
    if not match:
        return None
    stem = match.group("stem")
    expected = {name, name.rpartition("/")[2], name.lstrip("@").replace("/", "-")}
    if stem in expected:
        return None
    return f"the file name suggests package {stem!r} but package.json says {name!r}"


def pick_latest(versions: Iterable[str], in_order: bool = False) -> str:
    """The highest stable version, else the highest; `in_order`: versions are sorted already."""
    ordered = list(versions) if in_order else sorted(versions, key=names.version_key)
    return next((v for v in reversed(ordered) if not names.is_prerelease(v)), ordered[-1])


def publish_time(
    key: str,
    record: TarballRecord,
    overrides: Mapping[str, datetime],
    remembered: Mapping[str, str],
    now: datetime,
    upstream: str | None = None,
) -> tuple[str, str]:
    """The publish time of name@version and where it came from; never in the future.
    `upstream`: the time a mirrored tarball's upstream gave it."""
    if key in overrides:
        return iso_time(overrides[key]), "config"
    if upstream:
        return min(upstream, iso_time(now)), "upstream"
    if key in remembered:
        return remembered[key], "remembered"
    mtime = datetime.fromtimestamp(record.mtime, tz=timezone.utc)
    return iso_time(min(mtime, now)), "mtime"


def build_registry(
    records: Iterable[TarballRecord],
    config: Config,
    remembered: Mapping[str, str],
    now: datetime,
    upstream: Mapping[str, upstream_meta.UpstreamMeta] | None = None,
) -> Registry:
    """Group records into packages. Problems are collected, never raised.
    `upstream`: the mirror's sidecars, by the source of the tarball they describe."""
    problems: list[Problem] = []
    warnings: list[Problem] = []
    duplicates: list[Problem] = []
    by_key: dict[tuple[str, str], Version] = {}
    conflicts: dict[tuple[str, str], list[str]] = {}

    for record in sorted(records, key=lambda r: r.source):
        if record.warnings:
            warnings += [Problem(record.source, w) for w in record.warnings]
        known = identity(record)
        if len(known) == 1:
            problems.append(Problem(record.source, known[0]))
            continue
        name, version, notes, _ = known
        if notes:
            warnings += [Problem(record.source, n) for n in notes]
        key = (name, version)
        if key in by_key:
            first = by_key[key].record
            if first.integrity == record.integrity:
                duplicates.append(Problem(record.source, f"same bytes as {first.source}; used once"))
            else:
                conflicts.setdefault(key, [first.source]).append(record.source)
            continue
        meta = upstream.get(record.source) if upstream else None
        if meta is not None and (why := upstream_meta.mismatch(meta, name, version, record.integrity)):
            problems.append(
                Problem(
                    record.source,
                    f"its sidecar {record.source}{upstream_meta.SUFFIX} {why}; mirror it again or delete the sidecar",
                )
            )
            continue
        by_key[key] = Version(name, version, record, config.base_url, upstream=meta)

    for (name, version), sources in conflicts.items():
        del by_key[(name, version)]
        for source in sources:
            others = ", ".join(s for s in sources if s != source)
            problems.append(
                Problem(source, f"{name}@{version} is also in {others} with different bytes; keep one of them")
            )

    grouped: dict[str, dict[str, Version]] = {}
    for (name, version), entry in by_key.items():
        grouped.setdefault(name, {})[version] = entry

    folded: dict[str, list[str]] = {}
    for name in grouped:
        folded.setdefault(name.lower(), []).append(name)
    for clash in (sorted(v) for v in folded.values() if len(v) > 1):
        for name in clash:
            for entry in grouped.pop(name).values():
                problems.append(
                    Problem(
                        entry.record.source,
                        f"package names {', '.join(repr(n) for n in clash)} differ only in case; "
                        "they would collide on case-insensitive disks",
                    )
                )

    overrides = {f"{o.name}@{o.version}": o for o in config.publish_times}
    override_times = {k: o.time for k, o in overrides.items() if o.time is not None}  # publish_times have one
    for spec, override in overrides.items():
        if override.time is not None and override.time > now:
            problems.append(Problem(override.where, f"publish_times.{spec}: the time is in the future"))
        elif override.name in grouped and override.version not in grouped[override.name]:
            warnings.append(Problem(override.where, f"publish_times.{spec}: no such version in the input"))

    packages: dict[str, Package] = {}
    for name in sorted(grouped):
        entries = grouped[name]
        ordered = {v: entries[v] for v in sorted(entries, key=names.version_key)}
        for version, entry in ordered.items():
            entry.time, entry.time_source = publish_time(
                f"{name}@{version}",
                entry.record,
                override_times,
                remembered,
                now,
                entry.upstream.time if entry.upstream else None,
            )
        times = [e.time for e in ordered.values()]
        packages[name] = Package(
            name=name,
            versions=ordered,
            dist_tags={"latest": pick_latest(ordered, in_order=True)},
            created=min(times),
            modified=max(times),
        )

    _apply_dist_tags(packages, config.dist_tags, problems)
    _apply_deprecations(packages, config.deprecations, warnings)
    for package in packages.values():
        package.dist_tags = dict(sorted(package.dist_tags.items(), key=lambda kv: (kv[0] != "latest", kv[0])))
    return Registry(packages=packages, problems=problems, warnings=warnings, duplicates=duplicates)


def _apply_dist_tags(packages: dict[str, Package], overrides: Iterable[Override], problems: list[Problem]) -> None:
    for o in overrides:
        package = packages.get(o.name)
        if package is None:
            problems.append(Problem(o.where, f"dist_tags: there is no package {o.name!r} in the input"))
        elif o.version not in package.versions:
            problems.append(Problem(o.where, f"dist_tags: {o.name} has no version {o.version} for tag {o.tag!r}"))
        else:
            package.dist_tags[o.tag] = o.version


def _apply_deprecations(packages: dict[str, Package], overrides: Iterable[Override], warnings: list[Problem]) -> None:
    for o in overrides:
        package = packages.get(o.name)
        spec = parse_range(o.range)
        matched = [v for v in package.versions if satisfies(v, spec)] if package else []
        if package is None or not matched:
            warnings.append(Problem(o.where, f"deprecations: {o.name}@{o.range} matches no version in the input"))
            continue
        for version in matched:
            package.versions[version].deprecated = o.message
