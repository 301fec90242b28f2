"""Where every file of the registry lives, and the URL it is served at.

This module alone knows the layout; writers, the dev server and the server
configurations ask it. All paths are relative POSIX paths inside the output
folder. Names, versions and tags reaching here have passed `names`, and
`safe_join` checks every path again before it touches the disk.

    <name>/index.json                   full package document   GET /<name>
    <name>/index.corgi                  abbreviated document    same URL, Accept: application/vnd.npm.install-v1+json
    <name>/index.json.gz, index.corgi.gz  the same two, gzipped   same URL, Accept-Encoding: gzip (nginx gzip_static)
    <name>/index.html                   the full document again (index_html), for hosts that serve only index.html
    <name>/<version>.json               one version             GET /<name>/<version>
    <name>/<tag>.json                   the version a tag names GET /<name>/latest
    <name>/-/<basename>-<version>.tgz   the tarball             (conventional path)
    -/package/<name>/dist-tags          the dist-tags           GET /-/package/<name>/dist-tags
    -/ping                              {}                      GET /-/ping
    -/npm/v1/keys                       the signing keys        GET /-/npm/v1/keys (npm and pnpm audit signatures)
    -/npm/v1/attestations/<name>@<version>  a mirrored version's attestation bundle (JSON)
    index.html                          the site's home page (the first page of the package list)
    404.html                            the site's page for a missing package
    -/web/packages/<n>.html             further pages of the package list
    -/web/package/<name>/index.html     a package's page (linked as -/web/package/<name>/)
    -/web/package/<name>/<version>.html a README page: the README of <version> and of the versions
                                        after it that have the same one, each version's details
                                        in a section of its own (#v<version>)
    -/web/scope/<@scope>.html           a scope's page
    -/web/search-index.json             the search index, loaded by the browser on demand
    -/web/assets/<file>                 style sheet and script
    -/staticreg/state.json              the registry's state: its settings and each package's list row
    -/package/<name>/staticreg.json     a package's state: its versions' READMEs, its tags and deprecations
    -/staticreg/pages.json              which rows the shared pages (lists, scopes, search) were made from

The two state files travel with the registry, so that `staticreg publish` and its
kin can change a hosted registry reading only what the change needs.

Clients ask only for package documents by a folder's URL (`/<name>`), so only they
have an index.html twin; every other file is served at its own path, or, for
version documents, at its path without ".json" (the server configurations and the
dev server try `<path>.json`; an object store keeps them at that key). Pages are
files, not folders of their own, but for a package's page, which holds its README pages.

Scoped names keep their slash on disk (`@scope/name/index.json`), so a host that
decodes `%2f` and `%2F` (nginx, S3, python -m http.server) finds the same file for
`/@scope%2fname`, `/@scope%2Fname` and `/@scope/name`.

GENERATION counts the layouts staticreg has written; a registry's state names the
one its files follow (registry_state.Settings.layout). The paths of generation 1
are below (legacy_*): builds and publishes remove what an older staticreg left.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

GENERATION = 2  # of the layout: 1 had a folder per version document and per page, with index.html twins
FULL_DOCUMENT = "index.json"
ABBREVIATED_DOCUMENT = "index.corgi"
VERSION_DOCUMENT_SUFFIX = ".json"  # <name>/<version>.json, served at <name>/<version>
# Hosts that only know index.html (python -m http.server, GitHub Pages) find the
# full document here, after a redirect to the trailing-slash URL.
ZERO_CONFIG_DOCUMENT = "index.html"
PING = "-/ping"
KEYS = "-/npm/v1/keys"  # written when the registry signs, or lists an upstream's keys
SITE_HOME = "index.html"
SITE_NOT_FOUND = "404.html"
SITE_DIR = "-/web"
SITE_SEARCH_INDEX = f"{SITE_DIR}/search-index.json"
NOJEKYLL = ".nojekyll"
REGISTRY_STATE = "-/staticreg/state.json"
SHARED_PAGES_STATE = "-/staticreg/pages.json"  # which state the shared pages were last made from
PACKAGE_STATE = "staticreg.json"
# A path no registry has: where a private registry's server sends what it does not
# have (so that credentials are checked before "not found"), and what check asks for.
NEVER_WRITTEN = "-/staticreg-not-found"
ABBREVIATED_MEDIA_TYPE = "application/vnd.npm.install-v1+json"

# Top-level names the registry itself uses: a package may not be called so.
RESERVED_ROOT_NAMES = frozenset({"-", SITE_HOME, SITE_NOT_FOUND, "robots.txt", NOJEKYLL})

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


# Precompressed copies: the package documents every install fetches get a gzip copy
# beside them (NAME.gz), which nginx (gzip_static), Caddy (precompressed) and Apache
# (a rewrite) send as it is to clients that accept gzip. Version documents do not:
# installs never ask for them, and they are small (see bench/RESULTS.md).
PRECOMPRESSED_SUFFIX = ".gz"


def precompressed_copy(path: str) -> str | None:
    """Where the gzip copy of the file at `path` lives, or None for a file that has none."""
    folder, _, filename = path.rpartition("/")
    if filename in (FULL_DOCUMENT, ABBREVIATED_DOCUMENT) and _is_package_folder(folder):
        return path + PRECOMPRESSED_SUFFIX
    return None


def document_of_copy(path: str) -> str | None:
    """The document whose precompressed copy is at `path`, or None when `path` is no such copy."""
    if not path.endswith(PRECOMPRESSED_SUFFIX):
        return None
    document = path[: -len(PRECOMPRESSED_SUFFIX)]
    return document if precompressed_copy(document) == path else None


def version_document_path(name: str, version_or_tag: str) -> str:
    """Beside the package document, in no folder of its own: a version starts with a digit
    and a tag with a letter, and no tag is "index" (names.check_tag)."""
    return f"{package_dir(name)}/{version_or_tag}{VERSION_DOCUMENT_SUFFIX}"


def zero_config_copy(document_path: str) -> str:
    """The index.html twin of a package document at <name>/index.json. Only package documents
    have one: they are what clients ask for by a folder's URL (/<name>); version and tag
    documents no client asks for (npm view reads the package document)."""
    if not document_path.endswith("/" + FULL_DOCUMENT):
        raise ValueError(f"{document_path} is not a package document: it has no index.html twin")
    return document_path[: -len(FULL_DOCUMENT)] + ZERO_CONFIG_DOCUMENT


def dist_tags_path(name: str) -> str:
    return f"-/package/{name}/dist-tags"


def package_state_path(name: str) -> str:
    return f"-/package/{name}/{PACKAGE_STATE}"


MAX_FILENAME_BYTES = 255  # one path component, on every common file system


def tarball_filename(name: str, version: str) -> str:
    filename = f"{name.rpartition('/')[2]}-{version}.tgz"
    if len(filename.encode("utf-8", "surrogatepass")) > MAX_FILENAME_BYTES:
        raise UnsafePath(
            f"{name}@{version}: the tarball's file name would be longer than {MAX_FILENAME_BYTES} bytes, "
            "more than file systems allow"
        )
    return filename


def tarball_path(name: str, version: str) -> str:
    return f"{package_dir(name)}/-/{tarball_filename(name, version)}"


ATTESTATIONS_DIR = "-/npm/v1/attestations"


def attestation_path(name: str, version: str) -> str:
    """Where npm asks for a version's attestations (pacote: the registry's own host, this path)."""
    package_dir(name)
    return f"{ATTESTATIONS_DIR}/{name}@{version}"


def is_attestation(path: str) -> bool:
    return path.startswith(ATTESTATIONS_DIR + "/")


def mirrored_tarball(name: str, version: str) -> str:
    """Where `staticreg mirror` puts a tarball in the input folder: <name>/<basename>-<version>.tgz."""
    return f"{package_dir(name)}/{tarball_filename(name, version)}"


def site_package_page(name: str) -> str:
    return f"{SITE_DIR}/package/{name}/index.html"


def site_readme_page(name: str, version: str) -> str:
    """The page of the README that `version` brought, shared by the versions after it (in
    semver order) that have the same README. Beside the package's page, not in a folder:
    an unscoped name is one segment, and a scoped one starts with "@"."""
    return f"{SITE_DIR}/package/{name}/{version}.html"


def version_anchor(version: str) -> str:
    """The id of a version's section on its README page (site_readme_page)."""
    return f"v{version}"


