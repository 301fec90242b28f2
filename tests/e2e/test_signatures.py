"""Registry signatures, verified by the clients' own code against real hosts on 127.0.0.1.

pnpm: `pnpm audit signatures` (pnpm 12, installed beside the matrix's pnpm 10 by
scripts/setup: the command came with pnpm 11.1). npm: `npm audit signatures` first
refreshes Sigstore's TUF repository, which is not reachable here, and stops; so
VERIFY_WITH_NPM runs what it runs next, with npm's own modules: the keys from the
registry's /-/npm/v1/keys through npm-registry-fetch (npm's fallback when TUF has no
keys for a registry), then pacote.manifest(name@version, {verifySignatures: true,
"//host/:_keys": keys}) for every installed version, as npm's verify-signatures.js does.
"""

from __future__ import annotations

import base64
import contextlib
import gzip
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e import hosts
from tests.e2e.clients import NAMES, ROOT, PnpmClient, client
from tests.e2e.npm import DEAD_PROXY, Npm, make_project, npm_binary, pack
from tests.e2e.servers import Serve, fetch, free_port, until

pytestmark = pytest.mark.e2e

PNPM12 = ROOT / ".tools" / "pnpm12" / "node_modules" / ".bin" / "pnpm"
OLD = 1_600_000_000  # 2020-09-13
LATER = 1_650_000_000  # 2022-04-15
PROJECT = {"sig-a": "^1.0.0"}  # and through it @sig/b@^1 and the mirrored up-mirrored@^1

# npm's own verification, loaded from the installed npm's node_modules.
VERIFY_WITH_NPM = r"""
const path = require('path')
const [npmDir, registry, specsJson, cache] = process.argv.slice(1)  // node -e: no script path
const own = (name) => require(path.join(npmDir, 'node_modules', name))
const pacote = own('pacote')
const npmFetch = own('npm-registry-fetch')
;(async () => {
  const opts = { registry, cache, preferOnline: true, proxy: null, noproxy: '127.0.0.1' }
  let keys = null
  try {
    keys = (await npmFetch.json('/-/npm/v1/keys', opts)).keys.map((key) => ({
      ...key, pemkey: `-----BEGIN PUBLIC KEY-----\n${key.key}\n-----END PUBLIC KEY-----`,
    }))
  } catch (e) {
    if (e.code !== 'E404' && e.code !== 'E400') throw e
  }
  const parsed = new URL(registry)
  const regKey = `//${parsed.host}${parsed.pathname}`
  const results = {}
  for (const spec of JSON.parse(specsJson)) {
    try {
      const mani = await pacote.manifest(spec, { ...opts, verifySignatures: true, [`${regKey}:_keys`]: keys || [] })
      results[spec] = { ok: true, keyids: (mani._signatures || []).map((s) => s.keyid) }
    } catch (e) {
      results[spec] = { code: e.code, message: e.message }
    }
  }
  console.log(JSON.stringify({ keys: keys && keys.map((k) => k.keyid), results }))
})().catch((e) => { console.error(e); process.exit(2) })
"""


def npm_dir() -> Path:
    """The installed npm's own folder (its node_modules hold pacote and npm-registry-fetch)."""
    return Path(os.path.realpath(npm_binary())).parents[1]


