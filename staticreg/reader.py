"""Read one npm tarball, safely and in one pass.

The bytes are read once: as they stream in they are hashed (sha1, sha512), copied
to the file that will be served, and fed through gzip and tar to find
package.json. Nothing is extracted. The tarball is untrusted: every member is
checked, sizes are capped, and anything a client would install broken or that
could be unsafe is refused with a TarballError that says why.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import posixpath
import re
import tarfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from tarsafe import TarSafe

from staticreg.errors import TarballError

CHUNK = 256 * 1024
MAX_PACKAGE_JSON_BYTES = 4 * 1024 * 1024
MAX_README_BYTES = 1024 * 1024
MAX_UNPACKED_BYTES = 1024**3
MAX_MEMBERS = 100_000
# Tarballs up to this size (nearly all of them) are read with one read, hashed and
# copied with one call each and inflated with one call, if they expand to at most
# WHOLE_MAX_UNPACKED; larger ones stream through _Tee in CHUNKs.
WHOLE_MAX_BYTES = 8 * 1024 * 1024
WHOLE_MAX_UNPACKED = 64 * 1024 * 1024
_README = re.compile(r"^readme(\.[^.]+)?$", re.IGNORECASE)
_README_PREFERENCE = (".md", ".markdown", "")


@dataclass(frozen=True)
class TarballRecord:
    """What the build needs to know about one tarball (plain data, picklable)."""

    source: str  # path relative to the input folder, for messages and the report
    size: int
    mtime: float
    shasum: str  # sha1, hex
    integrity: str  # sha512, SRI
    manifest: dict  # package.json as parsed, untouched
    file_count: int
    unpacked_size: int
    has_binding_gyp: bool
    has_shrinkwrap: bool
    readme: str | None
    readme_filename: str | None
    warnings: tuple[str, ...] = field(default=())


def _expands_too_much() -> TarballError:
    return TarballError("", f"it expands to more than {MAX_UNPACKED_BYTES // 1024**2} MiB")


class _Tee:
    """A file-like that reads raw bytes, hashes and copies them, and hands out
    the decompressed stream (or the raw one for a plain tar)."""

    mode = "r|"

    def __init__(self, raw: BinaryIO, sink: BinaryIO | None, gzipped: bool):
        self.raw = raw
        self.sink = sink
        self.sha1 = hashlib.sha1()
        self.sha512 = hashlib.sha512()
        self.size = 0
        self.unpacked = 0
        self.gzip = zlib.decompressobj(16 + zlib.MAX_WBITS) if gzipped else None
        self.pending = b""  # raw bytes not yet given to zlib
        self.buffer = bytearray()
        self.raw_done = False
        self.fileobj = self

    def _pull(self) -> bytes:
        data = self.raw.read(CHUNK)
        if not data:
            self.raw_done = True
            return b""
        self.size += len(data)
        self.sha1.update(data)
        self.sha512.update(data)
        if self.sink is not None:
            self.sink.write(data)
        return data

    def _fill(self, want: int) -> None:
        while len(self.buffer) < want:
            if self.gzip is None:
                data = self._pull()
                if not data:
                    return
                self.buffer += data
                continue
            if self.gzip.eof:
                return
            if not self.gzip.unconsumed_tail and not self.pending:
                self.pending = self._pull()
                if not self.pending:
                    raise TarballError("", "the gzip data is truncated (the file ends too early)")
            source = self.gzip.unconsumed_tail or self.pending
            self.pending = b""
            out = self.gzip.decompress(source, CHUNK * 4)
            self.unpacked += len(out)
            if self.unpacked > MAX_UNPACKED_BYTES:
                raise _expands_too_much()
            self.buffer += out

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            size = 1 << 62
        self._fill(size)
        out = bytes(self.buffer[:size])
        del self.buffer[:size]
        return out

    def finish(self) -> list[str]:
        """Read the rest of the file so the hashes cover every byte; check the gzip end."""
        warnings = []
        if self.gzip is None:
            while self._pull():
                pass
            return warnings
        while not self.gzip.eof:
            self.buffer.clear()
            self._fill(1 << 20)
        trailing = self.gzip.unused_data + self.pending
        while True:
            data = self._pull()
            if not data:
                break
            if len(trailing) < 64:
                trailing += data
        if trailing.strip(b"\0"):
            warnings.append("data after the end of the gzip stream was ignored")
        return warnings


class _Whole:
    """A small tarball read at once; the same interface as _Tee, but tarfile
    reads it in random-access mode and seeks over the members' data."""

    mode = "r:"

    def __init__(self, data: bytes, sink: BinaryIO | None, gzipped: bool):
        self.size = len(data)
        self.sha1 = hashlib.sha1(data)
        self.sha512 = hashlib.sha512(data)
        self.trailing = b""
        tar = data
        if gzipped:
            inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)
            limit = min(WHOLE_MAX_UNPACKED, MAX_UNPACKED_BYTES)
            tar = inflate.decompress(data, limit + 1)
            if len(tar) > MAX_UNPACKED_BYTES:
                raise _expands_too_much()
            if len(tar) > limit:
                raise _TooBig
            if not inflate.eof:
                raise TarballError("", "the gzip data is truncated (the file ends too early)")
            self.trailing = inflate.unused_data
        if sink is not None:
            sink.write(data)
        self.unpacked = len(tar)
        self.fileobj = io.BytesIO(tar)

    def finish(self) -> list[str]:
        return ["data after the end of the gzip stream was ignored"] if self.trailing.strip(b"\0") else []


