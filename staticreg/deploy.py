"""`staticreg deploy REGISTRY s3://bucket/prefix`: upload a built registry to S3 or
any S3-compatible store, in an order that never shows a reader a document whose
tarball is missing: tarballs, then documents, then the site, then the root pages.
Objects whose content is unchanged are skipped; objects that left the registry
are removed only with `delete`."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from staticreg import headers, layout
from staticreg.errors import StaticregError


class DeployError(StaticregError):
    """The target, the credentials or the store refused the deploy."""


@dataclass
class DeployReport:
    uploaded: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    stale: list[str] = field(default_factory=list)  # left the registry, kept without --delete

    def summary(self, target: str) -> str:
        line = f"{target}: {len(self.uploaded)} uploaded, {len(self.unchanged)} unchanged, {len(self.deleted)} deleted"
        if self.stale:
            line += f"; {len(self.stale)} objects no longer in the registry were kept (--delete removes them)"
        return line


@dataclass(frozen=True)
class Upload:
    key: str
    file: Path
    kind: str
    content_type: str
    cache_control: str
    md5: str


def parse_target(target: str) -> tuple[str, str]:
    """'s3://bucket/some/prefix' -> ('bucket', 'some/prefix/')."""
    parts = urlsplit(target)
    if parts.scheme != "s3" or not parts.netloc or parts.query or parts.fragment:
        raise DeployError(f"the target {target!r} must look like s3://bucket or s3://bucket/prefix")
    prefix = parts.path.strip("/")
    if any(p in ("", ".", "..") for p in prefix.split("/")) and prefix:
        raise DeployError(f"the prefix in {target!r} must be a plain path such as npm/")
    return parts.netloc, prefix + "/" if prefix else ""


def plan(registry_dir: Path, prefix: str, document_max_age: int = 0) -> list[Upload]:
    """Every object to upload, in upload order."""
    if not (registry_dir / layout.PING).is_file():
        raise DeployError(f"{registry_dir} is not a built registry (it has no {layout.PING}): run staticreg build first")
    paths = {p.relative_to(registry_dir).as_posix() for p in registry_dir.rglob("*") if p.is_file() and not p.is_symlink()}
    uploads = []
    for key, (path, kind) in layout.object_keys(paths).items():
        if not prefix + key:
            continue  # the top page at the bucket's root: the store has no such key
        file = layout.safe_join(registry_dir, path)
        content_type, cache_control = headers.for_object(path, kind, document_max_age)
        uploads.append(Upload(prefix + key, file, kind, content_type, cache_control, _md5(file)))
    return sorted(uploads, key=lambda u: (layout.UPLOAD_ORDER.index(u.kind), u.key))


def _md5(file: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with file.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _client(endpoint_url: str | None):
    try:
        import boto3
        from botocore.config import Config
    except ImportError:
        raise DeployError("deploying to S3 needs boto3: pip install 'staticreg[s3]'") from None
    try:
        return boto3.client("s3", endpoint_url=endpoint_url or None, config=Config(s3={"addressing_style": "path"}))
    except ValueError as exc:  # botocore: "Invalid endpoint: ..."
        raise DeployError(f"--endpoint-url {endpoint_url!r} is not usable ({exc}); give a URL like http://127.0.0.1:9000") from None


def _existing(s3, bucket: str, prefix: str) -> dict[str, str]:
    """key -> ETag (the MD5 of a single-part upload) of every object under prefix."""
    found = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            found[item["Key"]] = item["ETag"].strip('"')
    return found


def deploy(registry_dir: Path, target: str, endpoint_url: str | None = None, delete: bool = False,
           document_max_age: int = 0, dry_run: bool = False, say=lambda line: None) -> DeployReport:  # fmt: skip
    bucket, prefix = parse_target(target)
    s3 = _client(endpoint_url)  # before hashing every file: a bad endpoint or no boto3 fails at once
    uploads = plan(registry_dir, prefix, document_max_age)
    from botocore.exceptions import BotoCoreError, ClientError
    report = DeployReport()
    try:
        existing = _existing(s3, bucket, prefix)
        for upload in uploads:
            if existing.get(upload.key) == upload.md5:
                report.unchanged.append(upload.key)
                continue
            say(f"upload {upload.key}")
            if not dry_run:
                with upload.file.open("rb") as body:
                    s3.put_object(Bucket=bucket, Key=upload.key, Body=body, ContentType=upload.content_type,
                                  CacheControl=upload.cache_control, ContentMD5=_base64(upload.md5))  # fmt: skip
            report.uploaded.append(upload.key)
        gone = sorted(set(existing) - {u.key for u in uploads})
        if delete:
            for key in gone:
                say(f"delete {key}")
                if not dry_run:
                    s3.delete_object(Bucket=bucket, Key=key)
            report.deleted = gone
        else:
            report.stale = gone
    except ClientError as exc:
        error = exc.response.get("Error", {})
        raise DeployError(f"{target}: the store answered {error.get('Code', '?')}: {error.get('Message', exc)}") from None
    except BotoCoreError as exc:
        raise DeployError(f"{target}: {exc} (check --endpoint-url and your AWS credentials)") from None
    return report


def _base64(hex_digest: str) -> str:
    return base64.b64encode(bytes.fromhex(hex_digest)).decode()

