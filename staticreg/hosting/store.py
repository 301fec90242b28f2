"""Where a hosted registry's files live: a folder (what nginx serves) or an S3 bucket.

A store reads and writes one file of the registry at a time, by its path in the
registry (`layout`'s paths), and each write is atomic: a reader sees the old file
or the new one. Writes that must not lose a concurrent writer's change are
compare-and-swap: `write(path, data, expect=etag)` succeeds only while the file is
still the one read (`expect=ABSENT`: only while there is none), and raises
`Conflict` otherwise; the caller reads again, applies its change again and retries.

- In a folder, a lock file beside it (the one `staticreg build` takes) makes each
  whole update exclusive, so a compare-and-swap there cannot fail; files are written
  under a temporary name and renamed into place.
- In S3, the store's own conditional writes do it: `If-Match` with the ETag read,
  `If-None-Match: *` for a new key. 412 and 409 mean "changed meanwhile".

A document that layout gives a precompressed copy (NAME.gz, which nginx's
gzip_static sends as it is to clients that accept gzip) is changed in a folder in
this order: the old copy is removed, the document replaced, then the new copy
written, each file atomically. A reader meanwhile gets the old document, or the
new one (compressed by the server on the fly while there is no copy), never a
copy that is not of the document beside it; a writer killed in between leaves no
copy, which the next write of the same document makes. Deleting a document
removes its copy first. A bucket has no copies (layout.object_key): it cannot
choose a file by Accept-Encoding.
"""

from __future__ import annotations

import contextlib
import errno
import glob
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit

from staticreg.build.output import copy_holds, gzip_copy, lock_path, not_a_registry
from staticreg.errors import StaticregError
from staticreg.npm import headers, layout

if sys.platform != "win32":  # Windows has no fcntl: an update there takes no lock
    import fcntl


class StoreError(StaticregError):
    """The registry's store cannot be used: a wrong target, credentials, or a store that refused."""


class Conflict(Exception):
    """The file changed since it was read (or appeared, or went away): read it again and retry."""


ANY = "*any*"  # write whatever is there
ABSENT = ""  # write only if there is nothing there yet
LOCK_WAIT_SECONDS = 600


@dataclass(frozen=True)
class Blob:
    data: bytes
    etag: str


class Store(Protocol):
    label: str  # the target as the user gave it, for messages
    folder_host: bool  # a folder: abbreviated documents and index.html twins are written too

    def read(self, path: str) -> Blob | None: ...

    def write(self, path: str, data: bytes, expect: str = ANY, precompress: bool = False) -> str | None:
        """Write; returns the new file's etag (None when the store does without the file).
        `precompress`: with the precompressed copy layout names for it, where the store keeps copies."""

    def create(self, path: str, source: Path) -> bool: ...

    def delete(self, path: str) -> None: ...

    def link(self, existing: str, path: str) -> None: ...

    def exclusive(self) -> contextlib.AbstractContextManager[None]: ...


def open_store(target: str, endpoint_url: str | None = None) -> Store:
    """The store a --to target names: s3://bucket/prefix, or a folder."""
    if target.startswith("s3://"):
        return S3Store(target, endpoint_url)
    if "://" in target:
        raise StoreError(f"the target {target!r} must be a folder or s3://bucket/prefix")
    return FolderStore(Path(target))


def _remove_temporaries_of(target: Path) -> None:
    """Temporaries of writers killed while writing `target` (".NAME.XXXX.tmp"): under the
    registry's lock no other writer is alive, so every one of them is a dead writer's."""
    for stale in target.parent.glob(f".{glob.escape(target.name)}.*.tmp"):
        with contextlib.suppress(OSError):
            stale.unlink()


def _stat_etag(st: os.stat_result) -> str:
    """A folder file's version: every write renames a new file into place (a new inode)."""
    return f"{st.st_ino}-{st.st_mtime_ns}-{st.st_size}"


