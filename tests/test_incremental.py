"""Incremental builds: the cache beside the output, what a rebuild reads, writes and reports."""

import json
import os
from pathlib import Path

import pytest

from staticreg.build import incremental
from staticreg.build import pipeline as build_module
from staticreg.build.pipeline import build
from tests.helpers import contents, make_set, make_tarball, snapshot


@pytest.fixture
def reads(monkeypatch):
    """Every tarball the build reads, by its relative path."""
    seen: list[str] = []
    real = build_module.read_tarball

    def counting(path, source, copy_to=None, readmes=None):
        seen.append(source)
        return real(path, source, copy_to, readmes)

    monkeypatch.setattr(build_module, "read_tarball", counting)
    return seen


def cold(tarballs: Path, make_config, tmp_path: Path) -> dict[str, bytes]:
    """What a build from nothing makes of the same input."""
    out = tmp_path / "cold"
    build(make_config(tarballs, output_dir=out, jobs=1), show_progress=False)
    return contents(out)


def test_nothing_changed_reads_and_writes_nothing(tarballs, make_config, reads):
    make_set(tarballs)
    config = make_config(tarballs, jobs=1)
    build(config, show_progress=False)
    assert len(reads) == 3
    before = snapshot(config.output_dir)
    inode = os.stat(config.output_dir).st_ino
    report = build(config, show_progress=False)
    assert len(reads) == 3  # no tarball read again
    assert os.stat(config.output_dir).st_ino == inode  # not even swapped
    assert snapshot(config.output_dir) == before
    assert (report.packages, report.versions) == (2, 3)
    assert (report.added, report.changed, report.removed) == ([], [], [])


def test_adding_a_tarball_reads_and_renders_only_it(tarballs, make_config, reads, tmp_path):
    make_set(tarballs)
    config = make_config(tarballs, jobs=1)
    build(config, show_progress=False)
    before = snapshot(config.output_dir)
    make_tarball(tarballs, {"name": "c", "version": "1.0.0"})
    report = build(config, show_progress=False)
    assert reads[3:] == ["c-1.0.0.tgz"]
    after = snapshot(config.output_dir)
    assert after["a/index.json"] == before["a/index.json"]  # same bytes, same mtime: linked, not rewritten
    assert os.stat(config.output_dir / "a/-/a-1.0.0.tgz").st_nlink >= 1
    assert "c/index.json" in report.added and "c/-/c-1.0.0.tgz" in report.added
    assert (
        report.changed == ["-/staticreg/pages.json", "-/staticreg/state.json", "-/web/search-index.json", "index.html"]
        and report.removed == []
    )
    assert not any(p.startswith(("a/", "@s/")) for p in report.added)
    assert contents(config.output_dir) == cold(tarballs, make_config, tmp_path)
    paths = json.loads(config.report_path.read_bytes())["paths"]
    assert "c/index.json" in paths["added"] and paths["changed"] == [
        "-/staticreg/pages.json",
        "-/staticreg/state.json",
        "-/web/search-index.json",
        "index.html",
    ]


def test_a_new_version_rerenders_its_package_from_the_cached_records(tarballs, make_config, reads, tmp_path):
    make_set(tarballs)
    config = make_config(tarballs, jobs=1)
    build(config, show_progress=False)
    make_tarball(tarballs, {"name": "a", "version": "2.0.0"})
    report = build(config, show_progress=False)
    assert reads[3:] == ["a-2.0.0.tgz"]
    assert "a/index.json" in report.changed and "a/-/a-2.0.0.tgz" in report.added
    assert not any(p.startswith("@s/") for p in report.added + report.changed)
    assert contents(config.output_dir) == cold(tarballs, make_config, tmp_path)


