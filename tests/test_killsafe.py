"""Kill-safe output: SIGKILL the real `staticreg build` at random moments, again and
again, alternating between two inputs, while a reader keeps checking the tree.

Every time, the output must be a complete old or a complete new registry: every
package document parses and every tarball it names is there with the right
sha512. The kept publish times and the report must parse after every kill, and a
finished build must leave no staging or old folder behind.
"""

from __future__ import annotations

import json
import os
import random
import signal
import threading
import time
from pathlib import Path

from staticreg.build import incremental, times
from tests.helpers import BASE_URL, checked_state, expected_state, make_inputs
from tests.process import run_cli, start

KILLS = 50


def test_sigkill_at_random_moments_never_tears_the_output(tmp_path: Path):
    a, b = make_inputs(tmp_path)
    states = {expected_state(a), expected_state(b)}
    out = tmp_path / "site" / "out"
    first = run_cli("build", a, "-o", out, "--base-url", BASE_URL, "-q")
    assert first.returncode == 0, first.stderr
    assert checked_state(out) == expected_state(a)
    duration = max(0.2, _timed_build(b, out))

    failures: list[str] = []
    checks = [0]
    stop = threading.Event()

    def reader() -> None:
        while not stop.is_set():
            try:
                state = checked_state(out)
                if state not in states:
                    failures.append(f"the output is neither registry: {sorted(state or ())[:3]}...")
                checks[0] += 1
            except (AssertionError, ValueError, KeyError) as exc:
                failures.append(f"concurrent reader: {exc!r}")
            time.sleep(0.005)  # leave the build most of the CPU

    watcher = threading.Thread(target=reader, daemon=True)
    watcher.start()
    rng = random.Random(7)
    kills = attempts = 0
    phases: dict[str, int] = {}
    try:
        while kills < KILLS:
            attempts += 1
            assert attempts < KILLS * 3, f"only {kills} of {attempts} builds could be killed before they finished"
            source = a if attempts % 2 else b
            before = checked_state(out)
            proc = start("build", source, "-o", out, "--base-url", BASE_URL, "-q")
            time.sleep(rng.uniform(0, duration * 1.4))
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                kills += 1
            proc.wait()
            state = checked_state(out)
            assert state in states
            staged = any("staging" in p.name for p in out.parent.iterdir())
            phase = (
                "finished"
                if proc.returncode == 0
                else "swapped"
                if state != before
                else "writing"
                if staged
                else "starting"
            )
            phases[phase] = phases.get(phase, 0) + 1
            for folder in (a, b):
                times.load(folder / "staticreg-times.json")  # raises if a kill tore it
            report = out.parent / "out.report.json"
            if report.exists():
                json.loads(report.read_bytes())
            cache = out.parent / ".out.staticreg-cache"  # the incremental cache, replaced atomically
            if cache.exists():
                head, entries = incremental.read_entries(cache)
                assert head["signature"] and len(entries) == head["entries"] > 0
            # its records, each file replaced atomically: every file a kill left is whole
            records, shards = incremental.load_records(incremental.records_path(out))
            assert shards is not None and all(r.integrity.startswith("sha512-") for _, r in records.values())
    finally:
        stop.set()
        watcher.join()
    assert not failures, failures[:5]
    assert checks[0] > 0

    last = run_cli("build", b, "-o", out, "--base-url", BASE_URL, "-q")
    assert last.returncode == 0, last.stderr
    assert checked_state(out) == expected_state(b)
    leftovers = sorted(p.name for p in out.parent.iterdir() if "staging" in p.name or p.name.endswith("-old"))
    assert leftovers == []
    # Workers (readers, site renderers) die with a killed build (PR_SET_PDEATHSIG) instead of waiting forever.
    assert not [pid for pid in _processes_mentioning(str(out)) if pid != os.getpid()]
    print(f"{kills} kills in {attempts} builds {phases}; the concurrent reader checked the tree {checks[0]} times")


def _timed_build(source: Path, out: Path) -> float:
    started = time.monotonic()
    result = run_cli("build", source, "-o", out, "--base-url", BASE_URL, "-q")
    assert result.returncode == 0, result.stderr
    return time.monotonic() - started


def _processes_mentioning(text: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and text.encode() in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
        except OSError:
            continue
    return found
