"""Registry signatures, as npm and pnpm verify them: no file I/O here.

A registry signs each version with ECDSA P-256 over SHA-256 of the text
`NAME@VERSION:INTEGRITY` (the version's `dist.integrity` as written), puts
`dist.signatures: [{keyid, sig}]` (base64 DER) into its documents, and lists its
public keys at `/-/npm/v1/keys`. A key's id is "SHA256:" and the unpadded base64
of the SHA-256 of its OpenSSH public key blob, as `ssh-keygen -l -E sha256` prints
it: the public registry's key ids are made so. The ECDSA is `cryptography`'s.

Which signature a version gets (Keyring.sign_versions):
- a version that brings signatures of its own (a mirrored one, from its upstream)
  keeps them as they are, once each verifies against the upstream's keys;
- a version published before a retired key's `expires`, whose previous document
  holds a valid signature by that key, keeps it;
- every other version is signed by the signing key. Signatures are deterministic
  (RFC 6979): the same version signed again gives the same bytes, so a rebuild
  changes no document.
"""

from __future__ import annotations

import base64
import hashlib
import struct
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

KEYTYPE = "ecdsa-sha2-nistp256"  # keytype and scheme: the only kind npm and pnpm verify
_CURVE = b"nistp256"
_NOT_P256 = "not an ECDSA P-256 key (npm and pnpm verify only ecdsa-sha2-nistp256)"


class KeyProblem(ValueError):
    """A key, a key file or a keys document that cannot be used; the message says why."""


def message(name: str, version: str, integrity: str) -> bytes:
    return f"{name}@{version}:{integrity}".encode("utf-8", "surrogatepass")


def spki_base64(public_key: ec.EllipticCurvePublicKey) -> str:
    """The `key` of a keys document: base64 of the DER SubjectPublicKeyInfo."""
    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(der).decode()


def _ssh_string(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


def key_id(public_key: ec.EllipticCurvePublicKey) -> str:
    """SHA256: + unpadded base64 of the SHA-256 of the OpenSSH wire-format public key
    (string "ecdsa-sha2-nistp256", string "nistp256", string the X9.62 point)."""
    point = public_key.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    blob = _ssh_string(KEYTYPE.encode()) + _ssh_string(_CURVE) + _ssh_string(point)
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


def public_key_from_base64(text: object) -> ec.EllipticCurvePublicKey:
    """A keys document's `key` (base64 DER SPKI) as a P-256 public key; KeyProblem otherwise."""
    if not isinstance(text, str) or not text:
        raise KeyProblem("the key is not base64 text")
    try:
        der = base64.b64decode(text, validate=True)
        key = serialization.load_der_public_key(der)
    except (ValueError, UnsupportedAlgorithm):
        raise KeyProblem("the key is not a base64 DER public key") from None
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise KeyProblem(_NOT_P256)
    return key


def verify(public_key: ec.EllipticCurvePublicKey, data: bytes, sig: object) -> bool:
    if not isinstance(sig, str):
        return False
    try:
        public_key.verify(base64.b64decode(sig, validate=True), data, ec.ECDSA(hashes.SHA256()))
        return True
    except (InvalidSignature, ValueError):
        return False


def parse_time(text: object) -> datetime | None:
    """An ISO 8601 time with its zone (the keys document's `expires`, a document's `time`)."""
    if not isinstance(text, str):
        return None
    try:
        when = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text)
    except ValueError:
        return None
    return when if when.tzinfo else None


def iso(when: datetime) -> str:
    """The keys document's format for `expires`: YYYY-MM-DDTHH:mm:ss.sssZ."""
    when = when.astimezone(timezone.utc)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


