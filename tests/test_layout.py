from pathlib import Path

import pytest

from staticreg.npm import layout


def test_conventional_paths():
    assert layout.packument_path("left-pad") == "left-pad/index.json"
    assert layout.packument_path("@acme/widgets") == "@acme/widgets/index.json"
    assert layout.abbreviated_path("@acme/widgets") == "@acme/widgets/index.corgi"
    assert layout.tarball_path("@acme/widgets", "1.0.0") == "@acme/widgets/-/widgets-1.0.0.tgz"
    assert layout.tarball_path("left-pad", "1.0.0-rc.1") == "left-pad/-/left-pad-1.0.0-rc.1.tgz"
    assert layout.version_document_path("x", "1.0.0") == "x/1.0.0.json"
    assert layout.version_document_path("@a/b", "latest") == "@a/b/latest.json"
    assert layout.dist_tags_path("@a/b") == "-/package/@a/b/dist-tags"
    assert layout.zero_config_copy("@a/b/index.json") == "@a/b/index.html"
    with pytest.raises(ValueError, match="is not a package document"):  # only package documents have a twin
        layout.zero_config_copy("x/1.0.0.json")


def test_urls_keep_the_base_path():
    base = "https://host.test/sub/npm/"
    assert (
        layout.tarball_url(base, "@acme/widgets", "1.0.0")
        == "https://host.test/sub/npm/@acme/widgets/-/widgets-1.0.0.tgz"
    )
    assert layout.package_url(base, "@acme/widgets") == "https://host.test/sub/npm/@acme%2Fwidgets"
    assert layout.tarball_url(base, "it's", "1.0.0") == "https://host.test/sub/npm/it's/-/it's-1.0.0.tgz"


@pytest.mark.parametrize("name", ["-", "index.html", "Index.HTML", "robots.txt", "404.html"])
def test_reserved_names(name):
    with pytest.raises(layout.UnsafePath):
        layout.package_dir(name)


@pytest.mark.parametrize("rel", ["", "/etc/x", "a/../../b", "..", "a//b", "a/./b", "a\\b", "a\0b"])
def test_safe_join_refuses_escapes(tmp_path, rel):
    with pytest.raises(layout.UnsafePath):
        layout.safe_join(tmp_path, rel)


def test_safe_join_accepts_normal_paths(tmp_path):
    assert layout.safe_join(tmp_path, "@a/b/index.json") == Path(tmp_path, "@a", "b", "index.json")


def test_request_mapping_matches_the_nginx_rule():
    assert layout.document_for_request("/", False) == ["index.html"]
    assert layout.document_for_request("/@a/b", True) == [
        "@a/b",
        "@a/b/index.corgi",
        "@a/b/index.json",
        "@a/b/index.html",
        "@a/b.json",
    ]
    assert layout.document_for_request("/@a/b/1.0.0", False)[-1] == layout.version_document_path("@a/b", "1.0.0")
    assert layout.document_for_request("/x/-/x-1.0.0.tgz", False)[0] == "x/-/x-1.0.0.tgz"