def test_removing_tarballs_removes_the_version_then_the_package(tarballs, make_config, tmp_path):
    make_set(tarballs)
    config = make_config(tarballs, jobs=1)
    build(config, show_progress=False)
    (tarballs / "a-1.1.0.tgz").unlink()
    report = build(config, show_progress=False)
    assert "a/-/a-1.1.0.tgz" in report.removed and "a/1.1.0.json" in report.removed
    assert "-/web/package/a/1.1.0.html" in report.removed  # its README page: no version has that README now
    assert list(json.loads((config.output_dir / "a/index.json").read_bytes())["versions"]) == ["1.0.0"]
    assert contents(config.output_dir) == cold(tarballs, make_config, tmp_path)
    (tarballs / "s-b-1.0.0.tgz").unlink()  # @s/b's only version
    report = build(config, show_progress=False)
    assert "@s/b/index.json" in report.removed and "-/web/package/@s/b/index.html" in report.removed
    assert not (config.output_dir / "@s").exists()
    assert contents(config.output_dir) == cold(tarballs, make_config, tmp_path)


def test_a_changed_setting_renders_everything_again(tarballs, make_config, reads):
    make_set(tarballs)
    build(make_config(tarballs, jobs=1), show_progress=False)
    report = build(make_config(tarballs, jobs=1, base_url="http://other.test/"), show_progress=False)
    assert len(reads) == 3  # the records are still good
    doc = json.loads((make_config(tarballs).output_dir / "a/index.json").read_bytes())
    assert doc["versions"]["1.0.0"]["dist"]["tarball"] == "http://other.test/a/-/a-1.0.0.tgz"
    assert "a/index.json" in report.changed and "@s/b/index.json" in report.changed


def test_a_touched_tarball_is_hashed_not_read_and_nothing_changes(tarballs, make_config, reads):
    make_set(tarballs)
    config = make_config(tarballs, jobs=1)
    build(config, show_progress=False)
    before = snapshot(config.output_dir)
    os.utime(tarballs / "a-1.0.0.tgz", (1_700_000_000, 1_700_000_000))
    report = build(config, show_progress=False)
    assert reads[3:] == []  # its bytes' hash is the one the cache has
    assert (report.tarballs_read, report.tarballs_hashed) == (0, 1)
    assert snapshot(config.output_dir) == before  # publish times are kept, bytes the same
    assert (report.added, report.changed, report.removed) == ([], [], [])
    counts = json.loads(config.report_path.read_bytes())["tarballs"]
    assert counts == {"read": 0, "same_bytes": 1, "same_stat": 2}


@pytest.mark.parametrize("jobs", [1, 2])
def test_tarballs_copied_in_again_are_hashed_and_a_changed_one_is_read(tarballs, make_config, reads, tmp_path, jobs):
    """A fresh checkout or download of the same tarballs: new inodes and mtimes, same bytes."""
    for n in range(6):  # 2 jobs read in parallel from 8 tarballs
        make_tarball(tarballs, {"name": f"p{n}", "version": "1.0.0"}, {"README.md": f"# p{n}"})
    make_set(tarballs)
    config = make_config(tarballs, jobs=jobs)
    build(config, show_progress=False)
    before, seen = snapshot(config.output_dir), len(reads)  # (2 jobs read in workers, unseen here)
    for tarball in sorted(tarballs.glob("*.tgz")):
        copy = tmp_path / "copy.tgz"
        copy.write_bytes(tarball.read_bytes())
        os.replace(copy, tarball)
    report = build(config, show_progress=False)
    assert (reads[seen:], report.tarballs_read, report.tarballs_hashed) == ([], 0, 9)
    assert snapshot(config.output_dir) == before
    make_tarball(tarballs, {"name": "a", "version": "1.0.0", "description": "now described"}, {"README.md": "# a"})
    report = build(config, show_progress=False)
    assert (reads[seen:], report.tarballs_read, report.tarballs_hashed) == (["a-1.0.0.tgz"], 1, 0)
    assert json.loads((config.output_dir / "a/1.0.0.json").read_bytes())["description"] == "now described"
    assert contents(config.output_dir) == cold(tarballs, make_config, tmp_path)


