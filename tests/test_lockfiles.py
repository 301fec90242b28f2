"""The lockfile parsers, on lockfiles written by hand from each format's documentation
(the e2e mirror test reads the ones the real clients write), and hostile ones."""

from __future__ import annotations

import json

import pytest

from staticreg.mirror import lockfiles
from staticreg.mirror.lockfiles import REGISTRY, SKIPPED, LockfileError, parse

SHA512 = "sha512-" + "A" * 86 + "=="
SHA512_B = "sha512-" + "B" * 86 + "=="
SHA1 = "sha1-" + "C" * 27 + "="


def kinds(entries):
    return [(e.kind, e.name, e.version) for e in entries]


def registry(entries):
    return {(e.name, e.version, e.integrity, e.alias) for e in entries if e.kind == REGISTRY}


def skipped(entries):
    return {e.name: e.reason for e in entries if e.kind == SKIPPED}


NPM_V3 = {
    "name": "app",
    "version": "1.0.0",
    "lockfileVersion": 3,
    "requires": True,
    "packages": {
        "": {"name": "app", "workspaces": ["packages/*"]},
        "node_modules/a": {"version": "1.0.0", "resolved": "https://r.example/a/-/a-1.0.0.tgz", "integrity": SHA512},
        "node_modules/@s/x": {
            "version": "2.0.0",
            "resolved": "https://r.example/@s/x/-/x-2.0.0.tgz",
            "integrity": SHA1,
        },
        "node_modules/a/node_modules/b": {
            "version": "1.0.0",
            "resolved": "https://r.example/b/-/b-1.0.0.tgz",
            "integrity": SHA512_B,
        },
        "node_modules/al": {
            "name": "real",
            "version": "3.0.0",
            "resolved": "https://r.example/real/-/real-3.0.0.tgz",
            "integrity": SHA512,
        },
        "node_modules/ws": {"resolved": "packages/ws", "link": True},
        "packages/ws": {"name": "ws", "version": "0.0.1"},
        "node_modules/a/node_modules/inner": {"version": "1.0.0", "inBundle": True},
        "node_modules/g": {
            "version": "1.0.0",
            "resolved": "git+ssh://git@github.example/u/g.git#abc",
            "integrity": SHA512,
        },
        "node_modules/t": {"version": "1.0.0", "resolved": "https://cdn.example/t.tgz", "integrity": SHA512},
        "node_modules/f": {"version": "1.0.0", "resolved": "file:../f"},
        "node_modules/broken": {"optional": True},
        "node_modules/sub": {
            "version": "1.0.0",
            "resolved": "https://host.example/npm/sub/-/sub-1.0.0.tgz",
            "integrity": SHA512,
        },
    },
}


def test_package_lock_v3():
    text = json.dumps(NPM_V3, indent=2)
    entries = parse("app/package-lock.json", text)
    assert registry(entries) == {
        ("a", "1.0.0", SHA512, None),
        ("@s/x", "2.0.0", SHA1, None),
        ("b", "1.0.0", SHA512_B, None),
        ("real", "3.0.0", SHA512, "al"),
        ("sub", "1.0.0", SHA512, None),
    }
    reasons = skipped(entries)
    assert set(reasons) == {"ws", "inner", "g", "t", "f", "broken"}
    assert reasons["inner"] == "bundled inside its parent's tarball"
    assert reasons["g"].startswith("a git dependency")
    assert reasons["t"].startswith("a remote tarball (https://cdn.example/t.tgz)")
    assert reasons["f"].startswith("a local file or folder")
    where = {e.name: e.where for e in entries}
    lines = text.splitlines()
    assert lines[int(where["b"].rsplit(":", 1)[1]) - 1].strip().startswith('"node_modules/a/node_modules/b"')
    assert where["a"].startswith("app/package-lock.json:")


def test_package_lock_v2_reads_packages_not_the_legacy_tree():
    lock = dict(NPM_V3, lockfileVersion=2, dependencies={"zzz": {"version": "9.9.9", "integrity": SHA512}})
    assert "zzz" not in {e.name for e in parse("package-lock.json", json.dumps(lock))}


