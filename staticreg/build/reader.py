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
import json
import math
import os
import posixpath
import re
import stat as stat_mode
import tarfile
import types
import zlib
from dataclasses import replace
from pathlib import Path
from typing import BinaryIO

from tarsafe import TarSafe

from staticreg.build.readmes import ReadmeStore
from staticreg.errors import TarballError
from staticreg.npm.records import TarballRecord, pack_manifest

_inflate: types.ModuleType
try:
    # ISA-L's inflate: 2.2 times zlib's speed on the benchmark's tarballs, with the same
    # decompressobj. Installed with staticreg wherever it has a wheel (see pyproject.toml).
    from isal import isal_zlib as _inflate
except ImportError:  # Windows on ARM, PyPy: the standard library's zlib
    _inflate = zlib
INFLATE_ERRORS: tuple[type[Exception], ...] = (zlib.error, _inflate.error)

CHUNK = 256 * 1024
MAX_PACKAGE_JSON_BYTES = 4 * 1024 * 1024
MAX_README_BYTES = 1024 * 1024
MAX_UNPACKED_BYTES = 1024**3
MAX_MEMBERS = 100_000
MAX_HEADER_BYTES = 1024 * 1024  # a pax or GNU long-name header: tarfile reads it whole
MAX_HEADER_CHAIN = 16  # extended headers in front of one member: tarfile recurses on each
MAX_JSON_DEPTH = 100
MAX_LINK_HOPS = 40
_README = re.compile(r"^readme(\.[^.]+)?$", re.IGNORECASE)
_README_PREFERENCE = (".md", ".markdown", "")
_GZIP_RESERVED_FLAGS = 0xE0  # zlib (and so npm, through Node) refuses a gzip header with any of them


def gunzip():
    """A decompressobj for one gzip stream, from the fastest inflate staticreg has."""
    return _inflate.decompressobj(16 + _inflate.MAX_WBITS)


def inflate(data: bytes) -> bytes:
    """What the gzip stream at the start of `data` inflates to, with the reader's own inflate
    (gunzip): the benchmark's read floor inflates every byte with it. Raises one of
    INFLATE_ERRORS for corrupt data and EOFError when the stream ends early."""
    stream = gunzip()
    out = stream.decompress(data)
    if not stream.eof:
        raise EOFError("the gzip stream ends early")
    return out


class CopyFailed(Exception):
    """Writing the copy failed (a full disk): an output problem, not the tarball's."""

    def __init__(self, error: OSError):
        super().__init__(str(error))
        self.error = error


class _Header(tarfile.TarInfo):
    """tarfile's member header, with limits: tarfile reads a pax or GNU long-name
    header into memory whole, recurses once per extended header in a row, and
    parses sparse maps without bounds. npm pack makes none of these big or sparse."""

    @classmethod
    def frombuf(cls, buf, encoding, errors):
        info = super().frombuf(buf, encoding, errors)
        if info.type == tarfile.GNUTYPE_SPARSE:
            raise TarballError("", f"member {info.name!r} is a sparse file, which npm pack never makes")
        if info.type in _EXTENDED_HEADERS and info.size > MAX_HEADER_BYTES:
            raise TarballError("", f"a tar extended header is larger than {MAX_HEADER_BYTES // 1024} KiB")
        return info

    @classmethod
    def fromtarfile(cls, tarfile):
        depth = getattr(tarfile, "_staticreg_header_depth", 0)
        if depth >= MAX_HEADER_CHAIN:
            raise TarballError("", f"more than {MAX_HEADER_CHAIN} tar extended headers in a row")
        tarfile._staticreg_header_depth = depth + 1
        try:
            return super().fromtarfile(tarfile)
        finally:
            tarfile._staticreg_header_depth = depth

    def _refuse_sparse(self, *args):
        raise TarballError("", "a member is a sparse file, which npm pack never makes")

    _proc_gnusparse_00 = _proc_gnusparse_01 = _proc_gnusparse_10 = _refuse_sparse