def test_a_cache_that_does_not_describe_the_output_is_not_trusted(tarballs, make_config, reads, tmp_path):
    make_set(tarballs)
    config = make_config(tarballs, jobs=1)
    build(config, show_progress=False)
    (config.output_dir / "a/-/a-1.0.0.tgz").unlink()  # the output lost a file the cache says it has
    make_tarball(tarballs, {"name": "a", "version": "2.0.0"})
    build(config, show_progress=False)
    assert (config.output_dir / "a/-/a-1.0.0.tgz").read_bytes() == (tarballs / "a-1.0.0.tgz").read_bytes()
    # a cache written for another output folder (a build killed before its swap): nothing is
    # taken from the cache; the output says what it holds itself (its state and documents), and
    # a tarball whose bytes are not what they say (changed on the host) is copied in again
    cache_file = incremental.cache_path(config.output_dir)
    head, rest = cache_file.read_bytes().split(b"\n", 1)
    data = json.loads(head)
    data["output_id"] = "0" * 64
    cache_file.write_bytes(json.dumps(data).encode() + b"\n" + rest)
    (config.output_dir / "@s/b/-/b-1.0.0.tgz").write_bytes(b"changed on the host")
    count = len(reads)
    report = build(config, show_progress=False)
    assert reads[count:] == ["s-b-1.0.0.tgz"] and report.tarballs_hashed == 3  # the rest hashed, as the output says
    assert report.changed == ["@s/b/-/b-1.0.0.tgz"] and (report.added, report.removed) == ([], [])
    assert contents(config.output_dir) == cold(tarballs, make_config, tmp_path)


def test_a_broken_cache_means_a_full_build(tarballs, make_config, reads):
    make_set(tarballs)
    config = make_config(tarballs, jobs=1)
    build(config, show_progress=False)
    incremental.cache_path(config.output_dir).write_bytes(b"\x00not json")
    report = build(config, show_progress=False)
    # nothing taken from the cache; the output's own documents say what it holds: hashed, not read
    assert len(reads) == 3 and report.tarballs_hashed == 3 and report.packages == 2
    assert incremental.load(incremental.cache_path(config.output_dir), config.output_dir).describes_output
    cache_file = incremental.cache_path(config.output_dir)
    whole = cache_file.read_bytes()
    for cut in (1, 5, 40):  # its end, or an entry, cut off: nothing of it is used, not even the records beside it
        cache_file.write_bytes(whole[:-cut])
        assert incremental.load(cache_file, config.output_dir) == incremental.Cache()


def test_the_cache_is_beside_the_output_with_a_json_head(tarballs, make_config):
    make_set(tarballs)
    config = make_config(tarballs, jobs=1)
    build(config, show_progress=False)
    cache_file = config.output_dir.parent / f".{config.output_dir.name}.staticreg-cache"
    # the head, as JSON, with what a no-op rebuild reports; then the entries, in marshal batches
    assert json.loads(cache_file.read_bytes().split(b"\n", 1)[0])["summary"]["packages"] == 2
    head, entries = incremental.read_entries(cache_file)
    assert head["entries"] == len(entries) and not [e for e in entries if e[0] == "record"]
    # the records are in a folder beside it, each in the file its path hashes to
    folder = config.output_dir.parent / f".{config.output_dir.name}.staticreg-records"
    records, shards = incremental.load_records(folder)
    assert sorted(records) == ["a-1.0.0.tgz", "a-1.1.0.tgz", "s-b-1.0.0.tgz"]
    assert sorted(p.name for p in folder.iterdir()) == sorted({f"{incremental.shard_of(rel):02d}" for rel in records})
    assert all(rel in shards[incremental.shard_of(rel)] for rel in records)
    keys, integrities, times = next(e[2:] for e in entries if e[0] == "columns")  # name@version, integrity, time
    integrities, published = dict(zip(keys, integrities, strict=True)), dict(zip(keys, times, strict=True))
    assert sorted(integrities) == ["@s/b@1.0.0", "a@1.0.0", "a@1.1.0"] and integrities["@s/b@1.0.0"].startswith(
        "sha512-"
    )
    assert published["a@1.1.0"] == "2020-09-13T12:28:20.000Z"
    files = next(e[3] for e in entries if e[:2] == ("package", "@s/b")).split("\n")
    assert "@s/b/index.json" in files and "@s/b/-/b-1.0.0.tgz" in files


