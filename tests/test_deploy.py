"""What `staticreg deploy` would upload, without a store (the e2e tests use moto)."""

from __future__ import annotations

import pytest

from staticreg.build.pipeline import build
from staticreg.hosting import deploy
from staticreg.npm import headers, layout
from tests.helpers import make_tarball


def test_parse_target():
    assert deploy.parse_target("s3://bucket") == ("bucket", "")
    assert deploy.parse_target("s3://bucket/npm/") == ("bucket", "npm/")
    assert deploy.parse_target("s3://bucket/a/b") == ("bucket", "a/b/")
    for bad in ("https://bucket/x", "s3:///x", "s3://b/a/../c", "s3://b/x?y=1"):
        with pytest.raises(deploy.DeployError):
            deploy.parse_target(bad)


def test_plan_orders_tarballs_documents_site_root_with_their_headers(tarballs, make_config, tmp_path):
    make_tarball(tarballs, {"name": "@s/n", "version": "1.0.0"})
    make_tarball(tarballs, {"name": "demo", "version": "1.0.0"})
    config = make_config(tarballs)
    build(config, show_progress=False)
    plan = deploy.plan(config.output_dir, "npm/", document_max_age=30)
    phases = [deploy._phase(u) for u in plan]
    assert phases == sorted(phases) and plan[0].kind == layout.TARBALL
    documents = [i for i, u in enumerate(plan) if u.kind == layout.DOCUMENT]
    states = [i for i, u in enumerate(plan) if u.path.endswith("/" + layout.PACKAGE_STATE)]
    assert max(states) < min(documents)  # a publish reading a document finds the package's state
    by_key = {u.key: u for u in plan}
    assert (by_key["npm/@s/n"].content_type, by_key["npm/@s/n"].cache_control) == (
        "application/json",
        "public, max-age=30, must-revalidate",
    )
    assert by_key["npm/demo/-/demo-1.0.0.tgz"].cache_control == headers.TARBALL_CACHE
    assert by_key["npm/index.html"].content_type.startswith("text/html") and plan[-1].kind == layout.STATE
    assert not [k for k in by_key if k.endswith(("/index.json", "/index.corgi"))]
    assert (config.output_dir / "demo/index.json.gz").is_file()
    assert not [u for u in plan if u.path.endswith(".gz")]  # a bucket cannot choose by Accept-Encoding
    assert by_key["npm/"].file == by_key["npm/index.html"].file == config.output_dir / "index.html"
    assert by_key["npm/-/web/package/demo/"].file.name == "index.html"
    assert "" not in {u.key for u in deploy.plan(config.output_dir, "")}  # no prefix: no empty key


def test_plan_refuses_a_folder_that_is_not_a_registry(tmp_path):
    with pytest.raises(deploy.DeployError, match="not a built registry"):
        deploy.plan(tmp_path, "")


def test_an_unusable_endpoint_is_a_user_error(tmp_path):
    from click.testing import CliRunner

    from staticreg.cli import cli

    result = CliRunner().invoke(
        cli, ["deploy", str(tmp_path), "s3://bucket", "--endpoint-url", "foo"], catch_exceptions=False
    )
    assert result.exit_code == 1 and "--endpoint-url 'foo' is not usable" in result.stderr
