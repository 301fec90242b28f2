"""Property-based tests: the reader, the package.json normaliser and the name rules
on whatever hypothesis makes up. Only the documented errors may escape
(reader.TarballError, names.NameProblem, layout.UnsafePath), and every path the
layout gives for accepted input stays inside the output.

CI runs a short profile; `scripts/fuzz` runs the long one (100,000+ cases).
"""

from __future__ import annotations

import atexit
import base64
import gzip
import hashlib
import io
import json
import os
import shutil
import struct
import tarfile
import tempfile
from datetime import datetime, timezone
from pathlib import Path

from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st

from staticreg.build import reader
from staticreg.config import Config
from staticreg.errors import TarballError
from staticreg.npm import documents, layout, names
from staticreg.npm.model import build_registry, normalize_manifest
from staticreg.npm.records import TarballRecord, pack_manifest

settings.register_profile("ci", max_examples=150, deadline=None, database=None, derandomize=False)
settings.register_profile(
    "fuzz",
    max_examples=int(os.environ.get("STATICREG_FUZZ_EXAMPLES", "20000")),
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

ROOT = Path("/nonexistent/output-root")  # safe_join never touches the disk
NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)
_SCRATCH = Path(tempfile.mkdtemp(prefix="staticreg-fuzz-"))
atexit.register(shutil.rmtree, _SCRATCH, ignore_errors=True)

# -- strategies -------------------------------------------------------------------------

HOSTILE_NAMES = [
    "../x",
    "@a/../../x",
    "a/b",
    "%2e%2e",
    ".x",
    "_x",
    "-",
    "-x",
    "index.html",
    "INDEX.HTML",
    "node_modules",
    "@a/b",
    "@A/B",
    "@a/-",
    "@-/x",
    "x" * 214,
    "x" * 215,
    "@s/" + "n" * 210,
    "a\\b",
    "a\x00b",
    "JSONStream",
    "favicon.ico",
    "@/x",
    "@x/",
    "it's",
    "~x",
    "()",
    "*",
]
HOSTILE_VERSIONS = [
    "1.0.0",
    "v1.0.0",
    "=1.0.0",
    " 1.0.0 ",
    "1.0.0/../../x",
    "1.0",
    "01.0.0",
    "1.0.0-" + "a" * 250,
    "1.0.0-" + "a" * 300,
    "1.0.0+build",
    "1.0.0-rc.1",
    "9007199254740992.0.0",
    "1.0.0-x/y",
    "1.0.0-..",
]
package_names = st.one_of(
    st.sampled_from(HOSTILE_NAMES),
    st.from_regex(r"(@[A-Za-z0-9._~!'()*-]{1,8}/)?[A-Za-z0-9._~!'()*-]{1,12}", fullmatch=True),
    st.text(max_size=30),
)
versions = st.one_of(
    st.sampled_from(HOSTILE_VERSIONS),
    st.from_regex(
        r"[v=]?(0|[1-9][0-9]{0,3})\.(0|[1-9][0-9]?)\.(0|[1-9])(-[0-9A-Za-z.-]{1,12})?(\+[0-9A-Za-z.-]{1,6})?",
        fullmatch=True,
    ),
    st.text(max_size=30),
)
KEYS = [
    "name",
    "version",
    "dependencies",
    "devDependencies",
    "optionalDependencies",
    "peerDependencies",
    "bundleDependencies",
    "bundledDependencies",
    "scripts",
    "deprecated",
    "_id",
    "_npmUser",
    "dist",
    "readme",
    "readmeFilename",
    "description",
    "bin",
    "gypfile",
    "__proto__",
    "constructor",
]
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=25,
)
manifests = st.builds(
    lambda extra, name, version: {**extra, **name, **version},
    st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=10), json_values, max_size=8),
    st.one_of(st.just({}), package_names.map(lambda n: {"name": n}), json_values.map(lambda n: {"name": n})),
    st.one_of(st.just({}), versions.map(lambda v: {"version": v}), json_values.map(lambda v: {"version": v})),
)

