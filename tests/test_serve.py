import socket

import pytest

from staticreg.dev.serve import _is_loopback, _is_site_page, bind, error_banner
from staticreg.errors import StaticregError


def test_the_error_banner_escapes_what_came_from_a_package():
    banner = error_banner("pkg-1.0.0.tgz: invalid name '<script>alert(1)</script>' & more")
    assert "<script>" not in banner and "&lt;script&gt;" in banner and "&amp; more" in banner


def test_the_banner_goes_on_site_pages_only_never_into_documents():
    assert _is_site_page("index.html") and _is_site_page("-/web/package/@s/b/index.html")
    assert not _is_site_page("a/index.html")  # the zero-config copy of a/index.json: JSON, not HTML
    assert not _is_site_page("-/web/assets/style.css")


def test_writes_are_taken_from_loopback_only():
    assert _is_loopback("127.0.0.1") and _is_loopback("::1")
    assert not _is_loopback("192.168.1.20") and not _is_loopback("nonsense")


def test_a_port_asked_for_that_is_taken_is_a_user_error():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(StaticregError, match=f"port {port} on 127.0.0.1 is taken"):
            bind("127.0.0.1", port)


def test_the_dev_server_serves_every_document_at_the_url_clients_ask_for(tarballs, make_config):
    """A version's document is a file, <name>/<version>.json, served at <name>/<version>; the
    README pages are files too."""
    import json
    import threading
    import urllib.request
    from functools import partial
    from http.server import ThreadingHTTPServer

    from staticreg.build.pipeline import build
    from staticreg.dev.serve import RegistryHandler
    from staticreg.npm import headers, layout
    from tests.helpers import make_tarball

    make_tarball(tarballs, {"name": "@s/b", "version": "1.0.0"}, {"README.md": "# b"})
    make_tarball(tarballs, {"name": "a", "version": "1.0.0-rc.html"}, {"README.md": "# a"})
    config = make_config(tarballs)
    build(config, show_progress=False)
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(RegistryHandler, directory=str(config.output_dir)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}/"

    def get(path: str):
        with urllib.request.urlopen(base + path) as answer:
            return answer.headers, answer.read()

    try:
        for path, name, version in [
            ("@s%2fb/1.0.0", "@s/b", "1.0.0"),
            ("@s%2Fb/latest", "@s/b", "1.0.0"),
            ("a/1.0.0-rc.html", "a", "1.0.0-rc.html"),
            ("a/latest", "a", "1.0.0-rc.html"),
        ]:
            got, body = get(path)
            assert (got["Content-Type"], got["Cache-Control"]) == (headers.JSON, headers.document_cache()), path
            assert json.loads(body)["_id"] == f"{name}@{version}", path
        got, body = get(layout.site_readme_page("a", "1.0.0-rc.html"))
        assert got["Content-Type"] == "text/html; charset=utf-8" and b'id="v1.0.0-rc.html"' in body
        assert json.loads(get("@s%2fb")[1])["name"] == "@s/b"
    finally:
        server.shutdown()
        server.server_close()
