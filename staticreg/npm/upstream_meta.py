"""What an upstream registry said about a mirrored tarball: the sidecar file beside it.

`staticreg mirror` writes `<file>.tgz.upstream.json` next to each tarball it
fetches; the build reads it (`load`), uses it only when its name, version and
integrity are the tarball's own, and amends the version's document with it
(`apply`). The sidecar comes from an upstream, so it is validated like any input
(`validate`, pure): known keys, their types, bounded sizes.

    {"name", "version", "integrity": "sha512-...", "time": "<ISO 8601 Z>",
     "deprecated"?, "_npmUser"?, "os"?, "cpu"?, "libc"?,
     "signatures"?: [{"keyid", "sig"}], "attestations"?: {"url", "provenance"},
     "attestation_bundle"?: <the upstream's /-/npm/v1/attestations/NAME@VERSION>}

`<input>/staticreg-upstream-keys.json` is the upstream's `/-/npm/v1/keys` document.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from staticreg.npm import names

SUFFIX = ".upstream.json"
KEYS_FILE = "staticreg-upstream-keys.json"
MAX_SIDECAR_BYTES = 16 * 1024 * 1024
MAX_FIELD_BYTES = 64 * 1024  # _npmUser, attestations, deprecated
MAX_BUNDLE_BYTES = 8 * 1024 * 1024
MAX_LIST = 64
_SHA512 = re.compile(r"^sha512-[A-Za-z0-9+/]{86}==$")
_PLATFORM = re.compile(r"^!?[A-Za-z0-9_.-]{1,64}$")


class SidecarProblem(ValueError):
    """A sidecar that cannot be used; the message says why."""


@dataclass(frozen=True)
class UpstreamMeta:
    name: str
    version: str
    integrity: str
    time: str | None  # ISO 8601, milliseconds, Z
    fields: dict[
        str, Any
    ]  # the optional keys, validated: deprecated, _npmUser, os, cpu, libc, signatures, attestations
    attestation_bundle: dict[str, Any] | None  # None also when let go to save memory (see load_beside)
    digest: str  # sha256 of the sidecar's validated content: what the build cache compares
    has_bundle: bool = False

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"name": self.name, "version": self.version, "integrity": self.integrity}
        if self.time:
            data["time"] = self.time
        data.update(self.fields)
        if self.attestation_bundle is not None:
            data["attestation_bundle"] = self.attestation_bundle
        return data


def sidecar_path(tarball: Path) -> Path:
    return tarball.with_name(tarball.name + SUFFIX)


def _size(value: object) -> int:
    return len(json.dumps(value, ensure_ascii=False, allow_nan=False))


def _time(value: object) -> str:
    if not isinstance(value, str) or len(value) > 40:
        raise SidecarProblem('"time" is not an ISO 8601 time')
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise SidecarProblem(f'"time" {value!r} is not an ISO 8601 time') from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    when = when.astimezone(timezone.utc)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def validate(data: object) -> UpstreamMeta:
    """The sidecar's content checked and normalised; raises SidecarProblem."""
    if not isinstance(data, dict):
        raise SidecarProblem("is not a JSON object")
    name, given_version, integrity = data.get("name"), data.get("version"), data.get("integrity")
    try:
        names.check_name(name)
        version = names.clean_version(given_version)
    except names.NameProblem as exc:
        raise SidecarProblem(str(exc)) from None
    if version != given_version:
        raise SidecarProblem(f'"version" {given_version!r} is not strict semver')
    name = str(name)  # check_name let only a string through
    if not isinstance(integrity, str) or not _SHA512.match(integrity):
        raise SidecarProblem('"integrity" is not a sha512 integrity (sha512-...)')
    time = _time(data["time"]) if data.get("time") is not None else None
    fields: dict[str, Any] = {}
    deprecated = data.get("deprecated")
    if deprecated is not None:
        if not isinstance(deprecated, str) or len(deprecated) > MAX_FIELD_BYTES:
            raise SidecarProblem('"deprecated" is not a message')
        if deprecated:
            fields["deprecated"] = deprecated
    user = data.get("_npmUser")
    if user is not None:
        if not isinstance(user, dict) or _size(user) > MAX_FIELD_BYTES:
            raise SidecarProblem('"_npmUser" is not an object (or is too large)')
        fields["_npmUser"] = user
    for key in ("os", "cpu", "libc"):
        value = data.get(key)
        if value is None:
            continue
        if isinstance(value, str):
            value = [value]
        if (
            not isinstance(value, list)
            or len(value) > MAX_LIST
            or not all(isinstance(v, str) and _PLATFORM.match(v) for v in value)
        ):
            raise SidecarProblem(f'"{key}" is not a list of platform names')
        fields[key] = value
    signatures = data.get("signatures")
    if signatures is not None:
        if (
            not isinstance(signatures, list)
            or len(signatures) > MAX_LIST
            or not all(
                isinstance(s, dict)
                and isinstance(s.get("keyid"), str)
                and isinstance(s.get("sig"), str)
                and len(s["keyid"]) <= 1024
                and len(s["sig"]) <= 8192
                for s in signatures
            )
        ):
            raise SidecarProblem('"signatures" is not a list of {"keyid", "sig"}')
        fields["signatures"] = [{"keyid": s["keyid"], "sig": s["sig"]} for s in signatures]
    attestations = data.get("attestations")
    if attestations is not None:
        if (
            not isinstance(attestations, dict)
            or not isinstance(attestations.get("url"), str)
            or _size(attestations) > MAX_FIELD_BYTES
        ):
            raise SidecarProblem('"attestations" is not {"url", "provenance"}')
        fields["attestations"] = attestations
    bundle = data.get("attestation_bundle")
    if bundle is not None and (not isinstance(bundle, dict) or _size(bundle) > MAX_BUNDLE_BYTES):
        raise SidecarProblem('"attestation_bundle" is not a JSON object (or is larger than 8 MiB)')
    meta = UpstreamMeta(name, version, integrity, time, fields, bundle, "")
    digest = hashlib.sha256(json.dumps(meta.to_json(), sort_keys=True, ensure_ascii=False).encode()).hexdigest()
    return UpstreamMeta(name, version, integrity, time, fields, bundle, digest, bundle is not None)