def test_object_keys_put_documents_at_the_package_name_and_drop_filesystem_copies():
    paths = {
        "demo/index.json",
        "demo/index.corgi",
        "demo/index.html",
        "demo/1.0.0.json",
        "demo/latest.json",
        "demo/-/demo-1.0.0.tgz",
        "@s/n/index.json",
        "@s/n/1.0.0-rc.html.json",
        "@s/n/-/n-1.0.0.tgz",
        "-/ping",
        "-/package/@s/n/dist-tags",
        "-/web/package/demo/index.html",
        "-/web/package/demo/1.0.0.html",
        "-/web/assets/style.css",
        "-/web/search-index.json",
        "index.html",
        ".nojekyll",
    }
    assert layout.object_keys(paths) == {
        "demo": ("demo/index.json", layout.DOCUMENT),
        "demo/1.0.0": ("demo/1.0.0.json", layout.DOCUMENT),  # the URL clients ask for, not the file's name
        "demo/latest": ("demo/latest.json", layout.DOCUMENT),
        "@s/n/1.0.0-rc.html": ("@s/n/1.0.0-rc.html.json", layout.DOCUMENT),
        "demo/-/demo-1.0.0.tgz": ("demo/-/demo-1.0.0.tgz", layout.TARBALL),
        "@s/n": ("@s/n/index.json", layout.DOCUMENT),
        "@s/n/-/n-1.0.0.tgz": ("@s/n/-/n-1.0.0.tgz", layout.TARBALL),
        "-/ping": ("-/ping", layout.DOCUMENT),
        "-/package/@s/n/dist-tags": ("-/package/@s/n/dist-tags", layout.DOCUMENT),
        "-/web/package/demo/index.html": ("-/web/package/demo/index.html", layout.SITE_PAGE),
        "-/web/package/demo/": ("-/web/package/demo/index.html", layout.SITE_PAGE),  # where pages link to it
        "-/web/package/demo/1.0.0.html": ("-/web/package/demo/1.0.0.html", layout.SITE_PAGE),  # a page as a file
        "-/web/assets/style.css": ("-/web/assets/style.css", layout.SITE_PAGE),
        "-/web/search-index.json": ("-/web/search-index.json", layout.SITE_PAGE),
        "index.html": ("index.html", layout.ROOT_PAGE),
        "": ("index.html", layout.ROOT_PAGE),
    }


def test_package_of_document():
    assert layout.package_of_document("demo/index.json") == "demo"
    assert layout.package_of_document("@s/n/index.json") == "@s/n"
    for other in ("demo/1.0.0.json", "@s/n/latest.json", "demo/index.corgi", "-/web/x/index.json", "index.json"):
        assert layout.package_of_document(other) is None, other


def test_site_paths():
    assert layout.site_package_page("@acme/widgets") == "-/web/package/@acme/widgets/index.html"
    assert layout.site_readme_page("left-pad", "1.0.0-rc.1") == "-/web/package/left-pad/1.0.0-rc.1.html"
    assert layout.site_readme_page("@acme/widgets", "2.0.0") == "-/web/package/@acme/widgets/2.0.0.html"
    assert layout.version_anchor("1.0.0-rc.1") == "v1.0.0-rc.1"
    assert layout.site_scope_page("@acme") == "-/web/scope/@acme.html"
    assert layout.site_list_page(1) == "index.html" and layout.site_list_page(7) == "-/web/packages/7.html"
    assert layout.site_asset("style.css") == "-/web/assets/style.css"
    assert layout.scope_of("@acme/widgets") == "@acme" and layout.scope_of("left-pad") is None
    assert (
        layout.page_link("index.html") == ""
        and layout.page_link("-/web/package/@a/b/index.html") == "-/web/package/@a/b/"
    )
    assert (
        layout.page_link("-/web/scope/@a.html") == "-/web/scope/@a.html"
    )  # a page that is a file: every host serves it
    assert (
        layout.relative_root("index.html") == "" and layout.relative_root("-/web/package/@a/b/index.html") == "../" * 5
    )


@pytest.mark.parametrize(
    "name",
    ["v", "index.html", "package", "scope", "@v/v", "@acme/index.html", "@acme/v", "1.0.0.html", "@acme/1.0.0.html"],
)
def test_site_pages_of_different_packages_never_share_a_path(name):
    """A page is a file, so no other page may need it as a folder, whatever the package is called."""
    others = ["v", "index.html", "@acme/index.html", "@acme/v", "@v/v", "x", "1.0.0.html", "@acme/1.0.0.html"]
    files = {layout.site_package_page(n) for n in others + [name]}
    files |= {layout.site_readme_page(n, "1.0.0") for n in others + [name]}
    files |= {layout.site_scope_page("@acme"), layout.site_scope_page("@v"), layout.site_list_page(2)}
    folders = {f.rsplit("/", i)[0] for f in files for i in range(1, f.count("/") + 1)}
    assert not files & folders


