from pathlib import Path

from staticreg.config import load_config
from staticreg.dev import config_edit

USER_FILE = """# my registry
input: packages   # the tarballs
title: Acme

dist_tags:
  demo:
    next: "2.0.0"

# deprecations follow
deprecations:
  "demo@1.0.0": "old"
site: true
"""


def test_only_the_changed_key_is_rewritten(tmp_path: Path):
    path = tmp_path / "staticreg.yml"
    path.write_text(USER_FILE)
    config_edit.set_dist_tag(path, "@s/b", "beta", "1.10.0")
    config_edit.set_deprecations(path, "demo", {"2.0.0": "use 3", "1.0.0": ""})
    text = path.read_text()
    assert text.startswith("# my registry\ninput: packages   # the tarballs\ntitle: Acme\n")
    assert "# deprecations follow\n" in text and text.endswith("site: true\n")
    config = load_config(path, require_base_url=False, output_dir=tmp_path / "out")
    assert {(o.name, o.tag, o.version) for o in config.dist_tags} == {
        ("demo", "next", "2.0.0"),
        ("@s/b", "beta", "1.10.0"),
    }
    assert [(o.name, o.range, o.message) for o in config.deprecations] == [("demo", "2.0.0", "use 3")]


def test_removing_the_last_tag_removes_the_key(tmp_path: Path):
    path = tmp_path / "staticreg.yml"
    path.write_text(USER_FILE)
    config_edit.set_dist_tag(path, "demo", "next", None)
    assert "dist_tags" not in path.read_text() and "title: Acme" in path.read_text()


def test_a_missing_file_is_created_with_the_input(tmp_path: Path):
    path = tmp_path / "staticreg.yml"
    config_edit.set_dist_tag(path, "demo", "next", "1.0.0", new_file_input="packages")
    config = load_config(path, require_base_url=False, output_dir=tmp_path / "out")
    assert config.input_dir == tmp_path / "packages"
    assert [(o.name, o.tag, o.version) for o in config.dist_tags] == [("demo", "next", "1.0.0")]