class _TooBig(Exception):
    """A small tarball that expands too much to be read at once: stream it instead."""


def _decode_package_json(data: bytes) -> dict:
    if len(data) > MAX_PACKAGE_JSON_BYTES:
        raise TarballError("", f"package.json is larger than {MAX_PACKAGE_JSON_BYTES // 1024**2} MiB")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise TarballError("", f"package.json is not UTF-8 text (byte {exc.start})") from None

    def no_constants(name: str):
        raise ValueError(f"{name} is not JSON")

    try:
        manifest = json.loads(text, parse_constant=no_constants)
    except RecursionError:
        raise TarballError("", "package.json is nested too deeply") from None
    except ValueError as exc:
        raise TarballError("", f"package.json is not valid JSON: {exc}") from None
    if not isinstance(manifest, dict):
        raise TarballError("", "package.json is not a JSON object")
    return manifest


def _check_member(member: tarfile.TarInfo, root: str | None) -> tuple[str, str]:
    """Return (root, path inside the package) or raise for an unsafe or broken member."""
    name = member.name
    if name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        raise TarballError("", f"member {name!r} has an absolute path")
    parts = [p for p in name.split("/") if p]
    if not parts:
        raise TarballError("", "a member has an empty name")
    if ".." in parts:
        raise TarballError("", f"member {name!r} has '..' in its path")
    if parts[0] == ".":
        raise TarballError(
            "",
            f"member {name!r} is under './': npm, pnpm, yarn 1 and bun would install the files "
            "one folder too deep; repack it with npm pack",
        )
    if len(parts) == 1 and not member.isdir():
        raise TarballError("", f"member {name!r} is not inside a folder; clients would drop it")
    if root is not None and parts[0] != root:
        raise TarballError(
            "",
            f"the tarball has more than one top-level folder ({root!r} and {parts[0]!r}); "
            "clients strip the first folder of every member, so repack it with npm pack",
        )
    if member.ischr() or member.isblk() or member.isfifo():
        raise TarballError("", f"member {name!r} is a device or a fifo")
    inner = "/".join(parts[1:])
    if member.issym():
        target = member.linkname
        resolved = posixpath.normpath(posixpath.join(posixpath.dirname(inner), target))
        if target.startswith("/") or resolved == ".." or resolved.startswith("../"):
            raise TarballError("", f"symlink {name!r} points outside the package ({target!r})")
    if member.islnk():
        target_parts = [p for p in member.linkname.split("/") if p]
        if member.linkname.startswith("/") or ".." in target_parts or target_parts[:1] != parts[:1]:
            raise TarballError("", f"hardlink {name!r} points outside the package ({member.linkname!r})")
    return parts[0], inner


