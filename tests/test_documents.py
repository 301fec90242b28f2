import json

from staticreg import documents
from tests.helpers import record, registry


def package(**kw):
    recs = [
        record({"name": "x", "version": "1.0.0", "description": "old", "scripts": {"test": "t"}}),
        record({"name": "x", "version": "1.1.0", "description": "new <b>", "keywords": ["k"], "license": "MIT",
                "repository": "git+https://e.test/x.git", "os": ["linux"], "bin": {"x": "x.js"}},
               readme="0" * 40, readme_filename="README.md"),
    ]  # fmt: skip
    return registry(*recs, **kw).packages["x"]


def test_packument_has_what_clients_need():
    pkg = package()
    doc = documents.packument(pkg, documents.version_manifests(pkg), "R" * 70_000)
    assert doc["_id"] == doc["name"] == "x"
    assert doc["dist-tags"] == {"latest": "1.1.0"}
    assert list(doc["versions"]) == ["1.0.0", "1.1.0"]
    assert set(doc["time"]) == {"created", "modified", "1.0.0", "1.1.0"}
    assert doc["description"] == "new <b>" and doc["keywords"] == ["k"] and doc["license"] == "MIT"
    assert len(doc["readme"]) == documents.MAX_README_CHARS and doc["readmeFilename"] == "README.md"
    assert all("readme" not in v for v in doc["versions"].values())


def test_abbreviated_is_a_strict_subset_without_time():
    pkg = package()
    made = documents.version_manifests(pkg)
    full, corgi = documents.packument(pkg, made, None), documents.abbreviated(pkg, made)
    assert set(corgi) == {"name", "modified", "dist-tags", "versions"}
    v = corgi["versions"]["1.1.0"]
    assert v["os"] == ["linux"] and v["bin"] == {"x": "x.js"} and "dist" in v
    assert "description" not in v and "scripts" not in corgi["versions"]["1.0.0"]
    assert all(full["versions"]["1.1.0"][k] == v[k] for k in v)


def test_dumps_is_compact_deterministic_and_html_inert():
    doc = {"a": "</script><img src=x onerror=alert(1)>&", "b": "\u2028", "c": "\ud800", "é": 1}
    out = documents.dumps(doc)
    assert b"<" not in out and b">" not in out and b"&" not in out
    assert json.loads(out)["a"] == doc["a"]
    assert json.loads(out)["c"] == "\ud800"
    assert out == documents.dumps(dict(doc))
    assert b": " not in out