def test_package_lock_v1_and_shrinkwrap():
    lock = {
        "name": "app",
        "lockfileVersion": 1,
        "requires": True,
        "dependencies": {
            "a": {
                "version": "1.0.0",
                "resolved": "https://r.example/a/-/a-1.0.0.tgz",
                "integrity": SHA512,
                "dependencies": {
                    "b": {"version": "2.0.0", "resolved": "https://r.example/b/-/b-2.0.0.tgz", "integrity": SHA512_B}
                },
            },
            "al": {
                "version": "npm:@s/real@3.0.0",
                "resolved": "https://r.example/@s/real/-/real-3.0.0.tgz",
                "integrity": SHA512,
            },
            "bun": {
                "version": "1.0.0",
                "resolved": "https://r.example/bun/-/bun-1.0.0.tgz",
                "integrity": SHA512,
                "dependencies": {"in": {"version": "1.0.0", "bundled": True}},
            },
            "loc": {"version": "file:packages/loc"},
            "gitdep": {"version": "git+https://git.example/u/r.git#abcdef", "from": "git+https://git.example/u/r.git"},
        },
    }
    for filename in ("package-lock.json", "npm-shrinkwrap.json"):
        entries = parse(filename, json.dumps(lock, indent=2))
        assert registry(entries) == {
            ("a", "1.0.0", SHA512, None),
            ("b", "2.0.0", SHA512_B, None),
            ("@s/real", "3.0.0", SHA512, "al"),
            ("bun", "1.0.0", SHA512, None),
        }
        assert set(skipped(entries)) == {"in", "loc", "gitdep"}


PNPM_V9 = f"""lockfileVersion: '9.0'

settings:
  autoInstallPeers: true

importers:

  .:
    dependencies:
      a:
        specifier: ^1.0.0
        version: 1.0.0
      al:
        specifier: npm:real@^3.0.0
        version: real@3.0.0
      ws:
        specifier: workspace:*
        version: link:packages/ws

packages:

  a@1.0.0:
    resolution: {{integrity: {SHA512}}}

  '@s/x@2.0.0':
    resolution: {{integrity: {SHA1}}}
    os: [darwin]

  real@3.0.0:
    resolution: {{integrity: {SHA512_B}}}

  t@https://cdn.example/t.tgz:
    resolution: {{tarball: https://cdn.example/t.tgz}}
    version: 1.0.0

  g@git+https://git.example/u/g.git#abc:
    resolution: {{type: git, repo: 'https://git.example/u/g.git', commit: abc}}
    version: 1.0.0

  d@file:../d:
    resolution: {{directory: ../d, type: directory}}
    version: 1.0.0

snapshots:

  a@1.0.0: {{}}
"""


def test_pnpm_v9():
    entries = parse("pnpm-lock.yaml", PNPM_V9)
    assert registry(entries) == {
        ("a", "1.0.0", SHA512, None),
        ("@s/x", "2.0.0", SHA1, None),
        ("real", "3.0.0", SHA512_B, None),
    }
    assert set(skipped(entries)) == {"t", "g", "d"}
    assert {e.name: e.where for e in entries}[
        "real"
    ] == f"pnpm-lock.yaml:{PNPM_V9.splitlines().index('  real@3.0.0:') + 1}"


PNPM_V6 = f"""lockfileVersion: '6.0'

dependencies:
  a:
    specifier: ^1.0.0
    version: 1.0.0

packages:

  /a@1.0.0:
    resolution: {{integrity: {SHA512}}}
    dev: false

  /@s/react-dom@18.2.0(react@18.2.0):
    resolution: {{integrity: {SHA512_B}}}
    dev: false

  registry.example/t/-/t-1.0.0.tgz:
    resolution: {{tarball: https://registry.example/t/-/t-1.0.0.tgz}}
    name: t
    version: 1.0.0
    dev: false

  github.com/u/g/abc:
    resolution: {{tarball: https://codeload.github.com/u/g/tar.gz/abc}}
    name: g
    version: 1.0.0
"""


def test_pnpm_v6():
    entries = parse("pnpm-lock.yaml", PNPM_V6)
    # a conventional registry tarball URL is a registry package; codeload is not
    assert registry(entries) == {
        ("a", "1.0.0", SHA512, None),
        ("@s/react-dom", "18.2.0", SHA512_B, None),
        ("t", "1.0.0", None, None),
    }
    assert set(skipped(entries)) == {"g"}


def test_pnpm_v5_is_refused_with_the_way_out():
    with pytest.raises(
        LockfileError,
        match=r"pnpm-lock.yaml:1: pnpm lockfileVersion '5.4' is not supported.*pnpm install --lockfile-only",
    ):
        parse("pnpm-lock.yaml", "lockfileVersion: 5.4\npackages: {}\n")


YARN1 = f"""# THIS IS AN AUTOGENERATED FILE. DO NOT EDIT THIS FILE DIRECTLY.
# yarn lockfile v1


"@s/x@^2.0.0", "@s/x@^2.0.1":
  version "2.0.0"
  resolved "https://r.example/@s/x/-/x-2.0.0.tgz#0123456789abcdef0123456789abcdef01234567"
  integrity {SHA512}
  dependencies:
    a "^1.0.0"

a@^1.0.0:
  version "1.0.0"
  resolved "https://r.example/a/-/a-1.0.0.tgz#0123456789abcdef0123456789abcdef01234567"

"al@npm:real@^3.0.0":
  version "3.0.0"
  resolved "https://r.example/real/-/real-3.0.0.tgz#0123456789abcdef0123456789abcdef01234567"
  integrity {SHA512_B}

"loc@file:./loc":
  version "1.0.0"

"g@git+https://git.example/u/g.git":
  version "1.0.0"
  resolved "git+https://git.example/u/g.git#abcdef"

t@https://cdn.example/t.tgz:
  version "1.0.0"
  resolved "https://cdn.example/t.tgz"
"""