def read_tarball(path: Path, source: str, copy_to: Path | None = None) -> TarballRecord:
    """Read `path` (shown to the user as `source`); stream its bytes to `copy_to` if given."""
    try:
        return _read(path, source, copy_to)
    except TarballError as exc:
        raise TarballError(source, exc.reason) from None
    except (tarfile.TarError, EOFError) as exc:
        raise TarballError(source, f"not a valid tar archive ({exc or 'unexpected end of data'})") from None
    except zlib.error as exc:
        raise TarballError(source, f"the gzip data is corrupt ({exc})") from None
    except IsADirectoryError:
        raise TarballError(source, "is a folder, not a tarball") from None
    except PermissionError:
        raise TarballError(source, "cannot be read (permission denied)") from None
    except OSError as exc:
        raise TarballError(source, f"cannot be read ({exc.strerror or exc})") from None


def _read(path: Path, source: str, copy_to: Path | None) -> TarballRecord:
    with open(path, "rb") as raw:
        stat = os.fstat(raw.fileno())
        head = raw.read(2)
        raw.seek(0)
        if not head:
            raise TarballError("", "the file is empty")
        gzipped = head == b"\x1f\x8b"
        sink = open(copy_to, "wb") if copy_to is not None else None
        try:
            tee = None
            if stat.st_size <= WHOLE_MAX_BYTES:
                try:
                    tee = _Whole(raw.read(), sink, gzipped)
                except _TooBig:
                    raw.seek(0)
            if tee is None:
                tee = _Tee(raw, sink, gzipped)
            record = _scan(tee, source, stat.st_size, stat.st_mtime)
        finally:
            if sink is not None:
                sink.close()
    return record


def _scan(tee: _Tee | _Whole, source: str, size: int, mtime: float) -> TarballRecord:
    warnings: list[str] = []
    root = None
    manifest_bytes = None
    readmes: dict[str, bytes] = {}
    top_files: set[str] = set()
    file_count = unpacked_size = members = links = 0
    # TarSafe is tarfile with extraction guards; we never extract, and check
    # every member ourselves in _check_member, because reading is not guarded.
    with TarSafe.open(fileobj=tee.fileobj, mode=tee.mode) as archive:
        for member in archive:
            members += 1
            if members > MAX_MEMBERS:
                raise TarballError("", f"it has more than {MAX_MEMBERS} members")
            root, inner = _check_member(member, root)
            is_top = inner != "" and "/" not in inner
            if member.issym() or member.islnk():
                links += 1
                if inner == "package.json":
                    raise TarballError("", "package.json is a link; it must be a regular file")
                continue
            if not member.isfile():
                continue
            file_count += 1
            unpacked_size += member.size
            if not is_top:
                continue
            top_files.add(inner)
            if inner == "package.json":
                if member.size > MAX_PACKAGE_JSON_BYTES:
                    raise TarballError("", f"package.json is larger than {MAX_PACKAGE_JSON_BYTES // 1024**2} MiB")
                manifest_bytes = archive.extractfile(member).read()
            elif _README.match(inner):
                readmes[inner] = archive.extractfile(member).read(MAX_README_BYTES)
        # tarfile stops at the end-of-archive blocks; the rest still has to be hashed.
        warnings += tee.finish()
    if manifest_bytes is None:
        raise TarballError("", "there is no package.json in the tarball's top folder")
    manifest = _decode_package_json(manifest_bytes)
    if links:
        warnings.append(f"{links} link member(s): npm and bun drop links when they install, so the package may break")
    readme_name = _pick_readme(readmes)
    readme = readmes[readme_name].decode("utf-8", errors="replace") if readme_name else None
    return TarballRecord(
        source=source,
        size=tee.size,
        mtime=mtime,
        shasum=tee.sha1.hexdigest(),
        integrity="sha512-" + base64.b64encode(tee.sha512.digest()).decode("ascii"),
        manifest=manifest,
        file_count=file_count,
        unpacked_size=unpacked_size,
        has_binding_gyp="binding.gyp" in top_files,
        has_shrinkwrap="npm-shrinkwrap.json" in top_files,
        readme=readme,
        readme_filename=readme_name,
        warnings=tuple(warnings),
    )


def _pick_readme(readmes: dict[str, bytes]) -> str | None:
    def rank(name: str) -> tuple:
        ext = posixpath.splitext(name)[1].lower()
        pref = _README_PREFERENCE.index(ext) if ext in _README_PREFERENCE else len(_README_PREFERENCE)
        return (pref, name)

    return min(readmes, key=rank) if readmes else None
