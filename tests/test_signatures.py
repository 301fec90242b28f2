"""Registry signatures: keygen, key ids, signing and verifying, the keys document, rotation,
mirrored versions' own signatures, the configuration's key settings and check's reports.
tests/e2e/test_signatures.py proves the result with pnpm's and npm's own verification."""

from __future__ import annotations

import base64
import json
import pickle
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from staticreg import keyfiles
from staticreg.build import incremental
from staticreg.build.pipeline import build
from staticreg.config import SIGNING_KEY_ENV, load_config
from staticreg.errors import BuildError, ConfigError
from staticreg.hosting import check
from staticreg.npm import signatures
from staticreg.npm.signatures import Keyring, PublicKey, Signer
from tests.helpers import contents, make_set, make_tarball

# The public npm registry's two signing keys, with the key ids it publishes for them.
NPM_KEYS = {
    "SHA256:jl3bwswu80PjjokCgh0o2w5c2U4LhQAE57gj9cz1kzA": "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE1Olb3zMAFFxXKHiIkQO5cJ3Yhl5i6UPp+IhuteBJbuHcA5UogKo0EWtlWwW6KSaKoTNEYL7JlCQiVnkhBktUgg==",
    "SHA256:DhQ8wR5APBvFHLF/+Tc+AYvPOdTpcIDqOhxsBHRwC7U": "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEY6Ya7W++7aUPzvMTrezH6Ycx3c+HOKYCcNGybJZSCJq/fd7Qa8uuAKtdIkUQtQiEKERhAmE5lMMJhP8OkDOa2g==",
}


def run(*args: str, env: dict | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "staticreg", *args], capture_output=True, text=True, env=env, cwd=cwd)


def keygen(path: Path) -> Signer:
    return keyfiles.generate(path)


def pem_body(path: Path) -> list[str]:
    """The base64 lines of a PEM private key: what must appear nowhere in an output."""
    return [line for line in path.read_text().splitlines() if line and not line.startswith("-----")]


# -- keygen and key ids -----------------------------------------------------------------------


def test_keygen_writes_a_private_key_only_its_owner_can_read_and_never_overwrites(tmp_path):
    key = tmp_path / "registry.pem"
    result = run("keygen", str(key))
    assert result.returncode == 0, result.stderr
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    signer = keyfiles.signer_from_file(key)
    assert f"keyid: {signer.keyid}" in result.stdout and f"public key: {signer.key}" in result.stdout
    assert not any(line in result.stdout for line in pem_body(key))
    before = key.read_bytes()
    again = run("keygen", str(key))
    assert again.returncode == 1 and f"{key}: already exists" in again.stderr and "Traceback" not in again.stderr
    assert key.read_bytes() == before


def test_key_ids_are_those_the_public_registry_publishes():
    for keyid, key in NPM_KEYS.items():
        assert signatures.key_id(signatures.public_key_from_base64(key)) == keyid


@pytest.mark.skipif(shutil.which("ssh-keygen") is None, reason="ssh-keygen (openssh-client) is not installed")
def test_key_ids_are_what_ssh_keygen_prints_for_the_openssh_public_key(tmp_path):
    signer = keygen(tmp_path / "k.pem")
    openssh = signer.public_key.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    (tmp_path / "k.pub").write_bytes(openssh + b"\n")
    printed = subprocess.run(
        ["ssh-keygen", "-l", "-E", "sha256", "-f", str(tmp_path / "k.pub")], capture_output=True, text=True, check=True
    )
    assert printed.stdout.split()[1] == signer.keyid


def test_a_signature_verifies_for_its_own_text_only_and_is_deterministic(tmp_path):
    signer = keygen(tmp_path / "k.pem")
    one = signer.sign("a", "1.0.0", "sha512-abc")
    assert one == signer.sign("a", "1.0.0", "sha512-abc")  # RFC 6979: the same bytes again
    public = signer.public_key
    assert signatures.verify(public, b"a@1.0.0:sha512-abc", one["sig"])
    assert not signatures.verify(public, b"a@1.0.1:sha512-abc", one["sig"])
    assert not signatures.verify(public, b"a@1.0.0:sha512-abc", "not base64!")
    other = keygen(tmp_path / "other.pem")
    assert not signatures.verify(other.public_key, b"a@1.0.0:sha512-abc", one["sig"])
    # DER (r, s), as Node's crypto.verify and pnpm's p256 expect
    assert base64.b64decode(one["sig"])[0] == 0x30


