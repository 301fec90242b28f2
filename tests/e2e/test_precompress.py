"""The build's gzip copies of package documents, served by nginx, Apache and Caddy with the
configurations staticreg writes: the copy's bytes as they are to a client that accepts gzip,
the plain document to one that does not, with the document's type; and npm and pnpm install
through nginx, getting the copies."""

from __future__ import annotations

import re
import urllib.request

import pytest

from staticreg.npm import layout
from tests.e2e import hosts
from tests.e2e.clients import client
from tests.e2e.project import build, check_installed, new_project
from tests.e2e.servers import free_port

pytestmark = pytest.mark.e2e

ABBREVIATED = "application/vnd.npm.install-v1+json; q=1.0, application/json; q=0.8, */*"
STARTS = {"nginx": hosts.nginx, "apache": hosts.apache, "caddy": hosts.caddy}


@pytest.fixture(scope="module", params=list(STARTS))
def served(request, scratch, matrix_input):
    """(host, its URL, the registry folder it serves, its server)."""
    host, port = request.param, free_port()
    output = build(matrix_input, scratch / f"registry-{host}", f"http://127.0.0.1:{port}/", scratch)
    with hosts.running(STARTS[host](output, scratch / f"state-{host}", port)) as server:
        yield host, server.url(), output, server


def get(url: str, accept: str, encoding: str | None) -> tuple[int, dict[str, str], bytes]:
    """The body as it came on the wire (urllib decodes nothing)."""
    asked = {"Accept": accept} | ({"Accept-Encoding": encoding} if encoding else {})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(urllib.request.Request(url, headers=asked), timeout=10) as response:
        got: dict[str, str] = {}
        for key, value in response.headers.items():  # a header given twice (Vary), as one
            got[key.lower()] = f"{got[key.lower()]}, {value}" if key.lower() in got else value
        return response.status, got, response.read()


def test_the_copy_goes_to_clients_that_accept_gzip_and_the_document_to_the_others(served):
    host, url, output, _ = served
    for name, spelling in (
        ("demo-utils", "demo-utils"),
        ("@demo/greet", "@demo%2fgreet"),
        ("@demo/greet", "@demo%2Fgreet"),
    ):
        for accept, document, media in (
            (ABBREVIATED, layout.abbreviated_path(name), layout.ABBREVIATED_MEDIA_TYPE),
            ("application/json", layout.packument_path(name), "application/json"),
        ):
            copy = output / layout.precompressed_copy(document)
            for encoding in ("gzip", "gzip, deflate, br"):
                status, got, body = get(url + spelling, accept, encoding)
                assert (status, got.get("content-encoding"), body) == (200, "gzip", copy.read_bytes()), (
                    host,
                    spelling,
                    accept,
                )
                assert got["content-type"] == media
                vary = re.split(r"[,\s]+", got.get("vary", "").lower())
                assert "accept" in vary and "accept-encoding" in vary, (host, vary)
            for encoding in (None, "identity", "gzip;q=0, identity"):
                status, got, body = get(url + spelling, accept, encoding)
                assert (status, got.get("content-encoding"), body) == (200, None, (output / document).read_bytes()), (
                    host,
                    spelling,
                    accept,
                    encoding,
                )
                assert got["content-type"] == media
                assert "accept-encoding" in re.split(r"[,\s]+", got.get("vary", "").lower()), (host, got.get("vary"))


def test_npm_and_pnpm_install_through_nginx_and_are_sent_the_copies(scratch, matrix_input):
    """nginx's access log: every package document a client fetched went out as its copy's bytes."""
    port = free_port()
    output = build(matrix_input, scratch / "registry-install", f"http://127.0.0.1:{port}/", scratch)
    sizes = {p.stat().st_size for p in output.rglob(f"*{layout.PRECOMPRESSED_SUFFIX}")}
    with hosts.running(hosts.nginx(output, scratch / "state-install", port)) as server:
        for name in ("npm", "pnpm"):
            before = server.log.read_text() if server.log.exists() else ""
            user = client(name, scratch / f"client-{name}", server.url())
            project = new_project(scratch / f"project-{name}")
            user.install(project)
            check_installed(project)
            lines = server.log.read_text()[len(before) :].splitlines()
            documents = [line for line in lines if '"GET /' in line and ".tgz " not in line and " 200 " in line]
            assert documents, lines
            for line in documents:
                sent = int(re.search(r'" 200 (\d+) ', line).group(1))
                assert sent in sizes, (name, line)
