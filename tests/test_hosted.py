"""staticreg publish, unpublish, dist-tag and deprecate against a registry folder.

The oracle: whatever sequence of builds and changes made a registry, it holds the
same bytes as one cold build of the same tarballs and settings."""

from __future__ import annotations

import json
import multiprocessing
import re
import shutil
from pathlib import Path

import pytest

from staticreg.build.pipeline import build
from staticreg.config import Override
from staticreg.hosting import hosted
from staticreg.hosting.store import FolderStore
from staticreg.npm import layout
from tests.helpers import contents, make_tarball, snapshot
from tests.process import run_cli as run_staticreg


def pool(folder: Path) -> dict[str, Path]:
    """Tarballs of three packages, one scoped, with READMEs, a dependency and a prerelease."""
    made = {
        "a@1.0.0": make_tarball(
            folder, {"name": "a", "version": "1.0.0", "description": "first"}, {"README.md": "# a one"}
        ),
        "a@1.1.0": make_tarball(
            folder, {"name": "a", "version": "1.1.0", "dependencies": {"@s/b": "^1"}}, {"README.md": "# a *one-one*"}
        ),
        "a@2.0.0-rc.1": make_tarball(folder, {"name": "a", "version": "2.0.0-rc.1"}, {"README.md": "# a two"}),
        "@s/b@1.0.0": make_tarball(folder, {"name": "@s/b", "version": "1.0.0", "keywords": ["b"]}, {"README.md": "b"}),
        "c@0.1.0": make_tarball(folder, {"name": "c", "version": "0.1.0"}),
    }
    return made


def cold(tmp_path: Path, make_config, tarballs: list[Path], **settings) -> dict[str, bytes]:
    folder = tmp_path / "cold-input"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    for t in tarballs:
        shutil.copy2(t, folder / t.name)
    out = tmp_path / "cold"
    shutil.rmtree(out, ignore_errors=True)
    build(make_config(folder, output_dir=out, jobs=1, **settings), show_progress=False)
    return contents(out)


@pytest.fixture
def made(tmp_path):
    return pool(tmp_path / "pool")


def test_publishing_into_a_built_registry_equals_a_cold_build(tmp_path, make_config, made):
    first = tmp_path / "first"
    first.mkdir()
    for key in ("a@1.0.0", "c@0.1.0"):
        shutil.copy2(made[key], first / made[key].name)
    config = make_config(first, output_dir=tmp_path / "reg", jobs=1)
    build(config, show_progress=False)
    before = snapshot(config.output_dir)
    store = FolderStore(config.output_dir)

    report = hosted.publish(store, [made["a@1.1.0"], made["a@2.0.0-rc.1"]], config)  # one update of a
    assert report.published == ["a@1.1.0", "a@2.0.0-rc.1"] and report.packages == ["a"]
    after = snapshot(config.output_dir)
    assert [p for p in after if p.startswith("c/") and after[p] != before.get(p)] == []  # c untouched
    hosted.publish(store, [made["@s/b@1.0.0"]], config)
    assert contents(config.output_dir) == cold(tmp_path, make_config, list(made.values()))

    again = hosted.publish(store, [made["@s/b@1.0.0"]], config)  # the same bytes again: nothing new
    assert again.published == [] and again.unchanged == ["@s/b@1.0.0"]
    assert contents(config.output_dir) == cold(tmp_path, make_config, list(made.values()))


def test_publishing_into_an_empty_folder_makes_a_whole_registry(tmp_path, make_config, made):
    config = make_config(tmp_path / "unused", output_dir=tmp_path / "reg")
    store = FolderStore(tmp_path / "reg")
    for tarball in made.values():
        hosted.publish(store, [tarball], config)
    assert contents(tmp_path / "reg") == cold(tmp_path, make_config, list(made.values()))


