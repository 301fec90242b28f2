"""Run the real `staticreg` command in a subprocess: run_cli waits for it (with its peak
memory), start leaves it running; as root, both drop root's read override first.
What it left behind on disk: snapshot and changes in tests/helpers.py."""

from __future__ import annotations

import os
import shutil
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
        prefix() + CLI + [str(a) for a in args],
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


# Linux keeps a process's peak RSS across exec, so a command started straight from
# pytest (hundreds of MB after the browser tests) would report pytest's peak as its
# own. A small Python launcher forks and execs the command instead, and reports its
# child's peak (RUSAGE_CHILDREN) in a file; the command dies with the launcher.
_LAUNCHER = """
import ctypes, os, resource, signal, sys
pid = os.fork()
if pid == 0:
    ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    os.execvp(sys.argv[2], sys.argv[2:])
_, status = os.waitpid(pid, 0)
with open(sys.argv[1], "w") as f:
    f.write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))
sys.exit(os.waitstatus_to_exitcode(status))
"""


def run_cli(*args: str, timeout: float = 300) -> Run:
    """Run `staticreg ARGS`; a run that outlives `timeout` seconds is killed (and fails its test)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, tempfile.TemporaryDirectory() as tmp:
        peak_file = os.path.join(tmp, "peak")
        command = prefix() + CLI + [str(a) for a in args]
        proc = subprocess.Popen(
            [sys.executable, "-c", _LAUNCHER, peak_file, *command], stdin=subprocess.DEVNULL, stdout=out, stderr=err
        )
        timer = threading.Timer(timeout, proc.kill)
        timer.start()
        try:
            proc.wait()
        finally:
            timer.cancel()
        out.seek(0)
        err.seek(0)
        try:
            with open(peak_file) as f:
                peak = int(f.read() or 0)
        except FileNotFoundError:  # the launcher itself was killed
            peak = 0
        return Run(proc.returncode, out.read().decode(errors="replace"), err.read().decode(errors="replace"), peak)
