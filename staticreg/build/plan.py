"""What a build does with each package, decided from what the last build left. Pure: no I/O.

A package whose fingerprint (incremental.fingerprint: everything its files are made
from) is the one the last build recorded needs none of its files made again:

- KEEP_SPARE: it is unchanged in the last two builds, and the spare (the output before
  the last, which the build writes into instead of an empty folder) holds its files
  as they are: they stay where they are;
- LINK: it is unchanged since the last build: its folders are linked whole from the
  previous output;
- WRITE: anything else (new, changed, or the last build left no files for it).

A LINK that cannot be done (a file the cache lists is gone) becomes a WRITE where it
is carried out (see build._write_stage).
"""

from __future__ import annotations

from collections.abc import Mapping

from staticreg.build.incremental import Built

KEEP_SPARE, LINK, WRITE = "keep spare", "link", "write"


def plan_packages(
    fingerprints: Mapping[str, str], previous: Mapping[str, Built], spare: Mapping[str, Built] | None
) -> dict[str, str]:
    """name -> KEEP_SPARE, LINK or WRITE, for every package of this build. `previous`:
    what the last build left, by package; `spare`: what the spare holds, or None when it
    cannot be used (there is none, or it is not the one the cache describes)."""
    plan = {}
    for name, fingerprint in fingerprints.items():
        last = previous.get(name)
        unchanged = last is not None and last.files and last.fingerprint == fingerprint
        before_last = spare.get(name) if spare is not None else None
        if unchanged and before_last is not None and before_last.files and before_last.fingerprint == fingerprint:
            plan[name] = KEEP_SPARE
        elif unchanged:
            plan[name] = LINK
        else:
            plan[name] = WRITE
    return plan
