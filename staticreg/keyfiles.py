"""Key files: `staticreg keygen`, the signing key, retired keys, the upstreams' keys file,
and the signatures a previous output's documents hold. The signing itself is in
`signatures`; this module only reads and writes files.

The private key is read here and kept in the Signer's memory only: it is never
written anywhere but by keygen, never printed, never in the report or the cache.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from staticreg.errors import ConfigError
from staticreg.npm import layout
from staticreg.npm.signatures import KeyProblem, PublicKey, Signer, key_id, keys_from_document, spki_base64

SIDECAR_SUFFIX = ".upstream.json"
MAX_KEY_FILE_BYTES = 64 * 1024


def generate(path: Path) -> Signer:
    """A new P-256 key pair; the private key in `path` (PKCS#8 PEM, mode 0600).
    An existing file is never overwritten."""
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise ConfigError(
            f"{path}: already exists; staticreg keygen never overwrites a key, give a new file name"
        ) from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot create the key file ({exc.strerror or exc})") from None
    try:
        os.fchmod(fd, 0o600)  # whatever the umask
        os.write(fd, pem)
        os.fsync(fd)
    except OSError as exc:
        os.close(fd)
        path.unlink(missing_ok=True)
        raise ConfigError(f"{path}: cannot write the key file ({exc.strerror or exc})") from None
    os.close(fd)
    return Signer(key, str(path))


def _read(path: Path, what: str) -> bytes:
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_KEY_FILE_BYTES + 1)
    except OSError as exc:
        raise KeyProblem(f"{path}: cannot read the {what} ({exc.strerror or exc})") from None
    if len(data) > MAX_KEY_FILE_BYTES:
        raise KeyProblem(f"{path}: too large for a {what}")
    return data


def signer_from_pem(data: bytes, label: str) -> Signer:
    """The signing key from PEM text; KeyProblem naming `label` when it is not one."""
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except TypeError:
        raise KeyProblem(
            f"{label}: the private key is encrypted; staticreg needs it unencrypted (keep the file itself secret, mode 0600, or in a CI secret)"
        ) from None
    except (ValueError, UnsupportedAlgorithm):
        raise KeyProblem(f"{label}: not a PEM private key; make one with staticreg keygen FILE") from None
    try:
        return Signer(key, label)
    except KeyProblem as exc:
        raise KeyProblem(f"{label}: {exc}; make one with staticreg keygen FILE") from None


def signer_from_file(path: Path) -> Signer:
    return signer_from_pem(_read(path, "signing key"), str(path))


def public_key_from_file(path: Path, expires: str | None) -> PublicKey:
    """A retired key from a PEM file: its public key (a PEM private key file gives its public half)."""
    data = _read(path, "key file")
    key = None
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, UnsupportedAlgorithm):
        try:
            key = signer_from_pem(data, str(path)).public_key
        except KeyProblem:
            pass
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise KeyProblem(f"{path}: not a PEM P-256 public or private key")
    return PublicKey(key_id(key), spki_base64(key), expires)


def upstream_keys(path: Path, required: bool) -> tuple[PublicKey, ...]:
    """The upstreams' keys (a `/-/npm/v1/keys` document). A missing file is no keys, unless
    the configuration names it (`required`)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        if required:
            raise KeyProblem(f"{path}: no such file (upstream_keys names it)") from None
        return ()
    except OSError as exc:
        raise KeyProblem(f"{path}: cannot read the upstream keys ({exc.strerror or exc})") from None
    try:
        doc = json.loads(data)
    except ValueError as exc:
        raise KeyProblem(f"{path}: not JSON ({exc}); run staticreg mirror again or fix the file") from None
    return keys_from_document(doc, str(path))


def previous_signatures(output: Path, name: str) -> dict[str, list]:
    """version -> dist.signatures in the previous output's document of `name` ({} when none)."""
    try:
        doc = json.loads(layout.safe_join(output, layout.packument_path(name)).read_bytes())
        versions = doc["versions"]
        return {
            v: m["dist"]["signatures"]
            for v, m in versions.items()
            if isinstance(m, dict) and isinstance(m.get("dist"), dict) and isinstance(m["dist"].get("signatures"), list)
        }
    except (OSError, ValueError, KeyError, TypeError, AttributeError, layout.UnsafePath):
        return {}