PATH_PARTS = [
    "package",
    "package",
    "package.json",
    "..",
    ".",
    "",
    "a",
    "b\\..",
    "C:",
    "\u00e9",
    "README.md",
    "binding.gyp",
]
member_paths = st.one_of(
    st.lists(st.sampled_from(PATH_PARTS), min_size=1, max_size=5).map("/".join),
    st.lists(st.sampled_from(PATH_PARTS), min_size=1, max_size=3).map(lambda p: "/".join(p) + "/"),
    st.lists(st.sampled_from(PATH_PARTS), min_size=0, max_size=4).map(lambda p: "/" + "/".join(p)),
    st.text(max_size=40),
)
PAX_KEYS = [
    "path",
    "linkpath",
    "size",
    "mtime",
    "uid",
    "x",
    "GNU.sparse.major",
    "GNU.sparse.minor",
    "GNU.sparse.map",
    "GNU.sparse.size",
    "GNU.sparse.realsize",
    "GNU.sparse.name",
    "hdrcharset",
]
PAX_VALUES = ["1", "0", "-1", "x", "0,1", "0,x,1", "99999999999999999999", "BINARY", "../../x"]
MEMBER_TYPES = [
    tarfile.REGTYPE,
    tarfile.REGTYPE,
    tarfile.AREGTYPE,  # a folder, when its name ends in "/" (old V7 tars)
    tarfile.DIRTYPE,
    tarfile.SYMTYPE,
    tarfile.LNKTYPE,
    tarfile.CHRTYPE,
    tarfile.BLKTYPE,
    tarfile.FIFOTYPE,
    tarfile.CONTTYPE,
    tarfile.GNUTYPE_SPARSE,
    b"Z",
]
members = st.lists(
    st.tuples(
        member_paths,
        st.sampled_from(MEMBER_TYPES),
        member_paths,
        st.one_of(st.binary(max_size=64), manifests.map(lambda m: json.dumps(m).encode())),
        st.dictionaries(st.sampled_from(PAX_KEYS), st.sampled_from(PAX_VALUES) | st.text(max_size=12), max_size=3),
    ),
    max_size=8,
)


def tar_of(spec, fmt: int) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tar:
        for name, kind, linkname, data, pax in spec:
            info = tarfile.TarInfo(name)
            info.type = kind
            info.linkname = linkname
            if fmt == tarfile.PAX_FORMAT:
                info.pax_headers = pax
            is_file = kind in (tarfile.REGTYPE, tarfile.AREGTYPE, tarfile.CONTTYPE)
            info.size = len(data) if is_file else 0
            tar.addfile(info, io.BytesIO(data) if is_file else None)
    return buf.getvalue()


@st.composite
def tarballs(draw) -> bytes:
    spec = draw(members)
    if draw(st.booleans()):  # usually have a package.json, so reading goes deep
        spec = [("package/package.json", tarfile.REGTYPE, "", json.dumps(draw(manifests)).encode(), {})] + spec
    fmt = draw(st.sampled_from([tarfile.USTAR_FORMAT, tarfile.GNU_FORMAT, tarfile.PAX_FORMAT]))
    try:
        raw = tar_of(spec, fmt)
    except (ValueError, UnicodeError):  # tarfile cannot write this one (e.g. a long name in ustar)
        reject()
    return gzip.compress(raw, mtime=0) if draw(st.booleans()) else raw


@st.composite
def mutated(draw) -> bytes:
    data = bytearray(draw(tarballs()))
    for _ in range(draw(st.integers(1, 4))):
        if not data:
            break
        at = draw(st.integers(0, len(data) - 1))
        action = draw(st.sampled_from(["flip", "cut", "insert", "zero"]))
        if action == "flip":
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif action == "cut":
            del data[at:]
        elif action == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        else:
            data[at : at + 512] = bytes(len(data[at : at + 512]))
    return bytes(data)


# -- properties ---------------------------------------------------------------------------


def read_bytes(data: bytes) -> None:
    path = _SCRATCH / "fuzz.tgz"
    path.write_bytes(data)
    try:
        record = reader.read_tarball(path, "fuzz.tgz", _SCRATCH / "copy.tgz")
    except TarballError as exc:  # a fuzz helper: refusing the bytes is as fine as reading them
        assert exc.path == "fuzz.tgz" and exc.reason and "\n" not in exc.reason  # noqa: PT017 - see above
        return
    assert isinstance(record.manifest, dict)
    assert record.integrity == "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()
    assert (_SCRATCH / "copy.tgz").read_bytes() == data
    check_accepted(record)


def record_for(manifest: dict) -> TarballRecord:
    return TarballRecord(
        source="fuzz.tgz",
        size=1,
        mtime=1_600_000_000,
        shasum="0" * 40,
        integrity="sha512-AAAA",
        manifest_packed=pack_manifest(manifest),
        file_count=1,
        unpacked_size=1,
        has_binding_gyp=False,
        has_shrinkwrap=False,
        readme=None,
        readme_filename=None,
    )


