import os
import time

from staticreg.build.output import STALE_TEMPORARY_SECONDS, write_file_atomic


def test_write_file_atomic_replaces_the_file(tmp_path):
    target = tmp_path / "sub" / "state.json"
    write_file_atomic(target, b"1")
    write_file_atomic(target, b"2")
    assert target.read_bytes() == b"2" and os.listdir(target.parent) == ["state.json"]


def test_temporary_files_of_killed_writers_are_removed_later(tmp_path):
    target = tmp_path / "state.json"
    stale, fresh = tmp_path / ".state.json.k1ll3d.tmp", tmp_path / ".state.json.wr1t1ng.tmp"
    stale.write_bytes(b"{")
    fresh.write_bytes(b"{")  # another writer's, right now: left alone
    old = time.time() - STALE_TEMPORARY_SECONDS - 60
    os.utime(stale, (old, old))
    write_file_atomic(target, b"{}")
    assert target.read_bytes() == b"{}" and not stale.exists() and fresh.exists()
