"""Worker processes that die with the build, and forks that share its memory.

Every pool's workers run `die_with` first, so a killed build leaves none behind.
The readers' pool forks (Linux's default). A forked worker shares the build's
pages until it writes to them, and Python's cyclic garbage collector writes to
every object it visits: each worker's first collection copied its share of the
build. `start` freezes the build's objects before the workers fork, which moves
them out of the collector's reach in the children (gc.freeze). They stay frozen
in the build too, as what it loaded and made before does (see build._build),
until build() unfreezes everything at its end. (The site's renderers are
spawned instead: by then the build holds every record and keeps touching them,
see site._render.)
"""

from __future__ import annotations

import ctypes  # here, not in each forked child: a child importing it was 8-16 ms of discovery's walk
import gc
import os
import signal
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the pools' modules are imported where pools are made: a no-op rebuild makes none
    from concurrent.futures import ProcessPoolExecutor


def start(pool: ProcessPoolExecutor) -> ProcessPoolExecutor:
    """Fork the pool's workers now, with the parent's objects frozen; the build unfreezes them."""
    gc.freeze()
    pool.submit(int).result()  # the first task starts every worker of a forking pool
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