def test_yarn1():
    entries = parse("yarn.lock", YARN1)
    sha1 = "sha1-ASNFZ4mrze8BI0VniavN7wEjRWc="
    assert registry(entries) == {
        ("@s/x", "2.0.0", SHA512, None),
        ("a", "1.0.0", sha1, None),
        ("real", "3.0.0", SHA512_B, "al"),
    }
    assert set(skipped(entries)) == {"loc", "g", "t"}
    assert {e.name: e.where for e in entries}["a"] == "yarn.lock:12"


def test_yarn1_rewrite_points_registry_urls_at_the_mirror_only():
    out = lockfiles.yarn1_rewrite(YARN1, "http://mirror.example/npm/")
    assert 'resolved "http://mirror.example/npm/@s/x/-/x-2.0.0.tgz#0123456789abcdef0123456789abcdef01234567"' in out
    assert 'resolved "http://mirror.example/npm/real/-/real-3.0.0.tgz#' in out
    assert 'resolved "https://cdn.example/t.tgz"' in out and 'resolved "git+https://git.example/u/g.git#abcdef"' in out
    assert parse("yarn.lock", out)  # still a yarn 1 lockfile
    assert out.count("\n") == YARN1.count("\n")


BERRY = """# This file is generated by running "yarn install" inside your project.

__metadata:
  version: 8
  cacheKey: 10c0

"@s/x@npm:^2.0.0":
  version: 2.0.0
  resolution: "@s/x@npm:2.0.0"
  checksum: 10c0/abcdef
  languageName: node
  linkType: hard

"al@npm:real@^3.0.0":
  version: 3.0.0
  resolution: "real@npm:3.0.0"
  languageName: node
  linkType: hard

"app@workspace:.":
  version: 0.0.0-use.local
  resolution: "app@workspace:."
  languageName: unknown
  linkType: soft

"loc@file:./loc::locator=app%40workspace%3A.":
  version: 1.0.0
  resolution: "loc@file:./loc#./loc::hash=1&locator=app%40workspace%3A."
  languageName: node
  linkType: hard

"p@patch:p@npm%3A1.0.0#./.yarn/patches/p.patch::locator=app%40workspace%3A.":
  version: 1.0.0
  resolution: "p@patch:p@npm%3A1.0.0#./.yarn/patches/p.patch::version=1.0.0&hash=abc"
  languageName: node
  linkType: hard

"g@https://git.example/u/g.git#commit=abc":
  version: 1.0.0
  resolution: "g@https://git.example/u/g.git#commit=abc"
  languageName: node
  linkType: hard

"odd@npm:1.0.0":
  version: 1.0.0
  resolution: "odd@npm:1.0.0::__archiveUrl=https%3A%2F%2Fcdn.example%2Fodd.tgz"
  languageName: node
  linkType: hard
"""


def test_yarn_berry():
    entries = parse("yarn.lock", BERRY)
    assert registry(entries) == {("@s/x", "2.0.0", None, None), ("real", "3.0.0", None, "al")}
    assert all("dist.integrity" in e.reason for e in entries if e.kind == REGISTRY)
    assert set(skipped(entries)) == {"loc", "p", "g", "odd"}  # the project itself (workspace:.) is no entry


BUN = f"""{{
  "lockfileVersion": 1,
  "workspaces": {{
    "": {{ "name": "app", "dependencies": {{ "a": "^1.0.0", "al": "npm:real@^3.0.0" }}, }},
  }},
  "packages": {{
    "a": ["a@1.0.0", "", {{ "dependencies": {{ "b": "^1.0.0" }} }}, "{SHA512}"],
    "al": ["real@3.0.0", "", {{}}, "{SHA512_B}"],
    "a/b": ["b@1.0.0", "", {{}}, "{SHA512}"],
    "@s/x": ["@s/x@2.0.0", "https://r.example/@s/x/-/x-2.0.0.tgz", {{ "os": "darwin" }}, "{SHA1}"],
    "loc": ["loc@file:./loc", {{}}],
    "ws": ["ws@workspace:packages/ws"],
    "t": ["t@https://cdn.example/t.tgz", {{}}],
    "g": ["g@github:u/g#abc", {{}}, "abc"],
  }}
}}
"""


