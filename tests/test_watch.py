import threading
import time
from pathlib import Path

from watchdog.events import DirModifiedEvent, FileClosedNoWriteEvent, FileModifiedEvent, FileMovedEvent, FileOpenedEvent

from staticreg.dev.watch import Changes, InputEvents


def events(tmp_path: Path) -> tuple[Changes, InputEvents]:
    changes = Changes(debounce=0.05)
    handler = InputEvents(
        changes,
        tmp_path / "in",
        tmp_path / "staticreg.yml",
        tmp_path / "theme",
        ignore=[tmp_path / "in" / "out"],
        tarball_suffixes=(".tgz", ".tar.gz"),
    )
    return changes, handler


def test_only_writes_to_what_a_build_reads_count(tmp_path: Path):
    changes, handler = events(tmp_path)
    quiet = [
        FileOpenedEvent(str(tmp_path / "in/a-1.0.0.tgz")),  # reading a tarball
        FileClosedNoWriteEvent(str(tmp_path / "in/a-1.0.0.tgz")),
        DirModifiedEvent(str(tmp_path / "in")),
        FileModifiedEvent(str(tmp_path / "in/staticreg-times.json")),  # the build writes it
        FileModifiedEvent(str(tmp_path / "in/out/a/-/a-1.0.0.tgz")),  # the output
        FileModifiedEvent(str(tmp_path / "in/.a-1.0.0.tgz.part")),
        FileModifiedEvent(str(tmp_path / "elsewhere.yml")),
    ]
    for event in quiet:
        handler.dispatch(event)
    assert changes.requested == 0
    for event in [
        FileModifiedEvent(str(tmp_path / "in/sub/b-1.0.0.TGZ")),
        FileMovedEvent(str(tmp_path / "in/.x.part"), str(tmp_path / "in/c-1.0.0.tgz")),
        FileModifiedEvent(str(tmp_path / "staticreg.yml")),
        FileModifiedEvent(str(tmp_path / "theme/package.html")),
    ]:
        handler.dispatch(event)
    assert changes.requested == 4


def test_a_rebuild_waits_until_a_growing_file_stops_growing(tmp_path: Path):
    changes = Changes(debounce=1.0)  # far longer than the writer's pauses, even on a busy machine
    growing = tmp_path / "g.tgz"
    growing.write_bytes(b"x")
    changes.note((str(growing),))
    done = []

    def writer():  # grows the file, with no events, for a while
        for _ in range(8):
            time.sleep(0.05)
            with growing.open("ab") as f:
                f.write(b"x")
        done.append(growing.stat().st_size)

    thread = threading.Thread(target=writer)
    thread.start()
    covered = changes.next(None)
    size_when_settled = growing.stat().st_size
    thread.join()
    assert covered == 1 and done == [size_when_settled] == [9]