class Signer:
    """The signing key. Its repr names the key's id and where it came from, never the key."""

    def __init__(self, private_key: PrivateKeyTypes, source: str):
        if not isinstance(private_key, ec.EllipticCurvePrivateKey) or not isinstance(private_key.curve, ec.SECP256R1):
            raise KeyProblem(_NOT_P256)
        self._key = private_key
        self.source = source  # a file name or an environment variable's name, for messages
        self.public_key = private_key.public_key()
        self.keyid = key_id(self.public_key)
        self.key = spki_base64(self.public_key)
        try:
            self._key.sign(b"", ec.ECDSA(hashes.SHA256(), deterministic_signing=True))
            self._deterministic = True
        except UnsupportedAlgorithm:  # an OpenSSL before 3.2: random signatures, as valid
            self._deterministic = False

    def __repr__(self) -> str:
        return f"Signer(keyid={self.keyid!r}, source={self.source!r})"

    def __eq__(self, other: object) -> bool:  # one key, wherever it was read from
        return isinstance(other, Signer) and other.keyid == self.keyid

    def __hash__(self) -> int:
        return hash(self.keyid)

    def sign(self, name: str, version: str, integrity: str) -> dict[str, str]:
        algorithm = ec.ECDSA(hashes.SHA256(), deterministic_signing=self._deterministic)
        sig = self._key.sign(message(name, version, integrity), algorithm)
        return {"keyid": self.keyid, "sig": base64.b64encode(sig).decode()}


@dataclass(frozen=True)
class PublicKey:
    """A key of the keys document: our own, a retired one of ours, or an upstream's."""

    keyid: str
    key: str  # base64 DER SPKI
    expires: str | None = None  # YYYY-MM-DDTHH:mm:ss.sssZ, or None: valid

    @property
    def public_key(self) -> ec.EllipticCurvePublicKey:
        return public_key_from_base64(self.key)

    def entry(self) -> dict[str, str | None]:
        return {"expires": self.expires, "keyid": self.keyid, "keytype": KEYTYPE, "scheme": KEYTYPE, "key": self.key}

    def valid_at(self, published: str) -> bool:
        """Whether a signature by this key holds for a version published at `published`:
        npm's rule, the publish time before `expires`."""
        if self.expires is None:
            return True
        when, until = parse_time(published), parse_time(self.expires)
        return when is not None and until is not None and when < until


def keys_from_document(doc: object, label: str) -> tuple[PublicKey, ...]:
    """The keys of a `/-/npm/v1/keys` document (an upstream's, from a stranger): each
    checked to be a P-256 key of the one kind clients verify, with a usable expiry."""
    if not isinstance(doc, dict) or not isinstance(doc.get("keys"), list):
        raise KeyProblem(f'{label}: not a keys document (expected {{"keys": [...]}})')
    found = []
    for index, entry in enumerate(doc["keys"]):
        where = f"{label}: keys[{index}]"
        if not isinstance(entry, dict):
            raise KeyProblem(f"{where}: not an object")
        if entry.get("keytype") != KEYTYPE or entry.get("scheme") != KEYTYPE:
            raise KeyProblem(f"{where}: keytype and scheme must be {KEYTYPE} (npm and pnpm verify nothing else)")
        keyid, expires = entry.get("keyid"), entry.get("expires")
        if not isinstance(keyid, str) or not keyid:
            raise KeyProblem(f"{where}: no keyid")
        if expires is not None and parse_time(expires) is None:
            raise KeyProblem(f"{where}: expires {expires!r} is not null or an ISO 8601 time")
        try:
            public_key_from_base64(entry.get("key"))
        except KeyProblem as exc:
            raise KeyProblem(f"{where}: {exc}") from None
        found.append(PublicKey(keyid, entry["key"], expires))
    return tuple(found)


