from datetime import datetime, timezone
from pathlib import Path

import pytest

from staticreg.config import load_config
from staticreg.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "staticreg.yml"
    path.write_text(text)
    return path


def test_full_config_is_read_relative_to_its_file(tmp_path):
    path = write(
        tmp_path,
        """
input: pkgs
output: site/out
base_url: https://npm.example.com/npm
title: Acme
keep_going: true
dist_tags:
  "@acme/widgets":
    next: "2.0.0-beta.1"
deprecations:
  "@acme/widgets@<1.2": "upgrade"
publish_times:
  "left-pad@1.0.0": 2020-01-02T03:04:05Z
  "left-pad@1.1.0": "2021-01-01"
""",
    )
    c = load_config(path)
    assert c.input_dir == tmp_path / "pkgs" and c.output_dir == tmp_path / "site/out"
    assert c.base_url == "https://npm.example.com/npm/"
    assert c.title == "Acme" and c.keep_going is True
    assert [(o.name, o.tag, o.version) for o in c.dist_tags] == [("@acme/widgets", "next", "2.0.0-beta.1")]
    assert [(o.name, o.range, o.message) for o in c.deprecations] == [("@acme/widgets", "<1.2", "upgrade")]
    assert [o.time for o in c.publish_times] == [
        datetime(2020, 1, 2, 3, 4, 5, tzinfo=timezone.utc),
        datetime(2021, 1, 1, tzinfo=timezone.utc),
    ]
    assert c.dist_tags[0].where == f"{path}:9"
    assert c.times_path == tmp_path / "pkgs" / "staticreg-times.json"
    assert c.report_path == tmp_path / "site" / "out.report.json"


def test_flags_override_the_file(tmp_path):
    path = write(tmp_path, "input: a\noutput: b\nbase_url: http://a.test/\nkeep_going: false\n")
    c = load_config(path, input_dir=Path("/x"), base_url="http://b.test/", keep_going=True, output_dir=None)
    assert c.input_dir == Path("/x") and c.output_dir == tmp_path / "b"
    assert c.base_url == "http://b.test/" and c.keep_going is True


def test_every_problem_is_reported_at_once_with_key_and_line(tmp_path):
    path = write(
        tmp_path,
        """input: a
output: b
base_url: ftp://nope
keep_going: maybe
colour: blue
dist_tags:
  "@acme/widgets":
    next: 1.10
    "1.0.0": "1.0.0"
deprecations:
  "bad name@1": "x"
  "ok@^1": ""
publish_times:
  "x@1.0.0": "yesterday"
input: c
""",
    )
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = info.value.message
    for fragment in [
        ":3: base_url",
        ":4: keep_going",
        ":5: colour: unknown setting",
        ":8: dist_tags.@acme/widgets.next",
        "1.1",
        ":9: dist_tags.@acme/widgets.1.0.0",
        ":11: deprecations.bad name@1",
        ":12: deprecations.ok@^1",
        ":14: publish_times.x@1.0.0",
        ":15: input: given twice",
    ]:
        assert fragment in message, fragment
    assert message.startswith("9 configuration problems")


def test_unquoted_scope_gets_a_helpful_message(tmp_path):
    path = write(tmp_path, "input: a\ndist_tags:\n  @acme/widgets:\n    next: 1.0.0\n")
    with pytest.raises(ConfigError, match=r"(?s)staticreg.yml:3: not valid YAML.*quote the name") as info:
        load_config(path)
    assert '"@acme/widgets"' in info.value.message


def test_yaml_is_read_safely(tmp_path):
    path = write(tmp_path, "input: !!python/object/apply:os.system ['echo pwned']\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(path)


@pytest.mark.parametrize("text", ["", "# only a comment\n"])
def test_empty_file_means_defaults(tmp_path, text):
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text))
    assert "no input folder" in info.value.message and "no base URL" in info.value.message


def test_not_a_mapping(tmp_path):
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_config(write(tmp_path, "- a\n- b\n"))


def test_base_url_needs_http(tmp_path):
    with pytest.raises(ConfigError, match="not an absolute http"):
        load_config(None, input_dir=tmp_path, output_dir=tmp_path / "o", base_url="npm.example.com")


def test_output_must_differ_from_input(tmp_path):
    with pytest.raises(ConfigError, match="must not be the input"):
        load_config(None, input_dir=tmp_path, output_dir=tmp_path, base_url="http://a.test/")


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "nope.yml")
