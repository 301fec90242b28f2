from datetime import datetime, timezone

import pytest

from staticreg.config import Override
from staticreg.npm import names
from staticreg.npm.model import build_registry, filename_warning, has_install_script, normalize_manifest, pick_latest
from tests.helpers import BASE, NOW, record, registry, registry_config


def test_normalize_follows_npm_publish():
    raw = {
        "name": "@acme/thing",
        "version": "v1.2.3",
        "_resolved": "x",
        "_from": "y",
        "_id": "wrong",
        "readme": "big",
        "readmeFilename": "README.md",
        "bundledDependencies": True,
        "dependencies": {"a": "^1", "b": "2"},
        "dist": {"tarball": "elsewhere"},
        "custom": {"kept": True},
    }
    name, version, m, warnings = normalize_manifest(record(raw), BASE)
    assert (name, version) == ("@acme/thing", "1.2.3")
    assert m["version"] == "1.2.3" and m["_id"] == "@acme/thing@1.2.3"
    assert not {"_resolved", "_from", "readme", "readmeFilename", "bundledDependencies"} & set(m)
    assert m["bundleDependencies"] == ["a", "b"]
    assert m["custom"] == {"kept": True}
    assert m["dist"] == {
        "integrity": "sha512-@acme/thingv1.2.3",
        "shasum": "ab" * 20,
        "tarball": "https://npm.example.com/sub/@acme/thing/-/thing-1.2.3.tgz",
        "fileCount": 1,
        "unpackedSize": 5,
    }
    assert m["hasInstallScript"] is False and m["_hasShrinkwrap"] is False
    assert any("read as '1.2.3'" in w for w in warnings)


@pytest.mark.parametrize(
    ("bundle", "expected"),
    [({"a": "1"}, ["a"]), (["a", 3], ["a"]), (False, None), (True, ["dep"])],
)
def test_bundle_dependencies_forms(bundle, expected):
    raw = {"name": "x", "version": "1.0.0", "dependencies": {"dep": "1"}, "bundleDependencies": bundle}
    m = normalize_manifest(record(raw), BASE)[2]
    assert m.get("bundleDependencies") == expected


def test_dependency_arrays_become_objects_and_junk_is_dropped():
    raw = {
        "name": "x",
        "version": "1.0.0",
        "dependencies": [],
        "devDependencies": ["a", "b"],
        "peerDependencies": "nope",
        "optionalDependencies": {"ok": "1", "bad": 2},
    }
    m, warnings = normalize_manifest(record(raw), BASE)[2:]
    assert m["dependencies"] == {}
    assert m["devDependencies"] == {"a": "*", "b": "*"}
    assert "peerDependencies" not in m
    assert m["optionalDependencies"] == {"ok": "1"}
    assert len(warnings) == 3


@pytest.mark.parametrize(
    ("scripts", "gyp", "gypfile", "expected"),
    [
        ({}, False, None, False),
        ({"postinstall": "x"}, False, None, True),
        ({"preinstall": "x"}, False, None, True),
        ({"test": "x"}, True, None, True),
        ({"install": "y"}, True, None, True),
        ({}, True, False, False),
    ],
)
def test_has_install_script(scripts, gyp, gypfile, expected):
    manifest = {"scripts": scripts}
    if gypfile is not None:
        manifest["gypfile"] = gypfile
    assert has_install_script(manifest, gyp) is expected


def test_shrinkwrap_flag():
    m = normalize_manifest(record({"name": "x", "version": "1.0.0"}, has_shrinkwrap=True), BASE)[2]
    assert m["_hasShrinkwrap"] is True


@pytest.mark.parametrize("name", ["index.html", "-", "INDEX.HTML", "robots.txt"])
def test_names_the_registry_uses_are_refused(name):
    reg = registry(record({"name": name, "version": "1.0.0"}))
    assert not reg.packages and "registry itself uses" in reg.problems[0].reason


@pytest.mark.parametrize(
    ("versions", "latest"),
    [(["1.0.0", "1.10.0", "1.9.0", "2.0.0-beta.1"], "1.10.0"), (["1.0.0-a", "1.0.0-b"], "1.0.0-b")],
)
def test_latest_is_highest_stable(versions, latest):
    assert pick_latest(versions) == latest
    assert pick_latest(sorted(versions, key=names.version_key), in_order=True) == latest


def test_versions_are_in_semver_order_and_times_complete():
    reg = registry(
        *(
            record({"name": "x", "version": v}, mtime=1_600_000_000 + i)
            for i, v in enumerate(["1.10.0", "1.2.0", "2.0.0-rc.1"])
        )
    )
    package = reg.packages["x"]
    assert list(package.versions) == ["1.2.0", "1.10.0", "2.0.0-rc.1"]
    assert package.dist_tags == {"latest": "1.10.0"}
    assert package.created == "2020-09-13T12:26:40.000Z"
    assert package.modified == "2020-09-13T12:26:42.000Z"


def test_publish_time_sources_in_order():
    recs = [record({"name": "x", "version": v}) for v in ("1.0.0", "1.1.0", "1.2.0")]
    recs.append(record({"name": "x", "version": "1.3.0"}, mtime=NOW.timestamp() + 86400))
    reg = build_registry(
        recs,
        registry_config(
            publish_times=(
                Override(name="x", version="1.0.0", time=datetime(2019, 5, 1, tzinfo=timezone.utc), where="c:1"),
            )
        ),
        {"x@1.0.0": "2018-01-01T00:00:00.000Z", "x@1.1.0": "2018-02-02T00:00:00.000Z"},
        NOW,
    )
    v = reg.packages["x"].versions
    assert (v["1.0.0"].time, v["1.0.0"].time_source) == ("2019-05-01T00:00:00.000Z", "config")
    assert (v["1.1.0"].time, v["1.1.0"].time_source) == ("2018-02-02T00:00:00.000Z", "remembered")
    assert (v["1.2.0"].time, v["1.2.0"].time_source) == ("2020-09-13T12:26:40.000Z", "mtime")
    assert v["1.3.0"].time == "2026-01-01T00:00:00.000Z"  # a future mtime is clamped to now


