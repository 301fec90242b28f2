import hashlib
import json
import os

import pytest

from staticreg.build import times
from staticreg.build.output import Staging
from staticreg.build.pipeline import build
from staticreg.errors import BuildError
from tests.helpers import contents, make_set, make_tarball, snapshot


def test_build_writes_the_whole_tree(tarballs, make_config):
    make_set(tarballs)
    config = make_config(tarballs)
    report = build(config, show_progress=False)
    out = config.output_dir
    assert (report.packages, report.versions, report.tarballs) == (2, 3, 3)
    for rel in [
        "a/index.json",
        "a/index.corgi",
        "a/index.html",
        "a/1.0.0.json",
        "a/latest.json",
        "@s/b/index.json",
        "@s/b/-/b-1.0.0.tgz",
        "a/-/a-1.1.0.tgz",
        "-/ping",
        "-/package/@s/b/dist-tags",
        "index.html",
        "-/web/package/@s/b/index.html",
        ".nojekyll",
    ]:
        assert (out / rel).is_file(), rel
    # Every file and folder: an index.html twin and gzip copies for package documents only, version documents
    # and README pages as files, a page only where a version's README differs from the one before.
    assert sorted(p.relative_to(out).as_posix() + ("/" if p.is_dir() else "") for p in out.rglob("*")) == [
        "-/",
        "-/package/",
        "-/package/@s/",
        "-/package/@s/b/",
        "-/package/@s/b/dist-tags",
        "-/package/@s/b/staticreg.json",
        "-/package/a/",
        "-/package/a/dist-tags",
        "-/package/a/staticreg.json",
        "-/ping",
        "-/staticreg/",
        "-/staticreg/pages.json",
        "-/staticreg/state.json",
        "-/web/",
        "-/web/assets/",
        "-/web/assets/favicon.svg",
        "-/web/assets/site.js",
        "-/web/assets/style.css",
        "-/web/package/",
        "-/web/package/@s/",
        "-/web/package/@s/b/",
        "-/web/package/@s/b/1.0.0.html",
        "-/web/package/@s/b/index.html",
        "-/web/package/a/",
        "-/web/package/a/1.0.0.html",
        "-/web/package/a/1.1.0.html",
        "-/web/package/a/index.html",
        "-/web/scope/",
        "-/web/scope/@s.html",
        "-/web/search-index.json",
        ".nojekyll",
        "404.html",
        "@s/",
        "@s/b/",
        "@s/b/-/",
        "@s/b/-/b-1.0.0.tgz",
        "@s/b/1.0.0.json",
        "@s/b/index.corgi",
        "@s/b/index.corgi.gz",
        "@s/b/index.html",
        "@s/b/index.json",
        "@s/b/index.json.gz",
        "@s/b/latest.json",
        "a/",
        "a/-/",
        "a/-/a-1.0.0.tgz",
        "a/-/a-1.1.0.tgz",
        "a/1.0.0.json",
        "a/1.1.0.json",
        "a/index.corgi",
        "a/index.corgi.gz",
        "a/index.html",
        "a/index.json",
        "a/index.json.gz",
        "a/latest.json",
        "index.html",
    ]
    assert (
        json.loads((out / "a/1.0.0.json").read_bytes())
        == json.loads((out / "a/index.json").read_bytes())["versions"]["1.0.0"]
    )
    assert (out / "a/-/a-1.0.0.tgz").read_bytes() == (tarballs / "a-1.0.0.tgz").read_bytes()
    doc = json.loads((out / "a/index.json").read_bytes())
    tarball = (tarballs / "a-1.1.0.tgz").read_bytes()
    assert doc["versions"]["1.1.0"]["dist"]["shasum"] == hashlib.sha1(tarball).hexdigest()
    assert doc["versions"]["1.1.0"]["dist"]["tarball"] == "http://registry.test/a/-/a-1.1.0.tgz"
    assert doc["time"]["1.1.0"] == "2020-09-13T12:28:20.000Z"
    assert json.loads((out / "-/package/@s/b/dist-tags").read_bytes()) == {"latest": "1.0.0"}
    assert (out / "a/index.html").read_bytes() == (out / "a/index.json").read_bytes()
    assert json.loads(config.report_path.read_bytes())["status"] == "ok"


def test_same_input_gives_byte_identical_trees(tarballs, make_config, tmp_path):
    make_set(tarballs)
    build(make_config(tarballs, output_dir=tmp_path / "one"), show_progress=False)
    build(make_config(tarballs, output_dir=tmp_path / "two", jobs=1), show_progress=False)
    one, two = contents(tmp_path / "one"), contents(tmp_path / "two")
    assert one == two and len(one) > 20


def test_parallel_and_serial_reading_agree(tarballs, make_config, tmp_path):
    for i in range(40):
        make_tarball(tarballs, {"name": f"p{i}", "version": "1.0.0"})
    build(make_config(tarballs, output_dir=tmp_path / "par", jobs=2), show_progress=False)
    build(make_config(tarballs, output_dir=tmp_path / "ser", jobs=1), show_progress=False)
    assert contents(tmp_path / "par") == contents(tmp_path / "ser")


def test_unchanged_files_keep_their_mtime_on_rebuild(tarballs, make_config):
    make_set(tarballs)
    config = make_config(tarballs)
    build(config, show_progress=False)
    before = snapshot(config.output_dir)
    make_tarball(tarballs, {"name": "c", "version": "1.0.0"})
    report = build(config, show_progress=False)
    after = snapshot(config.output_dir)
    assert after["a/index.json"] == before["a/index.json"]
    assert after["@s/b/index.json"] == before["@s/b/index.json"]
    assert "c/index.json" in after and after["index.html"] != before["index.html"]
    assert report.files_reused > 10