class FolderStore:
    """A registry folder on this machine."""

    folder_host = True

    def __init__(self, root: Path):
        self.root = root.absolute()
        self.label = str(root)

    def _path(self, path: str) -> Path:
        return layout.safe_join(self.root, path)

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        """Hold the registry's lock (the one builds take) for a whole update; wait for it."""
        foreign = not_a_registry(self.root)
        if foreign:
            raise StoreError(f"{foreign}; give a registry folder, or a new or empty one")
        self.root.parent.mkdir(parents=True, exist_ok=True)
        with open(lock_path(self.root), "a+") as lock:
            if sys.platform != "win32":
                deadline = time.monotonic() + LOCK_WAIT_SECONDS
                while True:
                    try:
                        fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                        break
                    except BlockingIOError:
                        if time.monotonic() > deadline:
                            raise StoreError(
                                f"{self.root} has been locked by another staticreg for {LOCK_WAIT_SECONDS} s; "
                                "is a build or publish stuck? Run this again when it has finished"
                            ) from None
                        time.sleep(0.05)
            self._forget_build_cache()
            yield

    def _forget_build_cache(self) -> None:
        """The build cache beside the folder describes it as the last build left it: this change
        makes that untrue, so the cache goes (it is only an accelerator; the next build reads more)."""
        from staticreg.build import incremental

        with contextlib.suppress(FileNotFoundError):
            incremental.cache_path(self.root).unlink()

    def read(self, path: str) -> Blob | None:
        try:
            with open(self._path(path), "rb") as f:
                return Blob(f.read(), _stat_etag(os.fstat(f.fileno())))
        except (FileNotFoundError, NotADirectoryError):
            return None

    def write(self, path: str, data: bytes, expect: str = ANY, precompress: bool = False) -> str | None:
        target = self._path(path)
        now = self.read(path)
        if expect != ANY and (now.etag if now else ABSENT) != expect:
            raise Conflict(path)
        copy = layout.precompressed_copy(path)
        copy_target = self._path(copy) if copy else None
        if now is not None and now.data == data:
            _remove_temporaries_of(target)
            if copy_target is not None and not copy_holds(copy_target, data):
                if precompress:
                    self._replace(copy_target, gzip_copy(data))  # one a killed writer did not make
                else:
                    with contextlib.suppress(FileNotFoundError, NotADirectoryError):
                        copy_target.unlink()
            return now.etag  # unchanged: it keeps its mtime, and web servers their ETag and 304s
        if copy_target is not None:  # see the module's docstring for the order
            with contextlib.suppress(FileNotFoundError, NotADirectoryError):
                copy_target.unlink()
        self._replace(target, data)
        if copy_target is not None and precompress:
            self._replace(copy_target, gzip_copy(data))
        return _stat_etag(os.stat(target))

    @staticmethod
    def _replace(target: Path, data: bytes) -> None:
        """Put `data` at `target` atomically: a temporary file renamed over it."""
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        _remove_temporaries_of(target)

    def create(self, path: str, source: Path) -> bool:
        """Put the file at `source` at `path` unless there is a file there; True if it was put."""
        target = self._path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as out, open(source, "rb") as f:
                while chunk := f.read(1 << 20):
                    out.write(chunk)
            try:
                os.link(tmp, target)  # fails if there is a file: never replaces one
                return True
            except FileExistsError:
                return False
        finally:
            with contextlib.suppress(OSError):
                os.unlink(tmp)

    def link(self, existing: str, path: str) -> None:
        """`path` as a second name of `existing` (the index.html twins of documents)."""
        source, target = self._path(existing), self._path(path)
        with contextlib.suppress(FileNotFoundError):
            if os.path.samefile(source, target):
                return
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{os.getpid()}.link.tmp")
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        os.link(source, tmp)
        os.replace(tmp, target)
        _remove_temporaries_of(target)

    def delete(self, path: str) -> None:
        """Remove a file (its precompressed copy first), and the folders it leaves empty."""
        copy = layout.precompressed_copy(path)
        for gone in ([self._path(copy)] if copy else []) + [self._path(path)]:
            with contextlib.suppress(FileNotFoundError, NotADirectoryError):
                gone.unlink()
        target = self._path(path)
        parent = target.parent
        while parent != self.root:  # folders left empty by the last of their files
            try:
                parent.rmdir()
            except OSError as exc:
                if exc.errno in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOENT):
                    break
                raise
            parent = parent.parent


