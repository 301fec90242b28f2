"""The benchmark's scripts keep working: a 50-tarball corpus, one round of every
build measurement, and the document it would publish to Verdaccio. No timings
are checked (the benchmark itself is bench/run.py; see bench/RESULTS.md)."""

import gzip
import json
import os

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
    assert result["peak_rss_tree_mib"] > 0 and result["floor"] > 0 and result["write_floor"] > 0
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


def test_the_build_s_gzip_copies_are_set_aside_and_put_back(tmp_path):
    """The peer comparison measures nginx without the copies the build writes, then puts them back."""
    folder = bench_corpus.generate(5, tmp_path / "corpus", big=0)
    out = tmp_path / "out"
    from staticreg.build.pipeline import build
    from staticreg.config import Config

    build(Config(input_dir=folder / "tarballs", output_dir=out, base_url="http://127.0.0.1:9/"), show_progress=False)
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*.gz")}
    assert before and all(
        gzip.decompress(data) == (out / path.with_suffix("")).read_bytes() for path, data in before.items()
    )
    files, plain, packed = bench_run.set_copies_aside(out, tmp_path / "aside")
    assert files == len(before) and packed == sum(map(len, before.values())) and plain > packed
    assert list(out.rglob("*.gz")) == []
    bench_run.put_copies_back(out, tmp_path / "aside")
    assert {p.relative_to(out): p.read_bytes() for p in out.rglob("*.gz")} == before


def test_the_precompress_benchmark_finds_the_install_closure_and_what_would_pay(tmp_path):
    from bench import bench_precompress
    from staticreg.build.pipeline import build
    from staticreg.config import Config

    folder = bench_corpus.generate(20, tmp_path / "corpus", big=0)
    out = tmp_path / "out"
    build(Config(input_dir=folder / "tarballs", output_dir=out, base_url="http://127.0.0.1:9/"), show_progress=False)
    project = json.loads((folder / "corpus.json").read_text())["project"]
    names = bench_precompress.closure(out, project)
    assert set(project) <= set(names) and all((out / name / "index.json").is_file() for name in names)
    kinds = bench_precompress.candidates(out)
    assert kinds["package documents (full)"]["files"] == len(list(out.rglob("index.json.gz")))
    assert kinds["version and tag documents"]["files"] > 0 and "the site's pages" in kinds


def test_the_reader_benchmark_reads_with_both_paths_and_the_write_floor_writes_the_tree(tmp_path):
    from bench import bench_reader

    folder = bench_corpus.generate(10, tmp_path / "corpus", big=0)
    files = sorted((folder / "tarballs").rglob("*.tgz"))
    for whole in (True, False):
        assert bench_reader.read_all(files, tmp_path / "scratch", whole=whole) > 0
        copies = sorted((tmp_path / "scratch").iterdir(), key=lambda p: int(p.stem))
        assert [p.read_bytes() for p in copies] == [f.read_bytes() for f in files]
    tree = bench_run.load_tree(folder)
    assert bench_run.write_floor(tree, tmp_path / "copy") > 0 and not (tmp_path / "copy").exists()
    assert len(tree[1]) == sum(1 for p in folder.rglob("*") if p.is_file())


def test_the_least_write_floor_is_the_tarballs_and_package_documents(tmp_path):
    from staticreg.build.pipeline import build
    from staticreg.config import Config

    folder = bench_corpus.generate(10, tmp_path / "corpus", big=0)
    out = tmp_path / "out"
    build(Config(input_dir=folder / "tarballs", output_dir=out, base_url="http://127.0.0.1:9/"), show_progress=False)
    folders, files = bench_run.least_of(bench_run.load_tree(out))
    names = {rel for rel, _ in files}
    assert names == {str(p.relative_to(out)) for p in out.rglob("*.tgz")} | {
        str(p.relative_to(out)) for p in out.rglob("index.json") if "-" not in p.relative_to(out).parts[:1]
    }
    assert all(os.path.dirname(rel) in folders for rel in names)