def test_future_publish_time_override_is_a_problem():
    o = Override(name="x", version="1.0.0", time=datetime(2030, 1, 1, tzinfo=timezone.utc), where="staticreg.yml:4")
    reg = registry(record({"name": "x", "version": "1.0.0"}), publish_times=(o,))
    assert reg.problems[0].source == "staticreg.yml:4" and "future" in reg.problems[0].reason


def test_dist_tag_overrides():
    recs = [record({"name": "x", "version": v}) for v in ("1.0.0", "2.0.0-beta.1")]
    tags = (
        Override(name="x", tag="next", version="2.0.0-beta.1", where="c:1"),
        Override(name="x", tag="latest", version="1.0.0", where="c:2"),
        Override(name="x", tag="old", version="0.1.0", where="c:3"),
        Override(name="nope", tag="next", version="1.0.0", where="c:4"),
    )
    reg = registry(*recs, dist_tags=tags)
    assert reg.packages["x"].dist_tags == {"latest": "1.0.0", "next": "2.0.0-beta.1"}
    assert [p.source for p in reg.problems] == ["c:3", "c:4"]


def test_deprecations_by_range_include_prereleases():
    recs = [record({"name": "x", "version": v}) for v in ("1.0.0", "1.5.0-beta.1", "2.0.0")]
    deps = (
        Override(name="x", range="<2", message="too old", where="c:1"),
        Override(name="x", range=">=5", message="none", where="c:2"),
    )
    reg = registry(*recs, deprecations=deps)
    v = reg.packages["x"].versions
    assert v["1.0.0"].manifest["deprecated"] == "too old"
    assert v["1.5.0-beta.1"].manifest["deprecated"] == "too old"
    assert "deprecated" not in v["2.0.0"].manifest
    assert [w.source for w in reg.warnings] == ["c:2"]


def test_same_bytes_twice_is_fine_different_bytes_is_a_problem():
    same = registry(
        record({"name": "x", "version": "1.0.0"}, source="a.tgz", integrity="sha512-A"),
        record({"name": "x", "version": "1.0.0"}, source="b.tgz", integrity="sha512-A"),
    )
    assert not same.problems and same.duplicates[0].source == "b.tgz"
    assert same.packages["x"].versions["1.0.0"].record.source == "a.tgz"
    diff = registry(
        record({"name": "x", "version": "v1.0.0"}, source="a.tgz", integrity="sha512-A"),
        record({"name": "x", "version": "1.0.0"}, source="b.tgz", integrity="sha512-B"),
        record({"name": "y", "version": "1.0.0"}),
    )
    assert sorted(p.source for p in diff.problems) == ["a.tgz", "b.tgz"]
    assert "different bytes" in diff.problems[0].reason
    assert list(diff.packages) == ["y"]


def test_case_folding_collisions_are_problems():
    reg = registry(
        record({"name": "JSONStream", "version": "1.0.0"}), record({"name": "jsonstream", "version": "1.0.0"})
    )
    assert not reg.packages and len(reg.problems) == 2 and "differ only in case" in reg.problems[0].reason


def test_invalid_name_or_version_is_a_problem_naming_the_file():
    reg = registry(
        record({"name": "../x", "version": "1.0.0"}, source="evil.tgz"),
        record({"name": "ok", "version": "1.0.0/../../x"}, source="evil2.tgz"),
    )
    assert [p.source for p in reg.problems] == ["evil.tgz", "evil2.tgz"]


@pytest.mark.parametrize(
    ("source", "name", "warns"),
    [
        ("x-1.0.0.tgz", "x", False),
        ("acme-thing-1.0.0.tgz", "@acme/thing", False),
        ("thing-1.0.0.tgz", "@acme/thing", False),
        ("upload-123.tgz", "x", False),
        ("other-1.0.0.tgz", "x", True),
    ],
)
def test_filename_warning(source, name, warns):
    assert bool(filename_warning(source, name)) is warns


def test_clean_versions_only_in_keys():
    reg = registry(record({"name": "x", "version": "=1.0.0"}))
    assert list(reg.packages["x"].versions) == ["1.0.0"]
    assert names.clean_version("=1.0.0") == "1.0.0"


def test_identify_is_what_grouping_needs_and_build_registry_trusts_it():
    from dataclasses import replace

    from staticreg.npm.model import identify

    r = record({"name": "a", "version": "v1.0.0", "dependencies": {"b": "^1"}, "peerDependencies": ["c"]})
    name, version, notes, depends_on = identify(r)
    assert (name, version, depends_on) == ("a", "1.0.0", ("b", "c"))
    assert any("v1.0.0" in n for n in notes) and any("peerDependencies is a list" in n for n in notes)
    assert len(identify(record({"name": "../x", "version": "1.0.0"}))) == 1  # (reason,): no package
    # The build caches the identity with the record; grouping uses it and does not parse the manifest again.
    built = registry(replace(r, identity=("z", "9.9.9", (), ())))
    assert list(built.packages) == ["z"] and list(built.packages["z"].versions) == ["9.9.9"]
