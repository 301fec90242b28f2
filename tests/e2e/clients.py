"""The five npm clients (npm, pnpm, yarn 1, yarn 4, bun), each run against one
registry only: its own HOME, cache and store, every other registry unreachable
(a dead proxy, or yarn 4's network allow-list), audit off.

scripts/setup --test installs pnpm, yarn 1, yarn 4 and bun into .tools/.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

from tests.e2e.npm import DEAD_PROXY, npm_binary

ROOT = Path(__file__).resolve().parents[2]
TOOLS = ROOT / ".tools" / "node_modules"
NAMES = ("npm", "pnpm", "yarn1", "yarn4", "bun")
# Variables that would make a client use another registry, cache or mode (CI=true
# turns on pnpm's frozen lockfile and yarn 4's immutable installs).
_FOREIGN_ENV = (
    "npm_config_",
    "yarn_",
    "pnpm_",
    "bun_",
    "ci",
    "continuous_integration",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "all_proxy",
)


def _tool(path: str) -> str:
    found = TOOLS / path
    if not found.exists():
        raise RuntimeError(f"{found} is missing: run scripts/setup --test")
    return str(found)


class Client:
    """One client with its own HOME and cache below `workdir`."""

    name = ""
    lockfile = ""

    def __init__(self, workdir: Path, registry: str):
        self.workdir, self.registry = workdir, registry
        self.home = workdir / "home"
        self.cache = workdir / "cache"

    def fresh(self) -> None:
        """Forget every cache and setting: the next run is cold."""
        shutil.rmtree(self.workdir, ignore_errors=True)
        self.home.mkdir(parents=True)
        self.write_settings()

    def write_settings(self) -> None:
        (self.home / ".npmrc").write_text(
            f"registry={self.registry}\n"
            f"proxy={DEAD_PROXY}\nhttps-proxy={DEAD_PROXY}\nnoproxy=127.0.0.1,localhost\n"
            "audit=false\nfund=false\nupdate-notifier=false\n"
        )

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.lower().startswith(_FOREIGN_ENV)}
        env.update(
            HOME=str(self.home),
            XDG_CONFIG_HOME=str(self.home / ".config"),
            XDG_CACHE_HOME=str(self.cache),
            XDG_DATA_HOME=str(self.home / ".local/share"),
            npm_config_userconfig=str(self.home / ".npmrc"),
        )
        return env

    def command(self, frozen: bool) -> list[str]:
        raise NotImplementedError

    def prepare(self, project: Path) -> None:
        """Per-project settings, written before each install."""

    def install(self, project: Path, frozen: bool = False, check: bool = True) -> subprocess.CompletedProcess:
        self.prepare(project)
        result = subprocess.run(
            self.command(frozen), cwd=project, env=self.env(), capture_output=True, text=True, timeout=300
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"{self.name} {'frozen ' if frozen else ''}install failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
            )
        return result

    def lock_problems(self, project: Path) -> list[str]:
        """What is wrong with the lockfile: URLs outside the registry, pinned archive URLs."""
        text = (project / self.lockfile).read_text()
        return [f"{url} is not under {self.registry}" for url in _urls(text) if not url.startswith(self.registry)]


def _urls(text: str) -> list[str]:
    return re.findall(r"https?://[^\s\"',#]+", text)


class NpmClient(Client):
    name, lockfile = "npm", "package-lock.json"

    def env(self) -> dict[str, str]:
        return {**super().env(), "npm_config_cache": str(self.cache)}

    def command(self, frozen: bool) -> list[str]:
        return [npm_binary(), "ci" if frozen else "install", "--no-audit"]

    def lock_problems(self, project: Path) -> list[str]:
        lock = json.loads((project / self.lockfile).read_text())
        resolved = [p.get("resolved", "") for key, p in lock["packages"].items() if key and not p.get("link")]
        return super().lock_problems(project) + (["no resolved URL in package-lock.json"] if not all(resolved) else [])


class PnpmClient(Client):
    name, lockfile = "pnpm", "pnpm-lock.yaml"

    def write_settings(self) -> None:
        super().write_settings()
        with (self.home / ".npmrc").open("a") as f:
            f.write(f"store-dir={self.cache / 'store'}\ncache-dir={self.cache / 'metadata'}\n")

    def command(self, frozen: bool) -> list[str]:
        return [
            _tool(".bin/pnpm"),
            "install",
            "--frozen-lockfile" if frozen else "--no-frozen-lockfile",
            "--reporter=append-only",
        ]

    def lock_problems(self, project: Path) -> list[str]:
        text = (project / self.lockfile).read_text()
        return super().lock_problems(project) + (["pnpm-lock.yaml pins tarball: URLs"] if "tarball:" in text else [])


class Yarn1Client(Client):
    name, lockfile = "yarn1", "yarn.lock"

    def write_settings(self) -> None:
        # yarn 1 has no no-proxy setting in .npmrc: the dead proxy comes from the environment.
        (self.home / ".npmrc").write_text("audit=false\n")

    def env(self) -> dict[str, str]:
        return {
            **super().env(),
            "YARN_CACHE_FOLDER": str(self.cache),
            "HTTP_PROXY": DEAD_PROXY,
            "HTTPS_PROXY": DEAD_PROXY,
            "NO_PROXY": "127.0.0.1,localhost",
        }

    def command(self, frozen: bool) -> list[str]:
        return [
            "node",
            _tool("yarn/bin/yarn.js"),
            "install",
            "--registry",
            self.registry,
            "--non-interactive",
            "--no-progress",
            *(["--frozen-lockfile"] if frozen else []),
        ]


class Yarn4Client(Client):
    name, lockfile = "yarn4", "yarn.lock"
    extra_settings = ""  # more .yarnrc.yml lines

    def write_settings(self) -> None:
        pass

    def prepare(self, project: Path) -> None:
        host = self.registry.split("/")[2].split(":")[0]
        (project / ".yarnrc.yml").write_text(
            f'npmRegistryServer: "{self.registry}"\n'
            f'unsafeHttpWhitelist: ["{host}"]\n'
            "enableNetwork: false\n"
            f'networkSettings:\n  "{host}":\n    enableNetwork: true\n'
            "nodeLinker: node-modules\nenableScripts: false\nenableTelemetry: false\n"
            f'globalFolder: "{self.cache / "global"}"\ncacheFolder: "{self.cache / "cache"}"\n' + self.extra_settings
        )
        (project / "yarn.lock").touch()

    def env(self) -> dict[str, str]:
        return {**super().env(), "COREPACK_ENABLE_STRICT": "0"}

    def command(self, frozen: bool) -> list[str]:
        return ["node", _tool("@yarnpkg/cli-dist/bin/yarn.js"), "install", *(["--immutable"] if frozen else [])]

    def lock_problems(self, project: Path) -> list[str]:
        text = (project / self.lockfile).read_text()
        return super().lock_problems(project) + (["yarn.lock pins __archiveUrl"] if "__archiveUrl" in text else [])


class BunClient(Client):
    name, lockfile = "bun", "bun.lock"

    def prepare(self, project: Path) -> None:
        (project / "bunfig.toml").write_text(f'[install]\nregistry = "{self.registry}"\nsaveTextLockfile = true\n')

    def env(self) -> dict[str, str]:
        return {
            **super().env(),
            "BUN_INSTALL_CACHE_DIR": str(self.cache),
            "HTTP_PROXY": DEAD_PROXY,
            "HTTPS_PROXY": DEAD_PROXY,
            "NO_PROXY": "127.0.0.1,localhost",
            "DO_NOT_TRACK": "1",
        }

    def command(self, frozen: bool) -> list[str]:
        return [_tool(".bin/bun"), "install", "--no-progress", *(["--frozen-lockfile"] if frozen else [])]


CLIENTS = {c.name: c for c in (NpmClient, PnpmClient, Yarn1Client, Yarn4Client, BunClient)}


def client(name: str, workdir: Path, registry: str) -> Client:
    made = CLIENTS[name](workdir, registry)
    made.fresh()
    return made
