"""Read one npm tarball, safely and in one pass.

The bytes are read once, hashed (sha1, sha512), copied to the file that will be
served, and fed through gzip and tar to find package.json. Nothing is extracted.
Two ways of walking the tar give one result: nearly every tarball is read whole
in memory and its headers walked in one loop (_read_whole); anything that loop
does not decide, or that is too big for it, is streamed through tarfile (_scan),
which gives every refusal. The tarball is untrusted: every member is checked (by
_Members, for both), sizes are capped, and anything a client would install
broken or that could be unsafe is refused with a TarballError that says why.
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
    # Nesting cannot be deeper than the text has brackets; _depth's walk is for the rare rest.
    if text.count("{") + text.count("[") > MAX_JSON_DEPTH and _depth(manifest) > MAX_JSON_DEPTH:
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
    path: str | Path,
    source: str,
    copy_to: str | Path | None = None,
    readmes: ReadmeStore | None = None,
    whole: bool = True,
) -> TarballRecord:
    """Read `path` (shown to the user as `source`); copy its bytes to `copy_to` if given,
    and put its README into `readmes` if given (without a store the record names no README).
    `whole=False` skips the fast path (_read_whole), for the tests that compare the two.

    Raises TarballError for anything wrong with the tarball, and OSError when
    writing the copy fails (that is the output's problem, not the tarball's)."""
    try:
        return _read(path, source, copy_to, readmes, whole)
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


def _read(
    path: str | Path, source: str, copy_to: str | Path | None, store: ReadmeStore | None, whole: bool = True
) -> TarballRecord:
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
        if whole and gzipped and stat.st_size <= WHOLE_MAX_BYTES:
            data = raw.read(WHOLE_MAX_BYTES + 1)
            record = _read_whole(data, source, stat.st_mtime, store) if len(data) <= WHOLE_MAX_BYTES else None
            if record is not None:
                if copy_to is not None:
                    copy = _open_copy(copy_to)
                    try:
                        copy.write(data)
                    except OSError as exc:
                        raise CopyFailed(exc) from None
                    finally:
                        _close_copy(copy)
                return record
            raw.seek(0)  # not one the fast path decides: the streaming reader does, and says why
        sink = _open_copy(copy_to) if copy_to is not None else None
        try:
            tee = _Tee(raw, sink, gzipped=gzipped)
            record = _scan(tee, source, stat.st_mtime, store)
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


class _Members:
    """What a walk over a tarball's members finds, member by member: the one place their
    checks are, for both ways of walking (the streaming reader and _read_whole)."""

    def __init__(self) -> None:
        self.root: str | None = None
        self.manifest: bytes | None = None
        self.readmes: dict[str, bytes] = {}
        self.top_files: set[str] = set()
        self.symlinks: dict[str, str] = {}
        self.file_count = self.unpacked_size = self.members = self.links = self.manifests = 0

    def add(self, member: tarfile.TarInfo, read) -> None:
        """Take one member; `read(limit)` gives up to `limit` bytes of its data (-1: all)."""
        self.members += 1
        if self.members > MAX_MEMBERS:
            raise TarballError("", f"it has more than {MAX_MEMBERS} members")
        self.root, inner = _check_member(member, self.root)
        if member.issym() or member.islnk():
            self.links += 1
            if inner == "package.json":
                raise TarballError("", "package.json is a link; it must be a regular file")
            if member.issym():
                self.symlinks[inner] = member.linkname
            return
        if not member.isfile():
            return
        self.file_count += 1
        self.unpacked_size += member.size
        if inner == "" or "/" in inner:  # not at the package's top
            return
        self.top_files.add(inner)
        if inner == "package.json":
            if member.size > MAX_PACKAGE_JSON_BYTES:
                raise TarballError("", f"package.json is larger than {MAX_PACKAGE_JSON_BYTES // 1024**2} MiB")
            self.manifest = read(-1)
            self.manifests += 1
        elif _README.match(inner):
            self.readmes[inner] = read(MAX_README_BYTES)

    def record(
        self, source: str, size: int, mtime: float, sha1, sha512, warnings: list[str], store: ReadmeStore | None
    ) -> TarballRecord:
        """The record of the walk that ended; raises TarballError for what only its end shows."""
        if self.manifest is None:
            raise TarballError("", "there is no package.json in the tarball's top folder")
        _check_symlinks(self.symlinks)
        manifest = _decode_package_json(self.manifest)
        if self.manifests > 1:
            warnings.append(
                f"package.json is in the tarball {self.manifests} times; the last one is used, as clients unpack it"
            )
        if self.links:
            warnings.append(
                f"{self.links} link member(s): npm and bun drop links when they install, so the package may break"
            )
        readme_name = _pick_readme(self.readmes)
        readme = None
        if readme_name and store is not None:
            readme = store.put(self.readmes[readme_name].decode("utf-8", errors="replace"))
        return TarballRecord(
            source=source,
            size=size,
            mtime=mtime,
            shasum=sha1.hexdigest(),
            integrity=sri(sha512),
            manifest_packed=pack_manifest(manifest),
            file_count=self.file_count,
            unpacked_size=self.unpacked_size,
            has_binding_gyp="binding.gyp" in self.top_files,
            has_shrinkwrap="npm-shrinkwrap.json" in self.top_files,
            readme=readme,
            readme_filename=readme_name,
            warnings=tuple(warnings),
        )


def _scan(tee: _Tee, source: str, mtime: float, store: ReadmeStore | None) -> TarballRecord:
    """The streaming reader: tarfile's walk over the inflating stream (any size, any tar)."""
    found = _Members()
    warnings: list[str] = []
    # TarSafe is tarfile with extraction guards; we never extract, and check
    # every member ourselves in _check_member, because reading is not guarded.
    with TarSafe.open(fileobj=tee, mode="r|", tarinfo=_Header) as archive:
        for member in archive:
            # In stream mode tarfile keeps every header it read; we need none of them back.
            archive.members.clear()
            found.add(member, lambda limit, member=member: archive.extractfile(member).read(limit))
        # tarfile stops at the end-of-archive blocks; the rest still has to be hashed.
        warnings += tee.finish()
    return found.record(source, tee.size, mtime, tee.sha1, tee.sha512, warnings, store)


