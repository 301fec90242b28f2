"""Process pools whose workers share the build's memory instead of copying it.

The pools fork (Linux's default). A forked worker shares the parent's pages
until it writes to them, and Python's cyclic garbage collector writes to every
object it visits: each worker's first collection copied the whole parent, which
at 100,000 tarballs is hundreds of megabytes per worker. Freezing the parent's
objects while the workers fork moves them out of the collector's reach in the
children (gc.freeze); the parent unfreezes them right after.
"""

from __future__ import annotations

import gc
from concurrent.futures import ProcessPoolExecutor


def start(pool: ProcessPoolExecutor) -> ProcessPoolExecutor:
    """Fork the pool's workers now, with the parent's objects frozen."""
    gc.freeze()
    try:
        pool.submit(int).result()  # the first task starts every worker of a forking pool
    finally:
        gc.unfreeze()
    return pool
