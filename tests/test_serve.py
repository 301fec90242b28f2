import socket

import pytest

from staticreg.errors import StaticregError
from staticreg.serve import _is_loopback, _is_site_page, bind, error_banner


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
