"""The JSON documents clients read, as plain dicts, and their exact bytes. No I/O."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from staticreg.npm.model import HOISTED_FIELDS, Package

if TYPE_CHECKING:
    from staticreg.npm.signatures import Keyring

MAX_README_CHARS = 64 * 1024

# Per-version fields of the abbreviated ("corgi") document: the public registry's
# list plus the few that pnpm and bun also read.
ABBREVIATED_VERSION_FIELDS = (
    "name",
    "version",
    "deprecated",
    "dependencies",
    "optionalDependencies",
    "devDependencies",
    "bundleDependencies",
    "peerDependencies",
    "peerDependenciesMeta",
    "bin",
    "directories",
    "dist",
    "engines",
    "cpu",
    "os",
    "libc",
    "funding",
    "acceptDependencies",
    "_hasShrinkwrap",
    "hasInstallScript",
)


def version_manifests(
    package: Package,
    signing: Keyring | None = None,
    previous: dict[str, list[Any]] | None = None,
    brought: dict[str, list[Any]] | None = None,
) -> dict[str, dict[str, Any]]:
    """Every version's manifest: made once, for all of a package's documents. With a keyring,
    each gets its dist.signatures (signatures.Keyring.sign_versions): `previous` holds the
    signatures of the previous output's document, `brought` a mirrored version's upstream ones."""
    made = {v: entry.manifest for v, entry in package.versions.items()}
    if signing is not None:
        for version, found in (brought or {}).items():
            made[version]["dist"].setdefault("signatures", found)
        signing.sign_versions(
            package.name,
            made,
            {v: e.time for v, e in package.versions.items()},
            previous or {},
            {v: e.record.source for v, e in package.versions.items()},
        )
    return made


def packument(package: Package, manifests: dict[str, dict[str, Any]], readme: str | None) -> dict[str, Any]:
    """The full package document: what `npm install` and yarn berry read. `manifests` as
    version_manifests(package) makes them; `readme` is the text of the latest version's README."""
    latest = package.latest
    doc: dict[str, Any] = {"_id": package.name, "name": package.name}
    for key in HOISTED_FIELDS:
        if key in manifests[latest.version]:
            doc[key] = manifests[latest.version][key]
    doc["dist-tags"] = package.dist_tags
    doc["versions"] = manifests
    doc["time"] = {"created": package.created, "modified": package.modified}
    doc["time"].update((v, entry.time) for v, entry in package.versions.items())
    doc["modified"] = package.modified
    if readme is not None:
        doc["readme"] = readme[:MAX_README_CHARS]
        doc["readmeFilename"] = latest.record.readme_filename
    return doc


def abbreviated(package: Package, manifests: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The corgi document: what npm's other paths, pnpm, yarn 1 and bun ask for."""
    return {
        "name": package.name,
        "modified": package.modified,
        "dist-tags": package.dist_tags,
        "versions": {v: _abbreviated_version(manifest) for v, manifest in manifests.items()},
    }


def _abbreviated_version(manifest: dict[str, Any]) -> dict[str, Any]:
    return {k: manifest[k] for k in ABBREVIATED_VERSION_FIELDS if k in manifest}


def dist_tags_document(package: Package) -> dict[str, str]:
    return package.dist_tags


PING_DOCUMENT: dict[str, Any] = {}


# msgspec writes the JSON: 2.7 times the json module's speed on the benchmark's documents,
# escapes included (the json module's bytes but for floats: 1e16, not 1e+16). What it
# refuses (a lone surrogate, which package.json may have as "\ud800") the json module writes.
def _json_module(doc: object) -> bytes:
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode("utf-8", errors="backslashreplace")


_encode: Callable[[Any], bytes]
try:
    from msgspec.json import Encoder
except ImportError:  # PyPy: msgspec is CPython's alone
    _encode = _json_module
else:
    _encode = Encoder().encode

_ESCAPES = (
    (b"<", b"\\u003c"),
    (b">", b"\\u003e"),
    (b"&", b"\\u0026"),
    ("\u2028".encode(), b"\\u2028"),
    ("\u2029".encode(), b"\\u2029"),
)


def dumps(doc: object) -> bytes:
    """Compact, deterministic JSON. <, > and & are escaped (still valid JSON) so a
    document served as HTML by a zero-config host cannot inject markup; lone
    surrogates from package.json come out as JSON escapes."""
    try:
        data = _encode(doc)
    except (UnicodeEncodeError, TypeError):
        data = _json_module(doc)
    # Outside strings JSON has none of these, and in UTF-8 their bytes are theirs alone.
    for raw, escaped in _ESCAPES:
        if raw in data:
            data = data.replace(raw, escaped)
    return data