def test_unpublish_dist_tag_and_deprecate_equal_a_cold_build_with_the_same_settings(tmp_path, make_config, made):
    folder = tmp_path / "all"
    folder.mkdir()
    for t in made.values():
        shutil.copy2(t, folder / t.name)
    config = make_config(folder, output_dir=tmp_path / "reg", jobs=1)
    build(config, show_progress=False)
    store = FolderStore(config.output_dir)

    hosted.unpublish(store, "a", "1.0.0", config)
    hosted.unpublish(store, "c", None, config, force=True)
    hosted.dist_tag_add(store, "a", "2.0.0-rc.1", "next", config)
    hosted.dist_tag_add(store, "a", "1.1.0", "stable", config)
    hosted.dist_tag_rm(store, "a", "stable", config)
    hosted.deprecate(store, "@s/b", "<2", "use c", config)
    hosted.deprecate(store, "a", "1.1.0", "too old", config)
    hosted.deprecate(store, "a", "1.1.0", "", config)  # taken back

    kept = [made["a@1.1.0"], made["a@2.0.0-rc.1"], made["@s/b@1.0.0"]]
    settings = {
        "dist_tags": (Override("a", "here", tag="next", version="2.0.0-rc.1"),),
        "deprecations": (Override("@s/b", "here", range="<2", message="use c"),),
    }
    assert contents(config.output_dir) == cold(tmp_path, make_config, kept, **settings)
    assert not (config.output_dir / "c").exists() and not (config.output_dir / "a/-/a-1.0.0.tgz").exists()


def test_refusals_leave_the_registry_as_it_was(tmp_path, make_config, made):
    config = make_config(tmp_path / "unused", output_dir=tmp_path / "reg")
    store = FolderStore(tmp_path / "reg")
    hosted.publish(store, [made["a@1.0.0"]], config)
    before = contents(tmp_path / "reg")
    other = make_tarball(tmp_path / "other", {"name": "a", "version": "1.0.0", "description": "changed"})
    with pytest.raises(hosted.UpdateError, match=r"already in .* with other bytes"):
        hosted.publish(store, [other], config)
    with pytest.raises(hosted.UpdateError, match="latest tag cannot be removed"):
        hosted.dist_tag_rm(store, "a", "latest", config)
    with pytest.raises(hosted.UpdateError, match=re.escape("no version 9.9.9")):
        hosted.dist_tag_add(store, "a", "9.9.9", "next", config)
    with pytest.raises(hosted.UpdateError, match="matches no version"):
        hosted.deprecate(store, "a", ">5", "gone", config)
    with pytest.raises(hosted.UpdateError, match="has no package nope"):
        hosted.unpublish(store, "nope", "1.0.0", config)
    with pytest.raises(hosted.UpdateError, match=re.escape("no version 2.0.0")):
        hosted.unpublish(store, "a", "2.0.0", config)
    with pytest.raises(hosted.UpdateError, match=re.escape("served at http://registry.test/")):
        hosted.publish(store, [made["c@0.1.0"]], make_config(tmp_path / "unused", base_url="http://elsewhere.test/"))
    assert contents(tmp_path / "reg") == before


def _publish_one(args: tuple[str, str, str]) -> str:
    root, tarball, base_url = args
    from staticreg.config import Config

    config = Config(input_dir=Path("."), output_dir=Path(root), base_url=base_url)
    return hosted.publish(FolderStore(Path(root)), [Path(tarball)], config).summary()


def test_eight_publishers_at_once_lose_nothing(tmp_path, make_config):
    tarballs = [make_tarball(tmp_path / "p", {"name": "same", "version": f"1.0.{i}"}) for i in range(4)]
    tarballs += [make_tarball(tmp_path / "p", {"name": f"own-{i}", "version": "1.0.0"}) for i in range(4)]
    config = make_config(tmp_path / "unused", output_dir=tmp_path / "reg")
    hosted.publish(FolderStore(tmp_path / "reg"), [tarballs[0]], config)
    with multiprocessing.get_context("spawn").Pool(8) as workers:
        workers.map(_publish_one, [(str(tmp_path / "reg"), str(t), config.base_url) for t in tarballs[1:]])
    assert contents(tmp_path / "reg") == cold(tmp_path, make_config, tarballs)


def test_a_publish_forgets_the_build_cache_of_the_folder(tmp_path, make_config, made):
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy2(made["a@1.0.0"], folder)
    config = make_config(folder, output_dir=tmp_path / "reg", jobs=1)
    build(config, show_progress=False)
    hosted.publish(FolderStore(config.output_dir), [made["c@0.1.0"]], config)
    build(config, show_progress=False)  # declarative: the registry is the input folder again
    assert contents(config.output_dir) == cold(tmp_path, make_config, [made["a@1.0.0"]])


