"""The browse site: which pages exist where, what they show, templates, and untrusted text."""

from __future__ import annotations

import json
import posixpath
import re
from pathlib import Path

import pytest

from staticreg.build.pipeline import build
from staticreg.config import Override, builtin_template_dir
from staticreg.errors import BuildError
from staticreg.npm import layout
from staticreg.site import pages as site
from tests.helpers import contents, make_tarball

HOSTILE = "</script><script>window.__pwned=1</script><img src=x onerror=window.__pwned=2>"


def make_registry(folder: Path) -> None:
    make_tarball(
        folder,
        {"name": "lib", "version": "1.0.0", "description": "Old lib", "keywords": ["k1"]},
        {"README.md": "# lib one\n\n| a | b |\n|---|---|\n| 1 | 2 |\n"},
        mtime=1_600_000_000,
    )
    make_tarball(
        folder,
        {
            "name": "lib",
            "version": "2.0.0",
            "description": "A library",
            "keywords": ["strings", "k2"],
            "license": "MIT",
            "repository": "git+https://github.com/acme/lib.git",
            "homepage": "https://lib.test/",
            "bugs": {"url": "https://github.com/acme/lib/issues"},
            "author": "Ann <ann@a.test> (https://ann.test)",
            "dependencies": {"@acme/util": "^1.0.0", "left-pad": "^1.3.0"},
        },
        {"README.md": "# lib two\n\n```js\nlib()\n```\n"},
        mtime=1_600_100_000,
    )
    make_tarball(
        folder,
        {"name": "@acme/util", "version": "1.0.0", "description": "Utilities"},
        {"readme.txt": "plain <b>text</b>"},
        mtime=1_600_000_000,
    )
    make_tarball(folder, {"name": "@acme/index.html", "version": "1.0.0"}, mtime=1_600_000_000)


def read(out: Path, path: str) -> str:
    return (out / path).read_text(encoding="utf-8")


@pytest.fixture
def built(tarballs, make_config):
    make_registry(tarballs)
    config = make_config(
        tarballs,
        title="Acme <packages>",
        deprecations=(Override(name="lib", range="<2", message="use 2.x <now>", where="test"),),
    )
    build(config, show_progress=False)
    return config.output_dir


def test_pages_are_where_layout_says(built):
    for path in [
        layout.SITE_HOME,
        layout.SITE_NOT_FOUND,
        layout.SITE_SEARCH_INDEX,
        layout.site_package_page("lib"),
        layout.site_package_page("@acme/util"),
        layout.site_package_page("@acme/index.html"),
        layout.site_readme_page("lib", "1.0.0"),
        layout.site_readme_page("lib", "2.0.0"),
        layout.site_readme_page("@acme/util", "1.0.0"),
        layout.site_scope_page("@acme"),
        layout.site_asset("style.css"),
        layout.site_asset("site.js"),
        layout.site_asset("favicon.svg"),
    ]:
        assert (built / path).is_file(), path
    # A scoped package called index.html and the scope's page do not collide.
    assert "@acme/index.html" in read(built, layout.site_scope_page("@acme"))


def test_home_page_lists_every_package(built):
    home = read(built, layout.SITE_HOME)
    assert "<title>Acme &lt;packages&gt;</title>" in home
    assert 'href="-/web/package/lib/"' in home and 'href="-/web/package/@acme/util/"' in home
    assert "A library" in home and "2.0.0" in home and "2020-09-14" in home
    assert 'href="-/web/scope/@acme.html"' in home
    assert "Old lib" not in home  # the latest version's description
    assert 'data-search-index="-/web/search-index.json"' in home


def test_search_index(built):
    index = json.loads(read(built, layout.SITE_SEARCH_INDEX))
    assert index["fields"] == ["name", "version", "description", "keywords", "published"]
    rows = {row[0]: row for row in index["packages"]}
    assert rows["lib"] == ["lib", "2.0.0", "A library", ["strings", "k2"], "2020-09-14"]
    assert rows["@acme/util"][2] == "Utilities"


