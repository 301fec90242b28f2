"""Finding the tarballs, in a forked child beside the build or in the build's own process."""

import os
import threading

import pytest

from staticreg.build import discovery
from staticreg.build.discovery import Discovery, discover
from staticreg.errors import BuildError


def make_input(folder):
    (folder / "a").mkdir()
    (folder / "a" / "x-1.0.0.tgz").write_bytes(b"x")
    (folder / "b.tgz").write_bytes(b"b")
    (folder / "notes.txt").write_text("not a tarball")
    (folder / "dir.tgz").mkdir()  # a problem: a folder named like a tarball
    os.symlink(folder / "missing.tgz", folder / "dangling.tgz")


def test_the_child_finds_what_discover_finds(tmp_path):
    make_input(tmp_path)
    with Discovery(tmp_path, skip=[]) as found:
        assert found._children  # it forked
        result = found.result()
    paths, stats, problems, digest = result
    assert (paths, stats, problems) == discover(tmp_path, [])
    assert digest == discovery.digest_of(paths, stats)
    assert paths == ["a/x-1.0.0.tgz", "b.tgz", "dangling.tgz"] and stats["dangling.tgz"] is None
    assert [(p.source, p.reason) for p in problems] == [("dir.tgz", "is a folder, not a tarball")]


def test_with_threads_running_there_is_no_fork(tmp_path, monkeypatch):
    make_input(tmp_path)
    monkeypatch.setattr(os, "fork", lambda: pytest.fail("forked beside threads"))
    stop = threading.Event()
    thread = threading.Thread(target=stop.wait)
    thread.start()
    try:
        with Discovery(tmp_path, skip=[]) as found:
            assert found.result()[:3] == discover(tmp_path, [])
    finally:
        stop.set()
        thread.join()


def test_a_failing_child_means_discovering_here(tmp_path, monkeypatch):
    make_input(tmp_path)
    parent = os.getpid()
    real = discovery.discover

    def only_here(*args):
        if os.getpid() != parent:
            raise RuntimeError("the child fails")
        return real(*args)

    monkeypatch.setattr(discovery, "discover", only_here)
    with Discovery(tmp_path, skip=[]) as found:
        assert found.result()[:3] == real(tmp_path, [])


def test_leaving_early_ends_the_child(tmp_path):
    make_input(tmp_path)
    with Discovery(tmp_path, skip=[]) as found:
        pids = [pid for pid, _ in found._children]
    assert pids
    for pid in pids:
        with pytest.raises(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)  # killed and reaped: not a zombie, not running


def test_a_missing_input_folder_is_a_build_error(tmp_path):
    with pytest.raises(BuildError, match="does not exist or is not a folder"):
        Discovery(tmp_path / "nothing", skip=[])


def test_forked_says_whether_walkers_run_beside_the_build(tmp_path):
    make_input(tmp_path)
    with Discovery(tmp_path, skip=[]) as found:
        assert found.forked
        assert found.result()[:3] == discover(tmp_path, [])
        assert not found.forked  # nothing more to wait for


def test_the_digest_changes_with_a_stat_key_and_with_a_path(tmp_path):
    make_input(tmp_path)
    paths, stats, _ = discover(tmp_path, [])
    digest = discovery.digest_of(paths, stats)
    assert discovery.digest_of(paths, dict(stats, **{"b.tgz": (2, 0, 0)})) != digest
    assert (
        discovery.digest_of(["a/x-1.0.0.tgz", "c.tgz", "dangling.tgz"], dict(stats, **{"c.tgz": stats["b.tgz"]}))
        != digest
    )


def test_the_shares_of_the_walkers_make_the_whole(tmp_path):
    make_input(tmp_path)
    for i in range(20):
        (tmp_path / f"p{i}").mkdir()
        (tmp_path / f"p{i}" / f"p{i}-1.0.0.tgz").write_bytes(b"x")
        (tmp_path / f"top{i}.tgz").write_bytes(b"y")
    whole = discover(tmp_path, [])
    shares = [discover(tmp_path, [], share=(i, 3)) for i in range(3)]
    assert all(share[0] for share in shares)  # each walker has some of it
    assert sorted(p for share in shares for p in share[0]) == whole[0]
    assert {k: v for share in shares for k, v in share[1].items()} == whole[1]
    with Discovery(tmp_path, skip=[]) as found:
        assert len(found._children) == min(Discovery.CHILDREN, os.cpu_count() or 1)
        assert found.result() == (*whole, discovery.digest_of(whole[0], whole[1]))


def test_an_unreadable_input_folder_is_said_once(tmp_path, monkeypatch):
    real = os.scandir

    def scandir(path):
        if os.fspath(path) == os.fspath(tmp_path):
            raise PermissionError(13, "Permission denied")
        return real(path)

    monkeypatch.setattr(os, "scandir", scandir)
    problems = [discover(tmp_path, [], share=(i, 2))[2] for i in range(2)]
    assert [len(p) for p in problems] == [1, 0]