def test_the_command_line_speaks_in_one_line(tmp_path, made):
    reg = tmp_path / "reg"
    result = run_staticreg("publish", str(made["a@1.0.0"]), "--to", str(reg))
    assert result.returncode == 1 and "give --base-url" in result.stderr and "Traceback" not in result.stderr
    result = run_staticreg("publish", str(made["a@1.0.0"]), "--to", str(reg), "--base-url", "http://r.test/")
    assert result.returncode == 0, result.stderr
    assert f"{reg}: published a@1.0.0" in result.stdout
    doc = json.loads((reg / layout.packument_path("a")).read_bytes())
    assert doc["versions"]["1.0.0"]["dist"]["tarball"] == "http://r.test/a/-/a-1.0.0.tgz"
    broken = tmp_path / "broken.tgz"
    broken.write_bytes(b"not a tarball")
    result = run_staticreg("publish", str(broken), "--to", str(reg))
    assert result.returncode == 1 and "broken.tgz" in result.stderr and "Traceback" not in result.stderr
    (reg / layout.REGISTRY_STATE).write_text("{")
    result = run_staticreg("dist-tag", "add", "a@1.0.0", "next", "--to", str(reg))
    assert result.returncode == 1 and "state.json is not JSON" in result.stderr and "Traceback" not in result.stderr
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    result = run_staticreg("publish", str(made["a@1.0.0"]), "--to", str(other), "--base-url", "http://r.test/")
    assert result.returncode == 1 and "other content" in result.stderr and (other / "notes.txt").exists()


def test_shared_pages_are_made_whole_again_when_their_marker_names_no_rows(tmp_path, make_config, made):
    """A writer killed while writing the shared pages leaves the marker empty: the next one makes them all."""
    from staticreg.npm import registry_state

    config = make_config(tmp_path / "unused", output_dir=tmp_path / "reg")
    store = FolderStore(tmp_path / "reg")
    hosted.publish(store, [made["a@1.0.0"], made["c@0.1.0"]], config)
    (tmp_path / "reg" / "index.html").write_text("half written")
    store.write(layout.SHARED_PAGES_STATE, registry_state.shared_pages_bytes(None))
    hosted.publish(store, [made["@s/b@1.0.0"]], config)
    assert contents(tmp_path / "reg") == cold(
        tmp_path, make_config, [made["a@1.0.0"], made["c@0.1.0"], made["@s/b@1.0.0"]]
    )


def _consistent(root: Path) -> None:
    """Every package document names only tarballs that are there, with the integrity it states."""
    import hashlib

    from staticreg.build.reader import sri

    for doc_path in root.rglob(layout.FULL_DOCUMENT):
        rel = doc_path.relative_to(root).as_posix()
        if layout.package_of_document(rel) is None:
            continue
        doc = json.loads(doc_path.read_bytes())  # never half a document
        for version, manifest in doc["versions"].items():
            tarball = root / layout.tarball_path(doc["name"], version)
            assert sri(hashlib.sha512(tarball.read_bytes())) == manifest["dist"]["integrity"], (
                f"{doc['name']}@{version}"
            )


