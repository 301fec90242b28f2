"""Process pools whose workers share the build's memory, and die with the build.

The pools fork (Linux's default). A forked worker shares the parent's pages
until it writes to them, and Python's cyclic garbage collector writes to every
object it visits: each worker's first collection copied the whole parent, which
at 100,000 tarballs is hundreds of megabytes per worker. Freezing the parent's
objects while the workers fork moves them out of the collector's reach in the
children (gc.freeze); the parent unfreezes them right after.
"""

from __future__ import annotations

import ctypes
import gc
import os
import signal
import sys
from concurrent.futures import ProcessPoolExecutor


def start(pool: ProcessPoolExecutor) -> ProcessPoolExecutor:
    """Fork the pool's workers now, with the parent's objects frozen."""
    gc.freeze()
    try:
        pool.submit(int).result()  # the first task starts every worker of a forking pool
    finally:
        gc.unfreeze()
    return pool


def die_with(parent: int) -> None:
    """Pool initializer. Workers end on SIGTERM, whatever handler the parent (staticreg serve)
    set, and end when the build is killed instead of waiting for work forever."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    try:
        os.kill(parent, 0)  # the build died before prctl?
    except ProcessLookupError:
        os._exit(1)