def site_scope_page(scope: str) -> str:
    """The page of a scope ("@acme"). Not under package/: "@acme/index.html" is a valid package name."""
    return f"{SITE_DIR}/scope/{scope}.html"


def site_list_page(number: int) -> str:
    """Page `number` (from 1) of the package list; the first is the home page."""
    return SITE_HOME if number == 1 else f"{SITE_DIR}/packages/{number}.html"


# --- Generation 1 (see GENERATION): what an older staticreg wrote, to remove it -----
def legacy_document_paths(name: str, version_or_tag: str) -> list[str]:
    """A version's or tag's document and its twin in generation 1 (folder hosts only: in an
    object store the document's key, <name>/<version>, is the one it has now)."""
    folder = f"{package_dir(name)}/{version_or_tag}"
    return [f"{folder}/{FULL_DOCUMENT}", f"{folder}/{ZERO_CONFIG_DOCUMENT}"]


def legacy_version_page(name: str, version: str) -> str:
    return f"{SITE_DIR}/package/{name}/v/{version}/{SITE_HOME}"


def legacy_scope_page(scope: str) -> str:
    return f"{SITE_DIR}/scope/{scope}/{SITE_HOME}"


def legacy_list_page(number: int) -> str:
    return f"{SITE_DIR}/packages/{number}/{SITE_HOME}"


