import base64
import gzip
import hashlib
import io
import json
import os
import re
import struct
import subprocess
import sys
import tarfile
import zlib

import pytest

from staticreg.build import reader
from staticreg.build.readmes import ReadmeStore
from staticreg.errors import TarballError
from tests.helpers import file_member, link_member, make_tarball, special_member, tar_bytes

MANIFEST = {"name": "demo", "version": "1.0.0"}


def read(path, copy_to=None):
    return reader.read_tarball(path, path.name, copy_to)


def test_reads_manifest_hashes_and_counts(tarballs, tmp_path):
    path = make_tarball(tarballs, MANIFEST, {"index.js": "x", "lib/a.js": "yy", "README.md": "# Demo"})
    copy = tmp_path / "copy.tgz"
    store = ReadmeStore(tmp_path / "readmes")
    record = reader.read_tarball(path, path.name, copy, store)
    data = path.read_bytes()
    assert record.manifest == MANIFEST
    assert record.shasum == hashlib.sha1(data).hexdigest()
    assert record.integrity == "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()
    assert record.size == len(data)
    assert copy.read_bytes() == data
    assert record.file_count == 4
    assert record.unpacked_size == len(b'{\n  "name": "demo",\n  "version": "1.0.0"\n}') + 1 + 2 + 6
    assert store.get(record.readme) == "# Demo"
    assert record.readme_filename == "README.md"
    assert read(path).readme is None  # without a store, no README is kept
    assert not record.has_binding_gyp and not record.has_shrinkwrap
    assert record.mtime == os.stat(path).st_mtime


def test_plain_tar_is_accepted_and_hashed_as_is(tarballs):
    path = make_tarball(tarballs, MANIFEST, compress=False)
    record = read(path)
    assert record.manifest["name"] == "demo"
    assert record.shasum == hashlib.sha1(path.read_bytes()).hexdigest()


def test_any_single_root_folder_name_works_and_decoys_are_ignored(tarballs):
    decoys = {
        "lib/support/package.json": '{"name": "nested", "version": "9.9.9"}',
        "._package.json": "\x00\x05\x16\x07 AppleDouble",
    }
    path = make_tarball(tarballs, MANIFEST, decoys, root="1289345009202-0.32962723495438695")
    assert read(path).manifest == MANIFEST


def test_bom_is_stripped(tarballs):
    path = make_tarball(tarballs, b"\xef\xbb\xbf" + b'{"name": "demo", "version": "1.0.0"}', filename="bom.tgz")
    assert read(path).manifest == MANIFEST


@pytest.mark.parametrize(
    ("content", "expected", "written"),
    [
        # big integers stay exact (JavaScript would round this one; we keep what the file says)
        (
            b'{"name": "demo", "version": "1.0.0", "n": 123456789012345678901234567890}',
            {"n": 123456789012345678901234567890},
            b'"n":123456789012345678901234567890',
        ),
        # a key twice: the last value, as JSON.parse (and so npm) reads it, where the first one was
        (
            b'{"version": "0.0.1", "name": "demo", "version": "1.0.0"}',
            {"version": "1.0.0"},
            b'"version":"1.0.0","name":"demo"',
        ),
        # a lone surrogate: kept, and written back as the same escape
        (
            b'{"name": "demo", "version": "1.0.0", "description": "a\\ud800b"}',
            {"description": "a\ud800b"},
            b'"description":"a\\ud800b"',
        ),
        # a byte order mark: dropped
        (b'\xef\xbb\xbf{"name": "demo", "version": "1.0.0"}', {"name": "demo"}, b'"name":"demo"'),
    ],
)
def test_package_json_edge_cases_have_one_meaning(tarballs, content, expected, written):
    from staticreg.npm import documents

    record = read(make_tarball(tarballs, content, filename="edge.tgz"))
    manifest = record.manifest
    assert {k: manifest[k] for k in expected} == expected
    assert written in documents.dumps(manifest)