def test_a_tarball_file_name_longer_than_file_systems_allow_is_refused():
    name = "@s/" + "n" * 200
    assert layout.tarball_filename(name, "1.0.0-" + "x" * 40) == "n" * 200 + "-1.0.0-" + "x" * 40 + ".tgz"
    with pytest.raises(layout.UnsafePath, match="longer than 255 bytes"):
        layout.tarball_path(name, "1.0.0-" + "x" * 60)


def test_each_file_of_a_registry_has_one_kind_that_serve_and_deploy_share():
    from staticreg.dev.serve import cache_control
    from staticreg.npm import headers

    kinds = {
        layout.tarball_path("@s/b", "1.0.0"): layout.TARBALL,
        layout.tarball_path("a", "1.0.0"): layout.TARBALL,
        layout.packument_path("a"): layout.DOCUMENT,
        layout.abbreviated_path("@s/b"): layout.DOCUMENT,
        layout.version_document_path("a", "1.0.0"): layout.DOCUMENT,
        layout.version_document_path("@s/b", "latest"): layout.DOCUMENT,
        "-/web/search-index.json": layout.SITE_PAGE,  # .json, but no document
        layout.REGISTRY_STATE: layout.STATE,
        layout.site_readme_page("a", "1.0.0"): layout.SITE_PAGE,
        layout.dist_tags_path("@s/b"): layout.DOCUMENT,
        layout.PING: layout.DOCUMENT,
        layout.zero_config_copy(layout.packument_path("a")): layout.SITE_PAGE,
        layout.site_package_page("a"): layout.SITE_PAGE,
        layout.site_asset("site.css"): layout.SITE_PAGE,
        "index.html": layout.ROOT_PAGE,
        "index.json": layout.ROOT_PAGE,  # no package has an empty name
        "notes.tgz": layout.ROOT_PAGE,  # a tarball is in a package's "-" folder
    }
    assert {path: layout.kind_of(path) for path in kinds} == kinds
    for path, kind in kinds.items():  # the dev server's Cache-Control is the one deploy uploads with
        assert cache_control(path, 60) == headers.for_object(path, kind, 60)[1], path
    keys = layout.object_keys(set(kinds))
    assert keys["a"] == (layout.packument_path("a"), layout.DOCUMENT)
    assert keys[layout.PING] == (layout.PING, layout.DOCUMENT)
    assert layout.abbreviated_path("@s/b") not in {path for path, _ in keys.values()}


def test_version_documents_sit_beside_the_package_document_and_never_on_its_files():
    """A version starts with a digit, a tag with a letter and is never "index": neither lands on
    index.json, index.corgi or index.html, and none is a folder any more."""
    from staticreg.npm import names

    for tag in ("latest", "next", "beta.1", "indexed"):
        names.check_tag(tag)
        path = layout.version_document_path("@s/n", tag)
        assert path.count("/") == 2 and path.rsplit("/", 1)[1] not in ("index.json", "index.corgi", "index.html")
    with pytest.raises(names.NameProblem):
        names.check_tag("Index")
    assert layout.version_document_path("a", "1.0.0") != layout.packument_path("a")


def test_generation_one_paths_are_known_to_remove_them():
    assert layout.GENERATION == 2
    assert layout.legacy_document_paths("@s/n", "1.0.0") == ["@s/n/1.0.0/index.json", "@s/n/1.0.0/index.html"]
    assert layout.legacy_version_page("a", "1.0.0") == "-/web/package/a/v/1.0.0/index.html"
    assert layout.legacy_scope_page("@s") == "-/web/scope/@s/index.html"
    assert layout.legacy_list_page(2) == "-/web/packages/2/index.html"
    # a generation 1 version document has the key of its generation 2 file in an object store
    assert (
        layout.object_key(layout.legacy_document_paths("a", "1.0.0")[0])
        == layout.object_key("a/1.0.0.json")
        == "a/1.0.0"
    )