def check_paths(name: str, version: str) -> None:
    paths = [
        layout.packument_path(name),
        layout.abbreviated_path(name),
        layout.version_document_path(name, version),
        layout.tarball_path(name, version),
        layout.dist_tags_path(name),
        layout.site_package_page(name),
        layout.zero_config_copy(layout.packument_path(name)),
    ]
    for path in paths:
        joined = layout.safe_join(ROOT, path)  # raises UnsafePath for anything outside
        assert os.path.commonpath([ROOT, joined]) == str(ROOT)
        assert all(len(part.encode()) <= 255 for part in path.split("/"))


def check_accepted(record: TarballRecord) -> None:
    """Everything the build does with one record: only the documented errors, safe paths, valid JSON."""
    try:
        name, version, manifest, _ = normalize_manifest(record, "http://registry.test/")
    except (names.NameProblem, layout.UnsafePath):
        return
    check_paths(name, version)
    assert json.loads(documents.dumps(manifest)) is not None
    config = Config(input_dir=ROOT, output_dir=ROOT, base_url="http://registry.test/")
    registry = build_registry([record], config, {}, NOW)
    for package in registry.packages.values():
        made = documents.version_manifests(package)
        for doc in (documents.packument(package, made, None), documents.abbreviated(package, made)):
            json.loads(documents.dumps(doc))  # strict JSON: no NaN or Infinity


@given(st.binary(max_size=2048))
def test_reader_on_random_bytes(data):
    read_bytes(data)


@given(st.binary(max_size=512).map(lambda b: gzip.compress(b, mtime=0)))
def test_reader_on_gzip_of_random_bytes(data):
    read_bytes(data)


@given(tarballs())
def test_reader_on_tarballs_with_odd_members(data):
    read_bytes(data)


@given(mutated())
def test_reader_on_mutated_tarballs(data):
    read_bytes(data)


@given(manifests)
def test_normalize_manifest_on_any_json_object(manifest):
    check_accepted(record_for(manifest))


@given(package_names, versions)
def test_names_and_versions(name, version):
    try:
        names.check_name(name)
        clean = names.clean_version(version)
        layout.package_dir(name)
        layout.tarball_filename(name, clean)
    except (names.NameProblem, layout.UnsafePath):
        return
    check_paths(name, clean)


@given(st.text(max_size=70))
def test_dist_tags(tag):
    try:
        names.check_tag(tag)
    except names.NameProblem:
        return
    layout.safe_join(ROOT, layout.version_document_path("x", tag))
    assert tag not in ("index.json", "index.corgi", "index.html")


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=2**63 - 2, max_value=2**80)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),  # text: lone surrogates too
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4),
    max_leaves=20,
)


def _ordered(value):
    """The value with every object as a list of pairs, so that comparing it compares key order too."""
    if isinstance(value, dict):
        return [(k, _ordered(v)) for k, v in value.items()]
    if isinstance(value, list):
        return [_ordered(v) for v in value]
    return value


@given(json_values)
def test_documents_are_json_that_reads_back_as_written(value):
    """documents.dumps (msgspec, or the json module for what msgspec refuses): strict JSON whose
    values, key order included, read back as they were; nothing a browser takes for markup."""
    data = documents.dumps(value)
    assert _ordered(json.loads(data)) == _ordered(value)
    assert data == documents.dumps(json.loads(data))  # the same bytes once read back (hosted compares so)
    assert not any(raw in data for raw in (b"<", b">", b"&", "\u2028".encode(), "\u2029".encode()))


def _gzipped(data: bytes) -> bytes:
    return data if data[:2] == b"\x1f\x8b" else gzip.compress(data, mtime=0)


INSIDE_PARTS = ["package.json", "README.md", "readme", "index.js", "lib", "a", "\u00e9", "x" * 60, "binding.gyp"]
inside_paths = st.lists(st.sampled_from(INSIDE_PARTS), min_size=1, max_size=4).map("/".join)
# (offset, width) of the numbers in a tar header: mode, uid, gid, size, mtime, devmajor, devminor
NUMBER_FIELDS = [(100, 8), (108, 8), (116, 8), (124, 12), (136, 12), (329, 8), (337, 8)]