_EXTENDED_HEADERS = (
    tarfile.XHDTYPE,
    tarfile.XGLTYPE,
    tarfile.SOLARIS_XHDTYPE,
    tarfile.GNUTYPE_LONGNAME,
    tarfile.GNUTYPE_LONGLINK,
)


class _Tee:
    """A file-like that reads raw bytes, hashes and copies them, and hands out
    the decompressed stream (or the raw one for a plain tar)."""

    def __init__(self, raw: BinaryIO, sink: BinaryIO | None, gzipped: bool):
        self.raw = raw
        self.sink = sink
        self.sha1 = hashlib.sha1()
        self.sha512 = hashlib.sha512()
        self.size = 0
        self.unpacked = 0
        self.gzip = gunzip() if gzipped else None
        self.pending = b""  # raw bytes not yet given to the inflate
        self.buffer = bytearray()
        self.raw_done = False

    def _pull(self) -> bytes:
        data = self.raw.read(CHUNK)
        if not data:
            self.raw_done = True
            return b""
        self.size += len(data)
        self.sha1.update(data)
        self.sha512.update(data)
        if self.sink is not None:
            try:
                self.sink.write(data)
            except OSError as exc:
                raise CopyFailed(exc) from None
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
                    raise TarballError("", "the gzip data is truncated (the file ends too early)", ends_early=True)
            source = self.gzip.unconsumed_tail or self.pending
            self.pending = b""
            try:
                out = self.gzip.decompress(source, CHUNK * 4)
            except INFLATE_ERRORS as exc:  # here, not where tarfile would word zlib's error as its own
                raise TarballError("", f"the gzip data is corrupt ({exc})") from None
            self.unpacked += len(out)
            if self.unpacked > MAX_UNPACKED_BYTES:
                raise TarballError("", f"it expands to more than {MAX_UNPACKED_BYTES // 1024**2} MiB")
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
        warnings: list[str] = []
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


def _decode_package_json(data: bytes) -> dict:
    if len(data) > MAX_PACKAGE_JSON_BYTES:
        raise TarballError("", f"package.json is larger than {MAX_PACKAGE_JSON_BYTES // 1024**2} MiB")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise TarballError("", f"package.json is not UTF-8 text (byte {exc.start})") from None

    def no_constants(name: str):
        raise ValueError(f"{name} is not JSON")

    def finite(number: str) -> float:
        value = float(number)
        if not math.isfinite(value):  # 1e400: JavaScript reads Infinity, JSON cannot write it back
            raise ValueError(f"the number {number[:20]} is too large")
        return value

    try:
        manifest = json.loads(text, parse_constant=no_constants, parse_float=finite)
    except RecursionError:
        raise TarballError("", "package.json is nested too deeply") from None
    except ValueError as exc:
        raise TarballError("", f"package.json is not valid JSON: {exc}") from None
    if not isinstance(manifest, dict):
        raise TarballError("", "package.json is not a JSON object")
    if _depth(manifest) > MAX_JSON_DEPTH:
        raise TarballError("", f"package.json is nested more than {MAX_JSON_DEPTH} levels deep")
    return manifest


def _depth(value: object) -> int:
    """How deeply lists and objects nest (without recursion)."""
    deepest = 0
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            item = list(item.values())
        if isinstance(item, list):
            deepest = max(deepest, depth)
            stack += [(child, depth + 1) for child in item]
    return deepest


def _check_member(member: tarfile.TarInfo, root: str | None) -> tuple[str, str]:
    """Return (root, path inside the package) or raise for an unsafe or broken member."""
    name = member.name
    if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name):
        raise TarballError("", f"member {name!r} has an absolute path")
    parts = [p for p in name.split("/") if p]
    if not parts:
        raise TarballError("", "a member has an empty name")
    if ".." in parts or ".." in re.split(r"[/\\]", name):  # Windows clients split on backslashes too
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
        if target.startswith("/") or "\\" in target or resolved == ".." or resolved.startswith("../"):
            raise TarballError("", f"symlink {name!r} points outside the package ({target!r})")
    if member.islnk():
        target_parts = [p for p in re.split(r"[/\\]", member.linkname) if p]
        if member.linkname.startswith("/") or ".." in target_parts or target_parts[:1] != parts[:1]:
            raise TarballError("", f"hardlink {name!r} points outside the package ({member.linkname!r})")
    return parts[0], inner


