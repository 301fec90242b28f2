"""`staticreg mirror` end to end: an upstream registry the test starts (staticreg on nginx),
lockfiles written by the real clients against it, the mirror fetched from them, built and
served by nginx with the upstream stopped, and each client's frozen install from the
mirror with its lockfile unchanged (yarn 1: the copy `mirror` writes).

The upstream holds a scoped package, an npm alias, bundled dependencies, an os-gated
optional pair, a deprecated version, a version whose upstream metadata carries
_npmUser, signatures and an attestation bundle (given to the upstream build by a
sidecar of its own), and a tarball whose bytes are changed after its lockfile is made.
npm 6 is not here, so the v1 package-lock is made from npm's v3 one by `v1_from_v3`
(the v1 shape: a `dependencies` tree, `version: "npm:real@x"` for aliases, `bundled`)."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.e2e import hosts
from tests.e2e.clients import NAMES, client
from tests.e2e.npm import make_project, pack
from tests.e2e.project import OLD, resolved_version
from tests.e2e.servers import fetch, free_port

pytestmark = pytest.mark.e2e

DEPRECATION = "fx-old 1.0.0 is unsafe; use 2"
DEPENDENCIES = {
    "@fx/scoped": "^1.0.0",
    "fx-alias": "npm:fx-real@^1.0.0",
    "fx-bundler": "^1.0.0",
    "fx-native": "^1.0.0",
    "fx-old": "1.0.0",
    "local-dep": "file:./local-dep",
}
NATIVE = ("@fx/native-linux", "@fx/native-darwin")
# The upstream's signing key, made for this test: npm checks dist.signatures against it.
KEY = ec.generate_private_key(ec.SECP256R1())
KEYID = (
    "SHA256:"
    + base64.b64encode(
        hashlib.sha256(
            KEY.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        ).digest()
    ).decode()
)
UPSTREAM_KEYS = {
    "keys": [
        {
            "expires": None,
            "keyid": KEYID,
            "keytype": "ecdsa-sha2-nistp256",
            "scheme": "ecdsa-sha2-nistp256",
            "key": base64.b64encode(
                KEY.public_key().public_bytes(
                    serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
                )
            ).decode(),
        }
    ]
}
BUNDLE = {"attestations": [{"predicateType": "https://slsa.dev/provenance/v1", "bundle": {"fixture": True}}]}


def staticreg(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "staticreg", *args], capture_output=True, text=True, cwd=cwd, timeout=300
    )


def make_upstream_input(folder: Path, scratch: Path) -> None:
    def one(name, version, manifest=None, files=None):
        pack(
            scratch / f"src-{name.replace('/', '-')}-{version}",
            folder,
            {"name": name, "version": version, **(manifest or {})},
            files or {"index.js": f"module.exports = '{name}@{version}'\n"},
        )

    one("fx-dep", "1.0.0")
    one("@fx/scoped", "1.0.0", {"dependencies": {"fx-dep": "^1.0.0"}})
    one("fx-real", "1.0.0")
    one("fx-real", "1.1.0")
    one("fx-bundled", "1.0.0")
    bundler = scratch / "src-fx-bundler"
    (bundler / "node_modules/fx-bundled").mkdir(parents=True)
    (bundler / "node_modules/fx-bundled/package.json").write_text(
        json.dumps({"name": "fx-bundled", "version": "1.0.0"})
    )
    (bundler / "node_modules/fx-bundled/index.js").write_text("module.exports = 'bundled copy'\n")
    one_manifest = {"dependencies": {"fx-bundled": "^1.0.0"}, "bundleDependencies": ["fx-bundled"]}
    pack(
        bundler,
        folder,
        {"name": "fx-bundler", "version": "1.0.0", **one_manifest},
        {"index.js": "module.exports = require('fx-bundled')\n"},
    )
    one("@fx/native-linux", "1.0.0", {"os": ["linux"]})
    one("@fx/native-darwin", "1.0.0", {"os": ["darwin"]})
    one("fx-native", "1.0.0", {"optionalDependencies": dict.fromkeys(NATIVE, "1.0.0")})
    one("fx-old", "1.0.0")
    one("fx-old", "2.0.0")
    one("fx-tamper", "1.0.0")
    for tarball in folder.glob("*.tgz"):
        os.utime(tarball, (OLD, OLD))
    # What the public npm registry says of a version and staticreg cannot make up: the
    # upstream build serves it from a sidecar of its own, as a mirror's build would.
    from staticreg.build.reader import read_tarball

    def sidecar(filename, name, version, **extra):
        record = read_tarball(folder / filename, filename)
        (folder / f"{filename}.upstream.json").write_text(
            json.dumps({"name": name, "version": version, "integrity": record.integrity, **extra})
        )
        return record.integrity

    integrity = read_tarball(folder / "fx-dep-1.0.0.tgz", "fx-dep-1.0.0.tgz").integrity
    signature = KEY.sign(f"fx-dep@1.0.0:{integrity}".encode(), ec.ECDSA(hashes.SHA256()))
    sidecar(
        "fx-dep-1.0.0.tgz",
        "fx-dep",
        "1.0.0",
        time="2021-03-04T05:06:07.000Z",
        _npmUser={"name": "fixture-publisher", "email": "publisher@example.test"},
        signatures=[{"keyid": KEYID, "sig": base64.b64encode(signature).decode()}],
    )
    sidecar(
        "fx-scoped-1.0.0.tgz",
        "@fx/scoped",
        "1.0.0",
        time="2021-03-04T05:06:08.000Z",
        attestations={
            "url": "https://upstream.example.test/-/npm/v1/attestations/@fx/scoped@1.0.0",
            "provenance": {"predicateType": "https://slsa.dev/provenance/v1"},
        },
        attestation_bundle=BUNDLE,
    )


def build(input_dir: Path, output: Path, base_url: str, scratch: Path, deprecate: bool) -> None:
    config = scratch / f"staticreg-{output.name}.yml"
    config.write_text(
        f"input: {input_dir}\noutput: {output}\nbase_url: {base_url}\n"
        + (f'deprecations:\n  "fx-old@1.0.0": "{DEPRECATION}"\n' if deprecate else "")
    )
    result = staticreg("build", "-q", "-c", str(config), cwd=scratch)
    assert result.returncode == 0, result.stderr


def v1_from_v3(lock: dict) -> dict:
    """npm 6's package-lock.json (lockfileVersion 1) for the tree npm 11 locked as v3."""
    root: dict = {}
    for key, entry in lock["packages"].items():
        if not key.startswith("node_modules/"):
            continue
        parts = key.split("node_modules/")[1:]
        node = root
        for part in parts[:-1]:
            node = node[part.rstrip("/")].setdefault("dependencies", {})
        alias = parts[-1]
        if entry.get("link"):
            node[alias] = {"version": f"file:{entry['resolved']}"}
            continue
        out = {"version": f"npm:{entry['name']}@{entry['version']}" if entry.get("name") else entry["version"]}
        for field in ("resolved", "integrity"):
            if field in entry:
                out[field] = entry[field]
        for flag, v1 in (("inBundle", "bundled"), ("optional", "optional"), ("dev", "dev")):
            if entry.get(flag):
                out[v1] = True
        if entry.get("dependencies") or entry.get("optionalDependencies"):
            out["requires"] = {**entry.get("dependencies", {}), **entry.get("optionalDependencies", {})}
        node[alias] = out
    return {
        "name": lock["name"],
        "version": lock["version"],
        "lockfileVersion": 1,
        "requires": True,
        "dependencies": root,
    }


