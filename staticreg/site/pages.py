"""The browsable HTML site, rendered from site-template/ with Jinja2.

Everything from a package is untrusted: autoescape is on for every page, and
the only markup that reaches a template is a README that `untrusted` rendered
and sanitized. The pages are plain files under `layout.SITE_DIR` plus the home
page and 404.html; search runs in the browser over a JSON index that is loaded
only when someone searches, so the home page stays the same small size however
many packages there are. The site is made from the model alone: no tarball is
read again.
"""

from __future__ import annotations

import hashlib
import math
import multiprocessing
import os
import traceback
from collections import deque
from collections.abc import Container, Iterable, Iterator, Mapping
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import urlsplit

import jinja2
from markupsafe import Markup

from staticreg import __version__
from staticreg.build import workers as workers_module
from staticreg.build.output import Staging
from staticreg.build.readmes import ReadmeStore
from staticreg.config import Config, template_dirs
from staticreg.errors import BuildError
from staticreg.npm import documents, layout
from staticreg.npm import names as names_module
from staticreg.npm.model import DEPENDENCY_FIELDS, Package, Registry, Version
from staticreg.progress import Progress
from staticreg.site import untrusted

PAGE_SIZE = 100  # packages per page of the list; the home page is the first
LIST_DESCRIPTION_CHARS = 300  # in lists and in the search index
DESCRIPTION_CHARS = 2000  # on a package's page
_DEPENDENCY_LABELS = {
    "dependencies": "Dependencies",
    "peerDependencies": "Peer dependencies",
    "optionalDependencies": "Optional dependencies",
    "devDependencies": "Development dependencies",
}
assert set(_DEPENDENCY_LABELS) == set(DEPENDENCY_FIELDS)