def verify_with_npm(url: str, specs: list[str], workdir: Path) -> dict:
    workdir.mkdir(parents=True, exist_ok=True)
    env = {
        k: v for k, v in os.environ.items() if not k.lower().startswith(("npm_config_", "http_proxy", "https_proxy"))
    }
    env.update(HOME=str(workdir), HTTP_PROXY=DEAD_PROXY, HTTPS_PROXY=DEAD_PROXY, NO_PROXY="127.0.0.1,localhost")
    result = subprocess.run(
        ["node", "-e", VERIFY_WITH_NPM, str(npm_dir()), url, json.dumps(specs), str(workdir / "cache")],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    print(f"--- npm's pacote against {url}: {result.stdout}")
    return json.loads(result.stdout)


class Pnpm12(PnpmClient):
    """pnpm 12, isolated as the matrix's clients are, with `pnpm audit signatures`."""

    name = "pnpm12"

    def env(self) -> dict[str, str]:
        return {**super().env(), "HTTP_PROXY": DEAD_PROXY, "HTTPS_PROXY": DEAD_PROXY, "NO_PROXY": "127.0.0.1,localhost"}

    def command(self, frozen: bool) -> list[str]:
        if not PNPM12.exists():
            raise RuntimeError(f"{PNPM12} is missing: run scripts/setup --test")
        return [
            str(PNPM12),
            "install",
            "--frozen-lockfile" if frozen else "--no-frozen-lockfile",
            "--reporter=append-only",
        ]

    def audit(self, project: Path) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(PNPM12), "audit", "signatures"],
            cwd=project,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=120,
        )


def install_and_audit(url: str, workdir: Path, dependencies: dict[str, str] = PROJECT) -> subprocess.CompletedProcess:
    pnpm = Pnpm12(workdir / "pnpm", url)
    pnpm.fresh()
    project = make_project(workdir / "project", dependencies)
    pnpm.install(project)
    audit = pnpm.audit(project)
    print(f"--- pnpm audit signatures against {url}: exit {audit.returncode}\n{audit.stdout}{audit.stderr}")
    return audit


