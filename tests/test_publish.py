"""The dev server's write requests, without HTTP: what npm sends, what lands on disk."""

import base64
import json
from pathlib import Path

import pytest

from staticreg.build.pipeline import build
from staticreg.dev import publish
from tests.helpers import make_tarball


def body(tarball: Path, name: str, version: str, tags: dict | None = None) -> bytes:
    data = tarball.read_bytes()
    return json.dumps(
        {
            "_id": name,
            "name": name,
            "dist-tags": tags or {"latest": version},
            "versions": {version: {"name": name, "version": version}},
            "_attachments": {
                tarball.name: {
                    "content_type": "application/octet-stream",
                    "data": base64.b64encode(data).decode(),
                    "length": len(data),
                }
            },
        }
    ).encode()


@pytest.fixture
def target(tarballs, make_config, tmp_path):
    make_tarball(tarballs, {"name": "a", "version": "1.0.0"})
    config = make_config(tarballs, jobs=1)
    build(config, show_progress=False)
    return publish.Target(tarballs, tmp_path / "staticreg.yml", config.output_dir)


def test_publish_writes_a_safely_named_tarball(target, tmp_path):
    packed = make_tarball(tmp_path / "src", {"name": "@s/new", "version": "1.0.0"})
    done = publish.put_package(target, "@s/new", body(packed, "@s/new", "1.0.0", {"next": "1.0.0"}))
    written = target.input_dir / "@s/new-1.0.0.tgz"
    assert written.read_bytes() == packed.read_bytes() and "@s/new-1.0.0.tgz" in done
    assert [p.name for p in target.input_dir.iterdir() if p.name.startswith(".")] == []
    assert "'@s/new':\n    next: 1.0.0" in target.config_file.read_text()


def test_a_scoped_package_and_its_flat_namesake_do_not_share_a_file(target, tmp_path):
    scoped = make_tarball(tmp_path / "one", {"name": "@a/b", "version": "1.0.0"})
    flat = make_tarball(tmp_path / "two", {"name": "a-b", "version": "1.0.0"})
    assert scoped.name == flat.name == "a-b-1.0.0.tgz"  # as npm pack names both
    publish.put_package(target, "@a/b", body(scoped, "@a/b", "1.0.0"))
    publish.put_package(target, "a-b", body(flat, "a-b", "1.0.0"))
    assert (target.input_dir / "@a/b-1.0.0.tgz").read_bytes() == scoped.read_bytes()
    assert (target.input_dir / "a-b-1.0.0.tgz").read_bytes() == flat.read_bytes()


def test_publishing_the_same_bytes_again_still_sets_its_dist_tags(target):
    same = target.input_dir / "a-1.0.0.tgz"
    done = publish.put_package(target, "a", body(same, "a", "1.0.0", {"stable": "1.0.0"}))
    assert "already" in done and "stable: 1.0.0" in target.config_file.read_text()


@pytest.mark.parametrize(
    "url_name, manifest, reason",
    [
        ("b", {"name": "c", "version": "1.0.0"}, "holds c@1.0.0, not b@1.0.0"),
        ("../evil", {"name": "../evil", "version": "1.0.0"}, "invalid package name"),
        ("b", {"name": "b", "version": "not-semver"}, "cannot be used"),
    ],
)
def test_a_tarball_that_is_not_what_the_request_says_is_refused(target, tmp_path, url_name, manifest, reason):
    packed = make_tarball(tmp_path / "src", manifest, filename="x.tgz")
    with pytest.raises(publish.Refused) as refused:
        publish.put_package(target, url_name, body(packed, url_name, "1.0.0"))
    assert refused.value.status == 400 and reason in refused.value.message
    assert sorted(p.name for p in target.input_dir.iterdir()) == ["a-1.0.0.tgz", "staticreg-times.json"]


def test_republishing_other_bytes_is_refused_like_the_public_registry(target, tmp_path):
    packed = make_tarball(tmp_path / "src", {"name": "a", "version": "1.0.0", "description": "other bytes"})
    with pytest.raises(publish.Refused) as refused:
        publish.put_package(target, "a", body(packed, "a", "1.0.0"))
    assert refused.value.status == 403
    assert refused.value.message == "You cannot publish over the previously published versions: 1.0.0."
    same = target.input_dir / "a-1.0.0.tgz"
    assert "already" in publish.put_package(target, "a", body(same, "a", "1.0.0"))  # same bytes: fine


def test_dist_tags_and_deprecations_go_to_the_config(target):
    publish.dist_tag(target, "a", "beta", b'"1.0.0"')
    with pytest.raises(publish.Refused) as refused:
        publish.dist_tag(target, "a", "beta", b'"9.9.9"')
    assert refused.value.status == 404
    served = json.loads((target.output_dir / "a/index.json").read_bytes())
    served["versions"]["1.0.0"]["deprecated"] = "use 2"
    publish.put_package(target, "a", json.dumps(served).encode())
    text = target.config_file.read_text()
    assert "beta: 1.0.0" in text and "a@1.0.0: use 2" in text
    assert "input: tarballs\n" in text  # created beside the input, pointing at it


@pytest.mark.parametrize(
    "tags, sent_version, reason",
    [
        ({"Bad Tag!": "1.0.0"}, "1.0.0", "invalid tag"),
        ({"1.0.0": "1.0.0"}, "1.0.0", "invalid tag"),
        (["next"], "1.0.0", "dist-tags in the publish request is not an object"),
        (None, "not-semver", "the version in the publish request cannot be used"),
    ],
)
def test_a_malformed_request_is_refused_before_anything_is_written(target, tmp_path, tags, sent_version, reason):
    packed = make_tarball(tmp_path / "src", {"name": "b", "version": "1.0.0"})
    request = json.loads(body(packed, "b", sent_version))
    if tags is not None:
        request["dist-tags"] = tags
    with pytest.raises(publish.Refused) as refused:
        publish.put_package(target, "b", json.dumps(request).encode())
    assert refused.value.status == 400 and reason in refused.value.message
    assert sorted(p.name for p in target.input_dir.iterdir()) == ["a-1.0.0.tgz", "staticreg-times.json"]
    assert not target.config_file.exists()