def test_binding_gyp_and_shrinkwrap_at_the_root_are_noticed(tarballs):
    path = make_tarball(tarballs, MANIFEST, {"binding.gyp": "{}", "npm-shrinkwrap.json": "{}"})
    record = read(path)
    assert record.has_binding_gyp and record.has_shrinkwrap


def test_nested_binding_gyp_does_not_count(tarballs):
    path = make_tarball(tarballs, MANIFEST, {"deps/binding.gyp": "{}"})
    assert not read(path).has_binding_gyp


def test_readme_prefers_markdown_and_is_capped(tarballs, monkeypatch, tmp_path):
    monkeypatch.setattr(reader, "MAX_README_BYTES", 10)
    path = make_tarball(tarballs, MANIFEST, {"readme.txt": "plain", "Readme.markdown": "m" * 50, "README.md": "x" * 50})
    store = ReadmeStore(tmp_path / "readmes")
    record = reader.read_tarball(path, path.name, None, store)
    assert record.readme_filename == "README.md"
    assert store.get(record.readme) == "x" * 10


def test_links_inside_the_package_give_a_warning(tarballs):
    path = make_tarball(tarballs, MANIFEST, {"lib/a.js": "a"}, extra=[link_member("package/index.js", "lib/a.js")])
    assert "link" in read(path).warnings[0]


@pytest.mark.parametrize(
    ("extra", "reason"),
    [
        ([file_member("/etc/passwd", b"x")], "absolute path"),
        ([file_member("package/../../evil", b"x")], "'..'"),
        ([file_member("./package/index.js", b"x")], "under './'"),
        ([file_member("other/index.js", b"x")], "more than one top-level folder"),
        ([file_member("toplevel.js", b"x")], "not inside a folder"),
        ([link_member("package/evil", "../../etc/passwd")], "points outside"),
        ([link_member("package/evil", "/etc/passwd")], "points outside"),
        ([link_member("package/evil", "../other/x", tarfile.LNKTYPE)], "points outside"),
        ([special_member("package/dev", tarfile.CHRTYPE)], "device or a fifo"),
        ([special_member("package/fifo", tarfile.FIFOTYPE)], "device or a fifo"),
    ],
)
def test_unsafe_or_broken_members_are_refused(tarballs, extra, reason):
    path = make_tarball(tarballs, MANIFEST, extra=extra)
    with pytest.raises(TarballError, match=reason) as info:
        read(path)
    assert info.value.path == path.name


def test_dot_slash_package_root_is_refused(tarballs):
    path = make_tarball(tarballs, MANIFEST, root="./package")
    with pytest.raises(TarballError, match=re.escape("under './'")):
        read(path)


@pytest.mark.parametrize("kind", [tarfile.SYMTYPE, tarfile.LNKTYPE])
def test_package_json_as_a_link_is_refused(tarballs, kind):
    path = make_tarball(
        tarballs,
        None,
        {"real.json": '{"name":"demo","version":"1.0.0"}'},
        extra=[
            link_member("package/package.json", "real.json" if kind == tarfile.SYMTYPE else "package/real.json", kind)
        ],
        filename="link.tgz",
    )
    with pytest.raises(TarballError, match=re.escape("package.json is a link")):
        read(path)


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"not json", "not valid JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b'"text"', "not a JSON object"),
        (b"\xff\xfe{}", "not UTF-8"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply|not valid JSON"),
        (b'{"name": "demo", "version": NaN}', "not valid JSON"),
    ],
)
def test_bad_package_json_is_refused(tarballs, content, reason):
    path = make_tarball(tarballs, content, filename="bad.tgz")
    with pytest.raises(TarballError, match=reason):
        read(path)


def test_missing_package_json(tarballs):
    path = make_tarball(tarballs, None, {"index.js": "x"}, filename="nojson.tgz")
    with pytest.raises(TarballError, match=re.escape("no package.json")):
        read(path)