@pytest.fixture(scope="module")
def world():
    with hosts.readable_scratch() as scratch:
        upstream_input = scratch / "upstream-input"
        make_upstream_input(upstream_input, scratch)
        port = free_port()
        upstream_url = f"http://127.0.0.1:{port}/"
        upstream_out = scratch / "upstream"
        build(upstream_input, upstream_out, upstream_url, scratch, deprecate=True)
        (upstream_out / "-/npm/v1").mkdir(parents=True, exist_ok=True)
        (upstream_out / "-/npm/v1/keys").write_text(json.dumps(UPSTREAM_KEYS))
        upstream = hosts.nginx(upstream_out, scratch / "state-upstream", port)
        try:
            projects = {}
            for name in NAMES:  # one after the other: each client writes its lockfile against the upstream
                project = make_project(scratch / f"project-{name}", DEPENDENCIES)
                (project / "local-dep").mkdir()
                (project / "local-dep/package.json").write_text(json.dumps({"name": "local-dep", "version": "1.0.0"}))
                client(name, scratch / f"lock-{name}", upstream_url).install(project)
                shutil.rmtree(project / "node_modules")
                projects[name] = project
            v1 = scratch / "project-npm-v1"
            shutil.copytree(projects["npm"], v1)
            lock = json.loads((v1 / "package-lock.json").read_text())
            (v1 / "package-lock.json").write_text(json.dumps(v1_from_v3(lock), indent=2))
            projects["npm-v1"] = v1
            tamper = make_project(scratch / "project-tamper", {"fx-tamper": "1.0.0"})
            client("npm", scratch / "lock-tamper", upstream_url).install(tamper)
            # Bytes the lockfile never saw, served where the lockfile says.
            pack(
                scratch / "src-evil",
                scratch / "evil",
                {"name": "fx-tamper", "version": "1.0.0"},
                {"index.js": "evil()\n"},
            )
            evil = next((scratch / "evil").glob("*.tgz"))
            shutil.copy(evil, upstream_out / "fx-tamper/-/fx-tamper-1.0.0.tgz")
            yield {
                "scratch": scratch,
                "upstream": upstream,
                "upstream_url": upstream_url,
                "projects": projects,
                "tamper": tamper,
            }
        finally:
            upstream.stop()