def test_package_page(built):
    page = read(built, layout.site_package_page("lib"))
    assert "<h1>lib two</h1>" in page and '<code class="language-js">lib()' in page  # the latest README
    assert "npm install lib" in page and "registry=http://registry.test/" in page
    assert 'href="../../../../-/web/package/@acme/util/"' in page  # a dependency in this registry is linked
    assert "<span>left-pad</span>" in page  # one that is not is plain text
    assert 'href="https://github.com/acme/lib"' in page and 'href="https://lib.test/"' in page
    assert 'href="https://github.com/acme/lib/issues"' in page and 'href="https://ann.test"' in page
    assert 'href="../../../../lib/-/lib-1.0.0.tgz"' in page and "sha512-" in page
    assert 'href="../../../../-/web/package/lib/1.0.0.html#v1.0.0"' in page  # the page with each version's README
    assert "use 2.x &lt;now&gt;" in page  # 1.0.0's deprecation
    assert "MIT" in page and 'href="../../../../?q=strings"' in page
    assert 'href="../../../../lib"' in page  # the package document, where clients ask for it


@pytest.mark.parametrize("name", ["lib", "@acme/util"])
def test_the_package_document_link_finds_the_document_on_every_kind_of_host(built, name):
    """The page's "Package document (JSON)" link, resolved from the page: a folder host
    (nginx, Apache, Caddy, serve, zero-config) and an object store both serve the package's
    full document there."""
    page_path = layout.site_package_page(name)
    href = re.search(r'<a href="([^"]+)">Package document \(JSON\)</a>', read(built, page_path))[1]
    target = posixpath.normpath(posixpath.join(posixpath.dirname(page_path), href))
    full = layout.packument_path(name)
    assert target == name
    assert layout.document_for_request(target, wants_abbreviated=False)[0:2] == [name, full]  # folder hosts
    assert not (built / name).is_file() and (built / full).is_file()  # so they take the second
    paths = {str(p.relative_to(built)) for p in built.rglob("*") if p.is_file()}
    assert layout.object_keys(paths)[target] == (full, layout.DOCUMENT)  # an object store's key
    assert (built / layout.zero_config_copy(full)).read_bytes() == (
        built / full
    ).read_bytes()  # <name>/ on a zero-config host


def test_older_version_has_its_own_readme(built):
    page = read(built, layout.site_readme_page("lib", "1.0.0"))
    assert "<h1>lib one</h1>" in page and "<table>" in page and "lib two" not in page
    assert "Deprecated:</strong> use 2.x &lt;now&gt;" in page
    assert "npm install lib@1.0.0" in page and "Old lib" in page


def test_scoped_package_page(built):
    page = read(built, layout.site_package_page("@acme/util"))
    assert "@acme:registry=http://registry.test/" in page
    assert 'href="../../../../../-/web/scope/@acme.html"' in page
    assert "<pre>plain &lt;b&gt;text&lt;/b&gt;</pre>" in page  # readme.txt is text, not Markdown
    assert "has no README" in read(built, layout.site_package_page("@acme/index.html"))