def test_huge_package_json_is_refused_before_reading(tarballs, monkeypatch):
    monkeypatch.setattr(reader, "MAX_PACKAGE_JSON_BYTES", 100)
    path = make_tarball(tarballs, {"name": "demo", "version": "1.0.0", "pad": "x" * 200})
    with pytest.raises(TarballError, match="larger than"):
        read(path)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty"),
        (b"hello, this is not a tarball at all" * 20, "not a valid tar"),
        (b"\x1f\x8b\x08\x00garbage", "gzip|tar"),
    ],
)
def test_not_a_tarball(tarballs, data, reason):
    path = tarballs / "x.tgz"
    path.write_bytes(data)
    with pytest.raises(TarballError, match=reason):
        read(path)


def test_truncated_gzip_is_refused(tarballs):
    good = make_tarball(tarballs, MANIFEST, {"index.js": "x" * 5000})
    data = good.read_bytes()
    for cut in (len(data) // 2, len(data) - 4):
        path = tarballs / f"cut-{cut}.tgz"
        path.write_bytes(data[:cut])
        with pytest.raises(TarballError, match=r"truncated|tar|gzip"):
            read(path)


def _gzip_parts(path):
    """(header, deflate data, crc32, length) of a tarball make_tarball wrote (a 10-byte header)."""
    data = path.read_bytes()
    crc, size = struct.unpack("<II", data[-8:])
    return data[:10], data[10:-8], crc, size


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        ("crc", "gzip data is corrupt"),
        ("length", "gzip data is corrupt"),
        ("method", "gzip data is corrupt"),
        ("reserved flag", r"gzip data is corrupt \(unknown header flags set\)"),
        ("header crc", "gzip data is corrupt"),
        ("deflate data", "gzip data is corrupt"),
        ("cut trailer", "truncated"),
    ],
)
def test_broken_gzip_gives_the_same_error_with_either_inflate(tarballs, monkeypatch, damage, reason):
    """ISA-L's inflate where it is installed, zlib's where not: a broken file is refused alike,
    but for the library's own words in brackets (ISA-L alone would accept reserved header
    flags, which zlib, and so npm, refuses)."""
    assert reader._inflate.__name__ == "isal.isal_zlib"  # a plain dependency wherever it has a wheel
    good = make_tarball(tarballs, MANIFEST, {"index.js": os.urandom(3000).hex()})
    header, body, crc, size = _gzip_parts(good)
    trailer = struct.pack("<II", crc, size)
    data = {
        "crc": header + body + struct.pack("<II", crc ^ 1, size),
        "length": header + body + struct.pack("<II", crc, size + 1),
        "method": header[:2] + b"\x07" + header[3:] + body + trailer,
        "reserved flag": header[:3] + b"\x20" + header[4:] + body + trailer,
        "header crc": header[:3] + b"\x02" + header[4:] + b"\0\0" + body + trailer,
        "deflate data": header + body[:40] + bytes(b ^ 0x55 for b in body[40:80]) + body[80:] + trailer,
        "cut trailer": header + body + trailer[:3],
    }[damage]
    path = tarballs / "broken.tgz"
    path.write_bytes(data)
    errors = []
    for inflate in (reader._inflate, zlib):
        monkeypatch.setattr(reader, "_inflate", inflate)
        with pytest.raises(TarballError, match=reason) as caught:
            read(path)
        errors.append(caught.value)
        assert read(good).manifest == MANIFEST
    assert [re.sub(r" \(.*\)$", "", str(e)) for e in errors] == [f"broken.tgz: {errors[0].reason.split(' (')[0]}"] * 2
    assert [e.ends_early for e in errors] == [damage == "cut trailer"] * 2