def test_every_rebuild_in_a_sequence_equals_a_cold_build(tarballs, make_config, tmp_path, monkeypatch):
    """Rebuilds start from the output before the previous one (the spare): whatever happened
    in between, the result must be what a build from nothing makes."""
    from staticreg.config import Override

    make_set(tarballs)
    config = make_config(tarballs, jobs=1)
    tag = (Override(name="a", where="test", tag="beta", version="1.0.0"),)
    steps = [
        lambda: make_tarball(tarballs, {"name": "c", "version": "1.0.0"}),
        lambda: make_tarball(tarballs, {"name": "@s/d", "version": "1.0.0"}),
        lambda: (tarballs / "c-1.0.0.tgz").unlink(),
        lambda: make_tarball(tarballs, {"name": "c", "version": "1.0.0"}),  # back as it was two builds ago
        lambda: (tarballs / "s-d-1.0.0.tgz").unlink(),
        lambda: make_tarball(tarballs, {"name": "a", "version": "3.0.0"}),
    ]
    reused: list[int] = []
    real = build_module._reuse_spare
    monkeypatch.setattr(build_module, "_reuse_spare", lambda *a: reused.append(len(r := real(*a))) or r)
    build(config, show_progress=False)
    for i, step in enumerate(steps + [lambda: None, lambda: None]):
        step()
        current = make_config(tarballs, jobs=1, dist_tags=tag if i % 3 == 1 else ())
        before = set(contents(current.output_dir))
        report = build(current, show_progress=False)
        after = set(contents(current.output_dir))
        assert report.removed == sorted(before - after), f"removed, step {i}"
        assert sorted(report.added) == sorted(after - before), f"added, step {i}"
        expected = tmp_path / f"cold-{i}"
        build(make_config(tarballs, output_dir=expected, jobs=1, dist_tags=current.dist_tags), show_progress=False)
        assert contents(current.output_dir) == contents(expected), f"after step {i}"
        assert not any(p.is_dir() and not any(p.iterdir()) for p in current.output_dir.rglob("*")), (
            f"empty folder, step {i}"
        )
    assert incremental.spare_path(config.output_dir).is_dir()
    assert sum(1 for n in reused if n) >= 4  # most rebuilds kept packages in place in the spare


def test_records_are_cached_with_their_identity(tarballs, make_config):
    from staticreg.npm.model import identify

    make_set(tarballs)
    config = make_config(tarballs, jobs=1)
    build(config, show_progress=False)
    cache = incremental.load(incremental.cache_path(config.output_dir), config.output_dir)
    records = [record for _, record in cache.records.values()]
    assert len(records) == 3 and all(r.identity and r.identity == identify(r) for r in records)


