"""Worker processes end with the build that started them, however it ends."""

import signal
import subprocess
import sys
import textwrap
import time

import pytest

# A stand-in for the build: a pool like the build's, whose workers report their pids.
POOL = textwrap.dedent(
    """
    import multiprocessing, os, sys, time
    from concurrent.futures import ProcessPoolExecutor
    from staticreg.build import workers

    def pid(_):
        time.sleep(0.2)  # so that both workers take one
        return os.getpid()

    if __name__ == "__main__":
        context = multiprocessing.get_context(sys.argv[1])
        pool = ProcessPoolExecutor(2, context, initializer=workers.die_with, initargs=(os.getpid(),))
        print(*set(pool.map(pid, range(4))), flush=True)
        time.sleep(60)
    """
)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
@pytest.mark.parametrize("method", ["fork", "spawn"])  # the readers fork, the site's renderers spawn
def test_workers_die_when_the_build_is_killed(tmp_path, method):
    script = tmp_path / "pool.py"
    script.write_text(POOL)
    build = subprocess.Popen([sys.executable, str(script), method], stdout=subprocess.PIPE, text=True)
    worker_pids = [int(p) for p in build.stdout.readline().split()]
    assert worker_pids and all(_alive(pid) for pid in worker_pids)
    build.send_signal(signal.SIGKILL)
    build.wait()
    deadline = time.monotonic() + 10
    while any(_alive(pid) for pid in worker_pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [pid for pid in worker_pids if _alive(pid)]
