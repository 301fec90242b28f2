"""`staticreg check URL` against real nginx: clean on the configuration staticreg
writes, and each deliberately broken host is caught with its fix."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e import hosts
from tests.e2e.hosts import run_check
from tests.e2e.project import copy_examples
from tests.e2e.servers import free_port

pytestmark = pytest.mark.e2e


def no_json_type(conf: str) -> str:
    return conf.replace("application/json json;", "").replace(
        "default_type application/json;", "default_type application/octet-stream;"
    )


def no_slash_decoding(conf: str) -> str:
    # Like a host that takes the raw path as a file name: %2f and %2F find nothing.
    return conf.replace("    location ~ ", '    if ($request_uri ~* "%2f") { return 404; }\n    location ~ ', 1)


def cached_for_a_year(conf: str) -> str:
    return conf.replace('"public, max-age=0, must-revalidate"', '"public, max-age=31536000, immutable"')


def no_vary(conf: str) -> str:
    return conf.replace("add_header Vary $staticreg_vary;", "")


def remove_tarball(root: Path) -> None:
    (root / "demo-utils/-/demo-utils-1.2.0.tgz").unlink()


def corrupt_tarball(root: Path) -> None:
    path = root / "@demo/greet/-/greet-1.0.0.tgz"
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))


def stale_copy(root: Path) -> None:
    """A gzip copy older than its document (the document as it was without its last version)."""
    import gzip
    import json

    document = json.loads((root / "demo-utils/index.json").read_bytes())
    document["versions"].pop(document["dist-tags"]["latest"])
    (root / "demo-utils/index.json.gz").write_bytes(gzip.compress(json.dumps(document).encode(), mtime=0))


def damaged_copy(root: Path) -> None:
    path = root / "@demo/greet/index.corgi.gz"
    path.write_bytes(path.read_bytes()[:-20])


BROKEN = {
    "no JSON content type": (no_json_type, None, "Content-Type is application/octet-stream, not application/json"),
    "no %2f decoding": (
        no_slash_decoding,
        None,
        "answers 404 (npm, yarn and bun ask for this URL). Fix: the host must decode %2f and %2F",
    ),
    "no %2F decoding": (no_slash_decoding, None, "@demo%2Fgreet: answers 404 (pnpm asks for this URL)"),
    "stale cache headers": (
        cached_for_a_year,
        None,
        "Cache-Control: public, max-age=31536000, immutable keeps a stale document",
    ),
    "no Vary": (no_vary, None, "negotiates on Accept without Vary: Accept"),
    "a tarball missing": (
        None,
        remove_tarball,
        "demo-utils-1.2.0.tgz: answers 404: every install of demo-utils@1.2.0 fails",
    ),
    "a corrupted tarball": (
        None,
        corrupt_tarball,
        "greet-1.0.0.tgz: the bytes served do not match @demo/greet@1.0.0's integrity",
    ),
    "a stale gzip copy": (None, stale_copy, "demo-utils: the gzip-encoded answer differs from the plain one"),
    "a damaged gzip copy": (
        None,
        damaged_copy,
        "@demo%2fgreet (and 1 more): says Content-Encoding: gzip, and is not gzip",
    ),
}


@pytest.fixture(scope="module")
def input_dir(scratch) -> Path:
    return copy_examples(scratch / "input")


def serve(scratch: Path, input_dir: Path, label: str, edit=None, mutate=None):
    port = free_port()
    root = scratch / f"registry-{label}"
    built = subprocess.run(
        [
            sys.executable,
            "-m",
            "staticreg",
            "build",
            str(input_dir),
            "-o",
            str(root),
            "-q",
            "--base-url",
            f"http://127.0.0.1:{port}/",
        ],
        capture_output=True,
        text=True,
    )
    assert built.returncode == 0, built.stderr
    if mutate:
        mutate(root)
    return hosts.running(hosts.nginx(root, scratch / f"nginx-{label}", port, edit=edit))


def test_check_is_clean_on_the_generated_nginx_configuration(scratch, input_dir):
    with serve(scratch, input_dir, "good") as server:
        result = run_check(server.url(), "--all")
    assert result.returncode == 0, result.stdout
    assert result.stdout.strip().splitlines() == [f"Checked 3 packages and 6 tarballs at {server.url()}: 0 problems."]


@pytest.mark.parametrize("label", list(BROKEN))
def test_check_catches_a_broken_host(scratch, input_dir, label):
    edit, mutate, expected = BROKEN[label]
    with serve(scratch, input_dir, label.replace(" ", "-").replace("%", ""), edit, mutate) as server:
        result = run_check(server.url(), "--all")
    assert result.returncode == 1, result.stdout
    problems = [line for line in result.stdout.splitlines() if line.startswith("problem: ")]
    assert any(expected in line for line in problems), result.stdout
    assert all(". Fix: " in line for line in problems)


def test_check_names_an_unreachable_registry_without_a_traceback():
    result = run_check(f"http://127.0.0.1:{free_port()}/")
    assert result.returncode == 1
    assert "cannot reach" in result.stderr and "Traceback" not in result.stderr


def test_check_catches_apache_answering_revalidations_in_full(input_dir):
    """mod_deflate's default ETag ("...-gzip") never matches If-None-Match. (A registry built
    without gzip copies: Apache sends the copies as they are, and mod_deflate never sees them.)"""

    def default_etag(conf: str) -> str:
        return conf.replace("DeflateAlterETag Remove", "")

    with hosts.readable_scratch() as scratch:  # Apache's workers do not run as root
        port = free_port()
        root = scratch / "registry"
        built = subprocess.run(
            [
                sys.executable,
                "-m",
                "staticreg",
                "build",
                str(input_dir),
                "-o",
                str(root),
                "-q",
                "--base-url",
                f"http://127.0.0.1:{port}/",
                "--no-precompress",
            ],
            capture_output=True,
            text=True,
        )
        assert built.returncode == 0, built.stderr
        with hosts.running(hosts.apache(root, scratch / "apache", port, edit=default_etag)) as server:
            broken = run_check(server.url())
        with hosts.running(hosts.apache(root, scratch / "apache-good", port)) as server:
            good = run_check(server.url())
    assert broken.returncode == 1 and "not 304, to If-None-Match with its own validator" in broken.stdout, broken.stdout
    assert good.returncode == 0, good.stdout
