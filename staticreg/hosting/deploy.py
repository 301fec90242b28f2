"""`staticreg deploy REGISTRY s3://bucket/prefix`: upload a built registry to S3 or
any S3-compatible store, in an order that never shows a reader a document whose
tarball is missing: tarballs, then packages' states, documents, the site, the root
pages, and the registry's state last.

What to upload comes from the registry's state (`registry_state`): a package whose
fingerprint in the bucket's state equals the local one is not looked at again, so
the work is proportional to the change, not to the registry. A bucket without a
state (a first deploy) is compared object by object (listing and MD5). Uploads run
in parallel (`jobs`), one phase of the order after the other.

Deploy makes the bucket hold the registry that was built. It refuses to drop a
version the bucket has and the registry lacks (one published since the registry was
built: two pipelines would lose it), unless `delete` asks for exactly that; and it
writes the bucket's state with a conditional write, so that a publish or another
deploy that ran meanwhile is never silently undone. Site pages of a registry's
bucket that the registry no longer has (those of an older layout, a README page no
version shows) are removed in any case: no page of them is anyone's version.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from staticreg.errors import StaticregError
from staticreg.hosting.store import ABSENT, Conflict, StoreError, parse_s3_target, s3_call, s3_client
from staticreg.npm import headers, layout, registry_state
from staticreg.progress import Progress

DEFAULT_JOBS = 16


class DeployError(StaticregError):
    """The target, the credentials or the store refused the deploy."""


@dataclass
class DeployReport:
    uploaded: list[str] = field(default_factory=list)
    unchanged: int = 0
    deleted: list[str] = field(default_factory=list)
    stale: list[str] = field(default_factory=list)  # left the registry, kept without --delete
    requests: int = 0

    def summary(self, target: str) -> str:
        line = f"{target}: {len(self.uploaded)} uploaded, {self.unchanged} unchanged, {len(self.deleted)} deleted"
        if self.stale:
            line += f"; {len(self.stale)} objects no longer in the registry were kept (--delete removes them)"
        return line


@dataclass(frozen=True)
class Upload:
    key: str
    path: str  # in the registry folder
    file: Path
    kind: str
    content_type: str
    cache_control: str
    package: str  # the package whose folders hold it; "" for the registry's shared files


def parse_target(target: str) -> tuple[str, str]:
    """'s3://bucket/some/prefix' -> ('bucket', 'some/prefix/')."""
    try:
        return parse_s3_target(target)
    except StoreError as exc:
        raise DeployError(str(exc)) from None


# Upload phases: no reader sees a document before its tarball, a package document before
# the package state a publish reads beside it, or the registry's state before the rest.
_PHASES = {layout.TARBALL: 0, layout.STATE: 1, layout.DOCUMENT: 2, layout.SITE_PAGE: 3, layout.ROOT_PAGE: 4}


def _phase(upload: Upload) -> int:
    return 5 if upload.path == layout.REGISTRY_STATE else _PHASES[upload.kind]


def plan(registry_dir: Path, prefix: str, document_max_age: int = 0, names: Iterable[str] = ()) -> list[Upload]:
    """Every object of the registry, in upload order; `names`: its packages (for Upload.package)."""
    if not (registry_dir / layout.PING).is_file():
        raise DeployError(
            f"{registry_dir} is not a built registry (it has no {layout.PING}): run staticreg build first"
        )
    paths = {
        p.relative_to(registry_dir).as_posix() for p in registry_dir.rglob("*") if p.is_file() and not p.is_symlink()
    }
    owner = {folder: name for name in names for folder in layout.package_folders(name)}
    uploads = []
    for key, (path, kind) in layout.object_keys(paths).items():
        if not prefix + key:
            continue  # the top page at the bucket's root: the store has no such key
        content_type, cache_control = headers.for_object(path, kind, document_max_age)
        uploads.append(
            Upload(
                prefix + key,
                path,
                layout.safe_join(registry_dir, path),
                kind,
                content_type,
                cache_control,
                layout.owner_of(path, owner),
            )
        )
    return sorted(uploads, key=lambda u: (_phase(u), u.key))


def _md5(file: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with file.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _local_state(registry_dir: Path) -> registry_state.RegistryState:
    path = registry_dir / layout.REGISTRY_STATE
    if not path.is_file():
        if (registry_dir / layout.PING).is_file():
            raise DeployError(
                f"{registry_dir} was built by an older staticreg (it has no {layout.REGISTRY_STATE}): build it again"
            )
        raise DeployError(
            f"{registry_dir} is not a built registry (it has no {layout.PING}): run staticreg build first"
        )
    try:
        return registry_state.parse_registry_state(path.read_bytes(), str(path))
    except StaticregError as exc:
        raise DeployError(str(exc)) from None


class _Bucket:
    """The few S3 calls deploy makes, counted, with the store's errors as DeployErrors."""

    def __init__(self, target: str, endpoint_url: str | None, jobs: int):
        self.target = target
        self.bucket, self.prefix = parse_target(target)
        try:
            self.s3 = s3_client(endpoint_url, pool=jobs)
        except StoreError as exc:
            raise DeployError(str(exc)) from None
        self.requests = 0

    def call(self, what: Callable, missing: bool = False, **kwargs):
        self.requests += 1
        try:
            return s3_call(
                self.target, kwargs.get("Key") or kwargs.get("Prefix", ""), what, missing, Bucket=self.bucket, **kwargs
            )
        except StoreError as exc:
            raise DeployError(str(exc)) from None

    def get(self, key: str) -> tuple[bytes, str] | None:
        answer = self.call(self.s3.get_object, missing=True, Key=key)
        return None if answer is None else (answer["Body"].read(), answer["ETag"].strip('"'))

    def keys_under(self, prefix: str) -> dict[str, str]:
        """key -> ETag (the MD5 of a single-part upload) of every object under prefix."""
        found: dict[str, str] = {}
        token = None
        while True:
            extra: dict[str, Any] = {"ContinuationToken": token} if token else {}
            page = self.call(self.s3.list_objects_v2, Prefix=prefix, **extra)
            for item in page.get("Contents", []):
                found[item["Key"]] = item["ETag"].strip('"')
            if not page.get("IsTruncated"):
                return found
            token = page["NextContinuationToken"]

    def put(self, upload: Upload, expect: str | None = None) -> None:
        extra: dict[str, Any] = {}
        if expect == ABSENT:
            extra["IfNoneMatch"] = "*"
        elif expect is not None:
            extra["IfMatch"] = f'"{expect}"'
        data = upload.file.read_bytes()
        md5 = base64.b64encode(hashlib.md5(data, usedforsecurity=False).digest()).decode()
        self.call(
            self.s3.put_object,
            Key=upload.key,
            Body=data,
            ContentType=upload.content_type,
            CacheControl=upload.cache_control,
            ContentMD5=md5,
            **extra,
        )

    def delete(self, key: str) -> None:
        self.call(self.s3.delete_object, Key=key)


