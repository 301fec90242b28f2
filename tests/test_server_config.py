import subprocess

import pytest

from staticreg import server_config
from staticreg.errors import ConfigError
from tests.e2e.servers import nginx_binary


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


@pytest.mark.parametrize("prefix", ["/", "/npm/", "/a/b/"])
def test_generated_config_passes_nginx_t(tmp_path, prefix):
    (tmp_path / "tmp").mkdir()
    conf = tmp_path / "nginx.conf"
    conf.write_text(server_config.nginx(tmp_path, listen="127.0.0.1:1", prefix=prefix, standalone=True,
                                        state_dir=tmp_path, user="root", daemon=False))  # fmt: skip
    result = subprocess.run([nginx_binary(), "-t", "-p", str(tmp_path), "-c", str(conf)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_snippet_mentions_every_rule(tmp_path):
    text = server_config.nginx(tmp_path, document_max_age=60)
    for needle in ["index.corgi", "max-age=60, must-revalidate", "immutable", "default_type application/json",
                   "application/vnd.npm.install-v1+json corgi", "Vary $staticreg_vary", "gzip on"]:  # fmt: skip
        assert needle in text
    assert "pid " not in text and "http {" not in text


@pytest.mark.parametrize("prefix, page", [("/", "/404.html"), ("/npm/", "/npm/404.html")])
def test_missing_files_get_the_site_404_page(tmp_path, prefix, page):
    text = server_config.nginx(tmp_path, prefix=prefix)
    assert f"error_page 404 {page};" in text