def environment(config: Config) -> jinja2.Environment:
    """The one Jinja2 environment: the user's template folder first, then ours."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader([str(d) for d in template_dirs(config)]),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        auto_reload=False,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["date"] = lambda iso: iso[:10]
    env.filters["filesize"] = _filesize
    return env


def _filesize(size: float) -> str:
    for unit in ("B", "kB", "MB"):
        if size < 1000:
            return f"{size} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} GB"


class SiteTemplateError(Exception):
    """A template failed to render (a user's template, most likely); picklable across processes."""


def write_site(
    registry: Registry,
    staging: Staging,
    config: Config,
    readmes: ReadmeStore,
    show_progress: bool = False,
    known_rows: Mapping[str, dict] | None = None,
    known_pages: Mapping[str, str] | None = None,
    salt: str = "",
    row_ids: Mapping[str, str] | None = None,
) -> tuple[dict[str, dict], dict[str, str]]:
    """Render every page of the site into staging; returns each package's list row by name,
    and a digest of what each list, scope and 404 page was made from, by path.

    Pages are rendered in batches of whole packages, in worker processes when the
    build has more than one worker and enough packages to render to pay for them; the
    files are written here, in a fixed order, so the output is the same either way.
    `known_rows` are rows of packages unchanged since a previous build (by fingerprint):
    making a row means normalising the latest manifest, 22,876 times at 100,000 tarballs.
    `known_pages` are the previous build's digests: a list or scope page made from the same
    rows, under the same settings (`salt`), is linked from the previous output, not rendered.
    `row_ids` name what each package's row was made from (its fingerprint): a digest of
    them costs a fraction of one of the rows themselves, 45,000 of them at 100,000 tarballs.
    """
    assets = _write_assets(staging, config)
    known = known_rows or {}
    by_name = {name: known.get(name) or summary(p) for name, p in registry.packages.items()}
    rows = list(by_name.values())
    staging.write(layout.SITE_SEARCH_INDEX, search_index(rows))
    site = site_context(config, assets)
    kept = {name for name in registry.packages if staging.is_kept(layout.site_package_page(name))}
    workers = config.workers if len(registry.packages) - len(kept) >= _PARALLEL_FROM else 1
    progress = Progress("Writing the site", len(registry.packages), enabled=show_progress)
    digests: dict[str, str] = {}
    previous = known_pages or {}
    ids = row_ids or {}

    def unchanged(page: _Page) -> bool:
        made_from = {k: [ids.get(r["name"]) or r for r in v] if k == "rows" else v for k, v in page.context.items()}
        digest = hashlib.sha256(repr((salt, site, page._replace(context=made_from))).encode()).hexdigest()
        digests[page.path] = digest
        return previous.get(page.path) == digest and staging.link_previous(page.path)

    try:
        batches = _batches(registry, rows, config, kept=kept.__contains__, unchanged=unchanged)
        names = frozenset(registry.packages)
        for packages_done, rendered in _render(batches, config, site, readmes, names, workers):
            for path, data in rendered:
                staging.write(path, data)
            progress.step(packages_done)
    except SiteTemplateError as exc:
        raise BuildError(f"the site could not be rendered: {exc}; nothing was written") from None
    finally:
        progress.close()
    return by_name, digests


def site_context(config: Config, assets: Mapping[str, str]) -> dict:
    """What every page is rendered with: the settings and each asset's digest."""
    return {
        "title": config.title,
        "base_url": config.base_url,
        "version": __version__,
        # No content hash here: every page would change with every package, and
        # incremental builds keep unchanged packages' pages. The script revalidates instead.
        "search_index": layout.SITE_SEARCH_INDEX,
        "assets": dict(assets),
    }


def render_package(
    names: Container[str], package: Package, config: Config, site: dict, readmes
) -> list[tuple[str, bytes]]:
    """One package's pages, rendered here: its page and its README pages. `names`: the
    packages in the registry (dependencies among them are linked); `readmes` has get(id)."""
    return _render_now(_package_pages(names, package, config), config, site, readmes)


def readme_key(record) -> tuple[str, str | None] | None:
    """What a version's README page is made of: its README (id and file name), None for none."""
    return (record.readme, record.readme_filename) if record.readme else None


def readme_runs(keyed: Iterable[tuple[str, object]]) -> list[list[str]]:
    """The versions, given in semver order with their readme_key, in runs that share one README
    page: a version whose README differs from the one before it starts a page of its own."""
    runs: list[list[str]] = []
    last: object = None
    for version, key in keyed:
        if not runs or key != last:
            runs.append([])
        runs[-1].append(version)
        last = key
    return runs


def page_paths(name: str, records: Mapping[str, object]) -> set[str]:
    """The pages of a package whose versions have these records (by version, any order):
    what render_package writes for it, known without rendering (to remove what a change left)."""
    ordered = sorted(records, key=names_module.version_key)
    runs = readme_runs((v, readme_key(records[v])) for v in ordered)
    return {layout.site_package_page(name)} | {layout.site_readme_page(name, run[0]) for run in runs}


def render_pages(pages: list[_Page], config: Config, site: dict) -> list[tuple[str, bytes]]:
    """Pages made of rows alone (shared_pages'), rendered here."""
    return _render_now(pages, config, site, None)


def _render_now(pages: list[_Page], config: Config, site: dict, readmes) -> list[tuple[str, bytes]]:
    _start_renderer(config, site, readmes)
    try:
        return _render_pages(pages)
    except SiteTemplateError as exc:
        raise BuildError(f"the site could not be rendered: {exc}; nothing was written") from None


_PARALLEL_FROM = 200  # packages to render; below this, starting worker processes costs more than it saves
_BATCH_PAGES = 64
_LIST_PAGES_PER_BATCH = 16  # a list page shows 100 packages: it weighs as much as a few package pages


def _batches(
    registry: Registry, rows: list[dict], config: Config, kept=lambda name: False, unchanged=lambda page: False
) -> Iterator[tuple[int, list[Package] | list[_Page]]]:
    """(packages in it, packages or pages): whole packages at a time (whose pages the renderer
    makes: _render_batch), then the pages of the lists, scopes and 404 page.
    Packages whose pages an incremental build kept from the previous output are not rendered,
    nor list, scope and 404 pages that `unchanged` took from it."""
    batch: list[Package] = []
    count = versions = 0
    for package in registry.packages.values():
        if not kept(package.name):
            batch.append(package)
            versions += len(package.versions)
        count += 1
        if versions >= _BATCH_PAGES:
            yield count, batch
            batch, count, versions = [], 0, 0
    if batch or count:
        yield count, batch

    pages = shared_pages(rows, config)
    pages = [page for page in pages if not unchanged(page)]  # a new package moves only the pages after it
    # A few list pages at a time: at 100,000 tarballs all 229 of them and the scope pages in
    # one batch took 10 MB to send a worker, and left that worker holding its high-water mark.
    for start in range(0, len(pages), _LIST_PAGES_PER_BATCH):
        yield 0, pages[start : start + _LIST_PAGES_PER_BATCH]


def shared_pages(rows: list[dict], config: Config) -> list[_Page]:
    """The pages made from every package's row: scope pages, the list pages and 404.html."""
    pages: list[_Page] = []
    scopes: dict[str, list[dict]] = {}
    for row in rows:
        if row["scope"]:
            scopes.setdefault(row["scope"], []).append(row)
    scope_links = [{"scope": s, "count": len(r), "page": layout.site_scope_page(s)} for s, r in scopes.items()]
    for scope, scope_rows in scopes.items():
        context: dict[str, Any] = {"scope": scope, "rows": scope_rows, "npmrc": f"{scope}:registry={config.base_url}"}
        pages.append(_Page("scope.html", layout.site_scope_page(scope), context))
    count = max(1, math.ceil(len(rows) / PAGE_SIZE))
    for number in range(1, count + 1):
        context = {
            "rows": rows[(number - 1) * PAGE_SIZE : number * PAGE_SIZE],
            "total": len(rows),
            "pagination": _pagination(number, count),
            "scopes": scope_links if number == 1 else [],
        }
        pages.append(_Page("index.html", layout.site_list_page(number), context))
    # Served for any URL, at any depth: its links are absolute paths from the base URL.
    pages.append(_Page("404.html", layout.SITE_NOT_FOUND, {}, root=urlsplit(config.base_url).path or "/"))
    return pages


def legacy_shared_pages(rows: Iterable[dict]) -> list[str]:
    """The scope and list pages an older layout (layout.legacy_*) had for these rows."""
    rows = list(rows)
    scopes = sorted({row["scope"] for row in rows if row.get("scope")})
    count = max(1, math.ceil(len(rows) / PAGE_SIZE))
    return [layout.legacy_scope_page(s) for s in scopes] + [layout.legacy_list_page(n) for n in range(2, count + 1)]


class _Page(NamedTuple):
    template: str
    path: str
    context: dict
    readme: tuple[str, str | None] | None = None  # (README id, file name), read and rendered where the page is
    root: str | None = None  # the link to the top of the output; relative to the page unless given


def _render(
    batches: Iterable[tuple[int, list[Package] | list[_Page]]],
    config: Config,
    site: dict,
    readmes: ReadmeStore,
    names: frozenset[str],
    workers: int,
):
    """Yield (packages, [(path, bytes)]) for each batch, in order. `names`: every package in
    the registry (a dependency that is one links to its page)."""
    if workers <= 1:
        _start_renderer(config, site, readmes, names)
        for count, batch in batches:
            yield count, _render_batch(batch)
        return
    # Fresh processes, not forks of the build: by now the build holds every record, and it
    # goes on touching them, so a forked worker's share of those pages would be copied anyway.
    fresh = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(
        workers, fresh, initializer=_start_renderer, initargs=(config, site, readmes, names, os.getpid())
    )
    with pool:
        pending: deque = deque()
        for count, batch in batches:
            pending.append((count, pool.submit(_render_batch, batch)))
            if len(pending) >= 4 * workers:  # keep memory flat: only a few batches in flight
                done, future = pending.popleft()
                yield done, future.result()
        while pending:
            done, future = pending.popleft()
            yield done, future.result()


_RENDERER: dict = {}
_README_TEMPLATES = ("package.html", "version.html")


def _start_renderer(
    config: Config, site: dict, readmes: ReadmeStore, names: Container[str] = frozenset(), parent: int | None = None
) -> None:
    if parent is not None:  # in a worker process
        workers_module.die_with(parent)
    _RENDERER["env"] = environment(config)
    _RENDERER["site"] = site
    _RENDERER["readmes"] = readmes
    _RENDERER["config"] = config
    _RENDERER["names"] = names


def _render_batch(batch: list[Package] | list[_Page]) -> list[tuple[str, bytes]]:
    """Render a batch: the pages of whole packages, made here (in the worker: what each
    version shows is most of the site's work), or pages made already."""
    names, config = _RENDERER["names"], _RENDERER["config"]
    pages = [
        page
        for item in batch
        for page in (_package_pages(names, item, config) if isinstance(item, Package) else [item])
    ]
    return _render_pages(pages)


def _render_pages(pages: list[_Page]) -> list[tuple[str, bytes]]:
    """Render pages (in this process or a worker); each distinct README once."""
    env, site = _RENDERER["env"], _RENDERER["site"]
    readmes: dict[tuple[str, str | None], Markup | None] = {}
    out = []
    for page in pages:
        root = layout.relative_root(page.path) if page.root is None else page.root

        def url(target: str, root: str = root) -> str:
            return layout.url(root, layout.page_link(target)) or "./"

        def asset(name: str, url=url) -> str:
            if name not in site["assets"]:
                raise jinja2.TemplateRuntimeError(f"asset({name!r}): there is no {name} in any assets/ folder")
            return url(layout.site_asset(name)) + "?v=" + site["assets"][name]

        context = dict(page.context)
        if page.readme is not None and page.readme not in readmes:
            readmes[page.readme] = _render_readme(*page.readme)
        if page.template in _README_TEMPLATES:
            context["readme"] = readmes[page.readme] if page.readme is not None else None
        try:
            html = env.get_template(page.template).render(
                site={**site, "root": root},
                url=url,
                asset=asset,
                home=layout.SITE_HOME,
                this_page=page.path,
                **context,
            )
        except jinja2.TemplateError as exc:
            raise SiteTemplateError(f"{_template_line(exc, page.template)}: {exc} (rendering {page.path})") from None
        out.append((page.path, html.encode("utf-8")))
    return out


def _template_line(exc: jinja2.TemplateError, template: str) -> str:
    """file:line of the template where rendering failed (Jinja puts template lines into the traceback)."""
    if isinstance(exc, jinja2.TemplateSyntaxError) and exc.filename:
        return f"{exc.filename}:{exc.lineno}"
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename.endswith(".html")]
    return f"{frames[-1].filename}:{frames[-1].lineno}" if frames else template


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:10]