def test_a_keyring_sent_to_another_process_leaves_the_signing_key_behind(tmp_path):
    signer = keygen(tmp_path / "k.pem")
    ring = Keyring(signer)
    assert "PRIVATE" not in repr(ring) and signer.keyid in repr(ring)
    copy = pickle.loads(pickle.dumps(ring))
    assert copy.signer is None


# -- the configuration ------------------------------------------------------------------------


def config_file(tmp_path: Path, text: str) -> Path:
    (tmp_path / "in").mkdir(exist_ok=True)
    path = tmp_path / "staticreg.yml"
    path.write_text("input: in\noutput: out\nbase_url: http://registry.test/\n" + text)
    return path


def test_signing_key_from_the_file_the_flag_or_the_environment(tmp_path, monkeypatch):
    monkeypatch.delenv(SIGNING_KEY_ENV, raising=False)
    a, b, c = (keygen(tmp_path / f"{n}.pem") for n in "abc")
    path = config_file(tmp_path, "signing_key: a.pem\n")
    assert load_config(path).signing.signer.keyid == a.keyid
    monkeypatch.setenv(SIGNING_KEY_ENV, (tmp_path / "c.pem").read_text())
    assert load_config(path).signing.signer.keyid == c.keyid  # the CI secret wins over the file
    assert load_config(path, signing_key=tmp_path / "b.pem").signing.signer.keyid == b.keyid  # the flag over both
    monkeypatch.delenv(SIGNING_KEY_ENV)
    assert load_config(config_file(tmp_path, "")).signing is None


@pytest.mark.parametrize("case", ["missing", "garbage", "rsa", "p384", "encrypted", "public"])
def test_a_bad_signing_key_is_one_line_naming_the_file(tmp_path, monkeypatch, case):
    monkeypatch.delenv(SIGNING_KEY_ENV, raising=False)
    key = tmp_path / "bad.pem"
    none = serialization.NoEncryption()
    pkcs8 = serialization.PrivateFormat.PKCS8
    if case == "garbage":
        key.write_text("-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----\n")
    elif case == "rsa":
        key.write_bytes(rsa.generate_private_key(65537, 2048).private_bytes(serialization.Encoding.PEM, pkcs8, none))
    elif case == "p384":
        key.write_bytes(ec.generate_private_key(ec.SECP384R1()).private_bytes(serialization.Encoding.PEM, pkcs8, none))
    elif case == "encrypted":
        secret = serialization.BestAvailableEncryption(b"pw")
        key.write_bytes(
            ec.generate_private_key(ec.SECP256R1()).private_bytes(serialization.Encoding.PEM, pkcs8, secret)
        )
    elif case == "public":
        public = ec.generate_private_key(ec.SECP256R1()).public_key()
        key.write_bytes(
            public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        )
    path = config_file(tmp_path, "signing_key: bad.pem\n")
    with pytest.raises(ConfigError) as raised:
        load_config(path)
    message = raised.value.format_message()
    assert f"staticreg.yml:4: signing_key: {key}: " in message
    expected = {
        "missing": "cannot read",
        "garbage": "not a PEM private key",
        "rsa": "not an ECDSA P-256 key",
        "p384": "not an ECDSA P-256 key",
        "encrypted": "is encrypted",
        "public": "not a PEM private key",
    }[case]
    assert expected in message
    result = run("build", "-c", str(path))
    assert result.returncode == 1 and str(key) in result.stderr and "Traceback" not in result.stderr


def test_a_bad_key_in_the_environment_is_named_by_its_variable(tmp_path, monkeypatch):
    monkeypatch.setenv(SIGNING_KEY_ENV, "not a key")
    with pytest.raises(
        ConfigError, match=r"^1 configuration problem:\n  \$STATICREG_SIGNING_KEY: not a PEM private key"
    ):
        load_config(config_file(tmp_path, ""))