def test_inflate_is_the_readers(tarballs, monkeypatch):
    """reader.inflate (the benchmark's read floor) and the reader inflate alike, in small reads too."""
    raw = os.urandom(100_000) + bytes(300_000)
    packed = gzip.compress(raw)
    assert reader.inflate(packed) == raw and reader.inflate(packed + b"after") == raw
    with pytest.raises(EOFError):
        reader.inflate(packed[:-1])
    with pytest.raises(reader.INFLATE_ERRORS):
        reader.inflate(packed[:20] + bytes(100) + packed[120:])
    big = make_tarball(tarballs, MANIFEST, {"data.bin": raw, "README.md": "# big"})
    whole = read(big)
    monkeypatch.setattr(reader, "CHUNK", 97)  # many small reads, each inflating at most 388 bytes
    assert read(big) == whole and whole.unpacked_size > len(raw)


def test_without_isal_the_reader_inflates_with_zlib(tarballs):
    """Where isal has no wheel (Windows on ARM, PyPy) the standard library's zlib inflates."""
    path = make_tarball(tarballs, MANIFEST, {"index.js": "x" * 5000})
    code = (
        "import sys; sys.modules['isal'] = None\n"  # import isal now fails, as where it is not installed
        "from pathlib import Path; from staticreg.build import reader\n"
        f"record = reader.read_tarball(Path({str(path)!r}), 'x.tgz')\n"
        "sys.stdout.write(reader._inflate.__name__ + ' ' + record.integrity)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out == "zlib " + read(path).integrity


def test_trailing_garbage_after_gzip_is_a_warning(tarballs):
    path = make_tarball(tarballs, MANIFEST)
    path.write_bytes(path.read_bytes() + b"GARBAGE")
    record = read(path)
    assert any("after the end of the gzip" in w for w in record.warnings)
    assert record.shasum == hashlib.sha1(path.read_bytes()).hexdigest()


def test_gzip_bomb_is_refused_quickly(tarballs, monkeypatch):
    monkeypatch.setattr(reader, "MAX_UNPACKED_BYTES", 10 * 1024**2)
    raw = tar_bytes(
        [
            file_member("package/package.json", b'{"name":"demo","version":"1.0.0"}'),
            file_member("package/zeros", b"\0" * (50 * 1024**2)),
        ]
    )
    path = tarballs / "bomb.tgz"
    path.write_bytes(gzip.compress(raw, compresslevel=9))
    assert path.stat().st_size < 200_000
    with pytest.raises(TarballError, match="expands to more than"):
        read(path)


def test_too_many_members_is_refused(tarballs, monkeypatch):
    monkeypatch.setattr(reader, "MAX_MEMBERS", 50)
    path = make_tarball(tarballs, MANIFEST, {f"f{i}.js": "" for i in range(60)})
    with pytest.raises(TarballError, match="more than 50 members"):
        read(path)


def test_a_folder_named_like_a_tarball(tarballs):
    folder = tarballs / "x.tgz"
    folder.mkdir()
    with pytest.raises(TarballError, match="folder"):
        read(folder)


def test_unreadable_file(tarballs, monkeypatch):
    # Root reads any file whatever its mode, so the refusal is injected where open() is called.
    path = make_tarball(tarballs, MANIFEST)

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(reader, "open", refuse, raising=False)
    with pytest.raises(TarballError, match="permission denied"):
        read(path)


# -- hostile headers: what tarfile itself would choke on -------------------------------


def raw_header(name, kind, size):
    info = tarfile.TarInfo(name)
    info.type = kind
    info.size = size
    return info.tobuf(format=tarfile.USTAR_FORMAT)


def write_raw(folder, filename, raw):
    path = folder / filename
    path.write_bytes(gzip.compress(raw + b"\0" * 1024, mtime=0))
    return path


def manifest_member():
    data = b'{"name":"demo","version":"1.0.0"}'
    return raw_header("package/package.json", tarfile.REGTYPE, len(data)) + data.ljust(512, b"\0")


def test_a_long_chain_of_extended_headers_is_refused_not_a_recursion_error(tarballs):
    longname = raw_header("././@LongLink", tarfile.GNUTYPE_LONGNAME, 20) + b"package/x".ljust(512, b"\0")
    path = write_raw(tarballs, "chain.tgz", manifest_member() + longname * 3000 + raw_header("x", tarfile.REGTYPE, 0))
    with pytest.raises(TarballError, match="extended headers in a row"):
        read(path)


def test_a_huge_pax_header_is_refused_before_it_is_read(tarballs):
    size = 64 * 1024**2
    path = write_raw(tarballs, "pax.tgz", manifest_member() + raw_header("pax", tarfile.XHDTYPE, size) + b"\0" * size)
    with pytest.raises(TarballError, match="extended header is larger than"):
        read(path)


def test_gnu_sparse_members_are_refused(tarballs):
    path = write_raw(tarballs, "sparse.tgz", manifest_member() + raw_header("package/s", tarfile.GNUTYPE_SPARSE, 0))
    with pytest.raises(TarballError, match="sparse"):
        read(path)


@pytest.mark.parametrize(
    "pax",
    [
        {"GNU.sparse.major": "1", "GNU.sparse.minor": "0", "GNU.sparse.realsize": "10"},
        {"GNU.sparse.map": "0,x,1"},
        {"GNU.sparse.size": "not a number"},
    ],
)
def test_pax_sparse_members_are_refused(tarballs, pax):
    info = tarfile.TarInfo("package/s")
    info.pax_headers = pax
    path = make_tarball(tarballs, MANIFEST, extra=[(info, b"")], filename="paxsparse.tgz")
    with pytest.raises(TarballError, match=r"sparse|broken header"):
        read(path)


@pytest.mark.parametrize(
    "extra",
    [
        [file_member("package/..\\..\\evil", b"x")],
        [file_member("\\evil", b"x")],
        [link_member("package/h", "package/..\\..\\x", tarfile.LNKTYPE)],
        [link_member("package/s", "..\\..\\x")],
    ],
)
def test_backslashes_cannot_hide_a_way_out(tarballs, extra):
    path = make_tarball(tarballs, MANIFEST, extra=extra, filename="backslash.tgz")
    with pytest.raises(TarballError, match=r"'\.\.'|absolute|outside"):
        read(path)


@pytest.mark.parametrize(
    ("links", "reason"),
    [
        ([link_member("package/a/b/up", "../.."), link_member("package/x", "a/b/up/..")], "through other links"),
        ([link_member("package/a", "b"), link_member("package/b", "a")], "loop"),
    ],
)
def test_symlinks_are_followed_through_each_other(tarballs, links, reason):
    path = make_tarball(tarballs, MANIFEST, {"a/b/f.js": "x"}, extra=links, filename="links.tgz")
    with pytest.raises(TarballError, match=reason):
        read(path)


def test_symlinks_through_symlinks_inside_the_package_are_fine(tarballs):
    links = [link_member("package/lib", "src"), link_member("package/main.js", "lib/../lib/index.js")]
    path = make_tarball(tarballs, MANIFEST, {"src/index.js": "x"}, extra=links, filename="ok.tgz")
    assert read(path).manifest == MANIFEST


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b'{"name": "demo", "version": "1.0.0", "n": 1e400}', "too large"),
        (b'{"name": "demo", "a": ' + b"[" * 150 + b"]" * 150 + b"}", "nested more than 100"),
    ],
)
def test_package_json_that_cannot_be_written_back_is_refused(tarballs, content, reason):
    path = make_tarball(tarballs, content, filename="json.tgz")
    with pytest.raises(TarballError, match=reason):
        read(path)


