"""A no-op rebuild from the command line loads nothing of the build's stages (see
staticreg/build/start.py): at 10,000 tarballs their imports were most of its time. Which
modules a run imported is read from `python -X importtime`, which names every one."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.helpers import make_set

# What only a build with something to do needs: the stages and what they import.
STAGES = {
    "staticreg.build.pipeline",
    "staticreg.build.incremental",
    "staticreg.build.reader",
    "staticreg.build.writers",
    "staticreg.npm.model",
    "staticreg.npm.documents",
    "staticreg.npm.registry_state",
    "staticreg.npm.semver",
    "semantic_version",
    "msgspec",
    "jinja2",
    "tarsafe",
    "concurrent.futures.process",
}


def imported_by_build(config: Path) -> tuple[set[str], dict]:
    """The modules `staticreg build -c CONFIG` imported, and its report."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "staticreg", "build", "-q", "-c", str(config)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    modules = {line.rpartition("|")[2].strip() for line in done.stderr.splitlines() if line.startswith("import time:")}
    report = json.loads((config.parent / "out.report.json").read_text())
    return modules, report


def test_a_no_op_rebuild_imports_none_of_the_stages(tarballs, tmp_path):
    make_set(tarballs)
    config = tmp_path / "staticreg.yml"
    config.write_text(f"input: {tarballs}\noutput: {tmp_path / 'out'}\nbase_url: http://r.test/\n")

    cold, report = imported_by_build(config)
    assert report["counts"]["packages"] == 2 and "read" in report["timings_seconds"]
    assert STAGES - cold == set()  # the check sees them when they are there

    again, report = imported_by_build(config)
    assert "read" not in report["timings_seconds"]  # it was a no-op rebuild
    assert report["counts"] == {
        "tarballs": 3,
        "packages": 2,
        "versions": 3,
        "rejected": 0,
        "warnings": 0,
        "duplicates": 0,
    }
    assert "staticreg.build.start" in again and "staticreg.build.discovery" in again
    assert again & STAGES == set()
