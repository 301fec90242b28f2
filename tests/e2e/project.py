"""The fixture registry and project every client installs in the client x host
matrix: scoped and unscoped packages, bins, a peer, an optional dependency and
one for another OS that must be skipped, a prerelease reached by its tag, a
deprecated version. Packages come from the examples and from `npm pack`.
make_input writes its input (copy_examples, the bundled examples alone), build runs
`staticreg build` with the matrix's settings; new_project, check_installed and
resolved_version make and inspect the project a client installs."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.e2e.npm import make_project, pack

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "packages"
OLD = 1_600_000_000  # past yarn 4's one-day age gate: its default stays on
DEPENDENCIES = {"demo-cli": "^1.0.0", "@fixture/hello": "^1.0.0", "fixture-pre": "next", "fixture-peer": "^1.0.0"}
DEPRECATION = "demo-utils 1.0.0 has a bug in shout(); use 1.1.0 or later"


def copy_examples(folder: Path, times: bool = True) -> Path:
    """A new folder with the bundled example tarballs (and, with `times`, their kept publish times)."""
    folder.mkdir(parents=True)
    for tarball in EXAMPLES.glob("*.tgz"):
        shutil.copy2(tarball, folder)
    if times:
        shutil.copy2(EXAMPLES / "staticreg-times.json", folder)
    return folder


def make_input(folder: Path, scratch: Path) -> Path:
    """The matrix's input: the examples and the fixture packages `npm pack` makes in scratch."""
    copy_examples(folder)
    pack(
        scratch / "hello",
        folder,
        {
            "name": "@fixture/hello",
            "version": "1.0.0",
            "bin": {"fixture-hello": "cli.js"},
            "dependencies": {"demo-utils": "1.0.0"},
            "peerDependencies": {"fixture-peer": "^1.0.0"},
            "optionalDependencies": {"fixture-opt": "1.0.0", "fixture-darwin-only": "1.0.0"},
        },
        {"cli.js": "#!/usr/bin/env node\nconsole.log(require('demo-utils').shout(require('fixture-peer')))\n"},
    )
    pack(
        scratch / "peer",
        folder,
        {"name": "fixture-peer", "version": "1.0.0"},
        {"index.js": "module.exports = 'peer'\n"},
    )
    pack(scratch / "opt", folder, {"name": "fixture-opt", "version": "1.0.0"}, {"index.js": "module.exports = 'opt'\n"})
    pack(
        scratch / "darwin",
        folder,
        {"name": "fixture-darwin-only", "version": "1.0.0", "os": ["darwin"]},
        {"index.js": "module.exports = 'darwin'\n"},
    )
    for version in ("1.0.0", "2.0.0-beta.1"):
        pack(
            scratch / f"pre-{version}",
            folder,
            {"name": "fixture-pre", "version": version},
            {"index.js": f"module.exports = '{version}'\n"},
        )
    for tarball in folder.glob("fixture-*.tgz"):
        os.utime(tarball, (OLD, OLD))
    return folder


def build(input_dir: Path, output: Path, base_url: str, scratch: Path, *extra: str) -> Path:
    config = scratch / f"staticreg-{output.name}.yml"
    config.write_text(f"""
input: {input_dir}
output: {output}
base_url: {base_url}
dist_tags:
  demo-utils:
    next: "2.0.0-beta.1"
  fixture-pre:
    next: "2.0.0-beta.1"
deprecations:
  "demo-utils@1.0.0": "{DEPRECATION}"
""")
    result = subprocess.run(
        [sys.executable, "-m", "staticreg", "build", "-q", "-c", str(config), *extra],
        capture_output=True,
        text=True,
        cwd=scratch,
    )
    assert result.returncode == 0, result.stderr
    return output


def new_project(folder: Path) -> Path:
    shutil.rmtree(folder, ignore_errors=True)
    return make_project(folder, DEPENDENCIES)


def resolved_version(name: str, from_dir: Path) -> str | None:
    """The version Node itself loads for `name` from `from_dir` (its real path, as
    Node uses it), whatever the client's layout; None when Node cannot find it."""
    script = (
        "try { console.log(require(require.resolve(%s, {paths: [require('fs').realpathSync(%s)]})).version) }"
        " catch (e) { console.log('missing') }"
    ) % (json.dumps(name + "/package.json"), json.dumps(str(from_dir)))
    out = subprocess.run(["node", "-e", script], capture_output=True, text=True, check=True).stdout.strip()
    return None if out == "missing" else out


def installed_folders(project: Path, name: str) -> list[Path]:
    """Every folder called `name` anywhere under node_modules (pnpm's .pnpm too)."""
    return [Path(root) for root, dirs, _ in os.walk(project / "node_modules") if Path(root).name == name]


def check_installed(project: Path) -> None:
    modules = project / "node_modules"
    hello = modules / "@fixture/hello"
    found = {
        "demo-cli": resolved_version("demo-cli", project),
        "demo-utils via demo-cli": resolved_version("demo-utils", modules / "demo-cli"),
        "@demo/greet via demo-cli": resolved_version("@demo/greet", modules / "demo-cli"),
        "fixture-pre (tag next)": resolved_version("fixture-pre", project),
        "demo-utils via @fixture/hello (deprecated)": resolved_version("demo-utils", hello),
        "fixture-peer via @fixture/hello (peer)": resolved_version("fixture-peer", hello),
        "fixture-opt via @fixture/hello (optional)": resolved_version("fixture-opt", hello),
        "fixture-darwin-only (other OS)": resolved_version("fixture-darwin-only", hello),
    }
    assert found == {
        "demo-cli": "1.0.0",
        "demo-utils via demo-cli": "1.2.0",  # ^1.1.0: the highest stable
        "@demo/greet via demo-cli": "1.0.0",
        "fixture-pre (tag next)": "2.0.0-beta.1",
        "demo-utils via @fixture/hello (deprecated)": "1.0.0",
        "fixture-peer via @fixture/hello (peer)": "1.0.0",
        "fixture-opt via @fixture/hello (optional)": "1.0.0",
        "fixture-darwin-only (other OS)": None,
    }
    assert installed_folders(project, "fixture-darwin-only") == []
    for command, expected in ((["demo-hello", "npm"], "HELLO, NPM!!"), (["fixture-hello"], "PEER!")):
        out = subprocess.run([str(modules / ".bin" / command[0]), *command[1:]], capture_output=True, text=True)
        assert out.stdout.strip() == expected, (command, out.stdout, out.stderr)
