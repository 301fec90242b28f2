"""RecordSlimmer: the records of a big build stay small, and the documents do not change."""

from staticreg.config import Override
from staticreg.model import RecordSlimmer, build_registry
from tests.test_model import NOW, config, record


def slim_registry(versions, **kw):
    slimmer = RecordSlimmer(config(**kw))
    records = [
        slimmer.add(record({"name": "x", "version": v, "description": "same", "keywords": ["a"], "n": i},
                           readme=f"readme of {v}", readme_filename="README.md"))
        for i, v in enumerate(versions)
    ]  # fmt: skip
    registry = build_registry(records, config(**kw), {}, NOW)
    slimmer.restore_readmes(registry)
    return records, registry


def test_only_the_latest_readme_comes_back():
    records, registry = slim_registry(["1.0.0", "2.0.0-beta.1", "1.2.0", "1.1.0"])
    assert all(r.readme is None for r in records)
    versions = registry.packages["x"].versions
    assert versions["1.2.0"].record.readme == "readme of 1.2.0"
    assert versions["1.2.0"].record.readme_filename == "README.md"
    assert [v for v, e in versions.items() if e.record.readme] == ["1.2.0"]


def test_a_prerelease_is_latest_when_there_is_nothing_else():
    _, registry = slim_registry(["2.0.0-beta.1", "2.0.0-beta.2"])
    assert registry.packages["x"].latest.record.readme == "readme of 2.0.0-beta.2"


def test_a_dist_tag_setting_keeps_the_readme_of_the_version_it_makes_latest():
    pin = Override(name="x", where="staticreg.yml:1", tag="latest", version="1.0.0")
    _, registry = slim_registry(["1.0.0", "1.1.0", "1.2.0"], dist_tags=(pin,))
    assert registry.packages["x"].latest.record.readme == "readme of 1.0.0"


def test_equal_manifest_values_are_shared_and_manifests_stay_equal():
    records, registry = slim_registry(["1.0.0", "1.1.0"])
    first, second = (r.manifest for r in records)
    assert first["keywords"] is second["keywords"]
    assert first == {"name": "x", "version": "1.0.0", "description": "same", "keywords": ["a"], "n": 0}
    assert second["n"] == 1