def _write_assets(staging: Staging, config: Config) -> dict[str, str]:
    """Copy assets/ into staging; {file name: hash of its bytes}, for cache busting."""
    out = {}
    for name, data in assets(config).items():
        staging.write(layout.site_asset(name), data)
        out[name] = _digest(data)
    return out


def asset_digests(files: Mapping[str, bytes]) -> dict[str, str]:
    return {name: _digest(data) for name, data in files.items()}


def assets(config: Config) -> dict[str, bytes]:
    """assets/ of the template folders, the user's files winning name by name: {file name: bytes}."""
    found: dict[str, Path] = {}
    for folder in reversed(template_dirs(config)):
        folder_assets = folder / "assets"
        if folder_assets.is_dir():
            found.update((p.name, p) for p in folder_assets.iterdir() if p.is_file() and not p.name.startswith("."))
    out = {}
    for name in sorted(found):
        if any(c < " " or c == "\x7f" for c in name):  # the build cache lists output files one a line
            raise BuildError(
                f"{found[name].parent}: the asset {name!r} has a line break or control character in its name; rename it"
            )
        out[name] = found[name].read_bytes()
    return out


PAGINATION_AROUND = 3  # page links either side of the current page; the first and last are always there


def _pagination(number: int, count: int) -> dict | None:
    """Links to the first and last pages and to those near this one, with a gap (None)
    where pages are left out: 229 pages at 100,000 tarballs, and linking each from each
    made the list pages grow with the square of the registry."""
    if count == 1:
        return None
    shown = sorted({1, count, *range(max(1, number - PAGINATION_AROUND), min(count, number + PAGINATION_AROUND) + 1)})
    pages: list[dict | None] = []
    for i, n in enumerate(shown):
        if i and n != shown[i - 1] + 1:
            pages.append(None)
        pages.append({"number": n, "page": layout.site_list_page(n)})
    return {
        "number": number,
        "count": count,
        "previous": layout.site_list_page(number - 1) if number > 1 else None,
        "next": layout.site_list_page(number + 1) if number < count else None,
        "pages": pages,
    }