def deploy(
    registry_dir: Path,
    target: str,
    endpoint_url: str | None = None,
    delete: bool = False,
    document_max_age: int = 0,
    dry_run: bool = False,
    say=lambda line: None,
    jobs: int = DEFAULT_JOBS,
    show_progress: bool = False,
) -> DeployReport:
    bucket = _Bucket(target, endpoint_url, jobs)  # before anything else: a bad endpoint or no boto3 fails at once
    local = _local_state(registry_dir)
    uploads = plan(registry_dir, bucket.prefix, document_max_age, local.fingerprints)
    report = DeployReport()
    remote_blob = bucket.get(bucket.prefix + layout.REGISTRY_STATE)
    if remote_blob is None:
        chosen, gone = _by_content(bucket, uploads, jobs)
        state_expect = ABSENT
    else:
        try:
            remote = registry_state.parse_registry_state(remote_blob[0], f"{target}: {layout.REGISTRY_STATE}")
        except StaticregError as exc:
            raise DeployError(str(exc)) from None
        chosen, gone = _by_state(bucket, uploads, local, remote, remote_blob[0], registry_dir, delete)
        state_expect = remote_blob[1]
    report.unchanged = len(uploads) - len(chosen)
    pages = {key for key in gone if remote_blob is not None and _is_site_key(bucket, key)}
    report.deleted = gone if delete else [key for key in gone if key in pages]
    report.stale = [] if delete else [key for key in gone if key not in pages]
    final = [u for u in chosen if u.path == layout.REGISTRY_STATE]
    progress = Progress("Uploading", len(chosen), enabled=show_progress)
    try:
        with ThreadPoolExecutor(max(1, jobs)) as pool:
            for phase in sorted({_phase(u) for u in chosen} - {5}):
                batch = [u for u in chosen if _phase(u) == phase]
                for upload in batch:
                    say(f"upload {upload.key}")
                if not dry_run:
                    for _ in pool.map(bucket.put, batch):
                        progress.step()
                report.uploaded += [u.key for u in batch]
            for upload in final:  # the commit point, written only over the state this deploy read
                say(f"upload {upload.key}")
                if not dry_run:
                    bucket.put(upload, expect=state_expect)
                report.uploaded.append(upload.key)
            if report.deleted:
                for key in report.deleted:
                    say(f"delete {key}")
                if not dry_run:
                    list(pool.map(bucket.delete, report.deleted))
    except Conflict:
        raise DeployError(
            f"{target}: the registry in the bucket changed while this deploy ran (a publish, or another deploy); "
            "its documents are as this registry has them, but its state is the other writer's: run the deploy again"
        ) from None
    finally:
        progress.close()
    report.requests = bucket.requests
    return report


