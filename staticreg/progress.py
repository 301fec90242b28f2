"""Progress on stderr for long builds: a live line on a terminal, a line every few seconds otherwise."""

from __future__ import annotations

import sys
import time


class Progress:
    def __init__(self, label: str, total: int, enabled: bool = True, every: float = 5.0):
        self.label = label
        self.total = total
        self.done = 0
        self.enabled = enabled and total > 0
        self.tty = sys.stderr.isatty()
        self.every = 0.1 if self.tty else every
        self.started = self.last = time.monotonic()

    def step(self, n: int = 1) -> None:
        self.done += n
        now = time.monotonic()
        if self.enabled and now - self.last >= self.every and now - self.started >= 1.0:
            self.last = now
            self._show()

    def _show(self, end: str = "") -> None:
        text = f"{self.label}: {self.done}/{self.total}"
        if self.tty:
            sys.stderr.write(f"\r{text}{end}")
        else:
            sys.stderr.write(f"{text}\n")
        sys.stderr.flush()

    def close(self) -> None:
        if self.enabled and self.tty and time.monotonic() - self.started >= 1.0:
            self._show(end="\n")
