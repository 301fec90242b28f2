"""Package text made safe for the site: READMEs to sanitized HTML, URLs checked.

READMEs, descriptions, keywords, authors and URLs come from whoever packed the
tarball. Markdown is rendered by cmark-gfm, GitHub's own Markdown (through
cmarkgfm), with GitHub's tables, strikethrough, task lists and autolinks; raw
HTML allowed, as on GitHub. The result always goes through nh3 (the Rust html
sanitizer ammonia): no scripts, no event handlers, no styles, no forms or
frames, and no URL but absolute http(s) and mailto ones. Everything else from a
package reaches the pages as plain text, escaped by the templates. Pure
functions, no I/O.
"""

from __future__ import annotations

import ctypes
import re
from typing import Any
from urllib.parse import urlsplit

import nh3
from cmarkgfm import _cmark
from markupsafe import Markup

MAX_URL_LENGTH = 2048
LINK_SCHEMES = frozenset({"http", "https", "mailto"})
_URL_ATTRIBUTES = frozenset({"href", "src", "cite"})
_CODE_CLASS = re.compile(r"^language-[A-Za-z0-9_+#.-]{1,40}$")
_MARKDOWN_SUFFIXES = ("", ".md", ".markdown", ".mdown", ".mkd", ".mkdn")

_TAGS = set(nh3.ALLOWED_TAGS) - {"area", "map"}
_ATTRIBUTES = {tag: set(attrs) for tag, attrs in nh3.ALLOWED_ATTRIBUTES.items()}
for _tag in ("p", "div", "h1", "h2", "h3", "h4", "h5", "h6", "td", "th"):
    _ATTRIBUTES.setdefault(_tag, set()).add("align")
_ATTRIBUTES.setdefault("code", set()).add("class")
_ATTRIBUTES.setdefault("details", set()).add("open")
_ATTRIBUTES["img"] = _ATTRIBUTES.get("img", set()) | {"title"}


def _attribute_filter(tag: str, attribute: str, value: str) -> str | None:
    if attribute in _URL_ATTRIBUTES:
        # nh3 already refuses other schemes; relative URLs would point into this
        # site, not at the package's files, so they go too.
        return value if link_url(value) else None
    if attribute == "class":
        kept = [c for c in value.split() if _CODE_CLASS.match(c)]
        return kept[0] if kept else None
    return value


# cmark-gfm as cmarkgfm builds it (cffi). GitHub's extensions but its tag filter: nh3 decides
# what of the raw HTML stays. cmarkgfm's own functions free neither the document's tree nor
# the HTML they return (measured: 2.7 bytes kept for each byte of the benchmark's READMEs,
# 60 for a long table), so the calls are made here, and cmark-gfm's own free functions,
# which cmarkgfm does not bind, are taken from its library with ctypes.
_GFM_EXTENSIONS = ("table", "strikethrough", "autolink", "tasklist")
_RAW_HTML = _cmark.lib.CMARK_OPT_UNSAFE  # raw HTML and every link kept, for nh3 to judge
_TEXT_ONLY = 0  # cmark-gfm leaves raw HTML out (an HTML comment in its place)
_cmark.lib.cmark_gfm_core_extensions_ensure_registered()
_SYNTAX_EXTENSIONS = [_cmark.lib.cmark_find_syntax_extension(name.encode()) for name in _GFM_EXTENSIONS]
if _cmark.ffi.NULL in _SYNTAX_EXTENSIONS:
    raise ImportError(f"this cmarkgfm lacks one of GitHub's extensions {_GFM_EXTENSIONS}")


class _Allocator(ctypes.Structure):  # cmark_mem
    _fields_ = [
        ("calloc", ctypes.c_void_p),
        ("realloc", ctypes.c_void_p),
        ("free", ctypes.CFUNCTYPE(None, ctypes.c_void_p)),
    ]


def _cmark_free_functions() -> tuple[Any, Any] | None:
    """(cmark_node_free, the allocator's free), or None where the library does not export them."""
    try:
        library = ctypes.CDLL(_cmark.__file__)
        node_free, allocator = library.cmark_node_free, library.cmark_get_default_mem_allocator
    except (OSError, AttributeError):
        return None
    node_free.argtypes, node_free.restype = [ctypes.c_void_p], None
    allocator.argtypes, allocator.restype = [], ctypes.POINTER(_Allocator)
    return node_free, allocator().contents.free


_CMARK_FREE = _cmark_free_functions()


def _address(pointer: Any) -> int:
    return int(_cmark.ffi.cast("uintptr_t", pointer))


