"""Precompressed copies: a gzip copy (NAME.gz) beside each package document, written by the
build with its document and kept by incremental builds and publishes, never stale."""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

import pytest

from staticreg.build.output import Staging, copy_holds, gzip_copy
from staticreg.build.pipeline import build
from staticreg.config import load_config
from staticreg.hosting import hosted
from staticreg.hosting.store import FolderStore
from staticreg.npm import headers, layout
from staticreg.npm.registry_state import RegistryState, Settings, parse_registry_state, registry_state_bytes
from tests.helpers import make_tarball
from tests.process import run_cli


def copies(root: Path) -> dict[str, bytes]:
    """Every precompressed copy under root -> what it holds."""
    return {
        p.relative_to(root).as_posix(): gzip.decompress(p.read_bytes())
        for p in sorted(root.rglob(f"*{layout.PRECOMPRESSED_SUFFIX}"))
        if p.is_file()
    }


def assert_every_copy_is_of_its_document(root: Path) -> None:
    """Each package's full and abbreviated documents have a copy, each holding its document,
    and no other file has one."""
    found = copies(root)
    documents = [p.relative_to(root).as_posix() for p in root.rglob("index.*") if p.is_file()]
    wanted = {layout.precompressed_copy(d): d for d in documents if layout.precompressed_copy(d)}
    assert set(found) == set(wanted) and wanted
    for copy, document in wanted.items():
        assert found[copy] == (root / document).read_bytes(), copy


def make_set(folder: Path) -> None:
    make_tarball(folder, {"name": "a", "version": "1.0.0", "description": "x" * 600}, {"README.md": "# a"})
    make_tarball(folder, {"name": "@s/b", "version": "1.0.0"})


# -- layout -----------------------------------------------------------------------


def test_only_package_documents_have_a_copy():
    assert layout.precompressed_copy("a/index.json") == "a/index.json.gz"
    assert layout.precompressed_copy("@s/b/index.corgi") == "@s/b/index.corgi.gz"
    assert layout.precompressed_copy("-a/index.json") == "-a/index.json.gz"  # a name may start with "-"
    for other in (
        "a/1.0.0.json",
        "@s/b/latest.json",
        "a/index.html",
        "-/ping",
        "-/package/a/dist-tags",
        "-/web/package/a/index.html",
        "-/web/search-index.json",
        "index.html",
        "a/-/a-1.0.0.tgz",
        "-/staticreg/state.json",
        "-/npm/v1/keys",
        "index.json",
    ):
        assert layout.precompressed_copy(other) is None, other
    assert layout.document_of_copy("@s/b/index.corgi.gz") == "@s/b/index.corgi"
    assert layout.document_of_copy("a/1.0.0.json.gz") is None
    assert layout.document_of_copy("a/-/a-1.0.0.tgz") is None


def test_a_copy_is_of_its_documents_kind_and_no_object_store_holds_one():
    assert layout.kind_of("a/index.json.gz") == layout.DOCUMENT
    assert headers.for_object("a/index.corgi.gz", layout.kind_of("a/index.corgi.gz"))[1] == headers.document_cache()
    assert layout.object_key("a/index.json.gz") is None and layout.object_key("a/index.corgi.gz") is None
    keys = layout.object_keys({"a/index.json", "a/index.json.gz", "a/index.corgi", "a/index.corgi.gz"})
    assert keys == {"a": ("a/index.json", layout.DOCUMENT)}


# -- the copy itself ------------------------------------------------------------------


def test_a_copy_is_gzip_level_9_with_no_time_and_the_same_bytes_each_time():
    data = json.dumps({"name": "a", "versions": {str(i): {"v": i} for i in range(200)}}).encode()
    packed = gzip_copy(data)
    assert gzip.decompress(packed) == data and packed == gzip_copy(data)
    assert packed[4:8] == b"\0\0\0\0" and packed[8] == 2  # no mtime; XFL 2: the slowest, smallest level
    assert packed[10:] == gzip.compress(data, 9, mtime=0)[10:]  # the deflate stream of gzip -9, and its trailer


