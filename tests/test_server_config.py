import gzip
import subprocess
import urllib.request

import pytest

from staticreg.errors import ConfigError
from staticreg.hosting import server_config
from tests.e2e.hosts import APACHE
from tests.e2e.servers import free_port, nginx_binary, start_nginx


def test_prefix_normalisation():
    assert server_config.normalize_prefix("/") == ""
    assert server_config.normalize_prefix("npm") == "/npm"
    assert server_config.normalize_prefix("/a/b/") == "/a/b"
    for bad in ("/a b/", "/$x/", "/a/../b"):
        with pytest.raises(ConfigError):
            server_config.normalize_prefix(bad)


def test_unsafe_root_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="cannot hold"):
        server_config.nginx(tmp_path / "a;b")


def _nginx_t(tmp_path, prefix):
    (tmp_path / "tmp").mkdir()
    conf = tmp_path / "nginx.conf"
    conf.write_text(
        server_config.nginx(
            tmp_path,
            listen="127.0.0.1:1",
            prefix=prefix,
            standalone=True,
            state_dir=tmp_path,
            user="root",
            daemon=False,
        )
    )
    return [nginx_binary(), "-t", "-p", str(tmp_path), "-c", str(conf)], None


def _apache_t(tmp_path, prefix):
    conf = tmp_path / "httpd.conf"
    conf.write_text(
        server_config.apache(
            tmp_path,
            listen="127.0.0.1:1",
            prefix=prefix,
            standalone=True,
            state_dir=tmp_path,
            user="nobody",
            group="nogroup",
        )
    )
    return [APACHE, "-t", "-f", str(conf)], None


def _caddy_validate(tmp_path, prefix):
    conf = tmp_path / "Caddyfile"
    conf.write_text(server_config.caddy(tmp_path, prefix=prefix, standalone=True, state_dir=tmp_path))
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "XDG_DATA_HOME": str(tmp_path),
        "XDG_CONFIG_HOME": str(tmp_path),
    }
    return ["caddy", "validate", "--adapter", "caddyfile", "--config", str(conf)], env


@pytest.mark.parametrize("server", [_nginx_t, _apache_t, _caddy_validate], ids=["nginx", "apache", "caddy"])
@pytest.mark.parametrize("prefix", ["/", "/npm/", "/a/b/"])
def test_generated_configuration_passes_the_servers_own_check(tmp_path, server, prefix):
    command, env = server(tmp_path, prefix)
    result = subprocess.run(command, capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr


def test_snippet_mentions_every_rule(tmp_path):
    text = server_config.nginx(tmp_path, document_max_age=60)
    for needle in [
        "index.corgi",
        "max-age=60, must-revalidate",
        "immutable",
        "default_type application/json",
        "application/vnd.npm.install-v1+json corgi",
        "Vary $staticreg_vary",
        "gzip on",
        "gzip_static on",
    ]:
        assert needle in text
    assert "pid " not in text and "http {" not in text


def test_apache_and_caddy_snippets_hold_every_rule(tmp_path):
    apache = server_config.apache(tmp_path, document_max_age=60)
    for needle in [
        "AllowEncodedSlashes On",
        "index.corgi",
        "max-age=60, must-revalidate",
        "immutable",
        "AddType application/vnd.npm.install-v1+json .corgi",
        "Header merge Vary Accept",
        "ForceType application/json",
        "AddEncoding gzip .gz",
        "index.json.gz",
        "index.corgi.gz",
        "Header merge Vary Accept-Encoding",
    ]:
        assert needle in apache
    assert "Listen" not in apache and "LoadModule" not in apache
    caddy = server_config.caddy(tmp_path, address="npm.example.com", prefix="/npm/")
    for needle in [
        "npm.example.com {",
        "handle_path /npm/*",
        "index.corgi",
        'Vary "Accept, Accept-Encoding"',
        "precompressed gzip",
        "immutable",
        "respond 404",
    ]:
        assert needle in caddy
    assert "admin off" not in caddy
    with pytest.raises(ConfigError, match="cannot hold"):
        server_config.caddy(tmp_path, address="a b")


@pytest.mark.parametrize("prefix, page", [("/", "/404.html"), ("/npm/", "/npm/404.html")])
def test_missing_files_get_the_site_404_page(tmp_path, prefix, page):
    text = server_config.nginx(tmp_path, prefix=prefix)
    assert f"error_page 404 {page};" in text


def test_nginx_sends_a_gzipped_copy_beside_a_document_as_it_is(tmp_path):
    """gzip_static: index.json.gz beside index.json goes out byte for byte, not compressed again."""
    document = b'{"name": "demo", "versions": {}, "readme": "' + b"x" * 2000 + b'"}'
    (tmp_path / "root" / "demo").mkdir(parents=True)
    (tmp_path / "root" / "demo" / "index.json").write_bytes(document)
    packed = gzip.compress(document, 9, mtime=0)
    (tmp_path / "root" / "demo" / "index.json.gz").write_bytes(packed)
    server = start_nginx(tmp_path / "root", tmp_path / "nginx", free_port())
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        for encoding, body in (("gzip", packed), ("identity", document)):
            request = urllib.request.Request(server.url("/demo"), headers={"Accept-Encoding": encoding})
            with opener.open(request, timeout=10) as response:
                assert response.read() == body
                assert response.headers["Content-Type"] == "application/json"
    finally:
        server.stop()


@pytest.mark.parametrize("server", ["nginx", "apache", "caddy"])
def test_every_server_sends_the_cache_control_values_headers_defines(server, monkeypatch, tmp_path):
    from staticreg.npm import headers

    monkeypatch.setattr(headers, "TARBALL_CACHE", "public, max-age=11, immutable")
    monkeypatch.setattr(headers, "OTHER_CACHE", "public, max-age=22")
    text = getattr(server_config, server)(tmp_path, document_max_age=33)
    for value in ("public, max-age=11, immutable", "public, max-age=22", headers.document_cache(33)):
        assert value in text, value
    assert "max-age=31536000" not in text and "max-age=300" not in text
