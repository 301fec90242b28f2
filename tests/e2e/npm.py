"""Run the real npm against one registry only, with its own HOME and cache;
every other registry is unreachable through a dead proxy (Npm). Also the npm
tools other modules build on: make_project (a package.json with dependencies)
and pack (a package made from a manifest and files, with `npm pack`)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

DEAD_PROXY = "http://127.0.0.1:9"


def npm_binary() -> str:
    found = shutil.which("npm")
    if not found:
        raise RuntimeError("npm is not installed: scripts/test needs Node.js and npm")
    return found


class Npm:
    def __init__(self, workdir: Path, registry: str):
        self.registry = registry
        self.home = workdir / "home"
        self.cache = workdir / "cache"
        self.home.mkdir(parents=True, exist_ok=True)
        (self.home / ".npmrc").write_text(self.npmrc())

    def npmrc(self) -> str:
        return (
            f"registry={self.registry}\n"
            f"proxy={DEAD_PROXY}\nhttps-proxy={DEAD_PROXY}\nnoproxy=127.0.0.1,localhost\n"
            "audit=false\nfund=false\nupdate-notifier=false\n"
        )

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.lower().startswith(("npm_config_", "yarn_"))}
        env.update(
            HOME=str(self.home), npm_config_cache=str(self.cache), npm_config_userconfig=str(self.home / ".npmrc")
        )
        return env

    def run(self, *args: str, cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
        result = subprocess.run(
            [npm_binary(), *args], cwd=cwd, env=self.env(), capture_output=True, text=True, timeout=300
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"npm {' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
            )
        return result


def make_project(folder: Path, dependencies: dict[str, str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "package.json").write_text(
        json.dumps({"name": "e2e-project", "version": "1.0.0", "private": True, "dependencies": dependencies}, indent=2)
    )
    return folder


def pack(source: Path, destination: Path, manifest: dict, files: dict[str, str]) -> Path:
    """Make a package folder and `npm pack` it: a fixture of the test's own."""
    source.mkdir(parents=True, exist_ok=True)
    (source / "package.json").write_text(json.dumps(manifest, indent=2))
    for name, text in files.items():
        path = source / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    destination.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        [npm_binary(), "pack", "--silent", "--pack-destination", str(destination)],
        cwd=source,
        capture_output=True,
        text=True,
        check=True,
    )
    return destination / result.stdout.strip().splitlines()[-1]