def lockfile_of(project: Path) -> Path:
    for name in ("package-lock.json", "pnpm-lock.yaml", "bun.lock", "yarn.lock"):
        if (project / name).exists():
            return project / name
    raise AssertionError(f"no lockfile in {project}")


@pytest.fixture(scope="module")
def mirrored(world):
    scratch, projects = world["scratch"], world["projects"]
    into = scratch / "mirror-input"
    mirror_port = free_port()
    mirror_url = f"http://127.0.0.1:{mirror_port}/"
    # yarn 4 alone first: its checksums are not npm integrities, so upstream's dist.integrity is the check
    berry = staticreg(
        "mirror",
        str(lockfile_of(projects["yarn4"])),
        "--upstream",
        world["upstream_url"],
        "--into",
        str(into),
        "--report",
        str(scratch / "berry.json"),
        cwd=scratch,
    )
    assert berry.returncode == 0, berry.stderr
    locks = [str(lockfile_of(p)) for p in projects.values()]
    full = staticreg(
        "mirror",
        *locks,
        "--upstream",
        world["upstream_url"],
        "--into",
        str(into),
        "--yarn-lock-out",
        str(scratch / "yarn1-mirror.lock"),
        "--bun-lock-out",
        str(scratch / "bun-mirror.lock"),
        "--registry-url",
        mirror_url,
        "--report",
        str(scratch / "full.json"),
        cwd=scratch,
    )
    assert full.returncode == 0, full.stderr
    tampered = staticreg(
        "mirror",
        str(world["tamper"] / "package-lock.json"),
        "--upstream",
        world["upstream_url"],
        "--into",
        str(into),
        cwd=scratch,
    )
    # npm and pnpm lock only the platform variants they saw: a lockfile without the darwin one
    partial = scratch / "partial/package-lock.json"
    partial.parent.mkdir()
    lock = json.loads((projects["npm"] / "package-lock.json").read_text())
    del lock["packages"]["node_modules/@fx/native-darwin"]
    partial.write_text(json.dumps(lock, indent=2))
    variants = {}
    for flag in ([], ["--all-platforms"]):
        run = staticreg(
            "mirror",
            str(partial),
            "--upstream",
            world["upstream_url"],
            "--into",
            str(scratch / "variants"),
            "--report",
            str(scratch / "variants.json"),
            *flag,
            cwd=scratch,
        )
        assert run.returncode == 0, run.stderr
        variants[bool(flag)] = (run.stdout, json.loads((scratch / "variants.json").read_text()))
    output = scratch / "mirror"
    build(into, output, mirror_url, scratch, deprecate=False)
    (output / "-/npm/v1/keys").write_text((into / "staticreg-upstream-keys.json").read_text())
    world["upstream"].stop()  # from here on only the mirror answers
    server = hosts.nginx(output, scratch / "state-mirror", mirror_port)
    try:
        yield {
            **world,
            "into": into,
            "variants": variants,
            "scratch_variants": scratch / "variants",
            "mirror_url": mirror_url,
            "berry": berry,
            "full": full,
            "tampered": tampered,
            "berry_report": json.loads((scratch / "berry.json").read_text()),
            "report": json.loads((scratch / "full.json").read_text()),
        }
    finally:
        server.stop()


