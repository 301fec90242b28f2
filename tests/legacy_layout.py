"""A registry as the staticreg before layout generation 2 left it, made from one built now,
and a check that no page of a registry links to a file it does not have.

Generation 1 (what `to_generation_one` makes): every version and tag document in a folder
of its own with an index.html twin (<name>/<version>/index.json), a page per version
(-/web/package/<name>/v/<version>/index.html), list and scope pages as folders
(-/web/packages/<n>/index.html, -/web/scope/<@scope>/index.html), a state whose settings
name no layout and whose fingerprints were made with other settings, an older style sheet,
and beside the output a build cache of format 15 that describes it."""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from urllib.parse import unquote, urlsplit

from staticreg.build import incremental
from staticreg.npm import layout, registry_state


def to_generation_one(out: Path) -> None:
    for package_folder in _package_folders(out):
        for doc in sorted(package_folder.glob("*.json")):
            if doc.name == layout.FULL_DOCUMENT:
                continue
            folder = package_folder / doc.name[: -len(".json")]
            folder.mkdir()
            doc.rename(folder / layout.FULL_DOCUMENT)
            os.link(folder / layout.FULL_DOCUMENT, folder / layout.ZERO_CONFIG_DOCUMENT)
    web = out / layout.SITE_DIR
    for page_folder in [p.parent for p in web.glob("package/**/index.html")]:
        name = page_folder.relative_to(web / "package").as_posix()
        readme_pages = sorted(page_folder.glob("*.html"))
        versions = json.loads((out / layout.packument_path(name)).read_bytes())["versions"]
        for version in versions:
            page = out / layout.legacy_version_page(name, version)
            page.parent.mkdir(parents=True)
            page.write_bytes(b"<!doctype html><p>" + version.encode() + b"</p>\n")
        for page in readme_pages:
            if page.name != layout.SITE_HOME:
                page.unlink()
    style = out / layout.site_asset("style.css")
    if style.exists():  # that staticreg's own style sheet, without what this one's pages need
        style.write_bytes(b"/* generation 1 */\n")
    for page in [*web.glob("packages/*.html"), *web.glob("scope/*.html")]:
        folder = page.with_suffix("")
        folder.mkdir()
        page.rename(folder / layout.SITE_HOME)
    state_path = out / layout.REGISTRY_STATE
    state = json.loads(state_path.read_bytes())
    del state["settings"]["layout"]
    state["fingerprints"] = {
        n: hashlib.sha256(f"generation 1 {f}".encode()).hexdigest() for n, f in state["fingerprints"].items()
    }
    data = registry_state.dumps(state, sort_keys=False)
    state_path.write_bytes(data)
    marker = out / layout.SHARED_PAGES_STATE
    if marker.exists():
        marker.write_bytes(registry_state.shared_pages_bytes(registry_state.state_digest(data)))
    cache = incremental.cache_path(out)
    if cache.exists():  # the old build's cache, describing the old output as its format did
        head, _, rest = cache.read_bytes().partition(b"\n")
        fields = json.loads(head)
        fields.update(format=15, output_id=hashlib.sha256(data).hexdigest())
        cache.write_bytes(json.dumps(fields, separators=(",", ":")).encode() + b"\n" + rest)


def generation_one_files(out: Path) -> list[str]:
    """The files of `out` that only generation 1 has."""
    found = []
    for path in out.rglob("*"):
        rel = path.relative_to(out).as_posix()
        if path.is_file() and (
            re.search(r"/v/[^/]+/index\.html$", rel) or re.fullmatch(r"-/web/(packages|scope)/[^/]+/index\.html", rel)
        ):
            found.append(rel)
        elif (
            path.is_file()
            and path.name in (layout.FULL_DOCUMENT, layout.ZERO_CONFIG_DOCUMENT)
            and "/" in rel
            and not rel.startswith("-/")
            and layout.package_of_document(rel.rpartition("/")[0] + "/" + layout.FULL_DOCUMENT) is None
        ):
            found.append(rel)  # a document in a version's folder
    return sorted(found)


def dead_links(out: Path) -> list[str]:
    """Every link of every page of `out` to a file of the registry, or to an anchor in one, that
    is not there: 'page -> link'. Folder links mean their index.html, as every host serves them."""
    dead = []
    for page in sorted(out.rglob("*.html")):
        rel = page.relative_to(out).as_posix()
        if rel == layout.SITE_NOT_FOUND or (
            rel.endswith("/index.html") and layout.package_of_document(rel[: -len("index.html")] + layout.FULL_DOCUMENT)
        ):
            continue  # links from the base URL's path; a document's twin
        html = page.read_text(encoding="utf-8")
        for href in re.findall(r'href="([^"]*)"', html):
            parts = urlsplit(href.replace("&amp;", "&"))
            if parts.scheme or parts.netloc or href.startswith("mailto:"):
                continue
            target = page if not parts.path else (page.parent / unquote(parts.path))
            if parts.path.endswith("/") or target.is_dir():
                target = target / layout.SITE_HOME
            target = Path(os.path.normpath(target))
            if not target.is_file():
                dead.append(f"{rel} -> {href}")
            elif parts.fragment and f'id="{parts.fragment}"' not in target.read_text(encoding="utf-8"):
                dead.append(f"{rel} -> {href} (no such anchor)")
    return dead


def _package_folders(out: Path) -> list[Path]:
    found = [p.parent for p in out.glob(f"*/{layout.FULL_DOCUMENT}")] + [
        p.parent for p in out.glob(f"@*/*/{layout.FULL_DOCUMENT}")
    ]
    return sorted(p for p in found if not p.relative_to(out).as_posix().startswith("-"))