def _check_symlinks(symlinks: dict[str, str]) -> None:
    """Follow every symlink through the others, as a client that keeps links would:
    `a/up -> ../..` is inside, but `x -> a/up/..` then leaves the package."""
    for start in symlinks:
        hops = 0
        pending = posixpath.join(posixpath.dirname(start), symlinks[start]).split("/")
        resolved: list[str] = []
        while pending:
            part = pending.pop(0)
            if part in ("", "."):
                continue
            if part == "..":
                if not resolved:
                    raise TarballError("", f"symlink {start!r} points outside the package through other links")
                resolved.pop()
                continue
            resolved.append(part)
            here = "/".join(resolved)
            if here in symlinks:
                hops += 1
                if hops > MAX_LINK_HOPS:
                    raise TarballError("", f"symlink {start!r} is part of a loop of links")
                resolved.pop()
                pending = symlinks[here].split("/") + pending


def read_tarball(
    path: str | Path, source: str, copy_to: str | Path | None = None, readmes: ReadmeStore | None = None
) -> TarballRecord:
    """Read `path` (shown to the user as `source`); stream its bytes to `copy_to` if given,
    and put its README into `readmes` if given (without a store the record names no README).

    Raises TarballError for anything wrong with the tarball, and OSError when
    writing the copy fails (that is the output's problem, not the tarball's)."""
    try:
        return _read(path, source, copy_to, readmes)
    except CopyFailed as exc:
        error = exc.error
        raise OSError(error.errno, error.strerror, str(error.filename or copy_to)) from None
    except TarballError as exc:
        raise TarballError(source, exc.reason, exc.ends_early) from None
    except (tarfile.TarError, EOFError) as exc:
        short = isinstance(exc, EOFError) or "unexpected end of data" in str(exc)  # tarfile's words for it
        raise TarballError(source, f"not a valid tar archive ({exc or 'unexpected end of data'})", short) from None
    except (ValueError, OverflowError, UnicodeError) as exc:
        # tarfile lets these out of headers it cannot parse (e.g. a pax size that is not a number)
        raise TarballError(source, f"not a valid tar archive (a broken header: {exc})") from None
    except INFLATE_ERRORS as exc:
        raise TarballError(source, f"the gzip data is corrupt ({exc})") from None
    except IsADirectoryError:
        raise TarballError(source, "is a folder, not a tarball") from None
    except PermissionError:
        raise TarballError(source, "cannot be read (permission denied)") from None
    except OSError as exc:
        raise TarballError(source, f"cannot be read ({exc.strerror or exc})") from None


def sri(sha512) -> str:
    """The integrity string clients check (Subresource Integrity) for a finished sha512 hash."""
    return "sha512-" + base64.b64encode(sha512.digest()).decode("ascii")


def content_of(path: str, size: int | None = None) -> tuple[str, int, float] | None:
    """(sha512 integrity, size, mtime) of a regular file; None if it cannot be read (a full
    read says why), or when it is not `size` bytes (not hashed, then)."""
    try:
        with open(path, "rb", opener=_open_nonblocking) as raw:
            stat = os.fstat(raw.fileno())
            if not stat_mode.S_ISREG(stat.st_mode) or (size is not None and stat.st_size != size):
                return None
            sha512 = hashlib.sha512()
            while data := raw.read(CHUNK):
                sha512.update(data)
    except OSError:
        return None
    return sri(sha512), stat.st_size, stat.st_mtime


def same_tarball(path: str, record: TarballRecord) -> TarballRecord | None:
    """`record` (read from this path before) with the file's mtime, if the file still has the
    bytes it was read from; None if not, or if it cannot be read (a full read says why).
    A tarball copied, checked out or downloaded again has a new mtime and inode but the same
    bytes: hashing them costs a fraction of reading the tarball again."""
    found = content_of(path, record.size)
    if found is None or found[0] != record.integrity:
        return None
    return replace(record, mtime=found[2])