@dataclass(frozen=True)
class Keyring:
    """Every key a build signs with or lists: made from the configuration (see keyfiles)."""

    signer: Signer | None = None
    retired: tuple[PublicKey, ...] = ()  # our former keys, each with its expires
    upstream: tuple[PublicKey, ...] = ()  # the upstreams' keys, for mirrored versions' own signatures
    upstream_file: str = ""  # where the upstream keys came from, for messages
    _verifiers: dict[str, ec.EllipticCurvePublicKey] = field(default_factory=dict, compare=False, repr=False)

    @property
    def keys(self) -> tuple[PublicKey, ...]:
        """The keys document's keys: the signing key first, then the retired and the upstreams'
        (an id given twice is listed once)."""
        own = (PublicKey(self.signer.keyid, self.signer.key),) if self.signer else ()
        seen: set[str] = set()
        listed = []
        for key in own + self.retired + self.upstream:
            if key.keyid not in seen:
                seen.add(key.keyid)
                listed.append(key)
        return tuple(listed)

    def __reduce__(self) -> tuple[Any, ...]:
        # A Config crossing to another process (the site's renderers) leaves the signing
        # key behind: only this process signs, and the key is in no other's memory.
        return (Keyring, (None, self.retired, self.upstream, self.upstream_file))

    def keys_document(self) -> dict[str, list[dict[str, str | None]]]:
        return {"keys": [key.entry() for key in self.keys]}

    def settings(self) -> tuple[str | None, tuple[PublicKey, ...], tuple[PublicKey, ...]]:
        """What the keyring changes in the documents, for the build cache's fingerprints."""
        return (self.signer.keyid if self.signer else None, tuple(self.retired), tuple(self.upstream))

    def _public(self, key: PublicKey) -> ec.EllipticCurvePublicKey:
        if key.keyid not in self._verifiers:
            self._verifiers[key.keyid] = key.public_key
        return self._verifiers[key.keyid]

    def sign_versions(
        self,
        name: str,
        manifests: dict[str, dict[str, Any]],
        times: dict[str, str],
        previous: dict[str, list[Any]],
        where: dict[str, str],
    ) -> None:
        """Give each manifest its dist.signatures, in place. `times`: each version's publish
        time; `previous`: the signatures each version had in the previous output (only
        read when there are retired keys); `where`: each version's tarball, for messages.
        Raises KeyProblem when a version's own (upstream) signatures do not verify."""
        retired = {key.keyid: key for key in self.retired}
        upstream = {key.keyid: key for key in self.upstream}
        for version, manifest in manifests.items():
            dist = manifest["dist"]
            data = message(name, version, dist["integrity"])
            brought = dist.pop("signatures", None)
            if brought:  # an empty list is no signature: the version is signed as our own
                dist["signatures"] = brought
                self._check_brought(
                    name, version, brought, upstream, data, times.get(version, ""), where.get(version, "")
                )
                continue
            kept = [
                s
                for s in previous.get(version, ())
                if isinstance(s, dict)
                and s.get("keyid") in retired
                and retired[s["keyid"]].valid_at(times.get(version, ""))
                and verify(self._public(retired[s["keyid"]]), data, s.get("sig"))
            ][:1]
            if kept:
                dist["signatures"] = [{"keyid": kept[0]["keyid"], "sig": kept[0]["sig"]}]
            elif self.signer is not None:
                dist["signatures"] = [self.signer.sign(name, version, dist["integrity"])]

    def _check_brought(
        self,
        name: str,
        version: str,
        brought: object,
        upstream: dict[str, PublicKey],
        data: bytes,
        published: str,
        source: str,
    ) -> None:
        label = f"{source or name + '@' + version}: the upstream's dist.signatures"
        fix = "mirror it again, or add the upstream's keys to " + (self.upstream_file or "the upstream keys file")
        if not isinstance(brought, list) or not brought:
            raise KeyProblem(f"{label} are not a list of {{keyid, sig}}; {fix}")
        for signature in brought:
            keyid = signature.get("keyid") if isinstance(signature, dict) else None
            key = upstream.get(keyid) if isinstance(keyid, str) else None
            if key is None:
                raise KeyProblem(f"{label} name the key {keyid!r}, which no upstream key has; {fix}")
            if not key.valid_at(published):
                raise KeyProblem(
                    f"{label}: the key {keyid} expired {key.expires}, before this version's time {published}; {fix}"
                )
            if not verify(self._public(key), data, signature.get("sig")):
                raise KeyProblem(
                    f"{label} by {keyid} do not verify for {name}@{version} and its integrity: "
                    "the tarball or its metadata changed after it was mirrored; mirror it again"
                )
