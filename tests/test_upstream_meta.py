"""The mirror's sidecars: validation (pure), and what the build does with them."""

from __future__ import annotations

import json
import os

import pytest

from staticreg.build.pipeline import build
from staticreg.build.reader import read_tarball
from staticreg.errors import BuildError
from staticreg.npm import upstream_meta
from staticreg.npm.upstream_meta import SidecarProblem, validate
from tests.helpers import make_tarball

SHA512 = "sha512-" + "A" * 86 + "=="


def good(**extra):
    return {"name": "@s/a", "version": "1.0.0", "integrity": SHA512, "time": "2021-01-02T03:04:05Z", **extra}


def test_validate_normalises_and_keeps_only_known_keys():
    meta = validate(
        good(deprecated="old", os=["linux"], cpu="x64", unknown=1, signatures=[{"keyid": "k", "sig": "s", "extra": 1}])
    )
    assert meta.time == "2021-01-02T03:04:05.000Z"
    assert meta.fields == {
        "deprecated": "old",
        "os": ["linux"],
        "cpu": ["x64"],
        "signatures": [{"keyid": "k", "sig": "s"}],
    }
    assert validate(good()).digest != meta.digest


@pytest.mark.parametrize(
    "change,says",
    [
        ({"name": "../x"}, "npm does not allow"),
        ({"version": "1.0"}, "not valid semver"),
        ({"version": "v1.0.0"}, "not strict semver"),
        ({"integrity": "sha1-abc"}, "not a sha512 integrity"),
        ({"time": "yesterday"}, "not an ISO 8601 time"),
        ({"os": ["linux; rm -rf"]}, "not a list of platform names"),
        ({"signatures": [{"keyid": 1}]}, "not a list of"),
        ({"attestations": {"provenance": {}}}, 'not {"url", "provenance"}'),
        ({"attestation_bundle": [1]}, "not a JSON object"),
        ({"_npmUser": "me"}, "not an object"),
    ],
)
def test_validate_refuses_what_is_not_the_format(change, says):
    with pytest.raises(SidecarProblem, match=says):
        validate(good(**change))


def test_apply_tarball_platforms_win_and_dist_gets_signatures():
    meta = validate(
        good(
            os=["darwin"],
            cpu=["arm64"],
            _npmUser={"name": "p"},
            signatures=[{"keyid": "k", "sig": "s"}],
            attestations={"url": "https://u/-/npm/v1/attestations/@s/a@1.0.0", "provenance": {"p": 1}},
        )
    )
    manifest = {"name": "@s/a", "version": "1.0.0", "os": ["linux"], "dist": {"integrity": SHA512}}
    out = upstream_meta.apply(manifest, meta)
    assert out["os"] == ["linux"] and out["cpu"] == ["arm64"] and out["_npmUser"] == {"name": "p"}
    assert out["dist"]["signatures"] == [{"keyid": "k", "sig": "s"}] and out["dist"]["integrity"] == SHA512
    assert manifest == {"name": "@s/a", "version": "1.0.0", "os": ["linux"], "dist": {"integrity": SHA512}}  # untouched


def test_merge_keys_keeps_old_keys_by_keyid():
    merged = upstream_meta.merge_keys(
        {"keys": [{"keyid": "old"}, {"keyid": "k"}]}, {"keys": [{"keyid": "k", "key": "new"}]}
    )
    assert merged == {"keys": [{"keyid": "k", "key": "new"}, {"keyid": "old"}]}
    with pytest.raises(SidecarProblem):
        upstream_meta.merge_keys(None, {"keys": "no"})


def _mirrored(folder, name="a", version="1.0.0", **extra):
    path = make_tarball(folder, {"name": name, "version": version})
    record = read_tarball(path, path.name)
    sidecar = upstream_meta.sidecar_path(path)
    data = {
        "name": name,
        "version": version,
        "integrity": record.integrity,
        "time": "2019-05-06T07:08:09.000Z",
        **extra,
    }
    sidecar.write_text(json.dumps(data))
    return path, sidecar, data


