import json
import subprocess
import sys

from staticreg.npm import documents, registry_state
from tests.helpers import record, registry


def package(**kw):
    recs = [
        record({"name": "x", "version": "1.0.0", "description": "old", "scripts": {"test": "t"}}),
        record(
            {
                "name": "x",
                "version": "1.1.0",
                "description": "new <b>",
                "keywords": ["k"],
                "license": "MIT",
                "repository": "git+https://e.test/x.git",
                "os": ["linux"],
                "bin": {"x": "x.js"},
            },
            readme="0" * 40,
            readme_filename="README.md",
        ),
    ]
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


def _json_module_dumps(doc) -> bytes:
    """What dumps wrote with the json module alone (before msgspec)."""
    text = json.dumps(doc, ensure_ascii=False, separators=(",", ":"))
    for raw in "<>&\u2028\u2029":
        text = text.replace(raw, f"\\u{ord(raw):04x}")
    return text.encode("utf-8", errors="backslashreplace")


def test_dumps_bytes_are_the_json_modules_but_for_floats():
    """msgspec writes the documents: the json module's bytes, but exponents without "+"."""
    made = documents.version_manifests(package())
    docs = [
        documents.packument(package(), made, "# x <b>&amp;</b>\u2028"),
        documents.abbreviated(package(), made),
        *made.values(),
        {"big": 2**70, "neg": -(2**64), "é\u2029": ['\x00\x1f\x7f"\\/', None, True, False, {}]},
    ]
    for doc in docs:
        assert documents.dumps(doc) == _json_module_dumps(doc)
    assert documents.dumps({"a": 1e16, "b": 0.1, "c": -0.0, "d": 1e-7}) == b'{"a":1e16,"b":0.1,"c":-0.0,"d":1e-7}'
    # A lone surrogate goes to the json module, as a JSON escape; the rest of the document as it writes it.
    assert documents.dumps({"s": "\ud800<", "f": 1e16}) == b'{"s":"\\ud800\\u003c","f":1e+16}'


def test_dumps_gives_the_same_bytes_in_every_process():
    """Same input, same bytes (etags and incremental builds depend on it), in any process."""
    code = (
        "import sys; from staticreg.npm import documents; "
        "sys.stdout.write(documents.dumps({'z': 1, 'a': {'y': [1.5, 2**70, 'x\\u00e9<']}, 'm': None}).hex())"
    )
    outputs = {
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
        for _ in range(3)
    }
    assert outputs == {documents.dumps({"z": 1, "a": {"y": [1.5, 2**70, "x\u00e9<"]}, "m": None}).hex()}


def test_state_files_bytes_are_the_json_modules():
    """registry_state.dumps: keys sorted as the json module sorts them (code points), or kept in order."""
    doc = {
        "b": 1,
        "a": {"\U00010000": 1, "\uffff": 2, "é": 3, "Z": 4, "": [{"y": 1, "x": 2}]},
        "\u2028<": "&",
        "n": 2**70,
    }
    expected = {
        s: json.dumps(doc, ensure_ascii=False, separators=(",", ":"), sort_keys=s).encode() for s in (True, False)
    }
    assert {s: registry_state.dumps(doc, sort_keys=s) for s in (True, False)} == expected


def test_without_msgspec_the_json_module_writes_documents_and_state_files():
    """On PyPy msgspec is not installed: the json module writes documents and state files."""
    doc = {"b": [1e16, 2**70, None], "a": "<é\u2028>"}  # msgspec would write 1e16, the json module 1e+16
    code = (
        "import sys; sys.modules['msgspec'] = None\n"  # import msgspec now fails, as where it is not installed
        "from staticreg.npm import documents, registry_state\n"
        "doc = {'b': [1e16, 2**70, None], 'a': '<\u00e9\u2028>'}\n"
        "sys.stdout.write(documents.dumps(doc).hex() + ' ' + registry_state.dumps(doc).hex())"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == [
        _json_module_dumps(doc).hex(),
        json.dumps(doc, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode().hex(),
    ]