def test_versions_that_share_a_readme_share_its_page(tarballs, make_config):
    """A README page per README change in semver order; every version's details on it, at its anchor."""
    same = {"README.md": "# same readme\n"}
    for version, files in [
        ("1.0.0", same),
        ("1.0.1", same),
        ("1.1.0-rc.1", {"README.md": "# new\n"}),
        ("1.1.0", {"README.md": "# new\n"}),
        ("1.2.0", same),
        ("1.3.0", {}),
        ("1.3.1", {}),
    ]:
        make_tarball(
            tarballs,
            {
                "name": "run",
                "version": version,
                "description": f"run {version}",
                "dependencies": {"dep-" + version: "^1"},
            },
            files,
        )
    config = make_config(tarballs, dist_tags=(Override(name="run", tag="next", version="1.1.0-rc.1", where="test"),))
    build(config, show_progress=False)
    out = config.output_dir
    folder = out / layout.site_package_page("run").rpartition("/")[0]
    pages = {
        "1.0.0": ["1.0.1", "1.0.0"],
        "1.1.0-rc.1": ["1.1.0", "1.1.0-rc.1"],
        "1.2.0": ["1.2.0"],
        "1.3.0": ["1.3.1", "1.3.0"],
    }
    assert sorted(p.name for p in folder.iterdir()) == sorted([f"{v}.html" for v in pages] + ["index.html"])
    for first, versions in pages.items():
        page = read(out, layout.site_readme_page("run", first))
        for version in versions:  # each version's own details, in a section of its own, newest first
            assert f'id="{layout.version_anchor(version)}"' in page and f"npm install run@{version}" in page
            assert f"run-{version}.tgz" in page and f"dep-{version}" in page
        assert [m for m in re.findall(r'id="v([^"]+)"', page) if not m.endswith("-title")] == versions
        assert page.count('class="readme"') == 1
    assert "<h1>same readme</h1>" in read(
        out, layout.site_readme_page("run", "1.2.0")
    )  # the same text again: a page of its own
    assert "Each of these versions has no README." in read(out, layout.site_readme_page("run", "1.3.0"))
    package = read(out, layout.site_package_page("run"))
    for version, first in [("1.0.1", "1.0.0"), ("1.1.0", "1.1.0-rc.1"), ("1.3.1", "1.3.0")]:
        assert f'href="../../../../-/web/package/run/{first}.html#v{version}"' in package
    tags = package.split('id="tags-title"')[1].split("</section>")[0]
    assert 'href="../../../../-/web/package/run/1.1.0-rc.1.html#v1.1.0-rc.1">1.1.0-rc.1' in tags
    assert 'href="../../../../-/web/package/run/1.3.0.html#v1.3.1">1.3.1' in tags
    # links from a README page to its own versions stay on the page
    assert 'href="#v1.0.1"' in read(out, layout.site_readme_page("run", "1.0.0"))


def test_not_found_page_links_from_the_base_path(tarballs, make_config):
    make_registry(tarballs)
    config = make_config(tarballs, base_url="https://host.test/npm/")
    build(config, show_progress=False)
    page = read(config.output_dir, layout.SITE_NOT_FOUND)
    assert 'href="/npm/-/web/assets/style.css?v=' in page and 'data-root="/npm/"' in page
    assert 'id="not-found-message"' in page


def test_no_site(tarballs, make_config):
    make_registry(tarballs)
    config = make_config(tarballs, site=False)
    build(config, show_progress=False)
    assert not (config.output_dir / layout.SITE_DIR).exists()
    assert not (config.output_dir / layout.SITE_HOME).exists()
    assert not (config.output_dir / layout.SITE_NOT_FOUND).exists()


def test_pagination_keeps_the_home_page_small(tarballs, make_config, monkeypatch):
    monkeypatch.setattr(site, "PAGE_SIZE", 2)
    for i in range(5):
        make_tarball(tarballs, {"name": f"p{i}", "version": "1.0.0"})
    config = make_config(tarballs)
    build(config, show_progress=False)
    out = config.output_dir
    home = read(out, layout.SITE_HOME)
    assert "p0" in home and "p1" in home and "p2" not in home
    assert 'href="-/web/packages/2.html"' in home and 'href="-/web/packages/3.html"' in home
    last = read(out, layout.site_list_page(3))
    assert 'href="../../../-/web/package/p4/"' in last and "p0" not in last
    assert 'aria-current="page" href="../../../-/web/packages/3.html"' in last
    assert not (out / layout.site_list_page(4)).exists()