def test_retired_keys_need_a_key_and_an_expiry(tmp_path, monkeypatch):
    monkeypatch.delenv(SIGNING_KEY_ENV, raising=False)
    old = keygen(tmp_path / "old.pem")
    keygen(tmp_path / "new.pem")
    good = config_file(
        tmp_path,
        f"""signing_key: new.pem
retired_keys:
  - file: old.pem
    expires: 2026-01-01T00:00:00Z
  - key: "{NPM_KEYS["SHA256:DhQ8wR5APBvFHLF/+Tc+AYvPOdTpcIDqOhxsBHRwC7U"]}"
    expires: 2025-01-29
""",
    )
    retired = load_config(good).signing.retired
    assert retired == (
        PublicKey(old.keyid, old.key, "2026-01-01T00:00:00.000Z"),
        PublicKey(
            "SHA256:DhQ8wR5APBvFHLF/+Tc+AYvPOdTpcIDqOhxsBHRwC7U",
            NPM_KEYS["SHA256:DhQ8wR5APBvFHLF/+Tc+AYvPOdTpcIDqOhxsBHRwC7U"],
            "2025-01-29T00:00:00.000Z",
        ),
    )
    bad = config_file(
        tmp_path,
        """signing_key: new.pem
retired_keys:
  - file: old.pem
  - key: "AAAA"
    expires: 2026-01-01T00:00:00Z
  - file: new.pem
    expires: 2026-01-01T00:00:00Z
""",
    )
    with pytest.raises(ConfigError) as raised:
        load_config(bad)
    message = raised.value.format_message()
    assert "staticreg.yml:6: retired_keys[0]: expires: expected a time" in message
    assert "staticreg.yml:7: retired_keys[1]: the key is not a base64 DER public key" in message
    assert "retired_keys: lists the signing key itself" in message


# -- documents --------------------------------------------------------------------------------


def signed_config(make_config, tarballs, key: Path, **kwargs):
    return make_config(tarballs, signing=Keyring(keyfiles.signer_from_file(key)), jobs=1, **kwargs)


def all_signatures(out: Path, name: str, document: str = "index.json") -> dict[str, list]:
    doc = json.loads((out / name / document).read_bytes())
    return {v: m["dist"].get("signatures") for v, m in doc["versions"].items()}


def test_every_version_is_signed_in_every_document_and_the_keys_are_listed(tarballs, make_config, tmp_path):
    make_set(tarballs)
    signer = keygen(tmp_path / "k.pem")
    config = signed_config(make_config, tarballs, tmp_path / "k.pem")
    build(config, show_progress=False)
    out = config.output_dir
    full = all_signatures(out, "a")
    assert full == all_signatures(out, "a", "index.corgi")
    for name in ("a", "@s/b"):
        doc = json.loads((out / name / "index.json").read_bytes())
        for version, manifest in doc["versions"].items():
            dist = manifest["dist"]
            assert [s["keyid"] for s in dist["signatures"]] == [signer.keyid]
            assert signatures.verify(
                signer.public_key, f"{name}@{version}:{dist['integrity']}".encode(), dist["signatures"][0]["sig"]
            )
            assert json.loads((out / name / f"{version}.json").read_bytes())["dist"]["signatures"] == dist["signatures"]
    assert json.loads((out / "-/npm/v1/keys").read_bytes()) == {
        "keys": [
            {
                "expires": None,
                "keyid": signer.keyid,
                "keytype": "ecdsa-sha2-nistp256",
                "scheme": "ecdsa-sha2-nistp256",
                "key": signer.key,
            }
        ]
    }


def test_the_private_key_is_in_no_output_report_or_cache(tarballs, make_config, tmp_path):
    make_set(tarballs)
    keygen(tmp_path / "k.pem")
    config = signed_config(make_config, tarballs, tmp_path / "k.pem")
    build(config, show_progress=False)
    secret = pem_body(tmp_path / "k.pem")
    scalar = keyfiles.signer_from_file(tmp_path / "k.pem")._key.private_numbers().private_value.to_bytes(32, "big")
    looked = 0
    for path in tmp_path.rglob("*"):
        if path.is_file() and path.parent != tmp_path:  # everything the build wrote (the key sits at the top)
            data = path.read_bytes()
            assert not any(line.encode() in data for line in secret) and scalar not in data, path
            looked += 1
    assert looked > 20 and incremental.cache_path(config.output_dir).is_file()


