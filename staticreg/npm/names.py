"""Package names, versions and dist-tag names: what npm accepts, and what is safe on disk.

Pure functions. Every name, version and tag that reaches `layout` has passed here,
so no string from a package can make a path outside the output.
"""

from __future__ import annotations

import functools
import re

from staticreg.npm import layout

# encodeURIComponent leaves exactly these characters alone; npm requires a name
# (each half of a scoped name) to be made only of them.
_URI_SAFE = re.compile(r"^[A-Za-z0-9\-_.!~*'()]+$")
_SCOPED = re.compile(r"^@([^/]+)/([^/]+)$")
_LEGACY_CHARS = re.compile(r"[~'!()*]")
MAX_NAME_LENGTH = 214
_BLOCKED = {"node_modules", "favicon.ico"}

# node-semver's strict grammar (SemVer 2.0.0). Build metadata is parsed and dropped,
# as `semver.clean` does.
_NUM = r"0|[1-9]\d*"
_PRE_ID = r"0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*"
_SEMVER = re.compile(
    rf"^(?P<core>({_NUM})\.({_NUM})\.({_NUM}))"
    rf"(?:-(?P<pre>(?:{_PRE_ID})(?:\.(?:{_PRE_ID}))*))?"
    r"(?:\+[0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*)?$"
)
MAX_VERSION_LENGTH = 256
_MAX_SAFE_INTEGER = 2**53 - 1

_TAG = re.compile(r"^[A-Za-z][A-Za-z0-9._-]{0,63}$")
# A tag's document (layout.version_document_path: <name>/<tag>.json) must not land on
# <name>/index.json, and no tag is the file name of a package folder's documents.
_DOCUMENT_NAMES = {layout.FULL_DOCUMENT, layout.ABBREVIATED_DOCUMENT, layout.ZERO_CONFIG_DOCUMENT}


class NameProblem(ValueError):
    """A name, version or tag that cannot be used; the message says why."""


def check_name(name: object) -> list[str]:
    """Raise NameProblem if `name` is not a usable npm package name.

    Returns warnings for names npm still serves but no longer accepts for new
    packages (capital letters, the characters ~'!()*).
    """
    if not isinstance(name, str):
        raise NameProblem('package.json has no "name" string')
    if name == "":
        raise NameProblem("the package name is empty")
    if name != name.strip():
        raise NameProblem(f"the package name {name!r} has leading or trailing spaces")
    if len(name) > MAX_NAME_LENGTH:
        raise NameProblem(f"the package name is longer than {MAX_NAME_LENGTH} characters")
    if name.startswith((".", "_")):
        raise NameProblem(f"the package name {name!r} starts with {name[0]!r}, which npm does not allow")
    if name.lower() in _BLOCKED:
        raise NameProblem(f"{name!r} is a name npm blocks")
    match = _SCOPED.match(name)
    parts = [match.group(1), match.group(2)] if match else [name]
    for part in parts:
        if not _URI_SAFE.match(part):
            raise NameProblem(
                f"the package name {name!r} has characters npm does not allow in a name "
                "(only letters, digits and - _ . ~ ' ! ( ) * ; a scoped name is @scope/name)"
            )
        if part.startswith("."):
            raise NameProblem(f"the package name {name!r} has a part that starts with '.'")
    warnings = []
    if name != name.lower():
        warnings.append(f"legacy package name {name!r}: npm no longer accepts capital letters in new names")
    if _LEGACY_CHARS.search(name):
        warnings.append(f"legacy package name {name!r}: npm no longer accepts ~'!()* in new names")
    return warnings


def clean_version(version: object) -> str:
    """`semver.clean`: trim, drop leading '=' and 'v', parse strictly, drop build metadata."""
    if not isinstance(version, str):
        raise NameProblem('package.json has no "version" string')
    if len(version) > MAX_VERSION_LENGTH:
        raise NameProblem(f"the version is longer than {MAX_VERSION_LENGTH} characters")
    text = re.sub(r"^[=v]+", "", version.strip())
    match = _SEMVER.match(text)
    if not match or any(int(n) > _MAX_SAFE_INTEGER for n in match.group("core").split(".")):
        raise NameProblem(f"the version {version!r} is not valid semver (like 1.2.3 or 1.2.3-beta.1)")
    pre = match.group("pre")
    return match.group("core") + (f"-{pre}" if pre else "")


def is_prerelease(version: str) -> bool:
    return "-" in version


# (major, minor, patch, 1 for a release or 0 for a prerelease, the prerelease's identifiers)
VersionKey = tuple[int, int, int, int, tuple[tuple[int, int, str], ...]]


@functools.lru_cache(maxsize=1 << 16)  # a registry repeats versions: 3,610 distinct among 100,000
def version_key(version: str) -> VersionKey:
    """Sort key with semver precedence for a version that `clean_version` returned."""
    core, _, pre = version.partition("-")
    major, minor, patch = (int(n) for n in core.split("."))
    if not pre:
        return (major, minor, patch, 1, ())
    ids = tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in pre.split("."))
    return (major, minor, patch, 0, ids)


def check_tag(tag: object) -> str:
    """A dist-tag name: a word that is not a version or a range (npm refuses those)."""
    if not isinstance(tag, str) or not _TAG.match(tag):
        raise NameProblem(f"the dist-tag {tag!r} is not a usable tag name (a letter, then letters, digits, . _ -)")
    if tag.lower().startswith("v") and tag[1:2].isdigit():
        raise NameProblem(f"the dist-tag {tag!r} looks like a version")
    if tag.lower() in _DOCUMENT_NAMES or tag.lower() + layout.VERSION_DOCUMENT_SUFFIX in _DOCUMENT_NAMES:
        raise NameProblem(f"the dist-tag {tag!r} is a file name the registry uses in a package folder")
    return tag


def split_spec(spec: str) -> tuple[str, str]:
    """'@scope/name@^1.2' -> ('@scope/name', '^1.2'); 'name' -> ('name', '*')."""
    at = spec.find("@", 1)
    if at == -1:
        return spec, "*"
    return spec[:at], spec[at + 1 :] or "*"