def test_bun_lock():
    entries = parse("bun.lock", BUN)
    assert registry(entries) == {
        ("a", "1.0.0", SHA512, None),
        ("real", "3.0.0", SHA512_B, "al"),
        ("b", "1.0.0", SHA512, None),
        ("@s/x", "2.0.0", SHA1, None),
    }
    assert set(skipped(entries)) == {"loc", "ws", "t", "g"}
    assert {e.name: e.where for e in entries}["b"] == "bun.lock:9"


def test_bun_lockb_says_how_to_convert():
    with pytest.raises(
        LockfileError, match=r"bun.lockb:1: .*bun install --save-text-lockfile --frozen-lockfile --lockfile-only"
    ):
        parse("bun.lockb", "")


@pytest.mark.parametrize(
    "filename,text,where,says",
    [
        (
            "package-lock.json",
            '{"lockfileVersion": 3,\n "packages": {\n  "node_modules/a": {"version": 1}\n}}',
            ":3",
            "not text",
        ),
        ("package-lock.json", '{"lockfileVersion": 3,\n "packages": {\n', ":3", "is not valid JSON"),
        ("package-lock.json", '{"lockfileVersion": 7}', ":1", "lockfileVersion '7' is not one npm writes"),
        (
            "package-lock.json",
            '{"lockfileVersion": 3, "packages": {\n"node_modules/../../etc": {"version": "1.0.0", "integrity": "%s"}}}'
            % SHA512,
            ":2",
            "which npm does not allow",
        ),
        (
            "package-lock.json",
            '{"lockfileVersion": 3, "packages": {\n"node_modules/a": {"version": "1.0.0/../../x"}}}',
            ":2",
            "not valid semver",
        ),
        (
            "package-lock.json",
            '{"lockfileVersion": 3, "packages": {\n"node_modules/a": {"version": "1.0.0", "integrity": "md5-xyz"}}}',
            ":2",
            "is not an integrity",
        ),
        ("package-lock.json", "[" * 100_000 + "]" * 100_000, ":1", "nests too deeply"),
        (
            "pnpm-lock.yaml",
            "lockfileVersion: '9.0'\npackages:\n  a@1.0.0: &x\n    resolution: {integrity: x}\n  b@1.0.0: *x\n",
            ":5",
            "aliases are not allowed",
        ),
        (
            "pnpm-lock.yaml",
            "lockfileVersion: '9.0'\npackages:\n  a@1.0.0:\n    resolution: [1, 2\n",
            ":5",
            "not valid YAML",
        ),
        (
            "pnpm-lock.yaml",
            "lockfileVersion: '9.0'\npackages:\n  '@evil/../../x@1.0.0':\n    resolution: {integrity: %s}\n" % SHA512,
            ":3",
            "characters npm does not allow",
        ),
        ("yarn.lock", "# yarn lockfile v1\n\na@^1:\n  version\n", ":4", "expected `key value`"),
        ("yarn.lock", '# yarn lockfile v1\n\n  version "1.0.0"\n', ":3", "an indented line before any package pattern"),
        ("yarn.lock", '__metadata:\n  version: 8\n"a@npm:^1":\n  version: 1.0.0\n', ":3", "has no resolution"),
        ("bun.lock", '{"lockfileVersion": 1, "packages": {\n "a": "a@1.0.0",\n}}', ":2", 'is not ["name@version"'),
        (
            "bun.lock",
            '{"lockfileVersion": 1, "packages": {\n "a": ["a@1.0.0", "", {}, "sha512-ok", ],\n}}',
            ":2",
            "is not an integrity",
        ),
        ("Gemfile.lock", "GEM\n", ":1", "is not a lockfile staticreg knows"),
    ],
)
def test_hostile_lockfiles_get_one_line_naming_file_and_line(filename, text, where, says):
    with pytest.raises(LockfileError) as caught:
        parse(filename, text)
    message = str(caught.value)
    assert message.startswith(filename + where + ": "), message
    assert says in message and "\n" not in message


def test_strongest_hash_of_an_sri_string():
    assert lockfiles.strongest(f"{SHA1} {SHA512}") == ("sha512", SHA512[7:])
    assert lockfiles.strongest("md5-abc") is None


def test_lockfile_text_in_reports_and_errors_is_printable():
    lock = {
        "lockfileVersion": 3,
        "packages": {"node_modules/\x1b[31mred": {"version": "file:\x1b]0;title\x07", "resolved": "file:x"}},
    }
    (entry,) = parse("package-lock.json", json.dumps(lock))
    assert entry.kind == SKIPPED and entry.name.isprintable() and entry.version.isprintable()
    lock["packages"] = {"node_modules/a": {"version": "1.0.0\x1b[2J", "integrity": SHA512}}
    with pytest.raises(LockfileError) as caught:
        parse("package-lock.json", json.dumps(lock))
    assert str(caught.value).isprintable()