def test_pagination_links_the_ends_and_the_pages_near_this_one():
    numbers = lambda n, count: [p and p["number"] for p in site._pagination(n, count)["pages"]]  # noqa: E731
    assert numbers(1, 5) == [1, 2, 3, 4, 5]
    assert numbers(1, 229) == [1, 2, 3, 4, None, 229]
    assert numbers(100, 229) == [1, None, 97, 98, 99, 100, 101, 102, 103, None, 229]
    assert numbers(229, 229) == [1, None, 226, 227, 228, 229]
    assert site._pagination(1, 1) is None


def test_user_templates_override_ours_file_by_file(tarballs, make_config, tmp_path):
    make_registry(tarballs)
    mine = tmp_path / "mine"
    (mine / "assets").mkdir(parents=True)
    (mine / "package.html").write_text(
        '{% extends "base.html" %}{% block main %}<h1 class="mine">{{ package.name }}</h1>{{ readme }}{% endblock %}'
    )
    (mine / "assets" / "style.css").write_text("body { color: rebeccapurple }")
    (mine / "assets" / "logo.png").write_bytes(b"\x89PNG")
    config = make_config(tarballs, template_dir=mine)
    build(config, show_progress=False)
    out = config.output_dir
    page = read(out, layout.site_package_page("lib"))
    assert '<h1 class="mine">lib</h1>' in page and "<h1>lib two</h1>" in page
    assert 'class="site-header"' in page  # our base.html still wraps it
    assert "Integrity" in read(out, layout.site_readme_page("lib", "1.0.0"))  # ours
    assert (out / layout.site_asset("style.css")).read_text() == "body { color: rebeccapurple }"
    assert (out / layout.site_asset("logo.png")).read_bytes() == b"\x89PNG"
    assert (out / layout.site_asset("site.js")).read_bytes() == (builtin_template_dir() / "assets/site.js").read_bytes()


def fails_with_templates(tarballs: Path, make_config, tmp_path: Path, files: dict[str, str], match: str) -> None:
    """A build with a template folder of `files` fails with `match`, and the output built
    before it is untouched."""
    make_registry(tarballs)
    good = make_config(tarballs, output_dir=tmp_path / "out")
    build(good, show_progress=False)
    before = read(good.output_dir, layout.SITE_HOME)
    mine = tmp_path / "mine"
    for name, text in files.items():
        (mine / name).parent.mkdir(parents=True, exist_ok=True)
        (mine / name).write_text(text)
    with pytest.raises(BuildError, match=match):
        build(make_config(tarballs, output_dir=tmp_path / "out", template_dir=mine), show_progress=False)
    assert read(good.output_dir, layout.SITE_HOME) == before


def test_a_broken_user_template_fails_the_build_and_names_the_line(tarballs, make_config, tmp_path):
    broken = {"index.html": '{% extends "base.html" %}\n{% block main %}\n{{ no_such_thing.x }}\n{% endblock %}\n'}
    fails_with_templates(tarballs, make_config, tmp_path, broken, r"index.html:3: 'no_such_thing' is undefined")


def test_parallel_rendering_writes_the_same_bytes(tarballs, make_config, tmp_path, monkeypatch):
    make_registry(tarballs)
    for i in range(12):
        make_tarball(tarballs, {"name": f"p{i}", "version": "1.0.0"}, {"README.md": f"# p{i}"})
    build(make_config(tarballs, output_dir=tmp_path / "serial", jobs=1), show_progress=False)
    monkeypatch.setattr(site, "_PARALLEL_FROM", 0)
    monkeypatch.setattr(site, "_BATCH_PAGES", 3)
    build(make_config(tarballs, output_dir=tmp_path / "parallel", jobs=2), show_progress=False)
    serial, parallel = contents(tmp_path / "serial"), contents(tmp_path / "parallel")
    assert serial == parallel and len(serial) > 40