def _open_nonblocking(path: str, flags: int) -> int:
    # A fifo named x.tgz must not hang the build: opening it without O_NONBLOCK waits for a writer.
    return os.open(path, flags | os.O_NONBLOCK)


def _read(path: str | Path, source: str, copy_to: str | Path | None, store: ReadmeStore | None) -> TarballRecord:
    with open(path, "rb", opener=_open_nonblocking) as raw:
        stat = os.fstat(raw.fileno())
        if stat_mode.S_ISDIR(stat.st_mode):
            raise IsADirectoryError(path)
        if not stat_mode.S_ISREG(stat.st_mode):
            raise TarballError("", "is not a regular file (a fifo, socket or device)")
        head = raw.read(4)
        raw.seek(0)
        if not head:
            raise TarballError("", "the file is empty", ends_early=True)
        gzipped = head[:2] == b"\x1f\x8b"
        if gzipped and len(head) == 4 and head[3] & _GZIP_RESERVED_FLAGS:  # ISA-L would not say so
            raise TarballError("", "the gzip data is corrupt (unknown header flags set)")
        sink = _open_copy(copy_to) if copy_to is not None else None
        try:
            tee = _Tee(raw, sink, gzipped=gzipped)
            record = _scan(tee, source, stat.st_size, stat.st_mtime, store)
        finally:
            if sink is not None:
                _close_copy(sink)
    return record


def _open_copy(copy_to: str | Path) -> BinaryIO:
    try:
        return open(copy_to, "wb")
    except OSError as exc:
        raise CopyFailed(exc) from None


def _close_copy(sink: BinaryIO) -> None:
    try:
        sink.close()
    except OSError as exc:
        raise CopyFailed(exc) from None


def _scan(tee: _Tee, source: str, size: int, mtime: float, store: ReadmeStore | None) -> TarballRecord:
    warnings: list[str] = []
    root = None
    manifest_bytes = None
    readmes: dict[str, bytes] = {}
    top_files: set[str] = set()
    symlinks: dict[str, str] = {}
    file_count = unpacked_size = members = links = manifests = 0
    # TarSafe is tarfile with extraction guards; we never extract, and check
    # every member ourselves in _check_member, because reading is not guarded.
    with TarSafe.open(fileobj=tee, mode="r|", tarinfo=_Header) as archive:
        for member in archive:
            # In stream mode tarfile keeps every header it read; we need none of them back.
            archive.members.clear()
            members += 1
            if members > MAX_MEMBERS:
                raise TarballError("", f"it has more than {MAX_MEMBERS} members")
            root, inner = _check_member(member, root)
            is_top = inner != "" and "/" not in inner
            if member.issym() or member.islnk():
                links += 1
                if inner == "package.json":
                    raise TarballError("", "package.json is a link; it must be a regular file")
                if member.issym():
                    symlinks[inner] = member.linkname
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
                manifests += 1
            elif _README.match(inner):
                readmes[inner] = archive.extractfile(member).read(MAX_README_BYTES)
        # tarfile stops at the end-of-archive blocks; the rest still has to be hashed.
        warnings += tee.finish()
    if manifest_bytes is None:
        raise TarballError("", "there is no package.json in the tarball's top folder")
    _check_symlinks(symlinks)
    manifest = _decode_package_json(manifest_bytes)
    if manifests > 1:
        warnings.append(f"package.json is in the tarball {manifests} times; the last one is used, as clients unpack it")
    if links:
        warnings.append(f"{links} link member(s): npm and bun drop links when they install, so the package may break")
    readme_name = _pick_readme(readmes)
    readme = None
    if readme_name and store is not None:
        readme = store.put(readmes[readme_name].decode("utf-8", errors="replace"))
    return TarballRecord(
        source=source,
        size=tee.size,
        mtime=mtime,
        shasum=tee.sha1.hexdigest(),
        integrity=sri(tee.sha512),
        manifest_packed=pack_manifest(manifest),
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