def test_package_json_twice_uses_the_last_with_a_warning(tarballs):
    second = file_member("package/package.json", b'{"name":"demo","version":"2.0.0"}')
    path = make_tarball(tarballs, MANIFEST, extra=[second], filename="twice.tgz")
    record = read(path)
    assert record.manifest["version"] == "2.0.0"
    assert any("2 times" in w for w in record.warnings)


def test_a_fifo_named_like_a_tarball_is_refused_without_waiting(tarballs):
    path = tarballs / "fifo.tgz"
    os.mkfifo(path)
    with pytest.raises(TarballError, match="not a regular file"):
        read(path)


def test_a_failing_copy_is_an_output_error_not_the_tarballs(tarballs, tmp_path):
    path = make_tarball(tarballs, MANIFEST)
    with pytest.raises(OSError, match=re.escape("copy.tgz")) as info:  # the message names the copy
        read(path, tmp_path / "no-such-folder" / "copy.tgz")
    assert not isinstance(info.value, TarballError)


def test_a_file_that_stops_short_says_so_and_other_faults_do_not(tarballs):
    """staticreg serve waits for such a file to be complete instead of reporting it broken."""
    good = make_tarball(tarballs, MANIFEST, {"index.js": "x" * 5000})
    data = good.read_bytes()
    cases = {
        "cut.tgz": data[: len(data) // 2],
        "empty.tgz": b"",
        "plain-cut.tgz": gzip.decompress(data)[:700],
        "garbage.tgz": b"\x1f\x8b\x08\x00garbage" + b"\0" * 600,
        "not-tar.tgz": b"hello" * 200,
    }
    short = {}
    for name, content in cases.items():
        (tarballs / name).write_bytes(content)
        with pytest.raises(TarballError) as info:
            read(tarballs / name)
        short[name] = info.value.ends_early
    assert short == {
        "cut.tgz": True,
        "empty.tgz": True,
        "plain-cut.tgz": True,
        "garbage.tgz": False,
        "not-tar.tgz": False,
    }


def test_the_fast_path_reads_what_npm_pack_makes_and_leaves_the_rest(tarballs, monkeypatch):
    """Plain ustar members (folders, files, links, ustar's prefix for a long path) are read
    whole in memory; a pax header goes to the streaming reader, with the same result."""
    long_path = "lib/" + "/".join(["a-rather-long-folder-name"] * 5) + "/index.js"  # > 100 bytes: ustar's prefix
    plain = tarballs / "plain.tgz"  # as npm pack writes it: ustar, a long path split into prefix and name
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for info, data in [
            (tarfile.TarInfo("package"), None),
            file_member("package/package.json", json.dumps(MANIFEST).encode()),
            file_member("package/README.md", b"# Demo"),
            file_member(f"package/{long_path}", b"x"),
            link_member("package/link.js", "README.md"),
        ]:
            if data is None and not info.issym():
                info.type = tarfile.DIRTYPE
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    plain.write_bytes(gzip.compress(buf.getvalue(), mtime=0))
    pax = make_tarball(tarballs, MANIFEST, {"Ünïcode-name.js": "x"}, filename="pax.tgz")  # non-ASCII: a pax header
    streamed = {path.name: reader.read_tarball(path, path.name, whole=False) for path in (plain, pax)}
    assert reader._read_whole(plain.read_bytes(), "plain.tgz", plain.stat().st_mtime, None) == streamed["plain.tgz"]
    assert reader._read_whole(pax.read_bytes(), "pax.tgz", pax.stat().st_mtime, None) is None

    def no_streaming(*args):
        raise AssertionError("the streaming reader was used")

    monkeypatch.setattr(reader, "_scan", no_streaming)
    assert read(plain) == streamed["plain.tgz"]
    with pytest.raises(AssertionError, match="streaming"):
        read(pax)


def test_a_tarball_that_inflates_past_the_fast_path_s_limit_is_streamed_without_inflating_it_twice(
    tarballs, monkeypatch
):
    big = make_tarball(tarballs, MANIFEST, {"big.bin": bytes(reader.WHOLE_MAX_UNPACKED + 1)})
    data = big.read_bytes()
    assert len(data) <= reader.WHOLE_MAX_BYTES  # small enough to be read whole, too big to inflate whole
    assert read(big).unpacked_size > reader.WHOLE_MAX_UNPACKED  # the streaming reader reads it

    def no_inflate():
        raise AssertionError("inflated in the fast path")

    monkeypatch.setattr(reader, "gunzip", no_inflate)  # gzip's trailer says the size first
    assert reader._read_whole(data, big.name, 0.0, None) is None
