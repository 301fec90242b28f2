"""bench/bench_mirror.py keeps working (a small corpus, one round); no timing is checked."""

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]


def test_bench_mirror_runs_and_prints_its_ratio():
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench/bench_mirror.py"), "--tarballs", "20", "--runs", "1"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    assert "ratio mirror / bare: " in result.stdout and "re-run with everything present: " in result.stdout