def test_copy_holds_tells_a_stale_or_damaged_copy(tmp_path):
    data, other = b'{"v":"1.0.0"}' * 50, b'{"v":"1.1.0"}' * 50
    copy = tmp_path / "index.json.gz"
    copy.write_bytes(gzip_copy(data))
    assert copy_holds(copy, data) and not copy_holds(copy, other)
    copy.write_bytes(gzip_copy(data)[:-3])
    assert not copy_holds(copy, data)
    copy.write_bytes(b"not gzip")
    assert not copy_holds(copy, data) and not copy_holds(tmp_path / "missing.gz", data)


def test_staging_writes_a_copy_with_the_document_and_keeps_the_previous_one_when_unchanged(tmp_path):
    out = tmp_path / "out"
    with Staging(out, precompress=True) as staging:
        staging.write(layout.PING, b"{}")
        staging.write("a/index.json", b'{"a":1}')
        staging.write("b/index.json", b'{"b":1}')
        staging.write("a/1.0.0.json", b'{"v":1}')
        staging.commit()
    assert copies(out) == {"a/index.json.gz": b'{"a":1}', "b/index.json.gz": b'{"b":1}'}
    before = {p: os.stat(out / p) for p in ("a/index.json.gz", "b/index.json.gz")}
    with Staging(out, precompress=True) as staging:
        staging.write(layout.PING, b"{}")
        staging.write("a/index.json", b'{"a":1}')  # unchanged: its copy is linked, not made again
        staging.write("b/index.json", b'{"b":2}')
        staging.commit()
        assert sorted(staging.changed) == ["b/index.json", "b/index.json.gz"]
    assert copies(out) == {"a/index.json.gz": b'{"a":1}', "b/index.json.gz": b'{"b":2}'}
    assert os.stat(out / "a/index.json.gz").st_ino == before["a/index.json.gz"].st_ino
    assert os.stat(out / "b/index.json.gz").st_ino != before["b/index.json.gz"].st_ino


def test_staging_makes_a_copy_again_when_the_previous_one_is_stale(tmp_path):
    out = tmp_path / "out"
    with Staging(out, precompress=True) as staging:
        staging.write(layout.PING, b"{}")
        staging.write("a/index.json", b'{"a":1}')
        staging.commit()
    (out / "a/index.json.gz").write_bytes(gzip_copy(b'{"a":0}'))  # stale: written by something else
    with Staging(out, precompress=True) as staging:
        staging.write(layout.PING, b"{}")
        staging.write("a/index.json", b'{"a":1}')
        staging.commit()
    assert copies(out) == {"a/index.json.gz": b'{"a":1}'}


# -- builds -----------------------------------------------------------------------


def test_a_build_writes_a_copy_of_every_package_document(tarballs, make_config):
    make_set(tarballs)
    config = make_config(tarballs)
    build(config, show_progress=False)
    assert_every_copy_is_of_its_document(config.output_dir)
    assert set(copies(config.output_dir)) == {
        "a/index.json.gz",
        "a/index.corgi.gz",
        "@s/b/index.json.gz",
        "@s/b/index.corgi.gz",
    }
    state = parse_registry_state((config.output_dir / layout.REGISTRY_STATE).read_bytes(), "state")
    assert state.settings.precompress is True


def test_an_incremental_build_keeps_each_copy_with_its_document(tarballs, make_config):
    make_set(tarballs)
    config = make_config(tarballs)
    build(config, show_progress=False)
    out = config.output_dir
    kept = os.stat(out / "@s/b/index.json.gz")
    make_tarball(tarballs, {"name": "a", "version": "1.1.0"})
    report = build(config, show_progress=False)
    assert_every_copy_is_of_its_document(out)
    assert b'"1.1.0"' in copies(out)["a/index.json.gz"] and b'"1.1.0"' in copies(out)["a/index.corgi.gz"]
    assert {"a/index.json.gz", "a/index.corgi.gz"} <= set(report.changed)
    after = os.stat(out / "@s/b/index.json.gz")  # a package that did not change: its copy is as it was
    assert (after.st_ino, after.st_mtime_ns) == (kept.st_ino, kept.st_mtime_ns)
    (tarballs / "a-1.1.0.tgz").unlink()
    build(config, show_progress=False)
    assert_every_copy_is_of_its_document(out)
    assert b'"1.1.0"' not in copies(out)["a/index.json.gz"]