def markdown_to_html(text: str, options: int = _RAW_HTML) -> str:
    """cmark-gfm's HTML for `text`, as GitHub renders it (before any sanitizing)."""
    lib = _cmark.lib
    data = text.encode("utf-8", errors="replace")  # a lone surrogate (from a hand-made state file): "?"
    parser = lib.cmark_parser_new(options)
    try:
        for extension in _SYNTAX_EXTENSIONS:
            lib.cmark_parser_attach_syntax_extension(parser, extension)
        lib.cmark_parser_feed(parser, data, len(data))
        root = lib.cmark_parser_finish(parser)
        try:
            html = lib.cmark_render_html(root, options, lib.cmark_parser_get_syntax_extensions(parser))
            try:
                return str(_cmark.ffi.string(html).decode("utf-8", errors="replace"))
            finally:
                if _CMARK_FREE:
                    _CMARK_FREE[1](_address(html))
        finally:
            if _CMARK_FREE:
                _CMARK_FREE[0](_address(root))
    finally:
        lib.cmark_parser_free(parser)


# A task list item's checkbox, as cmark-gfm writes it. nh3 keeps no <input> (nor should it:
# raw HTML's <input> goes), so the renderer's own checkboxes cross it as marks right after
# their <li>, and become disabled checkboxes after it. nh3 escapes "<" in attribute values,
# so in its output "<li>" is always a tag and a mark right behind it is text. (A README that
# writes a mark there itself gets a disabled checkbox, as "- [x]" would give it; anywhere
# else a mark stays two private-use characters and a word.)
_TASK_ITEM = re.compile(r'<li><input type="checkbox" (checked="" )?disabled="" /> ')
_TODO, _DONE = "\ue000staticreg-task\ue001", "\ue000staticreg-done\ue001"
_CHECKBOXES = {_TODO: '<input type="checkbox" disabled="">', _DONE: '<input type="checkbox" checked="" disabled="">'}


def _mark_tasks(html: str) -> str:
    return _TASK_ITEM.sub(lambda m: f"<li>{_DONE if m.group(1) else _TODO} ", html)


def _unmark_tasks(html: str) -> str:
    if "\ue000" in html:
        for mark, checkbox in _CHECKBOXES.items():
            html = html.replace("<li>" + mark, "<li>" + checkbox)
    return html


# Rendering is linear in practice but not free: the worst inputs found take cmark-gfm about
# 1 s for 256 KiB (thousands of one-line tables, 256 K nested quotes); the reader keeps up
# to 1 MiB. The public npm registry's website shows 64 KiB.
MAX_README_CHARS = 256 * 1024
# html5ever, under nh3, takes time quadratic in how deeply elements nest: 50,000
# nested <div> take seconds, 200,000 minutes. No README needs more than a few dozen.
MAX_HTML_DEPTH = 256
_TAG = re.compile(r"<(/?)([A-Za-z][A-Za-z0-9-]*)[^<>]*>")
_VOID = frozenset("area base br col embed hr img input link meta source track wbr".split())


def _html_depth_exceeds(html: str, limit: int) -> bool:
    """Whether elements may nest deeper than `limit` (unclosed tags count as open: an upper bound)."""
    depth = 0
    for match in _TAG.finditer(html):
        if match.group(2).lower() in _VOID:
            continue
        if match.group(1):
            depth = max(0, depth - 1)
        else:
            depth += 1
            if depth > limit:
                return True
    return False


def sanitize_html(html: str) -> Markup:
    """Untrusted HTML -> HTML that cannot run anything or leave the page's styles."""
    clean = nh3.clean(
        html,
        tags=_TAGS,
        attributes=_ATTRIBUTES,
        attribute_filter=_attribute_filter,
        url_schemes=set(LINK_SCHEMES),
        link_rel="nofollow noopener noreferrer",
        strip_comments=True,
    )
    # Set here, not by nh3's set_tag_attribute_values: that one's order changes from process
    # to process (a hash map), and pages must have the same bytes for the same input. In
    # nh3's output "<img " can only start a tag: a "<" in text or a value comes out escaped.
    clean = clean.replace("<img ", '<img loading="lazy" referrerpolicy="no-referrer" ')
    return Markup(clean)  # noqa: S704 - the one place package text becomes markup: nh3's output


