"""READMEs on disk, by content, instead of in memory.

A README is most of what a version weighs (up to 64 KiB of text against about a
kilobyte of package.json), and most versions of a package share theirs. The
readers put each README's text here under the hash of its text; records carry
only that hash, and the writers and the site read the text back when they need
it. The store sits beside the output like the build cache and outlives a build,
so the cache's records can point into it; `keep_only` drops what no record
names any more. Files are written whole under a temporary name and renamed, so
a killed build leaves no half README.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Protocol


class ReadmeTexts(Protocol):
    """Where the writers read README texts by id: a ReadmeStore, or the texts a hosted
    package's state holds (hosted)."""

    def get(self, readme_id: str, /) -> str: ...


class ReadmeStore:
    def __init__(self, folder: Path):
        self.folder = Path(folder)

    def put(self, text: str) -> str:
        """Keep the text; returns its id (a hash, also its file name)."""
        data = text.encode("utf-8")
        readme_id = hashlib.sha256(data).hexdigest()[:40]
        path = self.folder / readme_id
        if not path.exists():
            self.folder.mkdir(parents=True, exist_ok=True)
            tmp = self.folder / f".{readme_id}.{os.getpid()}.tmp"
            tmp.write_bytes(data)
            os.replace(tmp, path)
        return readme_id

    def get(self, readme_id: str) -> str:
        """The text; raises OSError if it is not here (a store deleted by hand)."""
        if len(readme_id) != 40 or not all(c in "0123456789abcdef" for c in readme_id):
            raise FileNotFoundError(f"not a README id: {readme_id!r}")
        return (self.folder / readme_id).read_bytes().decode("utf-8")  # read_text would turn \r\n into \n

    def ids(self) -> set[str]:
        """The ids of every README here (one listing, not one stat per README)."""
        try:
            return {name for name in os.listdir(self.folder) if not name.startswith(".")}
        except FileNotFoundError:
            return set()

    def keep_only(self, readme_ids: set[str]) -> None:
        """Delete every README no id in `readme_ids` names (and temporaries of killed builds)."""
        try:
            names = os.listdir(self.folder)
        except FileNotFoundError:
            return
        for name in names:
            if name not in readme_ids:
                try:
                    os.unlink(self.folder / name)
                except OSError:
                    pass
