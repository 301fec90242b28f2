"""Run the real `staticreg` command in a subprocess, and look at what it left behind."""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

CLI = [sys.executable, "-m", "staticreg"]

# Root reads every file whatever its mode. Without these two capabilities it
# does not, so a chmod 000 file is really unreadable to the build, as it is for
# any other user. util-linux's setpriv is on every Debian and Ubuntu.
DROP_ROOTS_READ_OVERRIDE = ["setpriv", "--bounding-set=-dac_override,-dac_read_search"]


def prefix() -> list[str]:
    if os.geteuid() != 0:
        return []
    if not shutil.which("setpriv"):
        raise RuntimeError("the tests run as root and need setpriv (util-linux) to drop CAP_DAC_OVERRIDE")
    return DROP_ROOTS_READ_OVERRIDE


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str
    peak_rss_kib: int  # the child's own peak resident memory (wait4)


def start(*args: str, cwd: Path | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        prefix() + CLI + [str(a) for a in args], cwd=cwd, stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


def run_cli(*args: str, timeout: float = 300) -> Run:
    """Run `staticreg ARGS`; a run that outlives `timeout` seconds is killed (and fails its test)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(
            prefix() + CLI + [str(a) for a in args], stdin=subprocess.DEVNULL, stdout=out, stderr=err
        )
        timer = threading.Timer(timeout, proc.kill)
        timer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            timer.cancel()
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return Run(proc.returncode, out.read().decode(errors="replace"), err.read().decode(errors="replace"), usage.ru_maxrss)


def snapshot(root: Path) -> dict[str, tuple]:
    """Everything under root (links not followed): kind, content hash and mtime of each entry."""
    found: dict[str, tuple] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath, name)
            rel = path.relative_to(root).as_posix()
            info = path.lstat()
            if stat.S_ISLNK(info.st_mode):
                found[rel] = ("link", os.readlink(path))
            elif stat.S_ISDIR(info.st_mode):
                found[rel] = ("dir",)
            elif stat.S_ISREG(info.st_mode):
                try:
                    digest = hashlib.sha256(path.read_bytes()).hexdigest()
                except PermissionError:
                    digest = "unreadable"
                found[rel] = ("file", digest, info.st_mtime_ns)
            else:
                found[rel] = ("other", stat.S_IFMT(info.st_mode))
    return found


def changes(before: dict[str, tuple], after: dict[str, tuple]) -> set[str]:
    return {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}