def _by_content(bucket: _Bucket, uploads: list[Upload], jobs: int) -> tuple[list[Upload], list[str]]:
    """A bucket without a state: compare every object by its MD5 (a listing and a hash each)."""
    existing = bucket.keys_under(bucket.prefix)
    with ThreadPoolExecutor(max(1, jobs)) as pool:
        md5s = list(pool.map(lambda u: _md5(u.file), uploads))
    chosen = [u for u, md5 in zip(uploads, md5s, strict=True) if existing.get(u.key) != md5]
    gone = sorted(set(existing) - {u.key for u in uploads})
    return chosen, gone


def _by_state(
    bucket: _Bucket,
    uploads: list[Upload],
    local: registry_state.RegistryState,
    remote: registry_state.RegistryState,
    remote_bytes: bytes,
    registry_dir: Path,
    delete: bool,
) -> tuple[list[Upload], list[str]]:
    """The objects of the packages whose fingerprint differs from the bucket's, and the shared
    files when anything changed; the keys of objects that left the registry."""
    if (registry_dir / layout.REGISTRY_STATE).read_bytes() == remote_bytes:
        return [], []
    changed = {n for n, f in local.fingerprints.items() if remote.fingerprints.get(n) != f}
    gone_packages = set(remote.fingerprints) - set(local.fingerprints)
    lost = [f"{name} (every version)" for name in sorted(gone_packages)]
    for name in sorted(changed & set(remote.fingerprints)):
        there = bucket.get(_document_key(bucket, name))
        if there is None:
            continue
        try:
            versions = set(json.loads(there[0]).get("versions") or {})
        except ValueError:
            continue
        here = json.loads((registry_dir / layout.packument_path(name)).read_bytes()).get("versions") or {}
        lost += [f"{name}@{v}" for v in sorted(versions - set(here), key=str)]
    if lost and not delete:
        raise DeployError(
            f"{bucket.target} has what this registry lacks (published there since it was built, or left out of "
            "this build): " + ", ".join(lost) + ". Build again from tarballs that include them, add new versions "
            "with staticreg publish instead of deploy, or deploy with --delete to remove them; nothing was uploaded"
        )
    shared, listed = _changed_shared(bucket, [u for u in uploads if u.package == ""])
    chosen = [u for u in uploads if u.package in changed] + shared
    planned = {u.key for u in uploads}
    gone: set[str] = set(listed) - planned  # a list page past the last, a scope with no package left
    for name in sorted(changed & set(remote.fingerprints) | gone_packages):
        keys = {_document_key(bucket, name)} if name in gone_packages else set()
        for folder in layout.package_folders(name):
            keys |= set(bucket.keys_under(bucket.prefix + folder + "/"))
        gone |= keys - planned
    return chosen, sorted(gone)


# Folders of the files of no package: listed (a request a thousand objects) and compared by
# MD5, so that one new package does not upload every list and scope page again.
_SHARED_FOLDERS = (
    f"{layout.SITE_DIR}/packages/",
    f"{layout.SITE_DIR}/scope/",
    f"{layout.SITE_DIR}/assets/",
    "-/npm/v1/",
)


def _changed_shared(bucket: _Bucket, shared: list[Upload]) -> tuple[list[Upload], dict[str, str]]:
    """The registry's shared files that differ from the bucket's (the few at the top: all),
    and what the bucket has in their folders."""
    listed: dict[str, str] = {}
    for folder in _SHARED_FOLDERS:
        listed.update(bucket.keys_under(bucket.prefix + folder))
    changed = [u for u in shared if not u.path.startswith(_SHARED_FOLDERS) or listed.get(u.key) != _md5(u.file)]
    return changed, listed


def _is_site_key(bucket: _Bucket, key: str) -> bool:
    """A key of the browsable site (its pages, assets and search index) under the bucket's prefix."""
    return key.startswith(bucket.prefix + layout.SITE_DIR + "/")


def _document_key(bucket: _Bucket, name: str) -> str:
    key = layout.object_key(layout.packument_path(name))
    assert key is not None
    return bucket.prefix + key
