"""When `staticreg serve` rebuilds: watchdog events in, one settled rebuild request out.

Watcher threads and write requests call `Changes.note`; the main thread waits in
`Changes.next`, which returns once changes have settled: no new event and no
change of size or mtime of the tarballs involved for DEBOUNCE seconds, so a
tarball still being copied in is not taken half-written.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

from watchdog.events import EVENT_TYPE_CLOSED_NO_WRITE, EVENT_TYPE_OPENED, FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer
from watchdog.observers.polling import PollingObserver

from staticreg.build.incremental import stat_key

_READ_ONLY = (EVENT_TYPE_OPENED, EVENT_TYPE_CLOSED_NO_WRITE)


class Changes:
    def __init__(self, debounce: float):
        self.debounce = debounce
        self.cond = threading.Condition()
        self.requested = 0  # bumped by every change
        self.completed = 0  # the `requested` value the last finished rebuild covers
        self.last_event = 0.0
        self.paths: set[str] = set()

    def note(self, paths: tuple[str, ...] = ()) -> int:
        """Something changed; returns a ticket for `wait_built`."""
        with self.cond:
            self.requested += 1
            self.last_event = time.monotonic()
            self.paths.update(paths)
            self.cond.notify_all()
            return self.requested

    def next(self, retry_at: float | None) -> int:
        """Block until there is something to rebuild (or `retry_at` passes) and it has settled;
        returns the `requested` value the rebuild will cover."""
        with self.cond:
            while self.requested == self.completed:
                if retry_at is not None and time.monotonic() >= retry_at:
                    break
                timeout = 1.0 if retry_at is None else max(0.0, min(1.0, retry_at - time.monotonic()))
                self.cond.wait(timeout)  # a timeout keeps Ctrl-C responsive
        seen: dict | None = None
        stable_since = time.monotonic()
        while True:
            with self.cond:
                last_event, paths = self.last_event, list(self.paths)
            sizes = {p: stat_key(Path(p)) for p in paths}
            now = time.monotonic()
            if sizes != seen:
                seen, stable_since = sizes, now
            if now - max(last_event, stable_since) >= self.debounce:
                with self.cond:
                    self.paths.clear()
                    return self.requested
            time.sleep(min(0.03, self.debounce))

    def built(self, covered: int) -> None:
        with self.cond:
            self.completed = max(self.completed, covered)
            self.cond.notify_all()

    def wait_built(self, ticket: int, timeout: float) -> bool:
        with self.cond:
            return self.cond.wait_for(lambda: self.completed >= ticket, timeout)


class InputEvents(FileSystemEventHandler):
    """Turns watchdog events into `Changes.note` for the files a build reads."""

    def __init__(
        self,
        changes: Changes,
        input_dir: Path,
        config_file: Path,
        template_dir: Path | None,
        ignore: list[Path],
        tarball_suffixes: tuple[str, ...],
    ):
        self.changes = changes
        self.input_dir = os.path.abspath(input_dir)
        self.config_file = os.path.abspath(config_file)
        self.template_dir = os.path.abspath(template_dir) if template_dir else None
        self.ignore = [os.path.abspath(p) for p in ignore]
        self.suffixes = tarball_suffixes

    def relevant(self, path: str) -> bool:
        path = os.path.abspath(path)
        if any(_inside(path, folder) for folder in self.ignore):
            return False
        if path == self.config_file:
            return True
        if os.path.basename(path).startswith("."):  # editors' swap files, our own temporary files
            return False
        if self.template_dir and _inside(path, self.template_dir):
            return True
        return _inside(path, self.input_dir) and path.lower().endswith(self.suffixes)

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.is_directory or event.event_type in _READ_ONLY:
            return
        paths = tuple(os.fsdecode(p) for p in (event.src_path, event.dest_path) if p)
        relevant = tuple(p for p in paths if self.relevant(p))
        if relevant:
            self.changes.note(relevant)

    def folders(self) -> dict[str, bool]:
        """Folders to watch, and whether recursively; none inside another watched recursively."""
        wanted = {self.input_dir: True, os.path.dirname(self.config_file): False}
        if self.template_dir:
            wanted[self.template_dir] = True
        return {
            folder: recursive
            for folder, recursive in wanted.items()
            if os.path.isdir(folder)
            and not any(other != folder and deep and _inside(folder, other) for other, deep in wanted.items())
        }


def _inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def start_observer(handler: InputEvents, poll: bool):
    observer = PollingObserver(timeout=0.5) if poll else Observer()
    for folder, recursive in handler.folders().items():
        observer.schedule(handler, folder, recursive=recursive)
    observer.daemon = True
    observer.start()
    return observer