def test_list_and_scope_pages_made_from_the_same_rows_are_linked_not_rendered(
    tarballs, make_config, monkeypatch, tmp_path
):
    from staticreg.npm import layout
    from staticreg.site import pages as site

    make_set(tarballs)
    config = make_config(tarballs, jobs=1)
    build(config, show_progress=False)
    rendered: list[str] = []
    real = site._render_pages
    monkeypatch.setattr(site, "_render_pages", lambda pages: rendered.extend(p.path for p in pages) or real(pages))
    make_tarball(tarballs, {"name": "c", "version": "1.0.0"})
    build(config, show_progress=False)
    assert "index.html" in rendered  # its count of packages changed
    assert layout.site_scope_page("@s") not in rendered and layout.SITE_NOT_FOUND not in rendered
    assert contents(config.output_dir) == cold(tarballs, make_config, tmp_path)
    rendered.clear()
    make_tarball(tarballs, {"name": "@s/b", "version": "1.1.0", "description": "new"})  # a row changes, not the count
    build(config, show_progress=False)
    assert layout.site_scope_page("@s") in rendered and "index.html" in rendered
    assert contents(config.output_dir) == cold(tarballs, make_config, tmp_path / "2")
    rendered.clear()
    build(make_config(tarballs, jobs=1, title="Other"), show_progress=False)  # another setting: all made again
    assert layout.site_scope_page("@s") in rendered and layout.SITE_NOT_FOUND in rendered


@pytest.mark.parametrize("jobs", [1, 2])  # 2: the readers' pool forks with everything frozen
def test_a_build_hands_what_it_froze_back_to_the_cycle_collector(tarballs, make_config, jobs):
    """The build freezes what it keeps to its end out of the collector's sight; `serve` builds
    again and again in one process, so each build must end with nothing frozen."""
    import gc

    make_set(tarballs)
    for i in range(8):
        make_tarball(tarballs, {"name": f"p{i}", "version": "1.0.0"})
    config = make_config(tarballs, jobs=jobs)
    build(config, show_progress=False)  # cold
    assert gc.isenabled() and gc.get_freeze_count() == 0
    make_tarball(tarballs, {"name": "c", "version": "1.0.0"})
    build(config, show_progress=False)  # loads the cache
    (tarballs / "c-1.0.0.tgz").write_bytes(b"not a tarball")
    with pytest.raises(build_module.BuildError):
        build(config, show_progress=False)  # fails after the cache is loaded
    assert gc.isenabled() and gc.get_freeze_count() == 0


def records_files(config) -> dict[str, tuple]:
    folder = incremental.records_path(config.output_dir)
    return {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in folder.iterdir()}


def test_a_rebuild_rewrites_only_the_records_files_whose_records_changed(tarballs, make_config, monkeypatch):
    monkeypatch.setattr(incremental, "SHARDS", 4)
    names = [f"p{i}" for i in range(12)]
    for name in names:
        make_tarball(tarballs, {"name": name, "version": "1.0.0"})
    config = make_config(tarballs, jobs=1)
    build(config, show_progress=False)
    before = records_files(config)
    assert len(before) == 4  # twelve paths: every file has some
    new = next(n for n in (f"q{i}" for i in range(99)) if incremental.shard_of(f"{n}-1.0.0.tgz") == 1)
    make_tarball(tarballs, {"name": new, "version": "1.0.0"})
    build(config, show_progress=False)
    after = records_files(config)
    assert [name for name in before if after[name] != before[name]] == ["01"]
    gone = next(n for n in names if incremental.shard_of(f"{n}-1.0.0.tgz") == 2)
    (tarballs / f"{gone}-1.0.0.tgz").unlink()
    build(config, show_progress=False)
    assert [name for name in after if records_files(config)[name] != after[name]] == ["02"]
    records, shards = incremental.load_records(incremental.records_path(config.output_dir))
    assert f"{gone}-1.0.0.tgz" not in records and f"{new}-1.0.0.tgz" in shards[1] and len(records) == 12


