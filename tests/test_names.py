import pytest

from staticreg.npm import names


@pytest.mark.parametrize("name", ["left-pad", "@acme/widgets", "a", "x.y_z", "@a/b", "-foo"])
def test_valid_names_pass_without_warnings(name):
    assert names.check_name(name) == []


@pytest.mark.parametrize("name", ["JSONStream", "@Acme/Thing", "legacy~name", "it's"])
def test_legacy_names_pass_with_a_warning(name):
    assert names.check_name(name)


@pytest.mark.parametrize(
    "name",
    [
        None,
        "",
        " x",
        "x ",
        ".hidden",
        "_private",
        "node_modules",
        "favicon.ico",
        "../x",
        "@a/../../x",
        "a/b",
        "@a/b/c",
        "@scope/..",
        "@scope/.x",
        "@./x",
        "%2e%2e",
        "a b",
        "a\u00e9",
        "x" * 215,
        "a\\b",
        "@/x",
        "@x/",
    ],
)
def test_invalid_names_are_refused(name):
    with pytest.raises(names.NameProblem):
        names.check_name(name)


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("1.2.3", "1.2.3"),
        ("v1.2.3", "1.2.3"),
        ("=1.2.3", "1.2.3"),
        (" 1.2.3 ", "1.2.3"),
        ("1.2.3-beta.1", "1.2.3-beta.1"),
        ("1.2.3+build.5", "1.2.3"),
        ("1.2.3-rc.1+b", "1.2.3-rc.1"),
        ("0.0.0-0", "0.0.0-0"),
    ],
)
def test_clean_version_is_semver_clean(raw, clean):
    assert names.clean_version(raw) == clean


@pytest.mark.parametrize(
    "raw",
    [
        None,
        1.0,
        "1.0",
        "1",
        "01.2.3",
        "1.2.3/../../x",
        "1.2.3-",
        "1.2.3-01",
        "x",
        "1.2.3beta",
        "9007199254740992.0.0",
        "1.2.3-a..b",
    ],
)
def test_clean_version_refuses_what_is_not_semver(raw):
    with pytest.raises(names.NameProblem):
        names.clean_version(raw)


def test_version_key_orders_by_semver_precedence():
    versions = [
        "1.0.0",
        "1.0.0-alpha",
        "1.0.0-alpha.1",
        "1.0.0-alpha.beta",
        "1.0.0-beta",
        "1.0.0-beta.2",
        "1.0.0-beta.11",
        "1.0.0-rc.1",
        "0.9.0",
        "10.0.0",
        "2.0.0",
    ]
    assert sorted(versions, key=names.version_key) == [
        "0.9.0",
        "1.0.0-alpha",
        "1.0.0-alpha.1",
        "1.0.0-alpha.beta",
        "1.0.0-beta",
        "1.0.0-beta.2",
        "1.0.0-beta.11",
        "1.0.0-rc.1",
        "1.0.0",
        "2.0.0",
        "10.0.0",
    ]


@pytest.mark.parametrize("tag", ["latest", "next", "beta-2", "canary.x"])
def test_tags(tag):
    assert names.check_tag(tag) == tag


@pytest.mark.parametrize("tag", ["", "1.0.0", "v1", "../x", "a/b", "-x", "^1"])
def test_bad_tags(tag):
    with pytest.raises(names.NameProblem):
        names.check_tag(tag)


def test_split_spec():
    assert names.split_spec("@a/b@^1.2") == ("@a/b", "^1.2")
    assert names.split_spec("left-pad@<2") == ("left-pad", "<2")
    assert names.split_spec("@a/b") == ("@a/b", "*")


@pytest.mark.parametrize("tag", ["index.json", "index.corgi", "Index.HTML", "index", "INDEX"])
def test_tags_that_are_document_file_names_are_refused(tag):
    with pytest.raises(names.NameProblem, match="file name"):
        names.check_tag(tag)
