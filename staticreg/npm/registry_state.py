"""The state a registry carries with it, as types, and their bytes. No I/O.

Two kinds of file, both written by every build and by every change to a hosted
registry (`layout.REGISTRY_STATE` and `layout.package_state_path`):

- the registry's state: the settings its files were made with, and each package's
  row in the site's lists and search index (so the list pages can be made again
  without reading every package);
- a package's state: what its documents do not say but its files are made from:
  each version's README (by id, with the texts once each), and the dist-tags and
  deprecations that were set for it (by `staticreg dist-tag` and `deprecate`, or
  by the configuration of the build that made it).

They are read back from a registry that anyone with write access to the host can
change: everything is checked, and a damaged file is a clear error.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from staticreg.errors import StaticregError
from staticreg.npm.layout import GENERATION

FORMAT = 1


class StateError(StaticregError):
    """A state file of the registry is damaged or from a staticreg that cannot read it."""


@dataclass(frozen=True)
class Settings:
    """What every file of the registry was made with."""

    base_url: str
    title: str = "npm registry"
    site: bool = True
    index_html: bool = True
    templates: str = ""  # a digest of the user's template folder; "" for staticreg's own
    signing_key: str = ""  # the key id versions are signed with; "" when they are not
    # The layout its files follow (layout.GENERATION); a state without one is of generation 1.
    layout: int = GENERATION
    # Package documents have gzip copies beside them (in a folder: a store does without).
    precompress: bool = True


@dataclass
class RegistryState:
    settings: Settings
    rows: dict[str, dict[str, Any]] = field(default_factory=dict)  # package name -> its row (site.summary)
    # package name -> the names its versions depend on: its pages link those in the registry,
    # so a package that comes or goes changes the pages of the packages depending on it
    depends_on: dict[str, list[str]] = field(default_factory=dict)
    # package name -> incremental.fingerprint: what its files were made from. The state file
    # changes whenever a package's files do, so a build cache can tell its output by it.
    fingerprints: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class VersionState:
    readme: str | None = None  # the README's id (readmes.ReadmeStore's), None without one
    readme_filename: str | None = None
    # A mirrored version's sidecar (upstream_meta.UpstreamMeta.to_json(), without the
    # attestation bundle, which is served beside the documents), with its digest and
    # whether it had a bundle: what the build made the version from, besides the tarball.
    upstream: dict[str, Any] | None = None


@dataclass
class PackageState:
    versions: dict[str, VersionState] = field(default_factory=dict)
    readmes: dict[str, str] = field(default_factory=dict)  # README id -> text
    dist_tags: dict[str, str] = field(default_factory=dict)  # tag -> version, as set (not the computed latest)
    deprecations: list[tuple[str, str]] = field(default_factory=list)  # (range, message), later ones win


def _json_module(data: object, sort_keys: bool) -> bytes:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"), sort_keys=sort_keys).encode("utf-8")


# msgspec writes them: 7 times the json module's speed on a registry state of 100,000
# packages, with the same bytes (no float in them); what it refuses goes to the json module.
try:
    from msgspec.json import Encoder
except ImportError:  # PyPy: msgspec is CPython's alone
    _ENCODE = {False: lambda data: _json_module(data, False), True: lambda data: _json_module(data, True)}
else:
    _ENCODE = {False: Encoder().encode, True: Encoder(order="sorted").encode}


def dumps(data: object, sort_keys: bool = True) -> bytes:
    try:
        return _ENCODE[sort_keys](data)
    except (UnicodeEncodeError, TypeError):
        return _json_module(data, sort_keys)


def registry_state_bytes(state: RegistryState) -> bytes:
    s = state.settings
    # Keys in a fixed order without sort_keys: a row's keys come in site.summary's order (and
    # JSON keeps it); sorting every row's keys took a third of writing the file.
    return dumps(
        {
            "format": FORMAT,
            "settings": {
                "base_url": s.base_url,
                "index_html": s.index_html,
                "layout": s.layout,
                "precompress": s.precompress,
                "signing_key": s.signing_key,
                "site": s.site,
                "templates": s.templates,
                "title": s.title,
            },
            "packages": {name: state.rows[name] for name in sorted(state.rows)},
            "depends_on": {name: state.depends_on[name] for name in sorted(state.depends_on)},
            "fingerprints": {name: state.fingerprints[name] for name in sorted(state.fingerprints)},
        },
        sort_keys=False,
    )


def package_state_bytes(state: PackageState) -> bytes:
    used = {v.readme for v in state.versions.values() if v.readme}
    return dumps(
        {
            "format": FORMAT,
            "versions": {
                v: [s.readme, s.readme_filename] + ([s.upstream] if s.upstream else [])
                for v, s in state.versions.items()
            },
            "readmes": {k: t for k, t in state.readmes.items() if k in used},
            "dist_tags": state.dist_tags,
            "deprecations": [list(d) for d in state.deprecations],
        }
    )


def _load(data: bytes, label: str) -> dict[str, Any]:
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise StateError(f"{label} is not JSON ({exc}); {_REPAIR}") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise StateError(f"{label} is not a state file this staticreg can read (format {FORMAT}); {_REPAIR}")
    return doc


_REPAIR = "build the registry again with staticreg build, or restore that file"


def _strings(value: object, label: str, what: str) -> dict[str, str]:
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise StateError(f"{label}: {what} must map text to text; {_REPAIR}")
    return value


def parse_registry_state(data: bytes, label: str) -> RegistryState:
    doc = _load(data, label)
    settings, rows = doc.get("settings"), doc.get("packages")
    if not isinstance(settings, dict) or not isinstance(rows, dict):
        raise StateError(f"{label} has no settings or packages; {_REPAIR}")
    try:
        parsed = Settings(
            base_url=_text(settings["base_url"]),
            title=_text(settings["title"]),
            site=_flag(settings["site"]),
            index_html=_flag(settings["index_html"]),
            templates=_text(settings["templates"]),
            signing_key=_text(settings["signing_key"]),
            layout=_number(settings.get("layout", 1)),
            precompress=_flag(settings.get("precompress", False)),  # written by a staticreg without copies: none
        )
    except (KeyError, TypeError) as exc:
        raise StateError(f"{label}: a setting is missing or of the wrong type ({exc}); {_REPAIR}") from None
    if not all(isinstance(k, str) and isinstance(v, dict) for k, v in rows.items()):
        raise StateError(f"{label}: every package's row must be an object; {_REPAIR}")
    depends_on = doc.get("depends_on")
    if not isinstance(depends_on, dict) or not all(
        isinstance(v, list) and all(isinstance(d, str) for d in v) for v in depends_on.values()
    ):
        raise StateError(f"{label}: depends_on must list names; {_REPAIR}")
    fingerprints = _strings(doc.get("fingerprints"), label, "fingerprints")
    return RegistryState(parsed, rows, depends_on, dict(fingerprints))


def parse_package_state(data: bytes, label: str) -> PackageState:
    doc = _load(data, label)
    versions = doc.get("versions")
    if not isinstance(versions, dict):
        raise StateError(f"{label} has no versions; {_REPAIR}")
    parsed: dict[str, VersionState] = {}
    for version, value in versions.items():
        if not (
            isinstance(value, list)
            and len(value) in (2, 3)
            and all(x is None or isinstance(x, str) for x in value[:2])
            and (len(value) == 2 or _upstream_entry(value[2]))
        ):
            raise StateError(f"{label}: version {version!r} is not [README id, file name, upstream]; {_REPAIR}")
        parsed[version] = VersionState(value[0], value[1], value[2] if len(value) == 3 else None)
    readmes = _strings(doc.get("readmes"), label, "readmes")
    tags = _strings(doc.get("dist_tags"), label, "dist_tags")
    deprecations = doc.get("deprecations")
    if not isinstance(deprecations, list) or not all(
        isinstance(d, list) and len(d) == 2 and all(isinstance(x, str) for x in d) for d in deprecations
    ):
        raise StateError(f"{label}: deprecations must be [range, message] pairs; {_REPAIR}")
    missing = {s.readme for s in parsed.values() if s.readme and s.readme not in readmes}
    if missing:
        raise StateError(f"{label}: names READMEs it does not hold ({len(missing)}); {_REPAIR}")
    return PackageState(parsed, dict(readmes), dict(tags), [(r, m) for r, m in deprecations])


def _upstream_entry(value: object) -> bool:
    return (
        isinstance(value, dict)
        and isinstance(value.get("meta"), dict)
        and isinstance(value.get("digest"), str)
        and isinstance(value.get("has_bundle"), bool)
    )


def _text(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{value!r} is not text")
    return value


def _number(value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise TypeError(f"{value!r} is not a positive whole number")
    return value


def _flag(value: object) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{value!r} is not true or false")
    return value


def state_digest(data: bytes) -> str:
    """Of a registry state file's bytes: what the shared pages' marker names."""
    import hashlib

    return hashlib.sha256(data).hexdigest()


def shared_pages_bytes(made_from: str | None) -> bytes:
    """The marker of which state (state_digest) the shared pages were made from: None while
    they are being written."""
    return dumps({"format": FORMAT, "state": made_from or ""})


def shared_pages_state(data: bytes | None) -> str:
    """The state digest a marker names; "" when it names none (or is not one)."""
    try:
        doc = json.loads(data) if data else None
    except ValueError:
        return ""
    return doc.get("state", "") if isinstance(doc, dict) and isinstance(doc.get("state"), str) else ""