def staticreg(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-m", "staticreg", *args], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def integrity_of(data: bytes) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()


@pytest.fixture(scope="module")
def keys(scratch) -> dict[str, str]:
    """keyids of our key (made by `staticreg keygen`) and of the fixture upstream's key."""
    found = {}
    for name in ("ours", "upstream", "next"):
        printed = staticreg("keygen", str(scratch / f"{name}.pem")).stdout
        found[name] = next(line.split()[1] for line in printed.splitlines() if line.startswith("keyid: "))
    return found


@pytest.fixture(scope="module")
def input_dir(scratch, keys) -> Path:
    """sig-a -> @sig/b, up-mirrored; up-mirrored as `staticreg mirror` leaves it: its sidecar
    with the upstream's own signature, made with the upstream's key, and the upstream's keys file."""
    from staticreg import keyfiles
    from staticreg.npm.signatures import PublicKey

    folder = scratch / "input"
    pack(
        scratch / "src/a",
        folder,
        {"name": "sig-a", "version": "1.0.0", "dependencies": {"@sig/b": "^1.0.0", "up-mirrored": "^1.0.0"}},
        {"index.js": "module.exports = require('@sig/b') + require('up-mirrored')\n"},
    )
    for version in ("1.0.0", "1.1.0"):
        pack(
            scratch / f"src/b-{version}",
            folder,
            {"name": "@sig/b", "version": version},
            {"index.js": f"module.exports = '{version}'\n"},
        )
    tarball = pack(
        scratch / "src/up", folder, {"name": "up-mirrored", "version": "1.0.0"}, {"index.js": "module.exports = 'up'\n"}
    )
    for path in folder.glob("*.tgz"):
        os.utime(path, (OLD, OLD))
    upstream = keyfiles.signer_from_file(scratch / "upstream.pem")
    integrity = integrity_of(tarball.read_bytes())
    sidecar = {
        "name": "up-mirrored",
        "version": "1.0.0",
        "integrity": integrity,
        "time": "2020-01-01T00:00:00.000Z",
        "signatures": [upstream.sign("up-mirrored", "1.0.0", integrity)],
    }
    Path(f"{tarball}{keyfiles.SIDECAR_SUFFIX}").write_text(json.dumps(sidecar))
    (folder / "staticreg-upstream-keys.json").write_text(
        json.dumps({"keys": [PublicKey(upstream.keyid, upstream.key).entry()]})
    )
    return folder


def build(scratch: Path, input_dir: Path, output: Path, url: str, *settings: str) -> Path:
    config = scratch / f"{output.name}.yml"
    config.write_text(f"input: {input_dir}\noutput: {output}\nbase_url: {url}\n" + "".join(f"{s}\n" for s in settings))
    staticreg("build", "-q", "-c", str(config))
    return output


@contextlib.contextmanager
def on_nginx(scratch: Path, input_dir: Path, label: str, *settings: str, mutate=None):
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    root = build(scratch, input_dir, scratch / f"registry-{label}", url, *settings)
    if mutate:
        mutate(root)
    with hosts.running(hosts.nginx(root, scratch / f"nginx-{label}", port)):
        yield url


INSTALLED = ["sig-a@1.0.0", "@sig/b@1.1.0", "up-mirrored@1.0.0"]


def signed(scratch: Path) -> str:
    return f"signing_key: {scratch / 'ours.pem'}"


def test_pnpm_and_npm_verify_every_version_own_and_mirrored(scratch, input_dir, keys):
    with on_nginx(scratch, input_dir, "signed", signed(scratch)) as url:
        audit = install_and_audit(url, scratch / "signed")
        npm = verify_with_npm(url, INSTALLED + ["@sig/b@1.0.0"], scratch / "signed-npm")
        checked = subprocess.run(
            [sys.executable, "-m", "staticreg", "check", url, "--all"], capture_output=True, text=True
        )
        served = fetch(url + "-/npm/v1/keys")
    assert audit.returncode == 0, audit.stdout + audit.stderr
    assert "audited 3 packages" in audit.stdout and "3 packages have verified registry signatures" in audit.stdout
    assert npm["keys"] == [keys["ours"], keys["upstream"]]
    assert npm["results"] == {
        "sig-a@1.0.0": {"ok": True, "keyids": [keys["ours"]]},
        "@sig/b@1.1.0": {"ok": True, "keyids": [keys["ours"]]},
        "@sig/b@1.0.0": {"ok": True, "keyids": [keys["ours"]]},
        "up-mirrored@1.0.0": {"ok": True, "keyids": [keys["upstream"]]},  # the upstream's own signature, kept
    }
    assert checked.returncode == 0, checked.stdout
    assert checked.stdout.strip().endswith(f"Checked 3 packages, 4 signatures and 4 tarballs at {url}: 0 problems.")
    status, headers, _ = served
    assert (status, headers["content-type"], headers["cache-control"]) == (
        200,
        "application/json",
        "public, max-age=0, must-revalidate",
    )


def write_served(path: Path, text: str) -> None:
    """A document changed on the host, with the gzip copy beside it that nginx sends clients."""
    path.write_text(text)
    copy = path.with_name(path.name + ".gz")
    if copy.exists():
        copy.write_bytes(gzip.compress(text.encode(), mtime=0))


def alter_a_signature(root: Path) -> None:
    """One byte of @sig/b@1.1.0's signature changed in its full document, where both clients read it."""
    path = root / "@sig/b/index.json"
    doc = json.loads(path.read_bytes())
    signature = doc["versions"]["1.1.0"]["dist"]["signatures"][0]
    raw = bytearray(base64.b64decode(signature["sig"]))
    raw[-1] ^= 1
    signature["sig"] = base64.b64encode(bytes(raw)).decode()
    write_served(path, json.dumps(doc))


def replace_a_tarball(root: Path) -> None:
    """sig-a@1.0.0's tarball swapped for other bytes, its integrity and shasum changed to match in
    every document: what someone with write access to the host, and no key, can do."""
    evil = pack(
        root.parent / "src/evil",
        root.parent / "evil",
        {"name": "sig-a", "version": "1.0.0", "dependencies": {"@sig/b": "^1.0.0", "up-mirrored": "^1.0.0"}},
        {"index.js": "module.exports = 'evil'\n"},
    ).read_bytes()
    (root / "sig-a/-/sig-a-1.0.0.tgz").write_bytes(evil)
    for document in ("sig-a/index.json", "sig-a/index.corgi", "sig-a/1.0.0.json", "sig-a/latest.json"):
        path = root / document
        doc = json.loads(path.read_bytes())
        dist = (doc["versions"]["1.0.0"] if "versions" in doc else doc)["dist"]
        dist["integrity"], dist["shasum"] = integrity_of(evil), hashlib.sha1(evil).hexdigest()
        path.unlink()  # index.html is a hard link to index.json: both are replaced
        write_served(path, json.dumps(doc))


@pytest.mark.parametrize(
    "label, mutate, package",
    [("sig", alter_a_signature, "@sig/b@1.1.0"), ("tarball", replace_a_tarball, "sig-a@1.0.0")],
)
def test_tampering_on_the_host_is_caught_by_pnpm_and_npm(scratch, input_dir, keys, label, mutate, package):
    with on_nginx(scratch, input_dir, f"tampered-{label}", signed(scratch), mutate=mutate) as url:
        audit = install_and_audit(url, scratch / f"tampered-{label}")  # the install itself succeeds
        npm = verify_with_npm(url, INSTALLED, scratch / f"tampered-{label}-npm")
        checked = subprocess.run([sys.executable, "-m", "staticreg", "check", url], capture_output=True, text=True)
    assert audit.returncode == 1, audit.stdout + audit.stderr
    assert "1 package has an invalid registry signature" in audit.stdout and package.split("@1")[0] in audit.stdout
    assert "2 packages have verified registry signatures" in audit.stdout
    assert npm["results"][package]["code"] == "EINTEGRITYSIGNATURE"
    assert [spec for spec, r in npm["results"].items() if r.get("ok")] == [s for s in INSTALLED if s != package]
    assert checked.returncode == 1
    assert f"problem: {package}: has a signature by {keys['ours']} that does not verify" in checked.stdout


def test_a_registry_without_keys_gets_pnpms_own_no_keys_answer(scratch, input_dir):
    plain = scratch / "input-unsigned"
    plain.mkdir()
    for path in input_dir.glob("*.tgz"):
        os.link(path, plain / path.name)  # no sidecars and no upstream keys: nothing to list
    with on_nginx(scratch, plain, "unsigned") as url:
        assert fetch(url + "-/npm/v1/keys")[0] == 404
        audit = install_and_audit(url, scratch / "unsigned")
        npm = verify_with_npm(url, ["sig-a@1.0.0"], scratch / "unsigned-npm")
    assert audit.returncode == 0, audit.stdout + audit.stderr
    assert "audited 0 packages" in audit.stdout
    assert "No dependencies were installed from a registry with signing keys" in audit.stdout
    assert npm == {"keys": None, "results": {"sig-a@1.0.0": {"ok": True, "keyids": []}}}


def test_after_a_key_rotation_old_versions_keep_their_signatures_and_both_keys_verify(scratch, input_dir, keys):
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    folder = scratch / "input-rotation"
    folder.mkdir()
    for path in input_dir.iterdir():
        os.link(path, folder / path.name)
    output = scratch / "registry-rotation"
    build(scratch, folder, output, url, signed(scratch))
    before = json.loads((output / "@sig/b/index.json").read_bytes())
    later = pack(
        scratch / "src/later",
        folder,
        {"name": "sig-later", "version": "1.0.0"},
        {"index.js": "module.exports = 'later'\n"},
    )
    os.utime(later, (LATER, LATER))
    build(
        scratch,
        folder,
        output,
        url,
        f"signing_key: {scratch / 'next.pem'}",
        f"retired_keys:\n  - file: {scratch / 'ours.pem'}\n    expires: 2021-06-01T00:00:00Z",
    )
    after = json.loads((output / "@sig/b/index.json").read_bytes())
    assert after["versions"]["1.1.0"]["dist"]["signatures"] == before["versions"]["1.1.0"]["dist"]["signatures"]
    with hosts.running(hosts.nginx(output, scratch / "nginx-rotation", port)):
        audit = install_and_audit(url, scratch / "rotation", {**PROJECT, "sig-later": "^1.0.0"})
        npm = verify_with_npm(url, INSTALLED + ["sig-later@1.0.0"], scratch / "rotation-npm")
    assert audit.returncode == 0, audit.stdout + audit.stderr
    assert "4 packages have verified registry signatures" in audit.stdout
    assert npm["keys"] == [keys["next"], keys["ours"], keys["upstream"]]
    assert {spec: r.get("keyids") for spec, r in npm["results"].items()} == {
        "sig-a@1.0.0": [keys["ours"]],
        "@sig/b@1.1.0": [keys["ours"]],  # 2020: before the retired key's expiry
        "up-mirrored@1.0.0": [keys["upstream"]],
        "sig-later@1.0.0": [keys["next"]],  # 2022: the new key
    }
    listed = json.loads((output / "-/npm/v1/keys").read_bytes())["keys"]
    assert [k["expires"] for k in listed] == [None, "2021-06-01T00:00:00.000Z", None]

    # npm enforces the expiry: with the retired key expiring before 2020-09-13 its signatures fail.
    document = output / "-/npm/v1/keys"
    doc = json.loads(document.read_bytes())
    doc["keys"][1]["expires"] = "2020-01-01T00:00:00.000Z"
    document.write_text(json.dumps(doc))
    with hosts.running(hosts.nginx(output, scratch / "nginx-rotation-expired", port)):
        expired = verify_with_npm(url, ["@sig/b@1.1.0", "sig-later@1.0.0"], scratch / "rotation-expired-npm")
        checked = subprocess.run([sys.executable, "-m", "staticreg", "check", url], capture_output=True, text=True)
    assert expired["results"]["@sig/b@1.1.0"]["code"] == "EEXPIREDSIGNATUREKEY"
    assert expired["results"]["sig-later@1.0.0"] == {"ok": True, "keyids": [keys["next"]]}
    assert "which expired (2020-01-01T00:00:00.000Z) before the version's publish time" in checked.stdout


@contextlib.contextmanager
def on_host(host: str, scratch: Path, input_dir: Path):
    """A signed build on `host`, started with staticreg's configuration: the registry's URL."""
    port = free_port()
    state = scratch / f"state-{host}"
    if host == "s3":
        with hosts.running(hosts.moto(state, port)) as server:
            url = hosts.s3_registry_url(server)
            root = build(scratch, input_dir, scratch / f"registry-{host}", url, signed(scratch))
            hosts.make_bucket(server)
            deployed = hosts.staticreg_deploy(root, server)
            assert deployed.returncode == 0, deployed.stderr
            yield url
        return
    prefix = "/npm/" if host == "nginx_prefix" else "/"
    url = f"http://127.0.0.1:{port}{prefix}"
    root = build(scratch, input_dir, scratch / f"registry-{host}", url, signed(scratch))
    started = {
        "nginx_prefix": lambda: hosts.nginx(root, state, port, prefix=prefix),
        "apache": lambda: hosts.apache(root, state, port),
        "caddy": lambda: hosts.caddy(root, state, port),
        "http_server": lambda: hosts.http_server(root, port),
    }[host]()
    with hosts.running(started):
        yield url


@pytest.mark.parametrize("host", ["nginx_prefix", "apache", "caddy", "s3", "http_server"])
def test_other_hosts_serve_the_keys_pnpm_verifies_with(scratch, input_dir, host):
    with on_host(host, scratch, input_dir) as url:
        status, headers, body = fetch(url + "-/npm/v1/keys")
        audit = install_and_audit(url, scratch / f"on-{host}")
        npm = verify_with_npm(url, INSTALLED, scratch / f"on-{host}-npm")
    assert status == 200 and json.loads(body)["keys"]
    assert all(result.get("ok") and result["keyids"] for result in npm["results"].values()), npm
    if host != "http_server":  # a host with no configuration sends what it guesses
        assert (headers["content-type"], headers["cache-control"]) == (
            "application/json",
            "public, max-age=0, must-revalidate",
        )
    assert audit.returncode == 0 and "3 packages have verified registry signatures" in audit.stdout, audit.stdout


def test_serve_signs_what_npm_publishes_with_the_key_from_the_environment(scratch, tmp_path, keys, monkeypatch):
    folder = tmp_path / "input"
    pack(
        tmp_path / "src/base", folder, {"name": "served-base", "version": "1.0.0"}, {"index.js": "module.exports = 1\n"}
    )
    os.utime(folder / "served-base-1.0.0.tgz", (OLD, OLD))
    monkeypatch.setenv("STATICREG_SIGNING_KEY", (scratch / "ours.pem").read_text())  # the PEM itself, as a CI secret
    server = Serve(folder, tmp_path)
    try:
        source = tmp_path / "src/published"
        pack(
            source,
            tmp_path / "packed",
            {"name": "served-new", "version": "1.0.0", "dependencies": {"served-base": "^1.0.0"}},
            {"index.js": "module.exports = 2\n"},
        )
        npm = Npm(tmp_path / "npm", server.url)
        with (npm.home / ".npmrc").open("a") as f:
            f.write(f"//127.0.0.1:{server.port}/:_authToken=dev\n")
        npm.run("publish", cwd=source)
        until(lambda: fetch(server.url + "served-new")[0] == 200, server.process, what="the published package")
        audit = install_and_audit(server.url, tmp_path / "audit", {"served-new": "^1.0.0"})
        status, headers, body = fetch(server.url + "-/npm/v1/keys")
    finally:
        server.stop()
    assert (status, headers["content-type"], headers["cache-control"]) == (
        200,
        "application/json",
        "public, max-age=0, must-revalidate",
    )
    assert [k["keyid"] for k in json.loads(body)["keys"]] == [keys["ours"]]
    assert audit.returncode == 0 and "2 packages have verified registry signatures" in audit.stdout, audit.stdout


@pytest.fixture(scope="module")
def signed_on_nginx(scratch, input_dir):
    with on_nginx(scratch, input_dir, "signed-clients", signed(scratch)) as url:
        yield url


@pytest.mark.parametrize("name", NAMES)
def test_every_client_installs_from_a_signed_registry(scratch, signed_on_nginx, name):
    """dist.signatures and the keys change nothing for the clients that do not verify them."""
    from tests.e2e.project import resolved_version

    installer = client(name, scratch / f"clients-{name}", signed_on_nginx)
    project = make_project(scratch / f"clients-{name}-project", PROJECT)
    installer.install(project)
    assert resolved_version("sig-a", project) == "1.0.0"
    assert resolved_version("up-mirrored", project / "node_modules" / "sig-a") == "1.0.0"


def test_npm_audit_signatures_itself_stops_at_sigstores_tuf_repository(scratch, signed_on_nginx):
    """Why npm is tested through its modules: `npm audit signatures` asks Sigstore's TUF
    repository (on the internet, behind the dead proxy here) before it asks the registry."""
    npm = Npm(scratch / "npm-audit", signed_on_nginx)
    project = make_project(scratch / "npm-audit-project", PROJECT)
    npm.run("install", cwd=project)
    env = {**npm.env(), "HTTP_PROXY": DEAD_PROXY, "HTTPS_PROXY": DEAD_PROXY, "NO_PROXY": "127.0.0.1,localhost"}
    audit = subprocess.run(
        [npm_binary(), "audit", "signatures", "--fetch-retries=0"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    print(f"--- npm audit signatures: exit {audit.returncode}\n{audit.stdout}{audit.stderr}")
    assert audit.returncode != 0 and "ECONNREFUSED" in audit.stdout + audit.stderr
    assert "/-/npm/v1/keys" not in (scratch / "nginx-signed-clients" / "access.log").read_text()