def test_a_rebuild_gives_the_same_bytes_and_a_new_key_signs_everything_again(tarballs, make_config, tmp_path):
    make_set(tarballs)
    keygen(tmp_path / "a.pem")
    keygen(tmp_path / "b.pem")
    config = signed_config(make_config, tarballs, tmp_path / "a.pem")
    build(config, show_progress=False)
    first = contents(config.output_dir)
    incremental.cache_path(config.output_dir).unlink()  # no cache: every document is signed and written again
    build(config, show_progress=False)
    assert contents(config.output_dir) == first
    other = make_config(tarballs, output_dir=tmp_path / "again", signing=config.signing, jobs=1)
    build(other, show_progress=False)
    assert contents(other.output_dir) == first  # a cold build with the same key: the same bytes
    again = build(signed_config(make_config, tarballs, tmp_path / "a.pem"), show_progress=False)  # the key read again
    assert (again.added, again.changed, again.removed) == ([], [], [])
    report = build(signed_config(make_config, tarballs, tmp_path / "b.pem"), show_progress=False)
    assert {"a/index.json", "a/index.corgi", "@s/b/index.json", "a/1.0.0.json", "-/npm/v1/keys"} <= set(report.changed)
    b = keyfiles.signer_from_file(tmp_path / "b.pem").keyid
    assert {s[0]["keyid"] for s in all_signatures(config.output_dir, "a").values()} == {b}


def test_without_a_key_there_are_no_signatures_and_no_keys_document(tarballs, make_config):
    make_set(tarballs)
    config = make_config(tarballs)
    build(config, show_progress=False)
    assert not (config.output_dir / "-/npm/v1/keys").exists()
    assert set(all_signatures(config.output_dir, "a").values()) == {None}


# -- rotation ---------------------------------------------------------------------------------


def test_a_rotated_key_keeps_old_versions_signatures_and_signs_new_ones_with_the_new_key(
    tarballs, make_config, tmp_path
):
    make_set(tarballs)  # a 1.0.0 and 1.1.0 published in 2020
    old, new = keygen(tmp_path / "old.pem"), keygen(tmp_path / "new.pem")
    config = signed_config(make_config, tarballs, tmp_path / "old.pem")
    build(config, show_progress=False)
    before = all_signatures(config.output_dir, "a")
    retired = PublicKey(old.keyid, old.key, "2021-01-01T00:00:00.000Z")
    rotated = make_config(tarballs, signing=Keyring(new, (retired,)), jobs=1)
    make_tarball(tarballs, {"name": "a", "version": "2.0.0"}, mtime=1_700_000_000)  # 2023: after the old key's expiry
    build(rotated, show_progress=False)
    after = all_signatures(config.output_dir, "a")
    assert after["1.0.0"] == before["1.0.0"] and after["1.1.0"] == before["1.1.0"]
    assert [s["keyid"] for s in after["2.0.0"]] == [new.keyid]
    keys = json.loads((config.output_dir / "-/npm/v1/keys").read_bytes())["keys"]
    assert [(k["keyid"], k["expires"]) for k in keys] == [(new.keyid, None), (old.keyid, "2021-01-01T00:00:00.000Z")]
    # A retired key whose expiry comes before a version's publish time does not keep its signature:
    # npm would call it expired. That version is signed by the new key.
    early = make_config(
        tarballs, signing=Keyring(new, (PublicKey(old.keyid, old.key, "2020-09-13T12:28:00.000Z"),)), jobs=1
    )
    build(early, show_progress=False)
    now = all_signatures(config.output_dir, "a")
    assert now["1.0.0"] == before["1.0.0"] and [s["keyid"] for s in now["1.1.0"]] == [new.keyid]


def test_a_retired_signature_that_no_longer_verifies_is_not_kept(tarballs, make_config, tmp_path):
    make_set(tarballs)
    old, new = keygen(tmp_path / "old.pem"), keygen(tmp_path / "new.pem")
    config = signed_config(make_config, tarballs, tmp_path / "old.pem")
    build(config, show_progress=False)
    doc_path = config.output_dir / "a/index.json"
    doc = json.loads(doc_path.read_bytes())
    doc["versions"]["1.0.0"]["dist"]["signatures"] = doc["versions"]["1.1.0"]["dist"]["signatures"]  # another version's
    doc_path.write_text(json.dumps(doc))
    build(
        make_config(
            tarballs, signing=Keyring(new, (PublicKey(old.keyid, old.key, "2030-01-01T00:00:00.000Z"),)), jobs=1
        ),
        show_progress=False,
    )
    after = all_signatures(config.output_dir, "a")
    assert [s["keyid"] for s in after["1.0.0"]] == [new.keyid] and [s["keyid"] for s in after["1.1.0"]] == [old.keyid]


