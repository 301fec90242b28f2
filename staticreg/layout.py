"""Where every file of the registry lives, and the URL it is served at.

This module alone knows the layout; writers, the dev server and the server
configurations ask it. All paths are relative POSIX paths inside the output
folder. Names, versions and tags reaching here have passed `names`, and
`safe_join` checks every path again before it touches the disk.

    <name>/index.json                   full package document   GET /<name>
    <name>/index.corgi                  abbreviated document    same URL, Accept: application/vnd.npm.install-v1+json
    <name>/<version>/index.json         one version             GET /<name>/<version>
    <name>/<tag>/index.json             the version a tag names GET /<name>/latest
    <name>/-/<basename>-<version>.tgz   the tarball             (conventional path)
    -/package/<name>/dist-tags          the dist-tags           GET /-/package/<name>/dist-tags
    -/ping                              {}                      GET /-/ping
    -/web/...                           the browsable site's pages and assets
    index.html                          the site's home page

Scoped names keep their slash on disk (`@scope/name/index.json`), so a host that
decodes `%2f` and `%2F` (nginx, S3, python -m http.server) finds the same file for
`/@scope%2fname`, `/@scope%2Fname` and `/@scope/name`.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import quote

FULL_DOCUMENT = "index.json"
ABBREVIATED_DOCUMENT = "index.corgi"
# Hosts that only know index.html (python -m http.server, GitHub Pages) find the
# full document here, after a redirect to the trailing-slash URL.
ZERO_CONFIG_DOCUMENT = "index.html"
PING = "-/ping"
SITE_HOME = "index.html"
SITE_DIR = "-/web"
NOJEKYLL = ".nojekyll"
ABBREVIATED_MEDIA_TYPE = "application/vnd.npm.install-v1+json"

# Top-level names the registry itself uses: a package may not be called so.
RESERVED_ROOT_NAMES = frozenset({"-", SITE_HOME, "404.html", "robots.txt", NOJEKYLL})

_URL_SAFE = "/@!'()*"


class UnsafePath(ValueError):
    """A path that would leave the output folder: a bug or hostile input, never written."""


def package_dir(name: str) -> str:
    if name.lower() in RESERVED_ROOT_NAMES:
        raise UnsafePath(f"the package name {name!r} is a path the registry itself uses")
    return name


def packument_path(name: str) -> str:
    return f"{package_dir(name)}/{FULL_DOCUMENT}"


def abbreviated_path(name: str) -> str:
    return f"{package_dir(name)}/{ABBREVIATED_DOCUMENT}"


def version_document_path(name: str, version_or_tag: str) -> str:
    return f"{package_dir(name)}/{version_or_tag}/{FULL_DOCUMENT}"


def zero_config_copy(document_path: str) -> str:
    """The index.html twin of a document at .../index.json."""
    return document_path[: -len(FULL_DOCUMENT)] + ZERO_CONFIG_DOCUMENT


def dist_tags_path(name: str) -> str:
    return f"-/package/{name}/dist-tags"


def tarball_filename(name: str, version: str) -> str:
    return f"{name.rpartition('/')[2]}-{version}.tgz"


def tarball_path(name: str, version: str) -> str:
    return f"{package_dir(name)}/-/{tarball_filename(name, version)}"


def site_package_page(name: str) -> str:
    return f"{SITE_DIR}/package/{name}/index.html"


def url(base_url: str, path: str) -> str:
    """The absolute URL of a file, for a base URL that ends with '/'."""
    return base_url + quote(path, safe=_URL_SAFE)


def tarball_url(base_url: str, name: str, version: str) -> str:
    return url(base_url, tarball_path(name, version))


def package_url(base_url: str, name: str) -> str:
    """The URL clients ask for a package document (scoped names as @scope%2fname)."""
    return base_url + quote(name, safe="@!'()*")


def safe_join(root: Path, relative: str) -> Path:
    """root/relative, refusing anything that could leave root."""
    return Path(safe_join_str(str(root), relative))


def safe_join_str(root: str, relative: str) -> str:
    """safe_join on plain strings, for the writers' hot path."""
    parts = relative.split("/")
    if (
        not relative
        or relative.startswith("/")
        or "\\" in relative
        or "\0" in relative
        or any(part in ("", ".", "..") for part in parts)
    ):
        raise UnsafePath(f"refusing to write outside the output folder: {relative!r}")
    path = os.path.join(root, *parts)
    # With the checks above only a drive letter ("C:") could still leave root.
    if ":" in relative and os.path.commonpath([os.path.abspath(root), os.path.abspath(path)]) != os.path.abspath(root):
        raise UnsafePath(f"refusing to write outside the output folder: {relative!r}")
    return path


def document_for_request(url_path: str, wants_abbreviated: bool) -> list[str]:
    """Files to try, in order, for a decoded request path (what the nginx config does)."""
    rel = url_path.strip("/")
    if not rel:
        return [SITE_HOME]
    candidates = [rel]
    if wants_abbreviated:
        candidates.append(f"{rel}/{ABBREVIATED_DOCUMENT}")
    return candidates + [f"{rel}/{FULL_DOCUMENT}", f"{rel}/{SITE_HOME}"]