def test_a_publish_killed_at_any_moment_is_completed_by_running_it_again(tmp_path, make_config, made):
    import random
    import signal
    import subprocess
    import sys
    import time

    config = make_config(tmp_path / "unused", output_dir=tmp_path / "reg")
    hosted.publish(FolderStore(tmp_path / "reg"), [made["a@1.0.0"]], config)
    change = [str(made[k]) for k in ("a@1.1.0", "@s/b@1.0.0", "c@0.1.0")]
    rng = random.Random(3)
    for _ in range(8):
        p = subprocess.Popen(
            [sys.executable, "-m", "staticreg", "publish", *change, "--to", str(tmp_path / "reg")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(rng.uniform(0.2, 1.2))
        p.send_signal(signal.SIGKILL)
        p.wait()
        _consistent(tmp_path / "reg")
    done = run_staticreg("publish", *change, "--to", str(tmp_path / "reg"))
    assert done.returncode == 0, done.stderr
    # what killed writers left half written (hidden temporaries) is gone once the file is written again
    assert contents(tmp_path / "reg") == cold(
        tmp_path, make_config, [made[k] for k in ("a@1.0.0", "a@1.1.0", "@s/b@1.0.0", "c@0.1.0")]
    )


def test_a_signed_registry_stays_signed_and_refuses_a_publisher_without_its_key(tmp_path, make_config, made):
    from staticreg import keyfiles
    from staticreg.npm.signatures import Keyring

    keyfiles.generate(tmp_path / "key.pem")
    keyring = Keyring(keyfiles.signer_from_file(tmp_path / "key.pem"))
    first = tmp_path / "first"
    first.mkdir()
    shutil.copy2(made["a@1.0.0"], first)
    config = make_config(first, output_dir=tmp_path / "reg", jobs=1, signing=keyring)
    build(config, show_progress=False)
    store = FolderStore(config.output_dir)
    for base_url in ("http://registry.test/", ""):  # with --base-url given again, and without (as the CLI runs)
        with pytest.raises(hosted.UpdateError, match="signs its versions with the key SHA256:"):
            hosted.publish(store, [made["a@1.1.0"]], make_config(first, output_dir=tmp_path / "reg", base_url=base_url))
    hosted.publish(store, [made["a@1.1.0"], made["c@0.1.0"]], config)
    doc = json.loads((config.output_dir / "a/index.json").read_bytes())
    assert all(m["dist"]["signatures"][0]["keyid"] == keyring.signer.keyid for m in doc["versions"].values())
    assert (config.output_dir / layout.KEYS).is_file()
    assert contents(config.output_dir) == cold(
        tmp_path, make_config, [made["a@1.0.0"], made["a@1.1.0"], made["c@0.1.0"]], signing=keyring
    )


def test_a_mirrored_tarball_published_with_its_sidecar_equals_a_build_of_both(tmp_path, make_config, made):
    """What upstream said of a mirrored version (its sidecar beside the tarball) is served, and
    kept through later publishes of the same package."""
    from staticreg.npm import upstream_meta

    mirrored = make_tarball(tmp_path / "mirror", {"name": "a", "version": "0.9.0"})
    from staticreg.build.reader import read_tarball

    integrity = read_tarball(mirrored, mirrored.name).integrity
    meta = upstream_meta.from_upstream(
        "a",
        "0.9.0",
        integrity,
        {
            "deprecated": "use 1.x",
            "_npmUser": {"name": "someone"},
            "os": ["linux"],
            "dist": {
                "attestations": {
                    "url": "https://up.test/-/npm/v1/attestations/a@0.9.0",
                    "provenance": {"predicateType": "x"},
                }
            },
        },
        "2020-01-02T03:04:05.000Z",
        {"attestations": [{"predicateType": "x"}]},
    )
    Path(f"{mirrored}{upstream_meta.SUFFIX}").write_bytes(upstream_meta.dumps(meta))
    config = make_config(tmp_path / "unused", output_dir=tmp_path / "reg")
    store = FolderStore(tmp_path / "reg")
    hosted.publish(store, [mirrored], config)
    hosted.publish(store, [made["a@1.0.0"]], config)  # the mirrored version keeps what upstream said
    folder = tmp_path / "both"
    folder.mkdir()
    for path in (mirrored, Path(f"{mirrored}{upstream_meta.SUFFIX}"), made["a@1.0.0"]):
        shutil.copy2(path, folder / path.name)
    out = tmp_path / "cold-both"
    build(make_config(folder, output_dir=out, jobs=1), show_progress=False)
    doc = json.loads((tmp_path / "reg/a/index.json").read_bytes())
    assert (
        doc["versions"]["0.9.0"]["_npmUser"] == {"name": "someone"}
        and doc["time"]["0.9.0"] == "2020-01-02T03:04:05.000Z"
    )
    assert (tmp_path / "reg" / layout.attestation_path("a", "0.9.0")).is_file()
    assert contents(tmp_path / "reg") == contents(out)


def tree(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() + ("/" if p.is_dir() else "") for p in root.rglob("*"))


def test_readme_pages_follow_the_versions_a_change_brings_or_takes(tmp_path, make_config):
    """Versions share a README page while their README is the one before theirs: a version
    published between two of them splits the page, and its unpublish joins it again. No page
    is left behind, and none is missing (every link of every page leads to a file)."""
    from tests.legacy_layout import dead_links

    same = {"README.md": "# the same\n"}
    pool_dir = tmp_path / "pool"
    t = {v: make_tarball(pool_dir, {"name": "r", "version": v}, same) for v in ("1.0.0", "1.2.0", "1.3.0")}
    t["1.1.0"] = make_tarball(pool_dir, {"name": "r", "version": "1.1.0"}, {"README.md": "# another\n"})
    config = make_config(tmp_path / "unused", output_dir=tmp_path / "reg")
    store = FolderStore(tmp_path / "reg")
    hosted.publish(store, [t["1.0.0"], t["1.2.0"], t["1.3.0"]], config)
    pages = lambda: sorted(p.name for p in (tmp_path / "reg" / layout.site_package_page("r")).parent.iterdir())  # noqa: E731
    assert pages() == ["1.0.0.html", "index.html"]
    hosted.publish(store, [t["1.1.0"]], config)
    assert pages() == ["1.0.0.html", "1.1.0.html", "1.2.0.html", "index.html"]
    assert (
        contents(tmp_path / "reg") == cold(tmp_path, make_config, list(t.values()))
        and dead_links(tmp_path / "reg") == []
    )
    hosted.unpublish(store, "r", "1.1.0", config)
    assert pages() == ["1.0.0.html", "index.html"]
    assert contents(tmp_path / "reg") == cold(tmp_path, make_config, [t["1.0.0"], t["1.2.0"], t["1.3.0"]])
    hosted.unpublish(store, "r", "1.0.0", config)  # the page is named after the first version that has it
    assert pages() == ["1.2.0.html", "index.html"] and dead_links(tmp_path / "reg") == []
    assert contents(tmp_path / "reg") == cold(tmp_path, make_config, [t["1.2.0"], t["1.3.0"]])
    assert tree(tmp_path / "reg") == tree(tmp_path / "cold")


@pytest.mark.parametrize("change", ["publish", "unpublish", "dist-tag"])
def test_the_first_change_to_a_registry_an_older_staticreg_laid_out_brings_all_of_it_to_this_layout(
    tmp_path, make_config, made, change
):
    """Every package, the ones the change does not touch too: their files where this layout
    puts them, none of the older layout's left (in a folder, nor its empty folders), no page
    linking a file that is not there, and the state naming the layout."""
    from tests.legacy_layout import dead_links, generation_one_files, to_generation_one

    folder = tmp_path / "first"
    folder.mkdir()
    for key in ("a@1.0.0", "a@1.1.0", "@s/b@1.0.0", "c@0.1.0"):
        shutil.copy2(made[key], folder / made[key].name)
    config = make_config(folder, output_dir=tmp_path / "reg", jobs=1)
    build(config, show_progress=False)
    reg = config.output_dir
    to_generation_one(reg)
    assert "c/0.1.0/index.json" in generation_one_files(reg)
    store = FolderStore(reg)
    kept = [made[k] for k in ("a@1.0.0", "a@1.1.0", "@s/b@1.0.0", "c@0.1.0")]
    settings = {}
    if change == "publish":
        hosted.publish(store, [made["a@2.0.0-rc.1"]], config)
        kept.append(made["a@2.0.0-rc.1"])
    elif change == "unpublish":
        hosted.unpublish(store, "a", "1.0.0", config)
        kept.remove(made["a@1.0.0"])
    else:
        hosted.dist_tag_add(store, "c", "0.1.0", "stable", config)
        settings = {"dist_tags": (Override("c", "here", tag="stable", version="0.1.0"),)}
    assert generation_one_files(reg) == [] and dead_links(reg) == []
    assert contents(reg) == cold(tmp_path, make_config, kept, **settings)
    assert tree(reg) == tree(tmp_path / "cold")  # no folder an older layout needed is left
    assert json.loads((reg / layout.REGISTRY_STATE).read_bytes())["settings"]["layout"] == layout.GENERATION