def load(path: Path) -> UpstreamMeta | None:
    """The sidecar at `path`, validated; None when there is none. Raises SidecarProblem."""
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_SIDECAR_BYTES + 1)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise SidecarProblem(f"cannot be read ({exc.strerror})") from None
    if len(raw) > MAX_SIDECAR_BYTES:
        raise SidecarProblem(f"is larger than {MAX_SIDECAR_BYTES >> 20} MiB")
    try:
        data = json.loads(raw.decode("utf-8"), parse_constant=_no_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise SidecarProblem(f"is not UTF-8 JSON ({str(exc).splitlines()[0][:120]})") from None
    return validate(data)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def dumps(meta: UpstreamMeta) -> bytes:
    return (json.dumps(meta.to_json(), indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()


def from_upstream(
    name: str, version: str, integrity: str, document: dict[str, Any], time: object, bundle: dict[str, Any] | None
) -> UpstreamMeta:
    """The sidecar for a tarball with sha512 `integrity`, from the upstream's version
    document and publish time (both untrusted: what does not validate is an error)."""
    data: dict[str, Any] = {"name": name, "version": version, "integrity": integrity}
    if isinstance(time, str):
        data["time"] = time
    for key in ("deprecated", "_npmUser", "os", "cpu", "libc"):
        if document.get(key) is not None:
            data[key] = document[key]
    dist = document.get("dist")
    if not isinstance(dist, dict):
        dist = {}
    for key in ("signatures", "attestations"):
        if dist.get(key) is not None:
            data[key] = dist[key]
    if bundle is not None:
        data["attestation_bundle"] = bundle
    return validate(data)


def apply(manifest: dict[str, Any], meta: UpstreamMeta) -> dict[str, Any]:
    """The version document amended with what upstream said (pure: a new dict).
    The tarball's own os/cpu/libc win; deprecations from the configuration are applied after this."""
    out = dict(manifest)
    fields = meta.fields
    if "deprecated" in fields:
        out["deprecated"] = fields["deprecated"]
    if "_npmUser" in fields:
        out["_npmUser"] = fields["_npmUser"]
    for key in ("os", "cpu", "libc"):
        if key in fields and key not in out:
            out[key] = fields[key]
    if "signatures" in fields or "attestations" in fields:
        dist = dict(out.get("dist") or {})
        for key in ("signatures", "attestations"):
            if key in fields:
                dist[key] = fields[key]
        out["dist"] = dist
    return out


def mismatch(meta: UpstreamMeta, name: str, version: str, integrity: str) -> str | None:
    """Why a sidecar is not this tarball's, or None."""
    if (meta.name, meta.version) != (name, version):
        return f"is for {meta.name}@{meta.version}, not {name}@{version}"
    if meta.integrity != integrity:
        return f"has integrity {meta.integrity[:24]}..., the tarball's is {integrity[:24]}..."
    return None


def merge_keys(existing: dict[str, Any] | None, upstream: object) -> dict[str, Any]:
    """The keys document to keep: the upstream's /-/npm/v1/keys, with keys already kept
    that it no longer lists (by keyid). Raises SidecarProblem for a document of another shape."""
    if not isinstance(upstream, dict) or not isinstance(upstream.get("keys"), list):
        raise SidecarProblem('the upstream\'s /-/npm/v1/keys is not {"keys": [...]}')
    keys = []
    seen = set()
    for key in upstream["keys"] + list((existing or {}).get("keys") or []):
        if not isinstance(key, dict) or not isinstance(key.get("keyid"), str) or _size(key) > MAX_FIELD_BYTES:
            raise SidecarProblem("a key in the upstream's /-/npm/v1/keys is not an object with a keyid")
        if key["keyid"] not in seen:
            seen.add(key["keyid"])
            keys.append(key)
    if len(keys) > 1000:
        raise SidecarProblem("the upstream's /-/npm/v1/keys lists more than 1000 keys")
    return {"keys": keys}


# --- the build's side ------------------------------------------------------------


def sidecar_keys(sources: list[str], stats: Mapping[str, object]) -> dict[str, object]:
    """tarball path -> its sidecar's stat key, for the tarballs discovery found with one beside them."""
    return {rel: stats[rel + SUFFIX] for rel in sources if rel + SUFFIX in stats}


def keys_digest(keys: dict[str, object]) -> str:
    """What the build's signature adds for sidecars: nothing when there are none."""
    if not keys:
        return ""
    return "+upstream:" + hashlib.sha256(repr(sorted(keys.items())).encode()).hexdigest()


def load_beside(input_dir: Path, tarballs: Iterable[str]) -> tuple[dict[str, UpstreamMeta], list[tuple[str, str]]]:
    """The sidecars of these tarballs (paths relative to input_dir): ({tarball: meta}, [(sidecar, problem)]).
    Attestation bundles (kilobytes each) are not kept: `bundle_of` reads one again when it is written."""
    from staticreg.npm.layout import safe_join

    found, problems = {}, []
    for rel in tarballs:
        try:
            meta = load(safe_join(input_dir, rel + SUFFIX))
        except SidecarProblem as exc:
            problems.append((rel + SUFFIX, f"{exc}; run staticreg mirror again, or delete the file"))
            continue
        if meta is not None:
            found[rel] = replace(meta, attestation_bundle=None)
    return found, problems


def bundle_of(input_dir: Path, tarball: str, meta: UpstreamMeta) -> dict[str, Any]:
    """The attestation bundle of a sidecar load_beside read; raises SidecarProblem if it changed since."""
    from staticreg.npm.layout import safe_join

    again = load(safe_join(input_dir, tarball + SUFFIX))
    if again is None or again.digest != meta.digest or again.attestation_bundle is None:
        raise SidecarProblem("changed while the build ran; build again")
    return again.attestation_bundle
