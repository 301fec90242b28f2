"""A full disk, a folder that cannot be written, and two builds at once, with the real command."""

from __future__ import annotations

import errno
import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

from staticreg.build import output
from staticreg.build.pipeline import build
from staticreg.errors import BuildError
from tests.helpers import BASE_URL, changes, checked_state, expected_state, make_inputs, make_tarball, snapshot
from tests.process import CLI, prefix, run_cli, start


def build_cli(source: Path, out: Path, *flags: str):
    return run_cli("build", source, "-o", out, "--base-url", BASE_URL, "-q", *flags)


def no_traceback(result) -> None:
    assert "Traceback" not in result.stdout + result.stderr, result.stderr


@pytest.fixture
def small_disk(tmp_path: Path):
    """A 3 MiB tmpfs: a real file system that runs out of space."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root; test_an_injected_enospc_while_writing_documents covers the rest")
    disk = tmp_path / "disk"
    disk.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(disk)], check=True)
    try:
        yield disk
    finally:
        subprocess.run(["umount", str(disk)], check=True)


def test_a_full_disk_gives_a_clear_error_and_keeps_the_previous_output(small_disk: Path, tarballs: Path):
    make_tarball(tarballs, {"name": "small", "version": "1.0.0"})
    out = small_disk / "out"
    assert build_cli(tarballs, out).returncode == 0
    before = snapshot(small_disk)
    # 4 MiB that do not compress: the copy cannot fit next to the previous output.
    make_tarball(tarballs, {"name": "big", "version": "1.0.0"}, {"blob.bin": os.urandom(4 * 1024**2)})
    result = build_cli(tarballs, out)
    no_traceback(result)
    assert result.returncode == 1
    [line] = [line for line in result.stderr.splitlines() if line.startswith("Error: ")]
    assert f"cannot write {out}/" in line and "No space left on device" in line and "unchanged" in line
    assert changes(before, snapshot(small_disk)) <= {"out.report.json"}
    assert not [p for p in small_disk.iterdir() if "staging" in p.name]


def test_an_injected_enospc_while_writing_documents(tarballs: Path, make_config, monkeypatch):
    """The failure lands after the tarballs are in place, in the middle of the documents."""
    make_tarball(tarballs, {"name": "a", "version": "1.0.0"})
    config = make_config(tarballs)
    build(config, show_progress=False)
    before = snapshot(config.output_dir)
    make_tarball(tarballs, {"name": "b", "version": "1.0.0"})
    real_write, calls = output.Staging.write, []

    def write(self, relative, data):
        calls.append(relative)
        if len(calls) == 3:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self.path(relative)))
        real_write(self, relative, data)

    monkeypatch.setattr(output.Staging, "write", write)
    with pytest.raises(BuildError, match=re.escape(f"cannot write {config.output_dir}/") + ".*No space left on device"):
        build(config, show_progress=False)
    assert snapshot(config.output_dir) == before
    assert not [p for p in config.output_dir.parent.iterdir() if "staging" in p.name]


def test_a_folder_that_cannot_be_written(tmp_path: Path, tarballs: Path):
    make_tarball(tarballs, {"name": "a", "version": "1.0.0"})
    locked = tmp_path / "readonly"
    locked.mkdir()
    locked.chmod(0o555)  # the build runs without root's override (tests/process.py)
    result = build_cli(tarballs, locked / "out")
    no_traceback(result)
    assert result.returncode == 1 and "Permission denied" in result.stderr
    assert f"cannot write {locked}/" in result.stderr
    assert list(locked.iterdir()) == []


def _staging_of(out: Path, pid: int) -> Path:
    return out.parent / f".{out.name}.staticreg-staging-{pid}"


def test_a_second_build_is_refused_while_the_first_writes(tmp_path: Path):
    a, b = make_inputs(tmp_path)
    out = tmp_path / "site" / "out"
    assert build_cli(b, out).returncode == 0
    for _ in range(50):  # catch the first build while it holds the lock, then freeze it there
        first = start("build", a, "-o", out, "--base-url", BASE_URL, "-q")
        while first.poll() is None and not _staging_of(out, first.pid).exists():
            time.sleep(0.001)
        first.send_signal(signal.SIGSTOP)
        if first.poll() is None and _staging_of(out, first.pid).exists():
            break
        first.send_signal(signal.SIGCONT)
        first.wait()
    else:
        pytest.fail("the first build always finished before it could be caught")
    try:
        before = snapshot(out.parent)
        second = build_cli(b, out)
        after = snapshot(out.parent)
    finally:
        first.send_signal(signal.SIGCONT)
    no_traceback(second)
    assert second.returncode == 1
    assert f"Error: another staticreg build is writing {out} right now" in second.stderr
    assert changes(before, after) == set()  # not the output, not the first build's staging, not the report
    assert first.wait(timeout=300) == 0
    assert checked_state(out) == expected_state(a)
    assert json.loads((out.parent / "out.report.json").read_bytes())["status"] == "ok"


def test_builds_started_together_never_interleave(tmp_path: Path):
    a, b = make_inputs(tmp_path)
    out = tmp_path / "site" / "out"
    refused = 0
    for _ in range(4):
        with open(tmp_path / "a.err", "w+") as err_a, open(tmp_path / "b.err", "w+") as err_b:
            procs = [
                subprocess.Popen(cmd, stderr=err, stdout=subprocess.DEVNULL)
                for cmd, err in ((_cmd(a, out), err_a), (_cmd(b, out), err_b))
            ]
            codes = [p.wait(timeout=300) for p in procs]
            err_a.seek(0)
            err_b.seek(0)
            errors = [err_a.read(), err_b.read()]
        assert 0 in codes
        for code, error in zip(codes, errors, strict=True):
            assert "Traceback" not in error
            assert code == 0 or (code == 1 and "another staticreg build is writing" in error), error
            refused += code == 1
        assert checked_state(out) in {expected_state(a), expected_state(b)}
    assert not [p for p in out.parent.iterdir() if "staging" in p.name or p.name.endswith("-old")]
    print(f"{refused} of 8 builds were refused")


def _cmd(source: Path, out: Path) -> list[str]:
    return prefix() + CLI + ["build", str(source), "-o", str(out), "--base-url", BASE_URL, "-q"]