class S3Store:
    """A bucket and prefix in S3 or an S3-compatible store (boto3 speaks S3)."""

    folder_host = False
    ATTEMPTS = 5

    def __init__(self, target: str, endpoint_url: str | None = None):
        self.label = target
        self.bucket, self.prefix = parse_s3_target(target)
        self.s3 = s3_client(endpoint_url)
        self.requests = 0  # for the benchmark: every request this store sent

    def _key(self, path: str) -> str | None:
        key = layout.object_key(path)
        return None if key is None else self.prefix + key

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        yield  # a bucket has no lock: every write that matters is conditional

    def _call(self, what, path: str, **kwargs):
        self.requests += 1
        return s3_call(self.label, path, what, Bucket=self.bucket, **kwargs)

    def read(self, path: str) -> Blob | None:
        key = self._key(path)
        if key is None:
            return None
        try:
            answer = self._call(self.s3.get_object, path, Key=key, missing=True)
        except Conflict:  # a read never conflicts; a 409 here is the store's own trouble
            raise StoreError(f"{self.label}: the store refused to read {path}; try again") from None
        return None if answer is None else Blob(answer["Body"].read(), answer["ETag"].strip('"'))

    def _put(self, path: str, key: str, body, expect: str) -> str:
        content_type, cache_control = headers.for_object(path, layout.kind_of(path))
        extra = {}
        if expect == ABSENT:
            extra["IfNoneMatch"] = "*"
        elif expect != ANY:
            extra["IfMatch"] = f'"{expect}"'
        answer = self._call(
            self.s3.put_object,
            path,
            Key=key,
            Body=body,
            ContentType=content_type,
            CacheControl=cache_control,
            missing=expect not in (ANY, ABSENT),
            **extra,
        )
        if answer is None:  # If-Match on a key that is gone: S3 answers 404 NoSuchKey (some stores 412)
            raise Conflict(path)
        return answer["ETag"].strip('"')

    def write(self, path: str, data: bytes, expect: str = ANY, precompress: bool = False) -> str | None:
        key = self._key(path)  # (no precompressed copies: layout.object_key)
        if key is None:
            return None
        etag = self._put(path, key, data, expect)
        folder_key = self._folder_key(path)
        if folder_key:
            self._put(path, folder_key, data, ANY)
        return etag

    def _folder_key(self, path: str) -> str | None:
        """Pages link to folders ("-/web/package/demo/"), and a store's plain endpoint has no
        index documents: a page is stored at its folder's key too (not at an empty key)."""
        folder, _, filename = path.rpartition("/")
        if filename != layout.SITE_HOME or layout.kind_of(path) not in (layout.SITE_PAGE, layout.ROOT_PAGE):
            return None
        return (self.prefix + (folder + "/" if folder else "")) or None

    def create(self, path: str, source: Path) -> bool:
        key = self._key(path)
        assert key is not None
        try:
            with open(source, "rb") as body:
                self._put(path, key, body, ABSENT)
            return True
        except Conflict:
            return False

    def link(self, existing: str, path: str) -> None:
        return  # a store serves the full document at the folder's own key: no twins

    def delete(self, path: str) -> None:
        key = self._key(path)
        if key is None:
            return
        self._call(self.s3.delete_object, path, Key=key)
        folder_key = self._folder_key(path)
        if folder_key:
            self._call(self.s3.delete_object, path, Key=folder_key)


def s3_call(label: str, path: str, what, missing: bool = False, **kwargs):
    """`what(**kwargs)`, a boto3 call, with the store's answers as this module's: 412 and 409
    raise Conflict, a missing key gives None when `missing`, every other failure StoreError."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return what(**kwargs)
    except ClientError as exc:
        error = exc.response.get("Error", {})
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        code = error.get("Code", "?")
        if missing and code in ("NoSuchKey", "404"):
            return None
        if status in (409, 412) or code in ("PreconditionFailed", "ConditionalRequestConflict"):
            raise Conflict(path) from None
        raise StoreError(f"{label}: the store answered {code} for {path}: {error.get('Message', exc)}") from None
    except BotoCoreError as exc:
        raise StoreError(f"{label}: {exc} (check --endpoint-url and your AWS credentials)") from None


def parse_s3_target(target: str) -> tuple[str, str]:
    """'s3://bucket/some/prefix' -> ('bucket', 'some/prefix/')."""
    parts = urlsplit(target)
    if parts.scheme != "s3" or not parts.netloc or parts.query or parts.fragment:
        raise StoreError(f"the target {target!r} must look like s3://bucket or s3://bucket/prefix")
    prefix = parts.path.strip("/")
    if prefix and any(p in ("", ".", "..") for p in prefix.split("/")):
        raise StoreError(f"the prefix in {target!r} must be a plain path such as npm/")
    return parts.netloc, prefix + "/" if prefix else ""


def s3_client(endpoint_url: str | None, pool: int = 10):
    try:
        import boto3
        from botocore.config import Config
    except ImportError:
        raise StoreError("S3 needs boto3: pip install 'staticreg[s3]'") from None
    try:
        return boto3.client(
            "s3",
            endpoint_url=endpoint_url or None,
            config=Config(s3={"addressing_style": "path"}, max_pool_connections=pool, retries={"max_attempts": 5}),
        )
    except ValueError as exc:  # botocore: "Invalid endpoint: ..."
        raise StoreError(
            f"--endpoint-url {endpoint_url!r} is not usable ({exc}); give a URL like http://127.0.0.1:9000"
        ) from None