def site_asset(filename: str) -> str:
    return f"{SITE_DIR}/assets/{filename}"


def scope_of(name: str) -> str | None:
    """'@acme/widgets' -> '@acme'; None for an unscoped name."""
    return name.partition("/")[0] if name.startswith("@") else None


def page_link(path: str) -> str:
    """How pages link to a page: its folder, with the trailing slash (every host serves index.html there)."""
    return path[: -len(SITE_HOME)] if path.endswith("/" + SITE_HOME) or path == SITE_HOME else path


def relative_root(page: str) -> str:
    """The relative link from a page to the top of the output ("" at the top)."""
    return "../" * page.count("/")


def package_folders(name: str) -> list[str]:
    """The folders that hold one package's files and nothing else's (incremental builds
    keep them whole from the previous output when the package did not change)."""
    return [package_dir(name), f"-/package/{name}", f"{SITE_DIR}/package/{name}"]


def owner_of(path: str, owner: dict[str, str]) -> str:
    """The package whose folders hold `path`, for `owner`: each package's folders
    (package_folders) -> its name; "" for the files of no package."""
    parts = path.split("/")
    for i in range(1, len(parts)):
        name = owner.get("/".join(parts[:i]))
        if name is not None:
            return name
    return ""


def url(base_url: str, path: str) -> str:
    """The absolute URL of a file, for a base URL that ends with '/'."""
    return base_url + quote(path, safe=_URL_SAFE)


def tarball_url(base_url: str, name: str, version: str) -> str:
    return url(base_url, tarball_path(name, version))


def package_url(base_url: str, name: str) -> str:
    """The URL clients ask for a package document (scoped names as @scope%2fname)."""
    return base_url + quote(name, safe="@!'()*")


def safe_join(root: Path, relative: str) -> Path:
    """root/relative, refusing anything that could leave root: a relative path of
    "/"-separated parts, none empty, "." or "..", with no backslash or NUL, stays
    under root (the build writes into folders it made itself, with no links)."""
    return root / checked(relative)


def checked(relative: str) -> str:
    """`relative` if safe_join would take it; else UnsafePath. (Tests on the string, not a
    split: the build asks it of every file it writes.)"""
    wrapped = f"/{relative}/"
    if not relative or "//" in wrapped or "/./" in wrapped or "/../" in wrapped or "\\" in relative or "\0" in relative:
        raise UnsafePath(f"refusing to write outside the output folder: {relative!r}")
    return relative


def document_for_request(url_path: str, wants_abbreviated: bool) -> list[str]:
    """Files to try, in order, for a decoded request path (what the nginx config does)."""
    rel = url_path.strip("/")
    if not rel:
        return [SITE_HOME]
    candidates = [rel]
    if wants_abbreviated:
        candidates.append(f"{rel}/{ABBREVIATED_DOCUMENT}")
    return candidates + [f"{rel}/{FULL_DOCUMENT}", f"{rel}/{SITE_HOME}", rel + VERSION_DOCUMENT_SUFFIX]


# --- Beside the output -----------------------------------------------------------
# What builds and publishes keep next to an output folder OUT, never inside it (it is
# never served): each is `.OUT.staticreg` and a suffix. This is the one list of them.
BESIDE_LOCK = ".lock"  # the lock every build and publish into OUT takes
BESIDE_CACHE = "-cache"  # what the last build remembers (incremental)
BESIDE_RECORDS = "-records"  # the cache's tarball records, in shards
BESIDE_READMES = "-readmes"  # the READMEs the records point into, by content
BESIDE_SPARE = "-spare"  # the output before this one: the next build's staging folder
BESIDE_OLD = "-old"  # the output being swapped out
BESIDE_STAGING = "-staging-"  # + the pid of the build writing it
BESIDE_TRASH = "-trash-"  # + pid and a counter: old outputs being removed


def beside(output: Path, suffix: str) -> Path:
    """The file or folder `suffix` (one of the BESIDE_ names, maybe with more after it) next to `output`."""
    output = output.absolute()
    return output.parent / f".{output.name}.staticreg{suffix}"