EXPECTED = {
    "@fx/scoped@1.0.0",
    "fx-dep@1.0.0",
    "fx-real@1.1.0",
    "fx-bundler@1.0.0",
    "fx-bundled@1.0.0",
    "fx-native@1.0.0",
    "@fx/native-linux@1.0.0",
    "@fx/native-darwin@1.0.0",
    "fx-old@1.0.0",
}


def test_berry_lockfile_is_verified_against_the_upstream_and_says_so(mirrored):
    report = mirrored["berry_report"]
    assert set(report["fetched"]) == EXPECTED
    assert set(report["verified_against_upstream"]) == EXPECTED
    assert "yarn berry's checksum hashes yarn's own zip" in mirrored["berry"].stdout
    assert [s["name"] for s in report["skipped"]] == ["local-dep"]


def test_rerun_fetches_only_what_is_missing_and_reports_skipped_entries(mirrored):
    report = mirrored["report"]
    assert report["fetched"] == [] and report["already_present"] == len(EXPECTED) and report["failures"] == []
    skipped = {
        (Path(s["where"].rsplit(":", 1)[0]).parent.name, s["name"], s["reason"].split(":")[0])
        for s in report["skipped"]
    }
    for project in ("project-npm", "project-npm-v1", "project-pnpm", "project-yarn1", "project-yarn4", "project-bun"):
        assert any(p == project and n == "local-dep" for p, n, _ in skipped), (project, skipped)
    assert ("project-npm", "fx-bundled", "bundled inside its parent's tarball") in skipped
    assert ("project-npm-v1", "fx-bundled", "bundled inside its parent's tarball") in skipped
    for line in mirrored["full"].stdout.splitlines():
        if line.startswith("skipped:"):
            assert line.count(":") >= 3 and "\n" not in line
    assert mirrored["berry_report"]["upstream_keys"] is True  # a run that fetches nothing asks the upstream nothing
    assert json.loads((mirrored["into"] / "staticreg-upstream-keys.json").read_text()) == UPSTREAM_KEYS


def test_tampered_tarball_is_refused_and_nothing_lands(mirrored):
    result = mirrored["tampered"]
    assert result.returncode == 1
    lock = mirrored["tamper"] / "package-lock.json"
    line = next(i for i, text in enumerate(lock.read_text().splitlines(), 1) if '"node_modules/fx-tamper"' in text)
    expected = json.loads(lock.read_text())["packages"]["node_modules/fx-tamper"]["integrity"]
    error = next(text for text in result.stderr.splitlines() if "fx-tamper@1.0.0" in text)
    assert (
        f"{lock}:{line}: fx-tamper@1.0.0: the upstream's tarball does not match: expected {expected}, downloaded sha512-"
        in error
    )
    assert "Traceback" not in result.stderr
    assert not (mirrored["into"] / "fx-tamper").exists()
    assert not list(mirrored["into"].rglob("*partial*"))


def test_platform_variants_missing_from_the_lockfile_are_named_and_fetched_on_request(mirrored):
    stdout, report = mirrored["variants"][False]
    assert report["missing_variants"] == ["@fx/native-darwin@1.0.0 (optional dependency of fx-native@1.0.0)"]
    assert "missing from the lockfile: @fx/native-darwin@1.0.0 (optional dependency of fx-native@1.0.0)" in stdout
    assert "@fx/native-darwin@1.0.0" not in report["fetched"]
    stdout, report = mirrored["variants"][True]
    assert report["fetched"] == ["@fx/native-darwin@1.0.0"]  # the rest was there from the first run
    assert report["verified_against_upstream"] == ["@fx/native-darwin@1.0.0"]  # no lockfile integrity for it
    assert (mirrored["scratch_variants"] / "@fx/native-darwin/native-darwin-1.0.0.tgz").is_file()


def test_mirror_serves_what_upstream_said(mirrored):
    url = mirrored["mirror_url"]
    status, _, body = fetch(url + "fx-old")
    doc = json.loads(body)
    assert status == 200 and doc["versions"]["1.0.0"]["deprecated"] == DEPRECATION
    assert "deprecated" not in doc["versions"]["2.0.0"] if "2.0.0" in doc["versions"] else True
    assert (
        doc["time"]["1.0.0"] == "2020-09-13T12:26:40.000Z"
    )  # the upstream's time (the tarball's old mtime), not today
    dep = json.loads(fetch(url + "fx-dep")[2])
    version = dep["versions"]["1.0.0"]
    assert dep["time"]["1.0.0"] == "2021-03-04T05:06:07.000Z"
    assert version["_npmUser"] == {"name": "fixture-publisher", "email": "publisher@example.test"}
    assert [s["keyid"] for s in version["dist"]["signatures"]] == [KEYID]
    scoped = json.loads(fetch(url + "@fx%2fscoped")[2])["versions"]["1.0.0"]
    assert scoped["dist"]["attestations"]["provenance"] == {"predicateType": "https://slsa.dev/provenance/v1"}
    status, headers, body = fetch(url + "-/npm/v1/attestations/@fx/scoped@1.0.0")
    assert (status, headers["content-type"], json.loads(body)) == (200, "application/json", BUNDLE)
    native = json.loads(fetch(url + "@fx%2fnative-darwin")[2])
    assert native["versions"]["1.0.0"]["os"] == ["darwin"]


