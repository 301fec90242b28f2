"""The benchmark's scripts keep working: a 50-tarball corpus, one round of every
build measurement, and the document it would publish to Verdaccio. No timings
are checked (the benchmark itself is bench/run.py; see bench/RESULTS.md)."""

import gzip
import json

from bench import corpus as bench_corpus
from bench import run as bench_run


def test_corpus_is_deterministic_and_builds(tmp_path):
    first = bench_corpus.generate(50, tmp_path / "a", big=1)
    second = bench_corpus.generate(50, tmp_path / "b", big=1)
    files = sorted(p.relative_to(first) for p in first.rglob("*.tgz"))
    assert len(files) == 51  # 50 and the extra one
    assert files == sorted(p.relative_to(second) for p in second.rglob("*.tgz"))
    assert all((first / f).read_bytes() == (second / f).read_bytes() for f in files)
    assert (first / "corpus.json").read_bytes() == (second / "corpus.json").read_bytes()

    result = bench_run.bench_build(first, tmp_path / "work", runs=1, base_url="http://127.0.0.1:9/")
    assert result["tarballs"] == 50 and result["versions"] == 50
    assert result["peak_rss_tree_mib"] > 0 and result["floor"] > 0
    assert len(result["add_one"]) == 1 and result["first_add_one"]["seconds"] > 0
    assert result["output_files"] > result["output_folders"] > 1
    assert bench_run.tree_counts(tmp_path / "work" / "out") == (result["output_files"], result["output_folders"])
    layout = json.loads((first / "corpus.json").read_text())
    name = layout["packages"][0]["name"]
    document = json.loads((tmp_path / "work" / "out" / name / "index.json").read_bytes())
    assert sorted(document["versions"]) == sorted(layout["packages"][0]["versions"])
    extra = layout["extra"]  # the add-one tarball, taken out again after its rebuild
    extra_document = tmp_path / "work" / "out" / extra["name"] / "index.json"
    assert not extra_document.exists() or extra["version"] not in json.loads(extra_document.read_bytes())["versions"]
    bench_run.clean_output(tmp_path / "work")  # what each cold build starts from: no output, no build state
    assert sorted(p.name for p in (tmp_path / "work").iterdir()) == ["report.json", "staticreg.yml"]


def test_publish_document_is_what_npm_publish_sends(tmp_path):
    folder = bench_corpus.generate(5, tmp_path, big=0)
    tarball = next((folder / "tarballs").rglob("*.tgz"))
    name, doc = bench_run.publish_document(tarball, 4873)
    version = next(iter(doc["versions"]))
    assert doc["name"] == name and doc["dist-tags"] in ({"latest": version}, {"next": version})
    attachment = doc["_attachments"][f"{name}-{version}.tgz"]
    assert attachment["length"] == tarball.stat().st_size
    assert doc["versions"][version]["dist"]["tarball"].startswith("http://127.0.0.1:4873/")


def test_precompress_writes_what_gzip_static_serves_and_removes_it(tmp_path):
    (tmp_path / "demo" / "1.0.0").mkdir(parents=True)
    documents = [tmp_path / "demo" / name for name in ("index.json", "index.corgi", "1.0.0/index.json")]
    for i, path in enumerate(documents):
        path.write_text(json.dumps({"name": "demo", "n": i}))
    (tmp_path / "demo" / "index.html").write_text("<p>site</p>")
    files, before, after = bench_run.precompress(tmp_path)
    assert files == 3 and before == sum(p.stat().st_size for p in documents) and after > 0
    for path in documents:
        packed = path.with_name(path.name + ".gz")
        assert gzip.decompress(packed.read_bytes()) == path.read_bytes()
        assert packed.stat().st_mtime_ns == path.stat().st_mtime_ns
    assert not (tmp_path / "demo" / "index.html.gz").exists()
    bench_run.remove_precompressed(tmp_path)
    assert sorted(p.name for p in tmp_path.rglob("*.gz")) == []
