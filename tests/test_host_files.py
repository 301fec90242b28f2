"""_headers and _redirects for Netlify and Cloudflare Pages: checked for content
(neither host can run here)."""

from __future__ import annotations

import pytest

from staticreg.build.pipeline import build
from staticreg.errors import ConfigError
from staticreg.hosting.host_files import netlify_files, write_netlify_files
from tests.helpers import make_tarball


def test_one_exact_rule_per_package(tarballs, make_config):
    make_tarball(tarballs, {"name": "@s/n", "version": "1.0.0"})
    make_tarball(tarballs, {"name": "demo", "version": "1.0.0"})
    make_tarball(tarballs, {"name": "demo", "version": "2.0.0"})
    config = make_config(tarballs)
    build(config, show_progress=False)
    files = netlify_files(config.output_dir, document_max_age=60)
    assert files["_redirects"].splitlines()[2:] == ["/@s/n /@s/n/index.json 200", "/demo /demo/index.json 200"]
    blocks = files["_headers"].rstrip("\n").split("\n/")
    assert "demo\n  Cache-Control: public, max-age=60, must-revalidate\n  Content-Type: application/json" in blocks
    assert "demo/-/*\n  Cache-Control: public, max-age=31536000, immutable" in blocks
    assert "-/ping\n  Content-Type: application/json\n  Cache-Control: public, max-age=60, must-revalidate" in blocks
    assert "*" not in files["_redirects"]
    written = write_netlify_files(config.output_dir)
    assert sorted(p.name for p in written) == ["_headers", "_redirects"]


def test_refuses_a_folder_that_is_not_a_registry(tmp_path):
    with pytest.raises(ConfigError, match="not a built registry"):
        netlify_files(tmp_path)


@pytest.mark.parametrize("packages, warned", [(48, False), (50, True)])
def test_more_header_rules_than_cloudflare_applies_are_warned_about(tarballs, make_config, packages, warned):
    from click.testing import CliRunner

    from staticreg.cli import cli

    for i in range(packages):
        make_tarball(tarballs, {"name": f"p{i}", "version": "1.0.0"})
    config = make_config(tarballs, jobs=1, site=False)
    build(config, show_progress=False)
    result = CliRunner().invoke(
        cli, ["server-config", "netlify", "--root", str(config.output_dir)], catch_exceptions=False
    )
    assert result.exit_code == 0
    assert ("Cloudflare Pages applies only the first 100" in result.stderr) is warned