def render_readme(text: str, filename: str | None) -> Markup:
    """A README as safe HTML: Markdown for README, README.md and the like, else preformatted text."""
    suffix = ""
    if filename and "." in filename:
        suffix = filename[filename.rindex(".") :].lower()
    note = Markup("")
    if len(text) > MAX_README_CHARS:
        cut = text.rfind("\n", 0, MAX_README_CHARS)
        text = text[: cut if cut > 0 else MAX_README_CHARS]
        note = Markup(
            '<p class="readme-cut"><em>This README is longer than {} KiB; the rest of it is in the tarball.</em></p>'
        ).format(MAX_README_CHARS // 1024)
    if suffix not in _MARKDOWN_SUFFIXES:
        return _preformatted(text) + note
    html = markdown_to_html(text, _RAW_HTML)
    if _html_depth_exceeds(html, MAX_HTML_DEPTH):
        html = markdown_to_html(text, _TEXT_ONLY)  # without its raw HTML
        if _html_depth_exceeds(html, MAX_HTML_DEPTH):  # the Markdown itself nests that deep (> > > ...)
            return _preformatted(text) + note
    return Markup(_unmark_tasks(str(sanitize_html(_mark_tasks(html))))) + note  # noqa: S704 - nh3's output


def _preformatted(text: str) -> Markup:
    return Markup("<pre>") + Markup.escape(text) + Markup("</pre>")


_SPACE_OR_CONTROL = re.compile(r"[\x00-\x20\x7f]")


def link_url(value: object) -> str | None:
    """An absolute http(s) or mailto URL fit for an href, or None."""
    if not isinstance(value, str):
        return None
    url = value.strip()
    if not url or len(url) > MAX_URL_LENGTH or _SPACE_OR_CONTROL.search(url):
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in LINK_SCHEMES:
        return None
    if scheme == "mailto":
        return url if len(url) > len("mailto:") and "@" in url else None
    return url if parts.netloc else None


def http_url(value: object) -> str | None:
    url = link_url(value)
    return url if url and not url.lower().startswith("mailto:") else None


_HOSTS = {"github": "github.com", "gitlab": "gitlab.com", "bitbucket": "bitbucket.org"}
_SHORTCUT = re.compile(r"^(?:(github|gitlab|bitbucket):)?([A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+)$")
_SCP = re.compile(r"^(?:ssh://)?git@([A-Za-z0-9.-]+)[:/](.+)$")


def repository_url(value: object) -> str | None:
    """package.json "repository" (a string or {url}) as a browsable https URL, as npm's website shows it."""
    url = value.get("url") if isinstance(value, dict) else value
    if not isinstance(url, str):
        return None
    url = url.strip()
    shortcut = _SHORTCUT.match(url)
    if shortcut:
        url = f"https://{_HOSTS[shortcut.group(1) or 'github']}/{shortcut.group(2)}"
    if url.startswith("git+"):
        url = url[len("git+") :]
    if url.startswith("git://"):
        url = "https://" + url[len("git://") :]
    scp = _SCP.match(url)
    if scp:
        url = f"https://{scp.group(1)}/{scp.group(2)}"
    if url.endswith(".git"):
        url = url[: -len(".git")]
    return http_url(url)


def bugs_url(value: object) -> str | None:
    """package.json "bugs": a URL string, or {url, email}."""
    if isinstance(value, dict):
        return http_url(value.get("url")) or email_url(value.get("email"))
    return http_url(value)


_EMAIL = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*$")


def email_url(value: object) -> str | None:
    if isinstance(value, str) and len(value) <= 254 and _EMAIL.match(value.strip()):
        return "mailto:" + value.strip()
    return None


_PERSON = re.compile(r"^\s*([^<(]*?)\s*(?:<([^>]*)>)?\s*(?:\(([^)]*)\))?\s*$")


def person(value: object) -> dict[str, str | None] | None:
    """package.json "author": "Name <email> (url)" or {name, email, url} -> {name, url}."""
    if isinstance(value, str):
        match = _PERSON.match(value)
        name, url = (match.group(1), match.group(3)) if match else (value, None)
    elif isinstance(value, dict):
        name, url = value.get("name"), value.get("url")
    else:
        return None
    name = text(name, 200)
    if not name:
        return None
    return {"name": name, "url": http_url(url)}


def text(value: object, limit: int) -> str:
    """A string field, or "" when it is something else; cut to `limit` characters."""
    if not isinstance(value, str):
        return ""
    value = value.strip()
    return value if len(value) <= limit else value[: limit - 1].rstrip() + "…"


def keywords(value: object, count: int = 30, limit: int = 50) -> list[str]:
    """package.json "keywords": a list of strings (or, in old packages, one comma-separated string)."""
    if isinstance(value, str):
        value = value.replace(",", " ").split()
    if not isinstance(value, list):
        return []
    out: list[str] = []
    for item in value:
        word = text(item, limit)
        if word and word not in out:
            out.append(word)
        if len(out) == count:
            break
    return out


def license_name(value: object) -> str:
    """ "license": "MIT"; legacy {"type": "MIT"}, or "licenses": [{type}] handled by the caller."""
    if isinstance(value, dict):
        value = value.get("type")
    return text(value, 100)
