"""Publish times that survive rebuilds.

The first time a build sees name@version, the time it gives it is kept in a
small JSON file (by default staticreg-times.json in the input folder, to be
committed with the tarballs). A later build, even in a fresh checkout where
every tarball has a new mtime, reads it back. The previous output's documents
are a second source, for when that file is lost.
"""

from __future__ import annotations

import json
from pathlib import Path

from staticreg.build.output import write_file_atomic
from staticreg.errors import ConfigError
from staticreg.npm import layout

FORMAT = 1


def load(path: Path) -> dict[str, str]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise ConfigError(
            f"{path}: cannot read the kept publish times ({exc}); fix or delete the file "
            "(deleting it makes versions take their tarball's mtime again)"
        ) from None
    times = data.get("times") if isinstance(data, dict) else None
    if not isinstance(times, dict) or not all(isinstance(v, str) for v in times.values()):
        raise ConfigError(f"{path}: not a staticreg publish-times file; fix or delete it")
    return times


def from_previous_output(output: Path, package_names: list[str]) -> dict[str, str]:
    """name@version -> time from the documents of the output being replaced."""
    found: dict[str, str] = {}
    for name in package_names:
        try:
            doc = json.loads(layout.safe_join(output, layout.packument_path(name)).read_bytes())
            times = doc.get("time", {})
        except (OSError, ValueError, AttributeError, layout.UnsafePath):
            continue
        if not isinstance(times, dict):
            continue
        for version, when in times.items():
            if version not in ("created", "modified", "unpublished") and isinstance(when, str):
                found[f"{name}@{version}"] = when
    return found


def save(path: Path, times: dict[str, str]) -> bool:
    """Write the file if its content changes; True if it did."""
    data = (json.dumps({"format": FORMAT, "times": dict(sorted(times.items()))}, indent=1) + "\n").encode()
    try:
        if path.read_bytes() == data:
            return False
    except OSError:
        pass
    write_file_atomic(path, data)
    return True