# -- mirrored versions ------------------------------------------------------------------------


def mirrored(tarballs: Path, upstream: Signer, name: str = "up", version: str = "1.0.0") -> Path:
    """A tarball as `staticreg mirror` leaves it: its sidecar with the upstream's signature."""
    path = make_tarball(tarballs, {"name": name, "version": version})
    import hashlib

    integrity = "sha512-" + base64.b64encode(hashlib.sha512(path.read_bytes()).digest()).decode()
    sidecar = {
        "name": name,
        "version": version,
        "integrity": integrity,
        "time": "2020-01-01T00:00:00.000Z",
        "signatures": [upstream.sign(name, version, integrity)],
    }
    (tarballs / (path.name + keyfiles.SIDECAR_SUFFIX)).write_text(json.dumps(sidecar))
    return path


def upstream_keys_file(tarballs: Path, *signers: Signer) -> None:
    doc = {"keys": [PublicKey(s.keyid, s.key).entry() for s in signers]}
    (tarballs / "staticreg-upstream-keys.json").write_text(json.dumps(doc))


def test_mirrored_versions_keep_their_upstream_signatures_and_the_keys_list_both(
    tarballs, make_config, tmp_path, monkeypatch
):
    monkeypatch.delenv(SIGNING_KEY_ENV, raising=False)
    make_set(tarballs)
    ours, theirs = keygen(tmp_path / "ours.pem"), keygen(tmp_path / "theirs.pem")
    mirrored(tarballs, theirs)
    upstream_keys_file(tarballs, theirs)
    path = tmp_path / "staticreg.yml"
    path.write_text(
        f"input: {tarballs}\noutput: {tmp_path / 'out'}\nbase_url: http://registry.test/\nsigning_key: ours.pem\njobs: 1\n"
    )
    config = load_config(path)
    build(config, show_progress=False)
    sidecar = json.loads((tarballs / ("up-1.0.0.tgz" + keyfiles.SIDECAR_SUFFIX)).read_text())
    assert all_signatures(config.output_dir, "up") == {"1.0.0": sidecar["signatures"]}  # verbatim, none of ours added
    assert {s[0]["keyid"] for s in all_signatures(config.output_dir, "a").values()} == {ours.keyid}
    keys = json.loads((config.output_dir / "-/npm/v1/keys").read_bytes())["keys"]
    assert [k["keyid"] for k in keys] == [ours.keyid, theirs.keyid]


def test_a_sidecar_with_no_signatures_leaves_the_version_ours_to_sign(tarballs, make_config, tmp_path):
    ours, theirs = keygen(tmp_path / "ours.pem"), keygen(tmp_path / "theirs.pem")
    for number, signatures_field in enumerate(([], None)):
        tarball = mirrored(tarballs, theirs)
        sidecar_path = tarballs / (tarball.name + keyfiles.SIDECAR_SUFFIX)
        sidecar = json.loads(sidecar_path.read_text())
        if signatures_field is None:
            del sidecar["signatures"]
        else:
            sidecar["signatures"] = signatures_field
        sidecar_path.write_text(json.dumps(sidecar))
        upstream_keys_file(tarballs, theirs)
        config = make_config(
            tarballs,
            signing=Keyring(ours, (), (PublicKey(theirs.keyid, theirs.key),)),
            jobs=1,
            output_dir=tmp_path / f"out-{number}",
        )
        build(config, show_progress=False)
        assert [s["keyid"] for s in all_signatures(config.output_dir, "up")["1.0.0"]] == [ours.keyid]


