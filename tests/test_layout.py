from pathlib import Path

import pytest

from staticreg import layout


def test_conventional_paths():
    assert layout.packument_path("left-pad") == "left-pad/index.json"
    assert layout.packument_path("@acme/widgets") == "@acme/widgets/index.json"
    assert layout.abbreviated_path("@acme/widgets") == "@acme/widgets/index.corgi"
    assert layout.tarball_path("@acme/widgets", "1.0.0") == "@acme/widgets/-/widgets-1.0.0.tgz"
    assert layout.tarball_path("left-pad", "1.0.0-rc.1") == "left-pad/-/left-pad-1.0.0-rc.1.tgz"
    assert layout.version_document_path("x", "1.0.0") == "x/1.0.0/index.json"
    assert layout.dist_tags_path("@a/b") == "-/package/@a/b/dist-tags"
    assert layout.zero_config_copy("x/1.0.0/index.json") == "x/1.0.0/index.html"


def test_urls_keep_the_base_path():
    base = "https://host.test/sub/npm/"
    assert layout.tarball_url(base, "@acme/widgets", "1.0.0") == "https://host.test/sub/npm/@acme/widgets/-/widgets-1.0.0.tgz"
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
    assert layout.document_for_request("/@a/b", True) == ["@a/b", "@a/b/index.corgi", "@a/b/index.json", "@a/b/index.html"]
    assert layout.document_for_request("/x/-/x-1.0.0.tgz", False)[0] == "x/-/x-1.0.0.tgz"


def test_a_tarball_file_name_longer_than_file_systems_allow_is_refused():
    name = "@s/" + "n" * 200
    assert layout.tarball_filename(name, "1.0.0-" + "x" * 40) == "n" * 200 + "-1.0.0-" + "x" * 40 + ".tgz"
    with pytest.raises(layout.UnsafePath, match="longer than 255 bytes"):
        layout.tarball_path(name, "1.0.0-" + "x" * 60)