def test_a_copy_deleted_by_hand_is_made_again_by_the_next_build(tarballs, make_config):
    make_set(tarballs)
    config = make_config(tarballs)
    build(config, show_progress=False)
    (config.output_dir / "a/index.corgi.gz").unlink()
    make_tarball(tarballs, {"name": "c", "version": "1.0.0"})  # a change elsewhere: a is linked from the cache
    build(config, show_progress=False)
    assert_every_copy_is_of_its_document(config.output_dir)


def test_precompress_off_writes_no_copy_and_turning_it_off_removes_them(tarballs, make_config):
    make_set(tarballs)
    build(make_config(tarballs), show_progress=False)
    config = make_config(tarballs, precompress=False)
    report = build(config, show_progress=False)
    assert copies(config.output_dir) == {}
    assert "a/index.json.gz" in report.removed
    state = parse_registry_state((config.output_dir / layout.REGISTRY_STATE).read_bytes(), "state")
    assert state.settings.precompress is False
    build(make_config(tarballs), show_progress=False)
    assert_every_copy_is_of_its_document(config.output_dir)


def test_the_setting_and_its_flag(tmp_path, tarballs):
    (tmp_path / "staticreg.yml").write_text(
        "input: tarballs\noutput: out\nbase_url: http://r.test/\nprecompress: false\n"
    )
    assert load_config(tmp_path / "staticreg.yml").precompress is False
    assert load_config(tmp_path / "staticreg.yml", precompress=True).precompress is True
    (tmp_path / "bad.yml").write_text("input: tarballs\noutput: out\nbase_url: http://r.test/\nprecompress: maybe\n")
    with pytest.raises(Exception, match="precompress: expected true or false"):
        load_config(tmp_path / "bad.yml")
    make_set(tarballs)
    result = run_cli(
        "build", str(tarballs), "-o", str(tmp_path / "cli"), "--base-url", "http://r.test/", "--no-precompress", "-q"
    )
    assert result.returncode == 0, result.stderr
    assert copies(tmp_path / "cli") == {} and (tmp_path / "cli/a/index.json").is_file()


def test_a_state_written_before_copies_existed_reads_as_without_them():
    data = registry_state_bytes(RegistryState(Settings("http://r.test/")))
    older = data.replace(b'"precompress":true,', b"")
    assert older != data
    assert parse_registry_state(older, "state").settings.precompress is False


# -- publishes into a folder ------------------------------------------------------------


def test_publish_unpublish_dist_tag_and_deprecate_keep_every_copy_of_its_document(tarballs, make_config, tmp_path):
    make_set(tarballs)
    config = make_config(tarballs, jobs=1)
    build(config, show_progress=False)
    store = FolderStore(config.output_dir)
    out = config.output_dir
    extra = make_tarball(tmp_path / "more", {"name": "a", "version": "2.0.0"})
    new = make_tarball(tmp_path / "more", {"name": "d", "version": "1.0.0", "description": "y" * 700})
    steps = [
        lambda: hosted.publish(store, [extra, new], config),
        lambda: hosted.dist_tag_add(store, "a", "1.0.0", "old", config),
        lambda: hosted.deprecate(store, "a", "<2", "use 2", config),
        lambda: hosted.unpublish(store, "a", "2.0.0", config),
        lambda: hosted.unpublish(store, "d", None, config, force=True),
    ]
    for step in steps:
        step()
        assert_every_copy_is_of_its_document(out)
    assert not (out / "d").exists()  # the copies went with their documents, and the folder with them


def test_a_folder_publish_replaces_a_document_in_an_order_no_reader_sees_a_stale_copy(
    tarballs, make_config, tmp_path, monkeypatch
):
    """The old copy goes first, then the document is replaced, then the new copy is written."""
    make_set(tarballs)
    config = make_config(tarballs, jobs=1)
    build(config, show_progress=False)
    out = config.output_dir
    events: list[tuple[str, str]] = []
    replace, unlink = FolderStore._replace, Path.unlink

    def recording_replace(target: Path, data: bytes) -> None:
        events.append(("write", target.relative_to(out).as_posix()))
        replace(target, data)

    def recording_unlink(self: Path, missing_ok: bool = False) -> None:
        if self.is_relative_to(out) and not self.name.startswith("."):
            events.append(("delete", self.relative_to(out).as_posix()))
        unlink(self, missing_ok)

    monkeypatch.setattr(FolderStore, "_replace", staticmethod(recording_replace))
    monkeypatch.setattr(Path, "unlink", recording_unlink)
    hosted.publish(FolderStore(out), [make_tarball(tmp_path / "more", {"name": "a", "version": "2.0.0"})], config)
    for document in ("a/index.json", "a/index.corgi"):
        mine = [e for e in events if e[1] in (document, document + ".gz")]
        assert mine == [("delete", document + ".gz"), ("write", document), ("write", document + ".gz")], mine
    assert_every_copy_is_of_its_document(out)


