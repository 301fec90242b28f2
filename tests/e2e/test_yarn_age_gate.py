"""yarn 4 refuses versions published less than a day ago (npmMinimalAgeGate,
on by default). The matrix installs with the default on, from tarballs with an
old mtime; this shows the gate is really there, and what turns it off."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.e2e import hosts
from tests.e2e.clients import client
from tests.e2e.npm import make_project, pack
from tests.e2e.servers import free_port

pytestmark = pytest.mark.e2e


def test_yarn4_quarantines_a_version_packed_today_unless_the_gate_is_off(tmp_path):
    input_dir = tmp_path / "input"
    pack(
        tmp_path / "src", input_dir, {"name": "fixture-fresh", "version": "1.0.0"}, {"index.js": "module.exports = 1\n"}
    )
    port = free_port()
    registry = tmp_path / "registry"
    built = subprocess.run(
        [
            sys.executable,
            "-m",
            "staticreg",
            "build",
            str(input_dir),
            "-o",
            str(registry),
            "-q",
            "--base-url",
            f"http://127.0.0.1:{port}/",
        ],
        capture_output=True,
        text=True,
    )
    assert built.returncode == 0, built.stderr
    published = json.loads((registry / "fixture-fresh/index.json").read_text())["time"]["1.0.0"]
    with hosts.running(hosts.nginx(registry, tmp_path / "nginx", port)) as server:
        yarn = client("yarn4", tmp_path / "yarn", server.url())
        refused = yarn.install(make_project(tmp_path / "gated", {"fixture-fresh": "^1.0.0"}), check=False)
        assert refused.returncode != 0
        assert "YN0016" in refused.stdout and "quarantine" in refused.stdout, (published, refused.stdout)

        yarn.extra_settings = "npmMinimalAgeGate: 0\n"
        project = make_project(tmp_path / "trusted", {"fixture-fresh": "^1.0.0"})
        yarn.install(project)
        assert (project / "node_modules/fixture-fresh/package.json").is_file()