def test_package_text_never_becomes_markup(tarballs, make_config):
    """Everything a hostile package.json can set comes out escaped or dropped (the browser test runs it too)."""
    make_tarball(
        tarballs,
        {
            "name": "evil",
            "version": "1.0.0",
            "description": HOSTILE,
            "keywords": [HOSTILE, "ok"],
            "license": HOSTILE,
            "author": {"name": HOSTILE, "url": "javascript:window.__pwned=3"},
            "homepage": "javascript:window.__pwned=4",
            "repository": {"url": "javascript:window.__pwned=5"},
            "bugs": {"url": "javascript:alert(1)", "email": 'x@y.test" onmouseover="alert(1)'},
            "deprecated": HOSTILE,
            "dependencies": {HOSTILE: HOSTILE},
        },
        {"README.md": "<script>window.__pwned=6</script>[x](javascript:window.__pwned=7)"},
    )
    config = make_config(tarballs)
    build(config, show_progress=False)
    out = config.output_dir
    pages = [layout.SITE_HOME, layout.site_package_page("evil"), layout.site_readme_page("evil", "1.0.0")]
    for path in pages:
        html = read(out, path)
        assert html.count("<script") == 1, path  # ours, with src
        tags = re.findall(r"<[a-zA-Z][^>]*>", html)
        assert not [t for t in tags if re.search(r"\son\w+\s*=|javascript:|<img src=x", t, re.I)], path
        assert "&lt;/script&gt;&lt;script&gt;window.__pwned=1" in html, path
    index = (out / layout.SITE_SEARCH_INDEX).read_bytes()
    assert b"<" not in index and b">" not in index  # escaped as \u003c even in JSON
    assert json.loads(index)["packages"][0][2] == HOSTILE
    # Attribute values cannot be broken out of: every quote inside one is escaped.
    page = read(out, layout.site_package_page("evil"))
    assert not re.search(r'="[^"]*"[^\s>/]', page)


def test_a_missing_asset_is_named(tarballs, make_config, tmp_path):
    make_registry(tarballs)
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "404.html").write_text('<link rel="stylesheet" href="{{ asset(\'theme.css\') }}">')
    with pytest.raises(BuildError, match=r"404.html:1: asset\('theme.css'\): there is no theme.css"):
        build(make_config(tarballs, template_dir=mine), show_progress=False)


def test_an_asset_named_with_a_line_break_fails_the_build_and_names_it(tarballs, make_config, tmp_path):
    """The build cache lists the output's files one a line: such a name would break it."""
    named = {"assets/a\nb.css": "body {}"}
    fails_with_templates(tarballs, make_config, tmp_path, named, r"mine/assets: the asset 'a\\nb.css' has a line break")


def test_two_builds_in_separate_processes_make_the_same_bytes(tmp_path):
    """Same input, same bytes, pages included: each build in a process of its own (hash seeds,
    the sanitizer's maps and worker processes differ from one to the next)."""
    from tests.process import run_cli

    readme = (
        '# Title\n\n<img src="https://img.test/a.png" alt="a" width="20" title="t"> '
        '[link](https://a.test/ "title") <a href="https://b.test/" title="x" id="y">b</a>\n\n'
        "| a | b |\n|:-|-:|\n| 1 | 2 |\n\n- [x] done\n- [ ] not yet\n\n~~old~~ https://c.test/\n"
    )
    for i in range(30):
        make_tarball(
            tmp_path / "in",
            {"name": f"p{i}", "version": "1.0.0", "keywords": ["k", f"k{i}"]},
            {"README.md": readme + f"\n{i}\n"},
        )
    trees = []
    for n in (1, 2):
        out = tmp_path / f"out{n}"
        result = run_cli("build", str(tmp_path / "in"), "-o", str(out), "--base-url", "http://r.test/", "-q", "-j", "2")
        assert result.returncode == 0, result.stderr
        trees.append(contents(out))
    assert trees[0] == trees[1]