def test_a_missing_or_stale_copy_is_made_again_by_the_next_write_of_its_document(tarballs, make_config, tmp_path):
    """A publish killed between the document and its copy leaves none: running it again makes it."""
    make_set(tarballs)
    config = make_config(tarballs, jobs=1)
    build(config, show_progress=False)
    out = config.output_dir
    (out / "a/index.json.gz").unlink()
    (out / "a/index.corgi.gz").write_bytes(gzip_copy(b"{}"))
    again = tarballs / "a-1.0.0.tgz"
    report = hosted.publish(FolderStore(out), [again], config)
    assert report.unchanged == ["a@1.0.0"]
    assert_every_copy_is_of_its_document(out)


def test_a_registry_without_copies_gets_none_from_a_publish(tarballs, make_config, tmp_path):
    make_set(tarballs)
    config = make_config(tarballs, jobs=1, precompress=False)
    build(config, show_progress=False)
    publisher = make_config(tarballs, jobs=1)  # precompress on: the registry's own setting wins
    hosted.publish(
        FolderStore(config.output_dir), [make_tarball(tmp_path / "more", {"name": "a", "version": "2.0.0"})], publisher
    )
    assert copies(config.output_dir) == {}
    fresh = tmp_path / "fresh"
    hosted.publish(
        FolderStore(fresh), [tarballs / "a-1.0.0.tgz"], make_config(tarballs, output_dir=fresh, precompress=False)
    )
    assert copies(fresh) == {}
    state = parse_registry_state((fresh / layout.REGISTRY_STATE).read_bytes(), "state")
    assert state.settings.precompress is False


# -- the dev server --------------------------------------------------------------------


def test_the_dev_server_sends_the_copy_to_clients_that_accept_gzip(tarballs, make_config):
    import threading
    import urllib.error
    import urllib.request
    from functools import partial
    from http.server import ThreadingHTTPServer

    from staticreg.dev.serve import RegistryHandler

    make_set(tarballs)
    config = make_config(tarballs)
    build(config, show_progress=False)
    out = config.output_dir
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(RegistryHandler, directory=str(out)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def get(path: str, **asked: str):
        request = urllib.request.Request(f"http://127.0.0.1:{server.server_address[1]}/{path}", headers=asked)
        with opener.open(request, timeout=10) as response:
            return response.headers, response.read()

    try:
        for encoding in ("gzip", "br, gzip;q=0.5", "*"):
            got, body = get("@s%2fb", **{"Accept-Encoding": encoding})
            assert (got["Content-Encoding"], body) == ("gzip", (out / "@s/b/index.json.gz").read_bytes()), encoding
            assert got["Content-Type"] == "application/json" and got["Vary"] == "Accept, Accept-Encoding"
        got, body = get("a", **{"Accept-Encoding": "gzip", "Accept": layout.ABBREVIATED_MEDIA_TYPE})
        assert body == (out / "a/index.corgi.gz").read_bytes() and got["Content-Type"] == layout.ABBREVIATED_MEDIA_TYPE
        with pytest.raises(urllib.error.HTTPError, match="304"):  # its own validator: not modified
            get(
                "a",
                **{"Accept-Encoding": "gzip", "Accept": layout.ABBREVIATED_MEDIA_TYPE, "If-None-Match": got["ETag"]},
            )
        assert got["ETag"] != get("a", Accept=layout.ABBREVIATED_MEDIA_TYPE)[0]["ETag"]  # each encoding its own
        for encoding in ({}, {"Accept-Encoding": "identity"}, {"Accept-Encoding": "gzip;q=0"}):
            got, body = get("a", **encoding)
            assert got["Content-Encoding"] is None and body == (out / "a/index.json").read_bytes()
        got, body = get("a/1.0.0", **{"Accept-Encoding": "gzip"})  # a version document has no copy
        assert got["Content-Encoding"] is None and body == (out / "a/1.0.0.json").read_bytes()
    finally:
        server.shutdown()
        server.server_close()