@pytest.mark.parametrize("case", ["forged", "unknown key", "other tarball"])
def test_an_upstream_signature_that_does_not_verify_stops_the_build(tarballs, make_config, tmp_path, case):
    theirs, stranger = keygen(tmp_path / "theirs.pem"), keygen(tmp_path / "stranger.pem")
    tarball = mirrored(tarballs, stranger if case == "unknown key" else theirs)
    upstream_keys_file(tarballs, theirs)
    sidecar_path = tarballs / (tarball.name + keyfiles.SIDECAR_SUFFIX)
    sidecar = json.loads(sidecar_path.read_text())
    if case == "forged":
        sidecar["signatures"] = [theirs.sign("up", "1.0.1", sidecar["integrity"])]
    elif case == "other tarball":
        sidecar["integrity"] = "sha512-" + base64.b64encode(b"x" * 64).decode()
    sidecar_path.write_text(json.dumps(sidecar))
    keys = keyfiles.upstream_keys(tarballs / "staticreg-upstream-keys.json", required=True)
    config = make_config(tarballs, signing=Keyring(None, (), keys, "staticreg-upstream-keys.json"), jobs=1)
    with pytest.raises(BuildError) as raised:
        build(config, show_progress=False)
    message = raised.value.format_message()
    if case == "other tarball":  # the sidecar's own check (upstream_meta), before any signature is looked at
        assert "up-1.0.0.tgz" in message and "nothing was written" in message and "mirror it again" in message
    else:
        assert message.startswith("up-1.0.0.tgz") and "Nothing was written" in message
        assert {"forged": "do not verify for up@1.0.0", "unknown key": "which no upstream key has"}[case] in message
    assert not config.output_dir.exists()


def test_a_broken_upstream_keys_file_is_named(tmp_path, monkeypatch):
    monkeypatch.delenv(SIGNING_KEY_ENV, raising=False)
    path = config_file(tmp_path, "")
    keys = tmp_path / "in" / "staticreg-upstream-keys.json"
    for text, expected in (
        ("{", "not JSON"),
        (
            '{"keys": [{"keyid": "x", "keytype": "ssh-rsa", "scheme": "ssh-rsa", "key": "AAAA"}]}',
            "keytype and scheme must be",
        ),
    ):
        keys.write_text(text)
        with pytest.raises(ConfigError, match=f"upstream_keys: {keys}: .*{expected}"):
            load_config(path)


# -- check ------------------------------------------------------------------------------------


def test_check_reports_each_kind_of_signature_problem_with_its_fix(tmp_path):
    signer = keygen(tmp_path / "k.pem")
    retired = PublicKey("SHA256:old", keygen(tmp_path / "old.pem").key, "2021-01-01T00:00:00.000Z")
    keys = {signer.keyid: PublicKey(signer.keyid, signer.key), retired.keyid: retired}

    def version(v: str, sigs) -> dict:
        dist = {"integrity": f"sha512-{v}"}
        if sigs is not None:
            dist["signatures"] = sigs
        return {"dist": dist}

    doc = {
        "name": "p",
        "time": dict.fromkeys(("1.0.0", "1.0.1", "1.0.2", "1.0.3", "1.0.4"), "2022-01-01T00:00:00.000Z"),
        "versions": {
            "1.0.0": version("1.0.0", [signer.sign("p", "1.0.0", "sha512-1.0.0")]),
            "1.0.1": version("1.0.1", None),
            "1.0.2": version("1.0.2", [{"keyid": "SHA256:unknown", "sig": "AAAA"}]),
            "1.0.3": version("1.0.3", [{"keyid": "SHA256:old", "sig": "AAAA"}]),
            "1.0.4": version("1.0.4", [signer.sign("p", "1.0.4", "sha512-tampered")]),
        },
    }
    report = check.CheckReport(signatures=0)
    check.check_signatures("http://h/", "p", doc, keys, report)
    assert report.signatures == 1
    lines = report.problems
    assert len(lines) == 4 and all(". Fix: " in line for line in lines)
    assert lines[0].startswith("p@1.0.1: has no dist.signatures")
    assert lines[1].startswith("p@1.0.2: is signed by the key SHA256:unknown, which -/npm/v1/keys does not list")
    assert lines[2].startswith("p@1.0.3: is signed by the key SHA256:old, which expired (2021-01-01T00:00:00.000Z)")
    assert lines[3].startswith(f"p@1.0.4: has a signature by {signer.keyid} that does not verify")
    unlisted = check.CheckReport()
    check.check_signatures("http://h/", "p", doc, None, unlisted)
    assert unlisted.problems == [
        (
            "p@1.0.0 (and 3 more): carries dist.signatures, but http://h/-/npm/v1/keys answers 404: no client can verify them. "
            "Fix: serve the -/npm/v1/keys file staticreg writes with the documents"
        )
    ]