# --- Object stores (S3 and compatible) ---------------------------------------
# Keys are flat, so the package document lives at the key <name> itself, beside
# <name>/-/<tarball>: no index.json, no redirect, and S3 decodes %2f and %2F so
# /@scope%2fname finds the key @scope/name. An object store cannot look at the
# Accept header, so every client gets the full document; the index.html copies
# are for filesystem hosts only.
TARBALL, DOCUMENT, SITE_PAGE, ROOT_PAGE, STATE = "tarball", "document", "site", "root", "state"


def _is_package_folder(folder: str) -> bool:
    """<name> or @scope/<name>: a folder of package documents (not the registry's own "-")."""
    if not folder or folder == "-" or folder.startswith("-/"):
        return False
    return folder.count("/") == (1 if folder.startswith("@") else 0)


def is_version_document(path: str) -> bool:
    """<name>/<version>.json or <name>/<tag>.json (and not the package document)."""
    folder, _, filename = path.rpartition("/")
    return (
        filename.endswith(VERSION_DOCUMENT_SUFFIX)
        and filename != FULL_DOCUMENT
        and len(filename) > 5
        and _is_package_folder(folder)
    )


def kind_of(path: str) -> str:
    """What a file of a built registry is, by its path relative to the registry's root:
    a TARBALL, a DOCUMENT (package, version and dist-tags documents, full or abbreviated,
    the ping and the keys), or a SITE_PAGE (anything else in a folder) or ROOT_PAGE.
    A precompressed copy is of its document's kind."""
    path = document_of_copy(path) or path
    folder, _, filename = path.rpartition("/")
    if filename.endswith(".tgz") and folder.endswith("/-"):
        return TARBALL
    if path in (REGISTRY_STATE, SHARED_PAGES_STATE) or (path.startswith("-/package/") and filename == PACKAGE_STATE):
        return STATE
    if (
        (filename in (FULL_DOCUMENT, ABBREVIATED_DOCUMENT) and folder)
        or path in (PING, KEYS)
        or (path.startswith("-/package/") and filename == "dist-tags")
        or is_attestation(path)
        or is_version_document(path)
    ):
        return DOCUMENT
    return SITE_PAGE if folder else ROOT_PAGE


def object_key(path: str) -> str | None:
    """The key of one file of the registry in an object store (before the prefix), or None
    for the files a store does without: abbreviated documents, precompressed copies and
    .nojekyll (a store chooses no file by Accept or Accept-Encoding). Index.html twins of
    documents are never asked for: they are a folder host's, made by its store.
    A version document is at the key clients ask for, <name>/<version>, without ".json"."""
    folder, _, filename = path.rpartition("/")
    if filename == ABBREVIATED_DOCUMENT or path == NOJEKYLL or document_of_copy(path):
        return None
    if filename == FULL_DOCUMENT and kind_of(path) == DOCUMENT:
        return folder
    if is_version_document(path):
        return path[: -len(VERSION_DOCUMENT_SUFFIX)]
    return path


def object_keys(paths: set[str]) -> dict[str, tuple[str, str]]:
    """For the relative paths of a built registry: key -> (path, kind). The key "" is the
    top page, at the prefix itself (a store has no object at an empty key)."""
    keys: dict[str, tuple[str, str]] = {}
    for path in paths:
        folder, _, filename = path.rpartition("/")
        if filename == ABBREVIATED_DOCUMENT or path == NOJEKYLL or document_of_copy(path):
            continue  # a store cannot choose a document by Accept or Accept-Encoding: the full plain one serves all
        if filename == ZERO_CONFIG_DOCUMENT and f"{folder}/{FULL_DOCUMENT}" in paths:
            continue
        kind = kind_of(path)
        if kind == DOCUMENT and filename == FULL_DOCUMENT:
            keys[folder] = (path, kind)  # served at the folder's own URL
        elif is_version_document(path):
            keys[path[: -len(VERSION_DOCUMENT_SUFFIX)]] = (path, kind)
        else:
            keys[path] = (path, kind)
            if filename == SITE_HOME and kind in (SITE_PAGE, ROOT_PAGE):
                # Pages link to folders ("-/web/package/demo/"); an object store's plain
                # endpoint has no index documents, so the page is stored at that key too.
                keys[f"{folder}/" if folder else ""] = (path, kind)
    return keys


# --- Hosts configured by files in the site (Netlify, Cloudflare Pages) --------
NETLIFY_HEADERS = "_headers"
NETLIFY_REDIRECTS = "_redirects"


def package_of_document(path: str) -> str | None:
    """The package whose full document is at `path`, or None (a version's, or none)."""
    folder, _, filename = path.rpartition("/")
    return folder if filename == FULL_DOCUMENT and _is_package_folder(folder) else None
