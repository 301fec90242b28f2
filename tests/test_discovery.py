"""Finding the tarballs, in a forked child beside the build or in the build's own process."""

import os
import threading

import pytest

from staticreg import discovery
from staticreg.discovery import Discovery, discover
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
        assert found._pid  # it forked
        result = found.result()
    assert result == discover(tmp_path, [])
    paths, stats, problems = result
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
            assert found.result() == discover(tmp_path, [])
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
        assert found.result() == real(tmp_path, [])


def test_leaving_early_ends_the_child(tmp_path):
    make_input(tmp_path)
    with Discovery(tmp_path, skip=[]) as found:
        pid = found._pid
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)  # killed and reaped: not a zombie, not running


def test_a_missing_input_folder_is_a_build_error(tmp_path):
    with pytest.raises(BuildError, match="does not exist or is not a folder"):
        Discovery(tmp_path / "nothing", skip=[])