def test_build_applies_the_sidecar_and_config_still_wins(tarballs, make_config):
    bundle = {"attestations": [{"predicateType": "x"}]}
    _mirrored(
        tarballs,
        deprecated="upstream says no",
        _npmUser={"name": "p"},
        cpu=["x64"],
        signatures=[{"keyid": "k", "sig": "s"}],
        attestations={"url": "https://u/x", "provenance": {}},
        attestation_bundle=bundle,
    )
    _mirrored(tarballs, "b", "2.0.0", deprecated="upstream")
    from datetime import datetime, timezone

    from staticreg.config import Override

    config = make_config(
        tarballs,
        deprecations=[Override(name="b", range="*", message="ours", where="staticreg.yml:2")],
        publish_times=[
            Override(name="b", version="2.0.0", time=datetime(2018, 1, 1, tzinfo=timezone.utc), where="staticreg.yml:3")
        ],
    )
    build(config, show_progress=False)
    out = config.output_dir
    a = json.loads((out / "a/index.json").read_text())
    v = a["versions"]["1.0.0"]
    assert a["time"]["1.0.0"] == "2019-05-06T07:08:09.000Z"
    assert (v["deprecated"], v["_npmUser"], v["cpu"]) == ("upstream says no", {"name": "p"}, ["x64"])
    assert v["dist"]["signatures"] == [{"keyid": "k", "sig": "s"}]
    corgi = json.loads((out / "a/index.corgi").read_text())
    assert corgi["versions"]["1.0.0"]["deprecated"] == "upstream says no"
    assert json.loads((out / "-/npm/v1/attestations/a@1.0.0").read_text()) == bundle
    b = json.loads((out / "b/index.json").read_text())
    assert b["versions"]["2.0.0"]["deprecated"] == "ours" and b["time"]["2.0.0"] == "2018-01-01T00:00:00.000Z"


def test_a_sidecar_of_other_bytes_is_a_problem_naming_both_files(tarballs, make_config):
    _path, sidecar, data = _mirrored(tarballs)
    sidecar.write_text(json.dumps({**data, "integrity": SHA512}))
    with pytest.raises(BuildError) as caught:
        build(make_config(tarballs), show_progress=False)
    assert "a-1.0.0.tgz: its sidecar a-1.0.0.tgz.upstream.json has integrity" in str(caught.value)
    sidecar.write_text("{not json")
    with pytest.raises(BuildError) as caught:
        build(make_config(tarballs), show_progress=False)
    assert "a-1.0.0.tgz.upstream.json: is not UTF-8 JSON" in str(caught.value)


def test_a_changed_sidecar_rebuilds_its_package(tarballs, make_config):
    _path, sidecar, data = _mirrored(tarballs)
    make_tarball(tarballs, {"name": "other", "version": "1.0.0"})
    config = make_config(tarballs)
    build(config, show_progress=False)
    other_before = (config.output_dir / "other/index.json").stat().st_mtime_ns
    sidecar.write_text(json.dumps({**data, "deprecated": "now deprecated"}))
    os.utime(sidecar, (1_700_000_000, 1_700_000_000))
    report = build(config, show_progress=False)
    doc = json.loads((config.output_dir / "a/index.json").read_text())
    assert doc["versions"]["1.0.0"]["deprecated"] == "now deprecated"
    assert report.tarballs_read == 0
    assert (config.output_dir / "other/index.json").stat().st_mtime_ns == other_before
    sidecar.unlink()
    build(config, show_progress=False)
    doc = json.loads((config.output_dir / "a/index.json").read_text())
    assert "deprecated" not in doc["versions"]["1.0.0"]


def test_attestation_bundles_are_json_documents_for_every_host():
    from staticreg.npm import headers, layout

    path = layout.attestation_path("@s/a", "1.0.0-rc.html")
    assert path == "-/npm/v1/attestations/@s/a@1.0.0-rc.html"
    assert headers.content_type(path) == headers.JSON == headers.content_type("/" + path)
    assert layout.kind_of(path) == layout.DOCUMENT
    assert headers.for_object(path, layout.kind_of(path))[0] == headers.JSON


def test_netlify_headers_type_attestation_bundles(tarballs, make_config):
    from staticreg.hosting.host_files import netlify_files

    _mirrored(tarballs, attestations={"url": "https://u/x", "provenance": {}}, attestation_bundle={"a": 1})
    config = make_config(tarballs)
    build(config, show_progress=False)
    text = netlify_files(config.output_dir)["_headers"]
    assert "/-/npm/v1/attestations/*\n  Content-Type: application/json\n" in text


def test_attestation_bundles_are_not_held_in_memory_and_a_changed_sidecar_stops_the_build(
    tarballs, make_config, monkeypatch
):
    from staticreg.build import writers

    path, sidecar, data = _mirrored(
        tarballs, attestations={"url": "https://u/x", "provenance": {}}, attestation_bundle={"a": 1}
    )
    metas, _ = upstream_meta.load_beside(tarballs, [path.name])
    assert metas[path.name].attestation_bundle is None and metas[path.name].has_bundle
    real = upstream_meta.bundle_of

    def changed_meanwhile(input_dir, tarball, meta):
        sidecar.write_text(json.dumps({**data, "attestation_bundle": {"a": 2}}))
        return real(input_dir, tarball, meta)

    monkeypatch.setattr(writers.upstream_meta, "bundle_of", changed_meanwhile)
    with pytest.raises(BuildError, match=r"a-1.0.0.tgz.upstream.json: changed while the build ran; build again"):
        build(make_config(tarballs), show_progress=False)