def _number_forms(value: int, width: int) -> list[bytes]:
    """Ways tars write `value` in a field of `width` bytes that tarfile reads as `value`."""
    digits = format(value, "o")
    forms = [
        digits.rjust(width - 1, "0").encode() + b"\0",
        digits.rjust(width - 2, "0").encode() + b" \0",
        digits.rjust(width, " ").encode(),
        (" " + digits).encode().ljust(width, b"\0"),
        b"\x80" + value.to_bytes(width - 1, "big"),
        digits.encode() + b"\0" + b"junk"[: max(0, width - len(digits) - 1)],
    ]
    return [form for form in forms if len(form) == width]


@st.composite
def valid_tarballs(draw) -> bytes:
    """Tarballs a client would install, in the many ways tars write headers: every format,
    old V7 folders, links, long paths, numbers spelled oddly, signed checksums, bytes after
    the end; so that the fast path's decisions are compared on tarballs that read."""
    spec = [("package/package.json", tarfile.REGTYPE, "", json.dumps(draw(manifests)).encode(), {})]
    for path in draw(st.lists(inside_paths, max_size=6)):
        kind = draw(st.sampled_from([tarfile.REGTYPE, tarfile.AREGTYPE, tarfile.DIRTYPE, "sym", "hard"]))
        if kind == "sym":
            spec.append((f"package/{path}", tarfile.SYMTYPE, "index.js", b"", {}))
        elif kind == "hard":
            spec.append((f"package/{path}", tarfile.LNKTYPE, "package/index.js", b"", {}))
        else:
            slash = "/" if kind == tarfile.AREGTYPE and draw(st.booleans()) else ""
            spec.append((f"package/{path}{slash}", kind, "", draw(st.binary(max_size=700)), {}))
    fmt = draw(st.sampled_from([tarfile.USTAR_FORMAT, tarfile.GNU_FORMAT, tarfile.PAX_FORMAT]))
    try:
        raw = bytearray(tar_of(spec, fmt))
    except (ValueError, UnicodeError):
        reject()
    offset = 0
    while offset + 512 <= len(raw) and raw[offset : offset + 512] != bytes(512):
        header = raw[offset : offset + 512]
        size = tarfile.nti(bytes(header[124:136]))  # type: ignore[attr-defined]
        for at, width in NUMBER_FIELDS:
            if draw(st.integers(0, 3)) == 0:
                value = tarfile.nti(bytes(header[at : at + width]))  # type: ignore[attr-defined]
                not_a_number = b"9" * width  # tarfile refuses the header (ends the archive, past the first)
                header[at : at + width] = draw(st.sampled_from([*_number_forms(value, width), not_a_number]))
        signed = draw(st.booleans()) and any(byte > 127 for byte in header[:148] + header[156:])
        total = 256 + sum(struct.unpack_from("148b8x356b" if signed else "148B8x356B", header))
        header[148:156] = format(total, "o").rjust(6, "0").encode() + b"\0 "
        raw[offset : offset + 512] = header
        offset += 512 + -(-size // 512) * 512  # tarfile wrote a size only where data follows
    if draw(st.integers(0, 3)) == 0:  # one byte of a header changed: a bad checksum, or another member
        at = draw(st.integers(0, min(len(raw), 2048) - 1))
        raw[at] = draw(st.integers(0, 255))
    packed = gzip.compress(bytes(raw) + draw(st.binary(max_size=600)), mtime=0)
    return packed + (draw(st.binary(min_size=1, max_size=8)) if draw(st.integers(0, 7)) == 0 else b"")


@settings(max_examples=settings.default.max_examples * 3)  # a difference is rare: look thrice as hard
@given(st.one_of(valid_tarballs(), valid_tarballs(), tarballs(), mutated()).map(_gzipped))
def test_the_fast_path_decides_only_as_the_streaming_reader_does(data):
    """reader._read_whole (a tarball whole in memory) either leaves a tarball to the
    streaming reader or makes the very record that reader makes of it. (That it decides
    the tarballs npm pack makes: tests/test_reader.py.)"""
    path = _SCRATCH / "fast.tgz"
    path.write_bytes(data)
    store = reader.ReadmeStore(_SCRATCH / "readmes")
    fast = reader._read_whole(data, "fast.tgz", path.stat().st_mtime, store)
    try:
        slow = reader.read_tarball(path, "fast.tgz", None, store, whole=False)
    except TarballError:
        assert fast is None
        return
    assert fast is None or fast == slow