def test_a_broken_records_file_costs_only_its_own_tarballs(tarballs, make_config, reads, monkeypatch, tmp_path):
    monkeypatch.setattr(incremental, "SHARDS", 4)
    for i in range(12):
        make_tarball(tarballs, {"name": f"p{i}", "version": "1.0.0"})
    config = make_config(tarballs, jobs=1)
    build(config, show_progress=False)
    folder = incremental.records_path(config.output_dir)
    (folder / "03").write_bytes(b"\x00 not marshal")
    make_tarball(tarballs, {"name": "extra", "version": "1.0.0"})  # a change, so that the build is not a no-op
    count = len(reads)
    build(config, show_progress=False)
    again = sorted(rel for rel in reads[count:] if rel != "extra-1.0.0.tgz")
    assert again and again == sorted(
        f"p{i}-1.0.0.tgz" for i in range(12) if incremental.shard_of(f"p{i}-1.0.0.tgz") == 3
    )
    records, shards = incremental.load_records(folder)  # and every file is written whole again
    assert shards is not None and len(records) == 13
    assert contents(config.output_dir) == cold(tarballs, make_config, tmp_path)


def test_the_cache_keeps_integrities_and_times_in_columns_of_ten_thousand(tmp_path, monkeypatch):
    monkeypatch.setattr(incremental, "_COLUMN", 2)
    out = tmp_path / "out"
    (out / "-/staticreg").mkdir(parents=True)
    (out / "-/staticreg/state.json").write_text("{}")  # what tells this output from another
    versions = {f"p@1.0.{i}": f"sha512-{i}" for i in range(5)}
    times = {
        **{k: f"2020-01-0{i + 1}T00:00:00.000Z" for i, k in enumerate(versions)},
        "gone@1.0.0": "2019-01-01T00:00:00.000Z",
    }
    cache = incremental.Cache(output_id=incremental.output_token(out), versions=versions, times=times)
    path = incremental.cache_path(out)
    incremental.save(path, cache)
    _head, entries = incremental.read_entries(path)
    assert [len(e[2]) for e in entries if e[0] == "columns"] == [2, 2, 2]  # six keys, the last only with a time
    loaded = incremental.load(path, out)
    assert loaded.describes_output and (loaded.versions, loaded.times) == (versions, times)


def test_a_package_whose_files_did_not_change_keeps_the_previous_string():
    paths = ["a/index.json", "a/-/a-1.0.0.tgz", "b/index.json", "-/web/index.html"]
    previous = {"a": "a/-/a-1.0.0.tgz\na/index.json", "b": "b/index.json\nb/-/b-1.0.0.tgz"}
    files = incremental.files_by_package(paths, ["a", "b"], previous)
    assert files == {"a": previous["a"], "b": "b/index.json", "": "-/web/index.html"}
    assert files["a"] is previous["a"]  # not a second copy of an equal string


def test_an_output_restored_elsewhere_with_its_cache_is_still_incremental(tarballs, make_config, reads, tmp_path):
    """The CI shape: build, keep the output and everything beside it (cp -a into a fresh
    folder: new inodes), check the tarballs out again (new mtimes), add one tarball, build."""
    import shutil
    import subprocess

    make_set(tarballs)
    first = tmp_path / "job-1"
    build(make_config(tarballs, output_dir=first / "public", jobs=1), show_progress=False)
    second = tmp_path / "job-2"
    subprocess.run(["cp", "-a", str(first), str(second)], check=True)
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    for tarball in tarballs.iterdir():
        shutil.copyfile(tarball, checkout / tarball.name)  # a fresh checkout: new mtimes, same bytes
    make_tarball(checkout, {"name": "c", "version": "1.0.0"})
    del reads[:]
    config = make_config(checkout, output_dir=second / "public", jobs=1)
    report = build(config, show_progress=False)
    assert reads == ["c-1.0.0.tgz"]  # the others are hashed: same bytes as the cache's records
    assert report.tarballs_hashed == 3
    assert all(p.startswith(("c/", "-/package/c/", "-/web/package/c/")) for p in report.added), report.added
    assert report.changed == [
        "-/staticreg/pages.json",
        "-/staticreg/state.json",
        "-/web/search-index.json",
        "index.html",
    ]
    assert contents(config.output_dir) == cold(checkout, make_config, tmp_path)