# -- what the pages show ----------------------------------------------------------


def summary(package: Package) -> dict:
    """One row of a package list, and of the search index."""
    latest = package.latest
    manifest = latest.manifest
    return {
        "name": package.name,
        "scope": _scope_key(package.name),
        "version": latest.version,
        "description": untrusted.text(manifest.get("description"), LIST_DESCRIPTION_CHARS),
        "keywords": untrusted.keywords(manifest.get("keywords"), count=20),
        "published": package.modified,
        "deprecated": bool(manifest.get("deprecated")),
        "page": layout.site_package_page(package.name),
    }


def _scope_key(name: str) -> str | None:
    # One page per scope however it is capitalised: @Acme and @acme would share a
    # folder on a case-insensitive disk.
    scope = layout.scope_of(name)
    return scope.lower() if scope else None


def search_index(rows: list[dict]) -> bytes:
    """The browser's search index: one compact row per package, in name order."""
    packed = [[r["name"], r["version"], r["description"], r["keywords"], r["published"][:10]] for r in rows]
    return documents.dumps(
        {"format": 1, "fields": ["name", "version", "description", "keywords", "published"], "packages": packed}
    )


def _readme(entry: Version) -> tuple[str, str | None] | None:
    return readme_key(entry.record)


def _render_readme(readme_id: str, filename: str | None) -> Markup | None:
    text = _RENDERER["readmes"].get(readme_id)
    return untrusted.render_readme(text, filename) if text.strip() else None


