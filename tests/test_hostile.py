"""The catalogue of hostile and broken input, run through the real `staticreg build`.

Every case is made here, by the test, next to two good packages and a previous
output built from them. For each case the command runs in a subprocess and must:
exit 1 (rejected) or 0 (accepted, maybe with a warning); print one line naming
the file and the reason; never print a traceback; stay within a memory bound;
change nothing outside the output but its report, its lock and the kept publish
times; and, when it rejects, leave the previous output exactly as it was. One
more run puts every case in one input folder with --keep-going: the rest builds
and every reject is in the report.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import shutil
import struct
import tarfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.helpers import changes, file_member, link_member, make_tarball, snapshot, special_member
from tests.process import run_cli

BASE_URL = "http://registry.test/"
GOOD = ("good", "@s/good")
PEAK_RSS_LIMIT_KIB = 256 * 1024  # the bomb and the million members stay far below this


def manifest(case: str, **fields) -> dict:
    return {"name": f"hostile-{case}", "version": "1.0.0", **fields}


def tarball(folder: Path, case: str, filename: str | None = None, **kwargs) -> list[str]:
    kwargs.setdefault("manifest", manifest(case))
    path = make_tarball(folder, filename=filename or f"{case}.tgz", **kwargs)
    return [path.name]


def with_member(*members) -> Callable[[Path, str], list[str]]:
    return lambda folder, case: tarball(folder, case, extra=list(members))


def with_manifest(data: dict | bytes) -> Callable[[Path, str], list[str]]:
    return lambda folder, case: tarball(folder, case, manifest=data)


def raw_tarball(data: bytes) -> Callable[[Path, str], list[str]]:
    def make(folder: Path, case: str) -> list[str]:
        (folder / f"{case}.tgz").write_bytes(data)
        return [f"{case}.tgz"]

    return make


def header(name: str, kind: bytes, size: int) -> bytes:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.size = size
    return info.tobuf(format=tarfile.USTAR_FORMAT)


def package_json_member(case: str) -> bytes:
    data = json.dumps(manifest(case)).encode()
    return header("package/package.json", tarfile.REGTYPE, len(data)) + data.ljust(-(-len(data) // 512) * 512, b"\0")


def gzip_of_repeats(head: bytes, chunk: bytes, count: int, tail: bytes) -> bytes:
    """gzip(head + chunk * count + tail), without compressing the repeats one by one:
    after a full flush deflate starts afresh, so one compressed chunk can be repeated."""
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15)
    body = deflate.compress(head) + deflate.flush(zlib.Z_FULL_FLUSH)
    piece = deflate.compress(chunk) + deflate.flush(zlib.Z_FULL_FLUSH)
    end = deflate.compress(tail) + deflate.flush()
    crc = zlib.crc32(head)
    for _ in range(count):
        crc = zlib.crc32(chunk, crc)
    crc = zlib.crc32(tail, crc)
    size = len(head) + len(chunk) * count + len(tail)
    gzip_header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
    return gzip_header + body + piece * count + end + struct.pack("<II", crc, size & 0xFFFFFFFF)


def million_members(folder: Path, case: str) -> list[str]:
    member = header("package/f.js", tarfile.REGTYPE, 0)
    data = gzip_of_repeats(package_json_member(case), member * 10_000, 100, b"\0" * 1024)
    (folder / f"{case}.tgz").write_bytes(data)
    return [f"{case}.tgz"]


def gzip_bomb(folder: Path, case: str) -> list[str]:
    zeros = 1100 * 1024**2  # past the 1 GiB the reader allows
    head = package_json_member(case) + header("package/zeros.bin", tarfile.REGTYPE, zeros)
    data = gzip_of_repeats(head, bytes(1024**2), zeros // 1024**2, b"\0" * 1024)
    assert len(data) < 4 * 1024**2  # a few MiB that expand to more than 1 GiB
    (folder / f"{case}.tgz").write_bytes(data)
    return [f"{case}.tgz"]


def extended_header_chain(folder: Path, case: str) -> list[str]:
    longname = header("././@LongLink", tarfile.GNUTYPE_LONGNAME, 20) + b"package/x.js".ljust(512, b"\0")
    raw = package_json_member(case) + longname * 5000 + header("x", tarfile.REGTYPE, 0) + b"\0" * 1024
    return raw_tarball(gzip.compress(raw, mtime=0))(folder, case)


def huge_pax_header(folder: Path, case: str) -> list[str]:
    size = 64 * 1024**2
    raw = package_json_member(case) + header("pax", tarfile.XHDTYPE, size) + bytes(size) + b"\0" * 1024
    return raw_tarball(gzip.compress(raw, compresslevel=1, mtime=0))(folder, case)


def symlink_chain(folder: Path, case: str) -> list[str]:
    links = [link_member("package/a/b/up", "../.."), link_member("package/x", "a/b/up/..")]
    return tarball(folder, case, files={"a/b/f.js": "x"}, extra=links)


def package_json_as_link(kind: bytes) -> Callable[[Path, str], list[str]]:
    def make(folder: Path, case: str) -> list[str]:
        target = "real.json" if kind == tarfile.SYMTYPE else "package/real.json"
        real = json.dumps(manifest(case))
        return tarball(
            folder,
            case,
            manifest=None,
            files={"real.json": real},
            extra=[link_member("package/package.json", target, kind)],
        )

    return make


def package_json_folder(folder: Path, case: str) -> list[str]:
    info = tarfile.TarInfo("package/package.json")
    info.type = tarfile.DIRTYPE
    return tarball(folder, case, manifest=None, files={"index.js": "x"}, extra=[(info, None)])


def truncated(folder: Path, case: str) -> list[str]:
    path = Path(tarball(folder, case, files={"index.js": os.urandom(20_000).hex()})[0])
    data = (folder / path).read_bytes()
    (folder / path).write_bytes(data[: len(data) // 2])
    return [path.name]


def trailing_garbage(folder: Path, case: str) -> list[str]:
    name = tarball(folder, case)[0]
    with open(folder / name, "ab") as f:
        f.write(b"GARBAGE AFTER THE GZIP STREAM")
    return [name]


def folder_named_like_a_tarball(folder: Path, case: str) -> list[str]:
    (folder / f"{case}.tgz").mkdir()
    return [f"{case}.tgz"]


def unreadable(folder: Path, case: str) -> list[str]:
    name = tarball(folder, case)[0]
    os.chmod(folder / name, 0)  # the build runs without root's read override (tests/process.py)
    return [name]


def link_out_of_the_input(folder: Path, case: str) -> list[str]:
    outside = folder.parent.parent / f"outside-{case}"  # beside the input folder, not in it
    name = tarball(outside, case)[0]
    (folder / f"{case}.tgz").symlink_to(outside / name)
    return [f"{case}.tgz"]


def link_inside_the_input(folder: Path, case: str) -> list[str]:
    name = tarball(folder, case, filename=f"{case}-real.tgz")[0]
    (folder / f"{case}.tgz").symlink_to(name)
    return []


def link_loop(folder: Path, case: str) -> list[str]:
    (folder / f"{case}.tgz").symlink_to(f"{case}.tgz")
    return [f"{case}.tgz"]


def fifo_in_the_input(folder: Path, case: str) -> list[str]:
    os.mkfifo(folder / f"{case}.tgz")
    return [f"{case}.tgz"]


def two_files(first: dict, second: dict, same_bytes: bool = False) -> Callable[[Path, str], list[str]]:
    def make(folder: Path, case: str) -> list[str]:
        one = tarball(folder, case, filename=f"{case}-one.tgz", manifest=first)[0]
        if same_bytes:
            shutil.copyfile(folder / one, folder / f"{case}-two.tgz")
            return []
        return [one, tarball(folder, case, filename=f"{case}-two.tgz", manifest=second, files={"x.js": "other"})[0]]

    return make


def plain_tar(folder: Path, case: str) -> list[str]:
    return tarball(folder, case, compress=False)


def odd_root(folder: Path, case: str) -> list[str]:
    return tarball(folder, case, root="1289345009202-0.32962723495438695")


def named_after_another_package(folder: Path, case: str) -> list[str]:
    return tarball(folder, case, filename="left-pad-1.0.0.tgz")


@dataclass(frozen=True)
class Case:
    id: str
    make: Callable[[Path, str], list[str]]  # makes the case in a folder; returns the files to be named
    outcome: str  # "reject", "accept" or "warn"
    reason: str = ""  # a regular expression the reason (or warning) must match
    package: str | None = None  # for accepted cases: the package that must be built
    heavy: bool = False  # big on purpose: run alone only


LONG = "n" * 200
CATALOGUE = [
    # members that escape, or that clients would install broken
    Case("dotdot-member", with_member(file_member("package/../../evil.js", b"x")), "reject", r"has '\.\.' in its path"),
    Case("absolute-member", with_member(file_member("/etc/evil.js", b"x")), "reject", "absolute path"),
    Case("drive-letter-member", with_member(file_member("C:/evil.js", b"x")), "reject", "absolute path"),
    Case("backslash-dotdot", with_member(file_member("package/..\\..\\evil.js", b"x")), "reject", r"'\.\.'"),
    Case("dot-slash-package", lambda f, c: tarball(f, c, root="./package"), "reject", "under './'"),
    Case(
        "two-top-folders", with_member(file_member("other/index.js", b"x")), "reject", "more than one top-level folder"
    ),
    Case("file-at-top-level", with_member(file_member("index.js", b"x")), "reject", "not inside a folder"),
    Case("package-json-symlink", package_json_as_link(tarfile.SYMTYPE), "reject", "package.json is a link"),
    Case("package-json-hardlink", package_json_as_link(tarfile.LNKTYPE), "reject", "package.json is a link"),
    Case("symlink-outside", with_member(link_member("package/x", "../../etc/passwd")), "reject", "points outside"),
    Case("symlink-absolute", with_member(link_member("package/x", "/etc/passwd")), "reject", "points outside"),
    Case(
        "hardlink-outside",
        with_member(link_member("package/x", "../etc/passwd", tarfile.LNKTYPE)),
        "reject",
        "points outside",
    ),
    Case("symlink-through-symlink", symlink_chain, "reject", "outside the package through other links"),
    Case("char-device", with_member(special_member("package/tty", tarfile.CHRTYPE)), "reject", "device or a fifo"),
    Case("block-device", with_member(special_member("package/sda", tarfile.BLKTYPE)), "reject", "device or a fifo"),
    Case("fifo-member", with_member(special_member("package/pipe", tarfile.FIFOTYPE)), "reject", "device or a fifo"),
    Case("sparse-member", with_member(special_member("package/s", tarfile.GNUTYPE_SPARSE)), "reject", "sparse file"),
    Case("extended-header-chain", extended_header_chain, "reject", "extended headers in a row"),
    Case("huge-pax-header", huge_pax_header, "reject", "extended header is larger than 1024 KiB"),
    Case("gzip-bomb", gzip_bomb, "reject", "expands to more than 1024 MiB", heavy=True),
    Case("million-members", million_members, "reject", "more than 100000 members", heavy=True),
    Case(
        "link-inside",
        with_member(link_member("package/main.js", "index.js")),
        "warn",
        "link member",
        "hostile-link-inside",
    ),
    # package.json
    Case(
        "no-package-json",
        lambda f, c: tarball(f, c, manifest=None, files={"index.js": "x"}),
        "reject",
        "no package.json",
    ),
    Case("package-json-folder", package_json_folder, "reject", "no package.json"),
    Case(
        "huge-package-json",
        with_manifest(manifest("huge-package-json", pad="x" * (5 * 1024**2))),
        "reject",
        "larger than 4 MiB",
    ),
    Case("package-json-array", with_manifest(b"[1, 2, 3]"), "reject", "not a JSON object"),
    Case(
        "package-json-deep",
        with_manifest(b'{"a": ' + b'{"a": ' * 20_000 + b"1" + b"}" * 20_001),
        "reject",
        "nested too deeply",
    ),
    Case(
        "package-json-150-deep",
        with_manifest(b'{"a": ' + b"[" * 150 + b"]" * 150 + b"}"),
        "reject",
        "nested more than 100 levels",
    ),
    Case("package-json-latin-1", with_manifest(b'{"name": "caf\xe9", "version": "1.0.0"}'), "reject", "not UTF-8"),
    Case(
        "package-json-infinity", with_manifest(b'{"name": "x", "version": "1.0.0", "n": 1e999}'), "reject", "too large"
    ),
    Case("package-json-nan", with_manifest(b'{"name": "x", "version": "1.0.0", "n": NaN}'), "reject", "not valid JSON"),
    Case(
        "package-json-bom",
        with_manifest(b"\xef\xbb\xbf" + json.dumps(manifest("package-json-bom")).encode()),
        "accept",
        package="hostile-package-json-bom",
    ),
    Case(
        "package-json-twice",
        with_member(file_member("package/package.json", json.dumps(manifest("package-json-twice")).encode())),
        "warn",
        "package.json is in the tarball 2 times",
        "hostile-package-json-twice",
    ),
    # names
    Case("no-name", with_manifest({"version": "1.0.0"}), "reject", 'no "name" string'),
    Case("name-dotdot", with_manifest({"name": "../x", "version": "1.0.0"}), "reject", "starts with '.'"),
    Case(
        "name-scope-dotdot",
        with_manifest({"name": "@a/../../x", "version": "1.0.0"}),
        "reject",
        "characters npm does not allow",
    ),
    Case("name-slash", with_manifest({"name": "a/b", "version": "1.0.0"}), "reject", "characters npm does not allow"),
    Case(
        "name-percent-dots",
        with_manifest({"name": "%2e%2e", "version": "1.0.0"}),
        "reject",
        "characters npm does not allow",
    ),
    Case(
        "name-scope-percent",
        with_manifest({"name": "@a/%2e%2e%2fx", "version": "1.0.0"}),
        "reject",
        "characters npm does not allow",
    ),
    Case("name-dot", with_manifest({"name": ".hidden", "version": "1.0.0"}), "reject", "starts with '.'"),
    Case("name-underscore", with_manifest({"name": "_private", "version": "1.0.0"}), "reject", "starts with '_'"),
    Case("name-dash", with_manifest(manifest("name-dash", name="-dash-hostile")), "accept", package="-dash-hostile"),
    Case(
        "name-only-dash", with_manifest({"name": "-", "version": "1.0.0"}), "reject", "a path the registry itself uses"
    ),
    Case(
        "name-index-html",
        with_manifest({"name": "index.html", "version": "1.0.0"}),
        "reject",
        "a path the registry itself uses",
    ),
    Case(
        "name-node-modules", with_manifest({"name": "node_modules", "version": "1.0.0"}), "reject", "a name npm blocks"
    ),
    Case(
        "name-nul", with_manifest({"name": "a\u0000b", "version": "1.0.0"}), "reject", "characters npm does not allow"
    ),
    Case(
        "name-too-long", with_manifest({"name": "x" * 215, "version": "1.0.0"}), "reject", "longer than 214 characters"
    ),
    Case(
        "tarball-name-too-long",
        with_manifest({"name": f"@s/{LONG}", "version": "1.0.0-" + "x" * 60}),
        "reject",
        "longer than 255 bytes",
    ),
    Case(
        "name-case-collision",
        two_files({"name": "Hostile-Case", "version": "1.0.0"}, {"name": "hostile-case", "version": "1.0.0"}),
        "reject",
        "differ only in case",
    ),
    Case(
        "name-legacy-capitals",
        with_manifest(manifest("x", name="Hostile-JSONStream")),
        "warn",
        "legacy package name",
        "Hostile-JSONStream",
    ),
    # versions
    Case("no-version", with_manifest({"name": "hostile-no-version"}), "reject", 'no "version" string'),
    Case(
        "version-escapes",
        with_manifest(manifest("version-escapes", version="1.0.0/../../x")),
        "reject",
        "not valid semver",
    ),
    Case(
        "version-not-semver", with_manifest(manifest("version-not-semver", version="1.0")), "reject", "not valid semver"
    ),
    Case(
        "version-too-long",
        with_manifest(manifest("version-too-long", version="1.0.0-" + "a" * 300)),
        "reject",
        "longer than 256 characters",
    ),
    Case(
        "version-v-prefix",
        with_manifest(manifest("version-v-prefix", version="v1.0.0")),
        "warn",
        "read as '1.0.0'",
        "hostile-version-v-prefix",
    ),
    Case("same-version-other-bytes", two_files(manifest("same"), manifest("same")), "reject", "with different bytes"),
    Case(
        "same-version-same-bytes",
        two_files(manifest("twice"), manifest("twice"), same_bytes=True),
        "accept",
        package="hostile-twice",
    ),
    Case(
        "file-name-contradicts",
        named_after_another_package,
        "warn",
        "the file name suggests package 'left-pad'",
        "hostile-file-name-contradicts",
    ),
    # files that are not tarballs, or not usable ones
    Case("truncated-gzip", truncated, "reject", "truncated"),
    Case("empty-file", raw_tarball(b""), "reject", "the file is empty"),
    Case("not-a-tarball", raw_tarball(b"<html>404 Not Found</html>\n" * 40), "reject", "not a valid tar archive"),
    Case(
        "gzip-of-garbage",
        raw_tarball(gzip.compress(b"not a tar archive at all " * 100)),
        "reject",
        "not a valid tar archive",
    ),
    Case(
        "trailing-garbage",
        trailing_garbage,
        "warn",
        "data after the end of the gzip stream",
        "hostile-trailing-garbage",
    ),
    Case("plain-tar", plain_tar, "accept", package="hostile-plain-tar"),
    Case("odd-root-folder", odd_root, "accept", package="hostile-odd-root-folder"),
    Case("folder-named-tgz", folder_named_like_a_tarball, "reject", "is a folder, not a tarball"),
    Case("unreadable-file", unreadable, "reject", "permission denied"),
    Case("fifo-in-input", fifo_in_the_input, "reject", "not a regular file"),
    Case("symlink-out-of-input", link_out_of_the_input, "reject", "a link to a file outside the input folder"),
    Case("symlink-loop-in-input", link_loop, "reject", "cannot be read .*symbolic links"),
    Case("symlink-inside-input", link_inside_the_input, "accept", package="hostile-symlink-inside-input"),
]
assert len({c.id for c in CATALOGUE}) == len(CATALOGUE)


@pytest.fixture(scope="module")
def previous(tmp_path_factory) -> Path:
    """Two good packages and the output built from them, to copy for each case."""
    root = tmp_path_factory.mktemp("previous")
    make_tarball(root / "in", {"name": "good", "version": "1.0.0"}, {"README.md": "# good"})
    make_tarball(root / "in", {"name": "@s/good", "version": "1.0.0"})
    result = run_cli("build", root / "in", "-o", root / "work" / "out", "--base-url", BASE_URL, "-q")
    assert result.returncode == 0, result.stderr
    (root / "work" / "out.report.json").unlink()
    return root


def set_up(previous: Path, tmp_path: Path) -> Path:
    case_dir = tmp_path / "case"
    shutil.copytree(previous, case_dir, symlinks=True)
    return case_dir


def build(case_dir: Path, *flags: str):
    return run_cli("build", case_dir / "in", "-o", case_dir / "work" / "out", "--base-url", BASE_URL, "-q", *flags)


def packages_in(out: Path) -> set[str]:
    """The names of the package documents at <name>/index.json and @scope/<name>/index.json."""
    documents = list(out.glob("*/index.json")) + list(out.glob("@*/*/index.json"))
    return {json.loads(p.read_bytes())["name"] for p in documents}


# What a successful build may change beside its output: the kept publish times, the
# incremental cache and its records, and the spare (the output before, kept for the next build).
SUCCESS_BOOKKEEPING = {"in/staticreg-times.json", "work/.out.staticreg-cache"}
SUCCESS_FOLDERS = ("work/out/", "work/.out.staticreg-spare/", "work/.out.staticreg-records/")


def outside_output(changed: set[str]) -> set[str]:
    return {c for c in changed if c != "work/.out.staticreg-spare" and not c.startswith(SUCCESS_FOLDERS)}


def check_run(result) -> None:
    assert "Traceback" not in result.stderr + result.stdout, result.stderr
    assert result.peak_rss_kib < PEAK_RSS_LIMIT_KIB, f"peak memory {result.peak_rss_kib // 1024} MiB"


@pytest.mark.parametrize("case", CATALOGUE, ids=[c.id for c in CATALOGUE])
def test_catalogue(case: Case, previous: Path, tmp_path: Path) -> None:
    case_dir = set_up(previous, tmp_path)
    named = case.make(case_dir / "in", case.id)
    before = snapshot(case_dir)
    result = build(case_dir)
    check_run(result)
    changed = changes(before, snapshot(case_dir))
    bookkeeping = {"work/out.report.json", "work/.out.staticreg.lock"}
    if case.outcome == "reject":
        assert result.returncode == 1, result.stderr
        for name in named:
            lines = [line for line in result.stderr.splitlines() if line.strip().startswith(f"{name}: ")]
            assert len(lines) == 1, result.stderr
            assert re.search(case.reason, lines[0]), lines[0]
        assert changed <= bookkeeping, sorted(changed)  # the previous output is exactly as it was
        assert json.loads((case_dir / "work/out.report.json").read_bytes())["status"] == "failed"
    else:
        assert result.returncode == 0, result.stderr
        assert outside_output(changed) <= bookkeeping | SUCCESS_BOOKKEEPING
        assert packages_in(case_dir / "work/out") == set(GOOD) | {case.package}
        warnings = [line for line in result.stderr.splitlines() if line.startswith("warning: ")]
        if case.outcome == "warn":
            assert any(re.search(case.reason, line) for line in warnings), result.stderr
            assert any(line.startswith(f"warning: {name}: ") for name in named for line in warnings)
        else:
            assert not warnings and not result.stderr, result.stderr


def test_keep_going_builds_the_rest_and_reports_every_reject(previous: Path, tmp_path: Path) -> None:
    case_dir = set_up(previous, tmp_path)
    expected_rejects: dict[str, str] = {}
    expected_packages = set(GOOD)
    for case in CATALOGUE:
        if case.heavy:
            continue  # run alone above, with their memory measured
        folder = case_dir / "in" / case.id
        folder.mkdir()
        named = case.make(folder, case.id)
        if case.outcome == "reject":
            expected_rejects.update((f"{case.id}/{name}", case.reason) for name in named)
        else:
            expected_packages.add(case.package)
    before = snapshot(case_dir)
    result = build(case_dir, "--keep-going")
    check_run(result)
    assert result.returncode == 0, result.stderr
    report = json.loads((case_dir / "work/out.report.json").read_bytes())
    rejected = {r["file"]: r["reason"] for r in report["rejected"]}
    assert rejected.keys() == expected_rejects.keys()
    for file, reason in expected_rejects.items():
        assert re.search(reason, rejected[file]), (file, rejected[file])
        assert f"rejected: {file}: " in result.stderr
    assert packages_in(case_dir / "work/out") == expected_packages
    changed = changes(before, snapshot(case_dir))
    assert outside_output(changed) <= {"work/out.report.json", "work/.out.staticreg.lock"} | SUCCESS_BOOKKEEPING