def test_publish_times_survive_a_fresh_checkout(tarballs, make_config, tmp_path):
    make_set(tarballs)
    config = make_config(tarballs)
    build(config, show_progress=False)
    first = json.loads((config.output_dir / "a/index.json").read_bytes())["time"]
    kept = times.load(config.times_path)
    assert kept["a@1.0.0"] == first["1.0.0"]
    # A fresh CI checkout: every tarball gets a new mtime, no previous output; one tarball is added.
    for p in tarballs.glob("*.tgz"):
        os.utime(p, None)
    fresh = make_config(tarballs, output_dir=tmp_path / "fresh")
    make_tarball(tarballs, {"name": "a", "version": "1.2.0"}, mtime=None)
    build(fresh, show_progress=False)
    second = json.loads((fresh.output_dir / "a/index.json").read_bytes())["time"]
    assert second["1.0.0"] == first["1.0.0"] and second["1.1.0"] == first["1.1.0"]
    assert second["1.2.0"] > first["1.1.0"]


def test_previous_output_is_a_second_source_of_times(tarballs, make_config):
    make_set(tarballs)
    config = make_config(tarballs)
    build(config, show_progress=False)
    first = json.loads((config.output_dir / "a/index.json").read_bytes())["time"]
    config.times_path.unlink()
    for p in tarballs.glob("*.tgz"):
        os.utime(p, None)
    build(config, show_progress=False)
    assert json.loads((config.output_dir / "a/index.json").read_bytes())["time"] == first


def test_a_failed_build_leaves_the_previous_output_exactly(tarballs, make_config):
    make_set(tarballs)
    config = make_config(tarballs)
    build(config, show_progress=False)
    before = snapshot(config.output_dir)
    times_before = config.times_path.read_bytes()
    make_tarball(tarballs, {"name": "good", "version": "1.0.0"})
    (tarballs / "broken.tgz").write_bytes(b"\x1f\x8b\x08\x00broken")
    make_tarball(tarballs, {"name": "../evil", "version": "1.0.0"}, filename="evil.tgz")
    with pytest.raises(BuildError) as info:
        build(config, show_progress=False)
    assert "broken.tgz:" in info.value.message and "evil.tgz:" in info.value.message
    assert "2 problems" in info.value.message
    assert snapshot(config.output_dir) == before
    assert config.times_path.read_bytes() == times_before
    report = json.loads(config.report_path.read_bytes())
    assert report["status"] == "failed" and report["counts"]["rejected"] == 2
    assert not list(config.output_dir.parent.glob(".out.staticreg-staging-*"))


def test_keep_going_builds_the_rest_and_reports_rejects(tarballs, make_config):
    make_set(tarballs)
    (tarballs / "broken.tgz").write_bytes(b"nope")
    config = make_config(tarballs, keep_going=True)
    report = build(config, show_progress=False)
    assert report.packages == 2 and [p.source for p in report.rejected] == ["broken.tgz"]
    data = json.loads(config.report_path.read_bytes())
    assert data["rejected"][0]["file"] == "broken.tgz" and "timings_seconds" in data


def test_same_bytes_twice_is_not_an_error(tarballs, make_config):
    path = make_tarball(tarballs, {"name": "a", "version": "1.0.0"})
    (tarballs / "copy-of-a.tgz").write_bytes(path.read_bytes())
    report = build(make_config(tarballs), show_progress=False)
    assert report.versions == 1 and len(report.duplicates) == 1


def test_second_build_at_once_is_refused(tarballs, make_config):
    make_set(tarballs)
    config = make_config(tarballs)
    with Staging(config.output_dir), pytest.raises(BuildError, match="another staticreg build"):
        build(config, show_progress=False)


def test_interrupted_swap_is_repaired(tarballs, make_config):
    make_set(tarballs)
    config = make_config(tarballs)
    build(config, show_progress=False)
    before = contents(config.output_dir)
    # A crash between the two renames of the fallback swap leaves only the old tree.
    old = config.output_dir.parent / ".out.staticreg-old"
    config.output_dir.rename(old)
    with Staging(config.output_dir):
        pass
    assert contents(config.output_dir) == before and not old.exists()


def test_discovery_skips_output_and_refuses_odd_entries(tarballs, make_config, tmp_path):
    make_set(tarballs)
    (tarballs / "folder.tgz").mkdir()
    outside = make_tarball(tmp_path / "elsewhere", {"name": "z", "version": "1.0.0"})
    (tarballs / "link.tgz").symlink_to(outside)
    inside = tarballs / "sub"
    inside.mkdir()
    (inside / "alias.tgz").symlink_to(tarballs / "a-1.0.0.tgz")
    config = make_config(tarballs, output_dir=tarballs / "public", keep_going=True)
    build(config, show_progress=False)
    report = build(config, show_progress=False)  # the output inside the input is not read back
    assert sorted(p.source for p in report.rejected) == ["folder.tgz", "link.tgz"]
    assert report.tarballs == 4 and len(report.duplicates) == 1


def test_missing_input_folder(tmp_path, make_config):
    with pytest.raises(BuildError, match="does not exist"):
        build(make_config(tmp_path / "nope"), show_progress=False)


def test_a_folder_staticreg_did_not_build_is_never_replaced(tarballs, make_config, tmp_path):
    make_set(tarballs)
    precious = tmp_path / "home"
    precious.mkdir()
    (precious / "thesis.txt").write_text("years of work")
    with pytest.raises(BuildError, match="other content"):
        build(make_config(tarballs, output_dir=precious), show_progress=False)
    assert (precious / "thesis.txt").read_text() == "years of work"
    empty = tmp_path / "empty"
    empty.mkdir()
    assert build(make_config(tarballs, output_dir=empty), show_progress=False).packages == 2