def _package_pages(names: Container[str], package: Package, config: Config) -> list[_Page]:
    """The package's page, and a README page for each run of versions that share a README."""
    name = package.name
    tags_of: dict[str, list[str]] = {}
    for tag, version in package.dist_tags.items():
        tags_of.setdefault(version, []).append(tag)
    runs = readme_runs((v, _readme(e)) for v, e in package.versions.items())
    page_of = {v: layout.site_readme_page(name, run[0]) for run in runs for v in run}
    scope = layout.scope_of(name)
    common: dict[str, Any] = {
        "name": name,
        "page": layout.site_package_page(name),
        "scope": _scope_key(name),
        "scope_page": layout.site_scope_page(key) if (key := _scope_key(name)) else None,
        "npmrc": f"{scope}:registry={config.base_url}" if scope else f"registry={config.base_url}",
        # The URL clients ask for, which every host serves (an object store has no
        # NAME/index.json: its document is at the key NAME).
        "document": layout.package_dir(name),
        "dist_tags": [
            {"tag": t, "version": v, "page": page_of[v], "anchor": layout.version_anchor(v)}
            for t, v in package.dist_tags.items()
        ],
        "latest": package.dist_tags["latest"],
        "created": package.created,
        "modified": package.modified,
        "version_count": len(package.versions),
    }
    entries = list(reversed(package.versions.values()))  # newest first
    versions = [_version(names, package, entry, tags_of.get(entry.version, []), page_of) for entry in entries]
    by_version = {item["version"]: item for item in versions}
    pages = [
        _Page(
            "package.html",
            common["page"],
            {"package": common, "version": by_version[common["latest"]], "versions": versions},
            readme=_readme(package.latest),
        )
    ]
    for run in reversed(runs):  # newest first, as the versions above
        first = by_version[run[0]]
        context = {"package": common, "version": first, "versions": [by_version[v] for v in reversed(run)]}
        pages.append(_Page("version.html", first["page"], context, readme=_readme(package.versions[run[0]])))
    return pages


def _version(
    names: Container[str], package: Package, entry: Version, tags: list[str], page_of: Mapping[str, str]
) -> dict:
    m = entry.manifest
    dist = m["dist"]
    name = package.name
    licenses = m.get("licenses")
    if not isinstance(licenses, list):
        licenses = []
    return {
        "version": entry.version,
        "page": page_of[entry.version],  # the README page that holds its details
        "anchor": layout.version_anchor(entry.version),
        "time": entry.time,
        "tags": tags,
        "deprecated": untrusted.text(m.get("deprecated"), DESCRIPTION_CHARS),
        "description": untrusted.text(m.get("description"), DESCRIPTION_CHARS),
        "keywords": untrusted.keywords(m.get("keywords")),
        "license": untrusted.license_name(m.get("license"))
        or ", ".join(filter(None, (untrusted.license_name(x) for x in licenses[:5]))),
        "author": untrusted.person(m.get("author")),
        "homepage": untrusted.http_url(m.get("homepage")),
        "repository": untrusted.repository_url(m.get("repository")),
        "bugs": untrusted.bugs_url(m.get("bugs")),
        "tarball": layout.tarball_path(name, entry.version),
        "filename": layout.tarball_filename(name, entry.version),
        "integrity": dist["integrity"],
        "shasum": dist["shasum"],
        "file_count": dist["fileCount"],
        "unpacked_size": dist["unpackedSize"],
        "install": f"npm install {name}@{entry.version}",
        "dependencies": _dependencies(names, m),
    }


def _dependencies(names: Container[str], manifest: dict) -> list[dict]:
    out = []
    for field, label in _DEPENDENCY_LABELS.items():
        deps = manifest.get(field)
        if not isinstance(deps, dict) or not deps:
            continue
        items = [
            {
                "name": dep,
                "range": spec,
                "page": layout.site_package_page(dep) if dep in names else None,
            }
            for dep, spec in sorted(deps.items())
        ]
        out.append({"field": field, "label": label, "items": items})
    return out