def test_a_registry_with_nothing_beside_it_is_still_built_incrementally(tarballs, make_config, reads, tmp_path):
    """A registry synced back from where it is hosted: no cache, no records, no READMEs beside it.
    Its own state and documents say what it holds: the tarballs it has are hashed, not read."""
    import shutil

    make_set(tarballs)
    config = make_config(tarballs, jobs=1)
    build(config, show_progress=False)
    for beside in config.output_dir.parent.glob(f".{config.output_dir.name}.staticreg-*"):
        shutil.rmtree(beside) if beside.is_dir() else beside.unlink()
    make_tarball(tarballs, {"name": "c", "version": "1.0.0"})
    del reads[:]
    report = build(config, show_progress=False)
    assert reads == ["c-1.0.0.tgz"] and report.tarballs_hashed == 3
    assert all(p.startswith(("c/", "-/package/c/", "-/web/package/c/")) for p in report.added), report.added
    assert contents(config.output_dir) == cold(tarballs, make_config, tmp_path)


def test_the_load_stops_after_the_head_when_the_input_is_the_one_the_cache_describes(tarballs, make_config):
    make_set(tarballs)
    config = make_config(tarballs)
    build(config, show_progress=False)
    path = incremental.cache_path(config.output_dir)
    full = incremental.load(path, config.output_dir)
    head = incremental.load(path, config.output_dir, full.signature)
    assert head.describes_output and not head.complete
    assert (head.signature, head.summary, head.output_id) == (full.signature, full.summary, full.output_id)
    assert not head.packages and not head.records  # the rest was not read
    other = incremental.load(path, config.output_dir, "another input's signature")
    assert other.complete and other == full


def tree(root: Path) -> list[str]:
    """Every file and folder under root."""
    return sorted(p.relative_to(root).as_posix() + ("/" if p.is_dir() else "") for p in root.rglob("*"))


@pytest.mark.parametrize("beside", ["its cache", "its cache and spare", "nothing"])
def test_a_registry_an_older_staticreg_laid_out_is_written_again_whole(tarballs, make_config, tmp_path, beside):
    """Its version documents in folders, a page per version, index.html twins everywhere: the
    next build leaves none of it, keeps what is still where it was (same bytes, same mtime),
    and links nothing that is not there."""
    from tests.legacy_layout import dead_links, generation_one_files, to_generation_one

    make_set(tarballs)
    make_tarball(tarballs, {"name": "a", "version": "1.2.0"}, {"README.md": "# a"})
    config = make_config(tarballs, jobs=1)
    build(config, show_progress=False)
    if beside == "its cache and spare":
        make_tarball(tarballs, {"name": "c", "version": "1.0.0"})
        build(config, show_progress=False)  # the output before is the spare now
    out = config.output_dir
    to_generation_one(out)
    if beside == "its cache and spare":
        to_generation_one(incremental.spare_path(out))
    if beside == "nothing":
        incremental.cache_path(out).unlink()
    old = generation_one_files(out)
    assert (
        "a/1.0.0/index.json" in old
        and "-/web/package/a/v/1.2.0/index.html" in old
        and "-/web/scope/@s/index.html" in old
    )
    kept = {p: os.stat(out / p).st_mtime_ns for p in ("a/index.json", "a/-/a-1.0.0.tgz")}
    report = build(config, show_progress=False)
    assert generation_one_files(out) == [] and dead_links(out) == []
    assert contents(out) == cold(tarballs, make_config, tmp_path) and tree(out) == tree(tmp_path / "cold")
    assert set(old) <= set(report.removed)
    assert {p: os.stat(out / p).st_mtime_ns for p in kept} == kept  # unchanged files are linked, not written
    state = json.loads((out / "-/staticreg/state.json").read_bytes())
    assert state["settings"]["layout"] == 2
    again = build(config, show_progress=False)  # and from here on incremental again
    assert again.added == again.changed == again.removed == [] and again.tarballs_read == 0