def test_the_keys_document_is_served_as_a_revalidated_json_document_everywhere(tmp_path):
    from staticreg.hosting import host_files, server_config
    from staticreg.npm import headers, layout

    assert layout.kind_of(layout.KEYS) == layout.DOCUMENT
    assert headers.for_object(layout.KEYS, layout.DOCUMENT) == (headers.JSON, headers.document_cache())
    assert headers.content_type(layout.KEYS) == headers.JSON
    assert layout.object_keys({layout.KEYS, layout.PING})[layout.KEYS] == (layout.KEYS, layout.DOCUMENT)
    assert '"~/-/npm/v1/keys$" "public, max-age=0, must-revalidate";' in server_config.nginx(tmp_path)
    apache = server_config.apache(tmp_path)
    assert '<FilesMatch "^(ping|dist-tags|keys)$">\n    ForceType application/json' in apache
    assert '<FilesMatch "^(index\\.json|index\\.corgi|ping|dist-tags|keys)(\\.gz)?$">' in apache
    caddy = server_config.caddy(tmp_path)
    assert "@document path */index.json */index.corgi */ping */dist-tags */-/npm/v1/keys" in caddy
    assert "@extensionless path */ping */dist-tags */-/npm/v1/keys" in caddy
    (tmp_path / layout.PING).parent.mkdir(parents=True)
    (tmp_path / layout.PING).write_text("{}")
    netlify = host_files.netlify_files(tmp_path)[layout.NETLIFY_HEADERS]
    assert (
        f"/{layout.KEYS}\n  Content-Type: application/json\n  Cache-Control: public, max-age=0, must-revalidate"
        in netlify
    )


def test_deploy_uploads_the_keys_before_any_document_signed_with_them(tarballs, make_config, tmp_path):
    """A new key's signatures must never be readable before the keys document that lists it."""
    from staticreg.hosting import deploy

    make_set(tarballs)
    keygen(tmp_path / "k.pem")
    config = signed_config(make_config, tarballs, tmp_path / "k.pem")
    build(config, show_progress=False)
    documents = [u.key for u in deploy.plan(config.output_dir, "npm/") if u.kind == "document"]
    assert documents[0] == "npm/-/npm/v1/keys" and len(documents) > 5


def test_the_signing_bench_runs():
    """bench/bench_signing.py keeps working (no timing is checked)."""
    result = subprocess.run(
        [sys.executable, "bench/bench_signing.py", "--packages", "20", "--runs", "1"],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    assert result.returncode == 0, result.stderr
    assert "signed / unsigned" in result.stdout and "per signed version" in result.stdout


def test_new_upstream_keys_rewrite_the_keys_document(tarballs, make_config, tmp_path):
    make_set(tarballs)
    ours, theirs = keygen(tmp_path / "ours.pem"), keygen(tmp_path / "theirs.pem")
    config = signed_config(make_config, tarballs, tmp_path / "ours.pem")
    build(config, show_progress=False)
    more = make_config(tarballs, signing=Keyring(ours, (), (PublicKey(theirs.keyid, theirs.key),)), jobs=1)
    report = build(more, show_progress=False)
    assert "-/npm/v1/keys" in report.changed
    assert [k["keyid"] for k in json.loads((config.output_dir / "-/npm/v1/keys").read_bytes())["keys"]] == [
        ours.keyid,
        theirs.keyid,
    ]


def test_signing_turned_off_removes_the_keys_and_the_signatures(tarballs, make_config, tmp_path):
    make_set(tarballs)
    keygen(tmp_path / "k.pem")
    config = signed_config(make_config, tarballs, tmp_path / "k.pem")
    build(config, show_progress=False)
    report = build(make_config(tarballs, jobs=1), show_progress=False)
    assert "-/npm/v1/keys" in report.removed and not (config.output_dir / "-/npm/v1/keys").exists()
    assert set(all_signatures(config.output_dir, "a").values()) == {None}