# The fast path (_read_whole) reads a tarball whole, in memory, when it is at most this
# big and inflates to at most WHOLE_MAX_UNPACKED: nearly every npm package.
WHOLE_MAX_BYTES = 4 * 1024**2
WHOLE_MAX_UNPACKED = 16 * 1024**2
_ZERO_BLOCK = bytes(tarfile.BLOCKSIZE)
# The member types the fast path walks; each has no data blocks but a regular file's.
_WHOLE_TYPES = {tarfile.REGTYPE, tarfile.AREGTYPE, tarfile.DIRTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE}


def _read_whole(data: bytes, source: str, mtime: float, store: ReadmeStore | None) -> TarballRecord | None:
    """The record of a gzipped tarball held whole in `data`, or None when the fast path
    does not decide it: anything wrong or unusual (a pax or GNU header, a bad checksum, a
    truncated or trailing stream, a refused member) goes to the streaming reader, which
    gives the verdict and says why. Where this returns a record, it is the one the
    streaming reader makes (tests/test_fuzz.py checks that on hostile tarballs): it walks
    the same headers with tarfile's own field parsers, in one loop instead of tarfile's
    stream of file objects: 1.26 times as fast (bench/bench_reader.py, bench/RESULTS.md)."""
    if int.from_bytes(data[-4:], "little") > WHOLE_MAX_UNPACKED:
        # gzip's trailer says how much the stream inflates to (a hint: it is the
        # streaming reader that checks): a big one would be inflated here in vain.
        return None
    stream = gunzip()
    try:
        tar = stream.decompress(data, WHOLE_MAX_UNPACKED)
    except INFLATE_ERRORS:
        return None
    if not stream.eof or stream.unused_data:
        return None
    found = _Members()
    end = len(tar)
    offset = 0
    try:
        while True:
            if offset + tarfile.BLOCKSIZE > end:
                return None  # no end-of-archive block
            header = tar[offset : offset + tarfile.BLOCKSIZE]
            if header == _ZERO_BLOCK:
                break
            member = _whole_header(header)
            if member is None:
                return None
            at = offset + tarfile.BLOCKSIZE
            size = member.size
            # As tarfile: only a regular file's data blocks are skipped (the loop's first test
            # finds data that runs past the end).
            offset = at + (-(-size // tarfile.BLOCKSIZE) * tarfile.BLOCKSIZE if member.isfile() else 0)
            found.add(member, lambda limit, at=at, size=size: tar[at : at + (size if limit < 0 else min(size, limit))])
        return found.record(source, len(data), mtime, hashlib.sha1(data), hashlib.sha512(data), [], store)
    except TarballError:
        return None


# mode, uid, gid, mtime, devmajor, devminor
_OTHER_NUMBERS = ((100, 108), (108, 116), (116, 124), (136, 148), (329, 337), (337, 345))
# A header's number as nearly every tar writes it: octal digits between spaces, up to a NUL.
_PLAIN_OCTAL = re.compile(rb" *([0-7]*) *(?:\x00.*)?", re.DOTALL)


def _number(field: bytes) -> int:
    """tarfile's nti (the value of a header's number field, or InvalidHeaderError), with
    the common case first: nti made a third of the fast path's time."""
    plain = _PLAIN_OCTAL.fullmatch(field)
    if plain is not None:
        return int(plain[1] or b"0", 8)
    return tarfile.nti(field)  # type: ignore[attr-defined]


def _whole_header(header: bytes) -> tarfile.TarInfo | None:
    """The member a ustar header describes, as tarfile's frombuf and _proc_builtin make it
    for the types the fast path walks; None for any other header (or one tarfile refuses)."""
    kind = header[156:157]
    if kind not in _WHOLE_TYPES:
        return None
    try:
        if _number(header[148:156]) != 256 + sum(header[:148]) + sum(header[156:]):
            return None  # a bad checksum, or one signed bytes make: the streaming reader's to judge
        size = _number(header[124:136])
        for at, end in _OTHER_NUMBERS:  # tarfile refuses a header where any of them is not a number
            _number(header[at:end])
    except tarfile.HeaderError:
        return None
    if size < 0:
        return None
    encoding, nts = tarfile.ENCODING, tarfile.nts  # type: ignore[attr-defined]
    name = nts(header[0:100], encoding, "surrogateescape")
    prefix = nts(header[345:500], encoding, "surrogateescape")
    if kind == tarfile.AREGTYPE and name.endswith("/"):
        kind = tarfile.DIRTYPE  # old V7 tars mark folders so
    if kind == tarfile.DIRTYPE:
        name = name.rstrip("/")
    if prefix:
        name = prefix + "/" + name
        if kind == tarfile.DIRTYPE:
            name = name.rstrip("/")
    member = tarfile.TarInfo(name)
    member.type = kind
    member.size = size
    member.linkname = nts(header[157:257], encoding, "surrogateescape")
    return member


def _pick_readme(readmes: dict[str, bytes]) -> str | None:
    def rank(name: str) -> tuple:
        ext = posixpath.splitext(name)[1].lower()
        pref = _README_PREFERENCE.index(ext) if ext in _README_PREFERENCE else len(_README_PREFERENCE)
        return (pref, name)

    return min(readmes, key=rank) if readmes else None