def test_upstream_signatures_verify_on_the_mirror(mirrored):
    """The upstream's signature of fx-dep's integrity still holds on the mirror, checked as
    pacote's verifySignatures does (the message `name@version:integrity`, ECDSA P-256 over
    SHA-256, the key found by keyid in the registry's /-/npm/v1/keys, which the mirror serves
    from the kept keys: written here as the signing work of issue 18 serves them). Not
    `npm audit signatures` itself: it first fetches sigstore's TUF root from the internet."""
    url = mirrored["mirror_url"]
    version = json.loads(fetch(url + "fx-dep")[2])["versions"]["1.0.0"]
    keys = {k["keyid"]: k for k in json.loads(fetch(url + "-/npm/v1/keys")[2])["keys"]}
    (signature,) = version["dist"]["signatures"]
    key = serialization.load_der_public_key(base64.b64decode(keys[signature["keyid"]]["key"]))
    message = f"fx-dep@1.0.0:{version['dist']['integrity']}".encode()
    key.verify(base64.b64decode(signature["sig"]), message, ec.ECDSA(hashes.SHA256()))  # raises if it does not hold
    tarball = fetch(version["dist"]["tarball"])[2]
    assert version["dist"]["integrity"] == "sha512-" + base64.b64encode(hashlib.sha512(tarball).digest()).decode()


@pytest.mark.parametrize("name", [*NAMES, "npm-v1", "bun-default"])
def test_frozen_install_from_the_mirror(mirrored, name):
    scratch = mirrored["scratch"]
    project = scratch / f"install-{name}"
    shutil.copytree(mirrored["projects"][name.replace("-default", "")], project)
    # yarn 1 fetches its lockfile's URLs as written, and so does bun for a registry other than its
    # default: the copies `mirror` wrote. npm replaces only the public registry's host unless told.
    if name == "yarn1":
        shutil.copy(scratch / "yarn1-mirror.lock", project / "yarn.lock")
    if name == "bun":
        shutil.copy(scratch / "bun-mirror.lock", project / "bun.lock")
    if name == "bun-default":  # as bun writes it for its default registry: "" for the registry, no URL
        text = re.sub(r'"http://127\.0\.0\.1:\d+/[^"]*\.tgz"', '""', (project / "bun.lock").read_text())
        assert text != (project / "bun.lock").read_text()
        (project / "bun.lock").write_text(text)
    before = lockfile_of(project).read_bytes()
    user = client(
        {"npm-v1": "npm", "bun-default": "bun"}.get(name, name),
        scratch / f"client-mirror-{name}",
        mirrored["mirror_url"],
    )
    if user.name == "npm":
        with (user.home / ".npmrc").open("a") as f:
            f.write("replace-registry-host=always\n")
    user.install(project, frozen=True)
    if name not in ("npm-v1", "yarn4"):  # npm converts a v1 lock; yarn 4 rewrites its own header
        assert lockfile_of(project).read_bytes() == before
    modules = project / "node_modules"
    assert resolved_version("@fx/scoped", project) == "1.0.0"
    assert resolved_version("fx-dep", modules / "@fx/scoped") == "1.0.0"
    assert json.loads((modules / "fx-alias/package.json").read_text())["name"] == "fx-real"
    assert resolved_version("fx-alias", project) == "1.1.0"
    assert resolved_version("fx-old", project) == "1.0.0"
    assert resolved_version("fx-bundled", modules / "fx-bundler") == "1.0.0"
    assert resolved_version("@fx/native-linux", modules / "fx-native") == "1.0.0"
    assert resolved_version("@fx/native-darwin", modules / "fx-native") is None
    assert resolved_version("local-dep", project) == "1.0.0"
