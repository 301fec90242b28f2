"""`staticreg mirror`: the exact closure of a project's lockfiles, fetched from an upstream.

Each locked name@version is downloaded once, byte for byte, checked against the
lockfile's integrity (yarn berry's lockfile has none: against the upstream's
`dist.integrity`, said in the report), and only then renamed into the folder,
with what the upstream said about it in a sidecar (see upstream_meta). The folder
stays the one input of `staticreg build`. A re-run fetches only what is missing;
a kill leaves no partial tarball (temporary files live in a dot folder, which the
build never reads, and are removed by the next run; files are renamed into place
complete). Nothing is fsynced: should the machine crash, the next run hashes every
kept tarball against its sidecar again and fetches what does not match, and the
build refuses a tarball whose sidecar is not its own.

Upstream responses are untrusted: sizes are capped, JSON shapes checked, names and
versions validated before they name a file, and the token goes to the upstream's
own host only, never through a redirect.
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import http.client
import json
import os
import random
import re
import shutil
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, overload
from urllib.parse import urlsplit

from staticreg.build.output import write_file_atomic
from staticreg.errors import StaticregError
from staticreg.mirror import lockfiles
from staticreg.npm import layout, names, upstream_meta
from staticreg.progress import Progress

MAX_DOCUMENT_BYTES = 256 * 1024 * 1024  # the largest packuments of the public npm registry are tens of MB
MAX_TARBALL_BYTES = 1024 * 1024 * 1024
MAX_BUNDLE_BYTES = upstream_meta.MAX_BUNDLE_BYTES
TEMP_DIR = ".staticreg-mirror-partial"
LOCK_FILE = ".staticreg-mirror.lock"
RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
CHUNK = 256 * 1024


class MirrorError(StaticregError):
    """The mirror cannot start (a setting, a lockfile), or some packages could not be mirrored."""


@dataclass(frozen=True)
class MirrorOptions:
    lockfiles: tuple[Path, ...]
    upstream: str  # ends with "/"
    into: Path
    token: str | None = None
    jobs: int = 16
    all_platforms: bool = False
    retries: int = 5
    backoff: float = 0.5  # seconds, doubled at each retry
    timeout: float = 60.0
    yarn_lock_out: Path | None = None
    bun_lock_out: Path | None = None
    registry_url: str | None = None  # where the mirror is served, for the rewritten lockfiles
    show_progress: bool = True


@dataclass
class Wanted:
    name: str
    version: str
    integrity: str | None  # the lockfile's SRI, when it has one
    wheres: list[str]  # lockfile:line of each entry pinning it

    @property
    def key(self) -> str:
        return f"{self.name}@{self.version}"


@dataclass
class MirrorReport:
    wanted: int = 0
    fetched: list[str] = field(default_factory=list)
    present: int = 0
    skipped: list[lockfiles.Entry] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    missing_variants: list[str] = field(default_factory=list)
    verified_upstream: list[str] = field(default_factory=list)  # checked against upstream dist, not the lockfile
    keys_written: bool = False
    bytes: int = 0
    seconds: float = 0.0

    def to_json(self) -> dict:
        return {
            "wanted": self.wanted,
            "fetched": sorted(self.fetched),
            "already_present": self.present,
            "skipped": [
                {"name": e.name, "spec": e.version, "where": e.where, "reason": e.reason} for e in self.skipped
            ],
            "failures": self.failures,
            "notes": self.notes,
            "missing_variants": self.missing_variants,
            "verified_against_upstream": sorted(self.verified_upstream),
            "upstream_keys": self.keys_written,
            "bytes": self.bytes,
            "seconds": round(self.seconds, 3),
        }


# --- settings -----------------------------------------------------------------


def npmrc_token(upstream: str, npmrc_text: str, env: dict[str, str]) -> str | None:
    """The `//host[:port]/path/:_authToken=` of an .npmrc that covers `upstream` (the longest)."""
    parts = urlsplit(upstream)
    target = f"//{parts.netloc}{parts.path}"
    best, token = -1, None
    for line in npmrc_text.splitlines():
        line = line.strip()
        if not line.startswith("//") or ":_authToken=" not in line:
            continue
        prefix, _, value = line.partition(":_authToken=")
        prefix = prefix if prefix.endswith("/") else prefix + "/"
        if target.startswith(prefix) and len(prefix) > best:
            value = value.strip().strip('"').strip("'")
            value = re.sub(r"\$\{([^}]*)\}", lambda m: env.get(m.group(1), ""), value)  # as npm expands them
            best, token = len(prefix), value or None
    return token


def user_npmrc(env: dict[str, str]) -> Path:
    return Path(env.get("npm_config_userconfig") or env.get("NPM_CONFIG_USERCONFIG") or Path.home() / ".npmrc")


# --- HTTP -----------------------------------------------------------------------


class Fetcher:
    """GETs with a size cap, retries with backoff on 429, 5xx and dropped connections."""

    def __init__(self, options: MirrorOptions):
        self.options = options
        self.origin = _origin(options.upstream)
        self.opener = (
            urllib.request.build_opener()
        )  # the token is an unredirected header: never sent on to a redirect's host
        self.requests = 0
        self._lock = threading.Lock()

    def _request(self, url: str, accept: str | None) -> urllib.request.Request:
        request = urllib.request.Request(
            url, headers={"User-Agent": "staticreg-mirror", **({"Accept": accept} if accept else {})}
        )
        if self.options.token and _origin(url) == self.origin:
            request.add_unredirected_header("Authorization", f"Bearer {self.options.token}")
        return request

    @overload
    def get(self, url: str, limit: int, sink: None = None, accept: str | None = None) -> bytes: ...

    @overload
    def get(self, url: str, limit: int, sink: Callable[[bytes | None], None], accept: str | None = None) -> None: ...

    def get(
        self, url: str, limit: int, sink: Callable[[bytes | None], None] | None = None, accept: str | None = None
    ) -> bytes | None:
        """The body, at most `limit` bytes; or None when `sink(chunk)` took it (`sink(None)`
        before a retry: start again). Raises NotFound for a 404, MirrorError naming the URL."""
        attempt = 0
        while True:
            attempt += 1
            with self._lock:
                self.requests += 1
            try:
                with self.opener.open(self._request(url, accept), timeout=self.options.timeout) as response:
                    return _read_capped(response, url, limit, sink)
            except urllib.error.HTTPError as exc:
                status = exc.code
                retry_after = exc.headers.get("Retry-After") if exc.headers else None
                exc.close()
                if status == 404:
                    raise NotFound(f"{_show(url)}: 404 Not Found on the upstream") from None
                if status in (401, 403):
                    raise MirrorError(
                        f"{_show(url)}: {status} from the upstream; give a token with --token or in your .npmrc "
                        "(//host/:_authToken=...)"
                    ) from None
                if status not in RETRY_STATUSES or attempt > self.options.retries:
                    raise MirrorError(f"{_show(url)}: HTTP {status} from the upstream") from None
                delay = _retry_delay(retry_after, self.options.backoff * 2 ** (attempt - 1))
            except (urllib.error.URLError, OSError, TimeoutError, http.client.HTTPException) as exc:
                if attempt > self.options.retries:
                    reason = getattr(exc, "reason", exc)
                    raise MirrorError(f"{_show(url)}: cannot be fetched ({reason})") from None
                delay = self.options.backoff * 2 ** (attempt - 1)
            if sink is not None:
                sink(None)  # start again: the sink forgets what it took
            time.sleep(delay * (0.75 + random.random() / 2))

    def get_json(self, url: str, limit: int, accept: str | None = "application/json") -> object:
        body = self.get(url, limit, accept=accept)
        try:
            return json.loads(body.decode("utf-8"), parse_constant=_no_constant)
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:
            raise MirrorError(f"{_show(url)}: the upstream's answer is not UTF-8 JSON ({str(exc)[:100]})") from None


class NotFound(MirrorError):
    """The upstream has no such package, version or file (404)."""


def _no_constant(name: str):
    raise ValueError(f"{name} is not JSON")


def _read_capped(response, url: str, limit: int, sink) -> bytes | None:
    length = response.headers.get("Content-Length")
    if length and length.isdigit() and int(length) > limit:
        raise MirrorError(f"{_show(url)}: the upstream's answer is {int(length)} bytes, more than the {limit} allowed")
    chunks, total = [], 0
    while True:
        chunk = response.read(CHUNK)
        if not chunk:
            break
        total += len(chunk)
        if total > limit:
            raise MirrorError(f"{_show(url)}: the upstream's answer is larger than the {limit} bytes allowed")
        if sink is None:
            chunks.append(chunk)
        else:
            sink(chunk)
    if length and length.isdigit() and int(length) != total:
        raise OSError(f"the connection closed after {total} of {length} bytes")
    return None if sink is not None else b"".join(chunks)


def _retry_delay(retry_after: str | None, default: float) -> float:
    if retry_after and retry_after.strip().isdigit():
        return min(float(retry_after.strip()), 60.0)
    return default


def _origin(url: str) -> tuple:
    parts = urlsplit(url)
    return (
        parts.scheme.lower(),
        (parts.hostname or "").lower(),
        parts.port or {"http": 80, "https": 443}.get(parts.scheme.lower()),
    )


def _show(url: str) -> str:
    """A URL for messages: no user info, no query (where tokens hide)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or ''}{f':{parts.port}' if parts.port else ''}{parts.path}"


# --- planning -------------------------------------------------------------------


def read_lockfiles(paths: tuple[Path, ...]) -> list[lockfiles.Entry]:
    entries = []
    for path in paths:
        if path.name.endswith(".lockb"):
            raise lockfiles.LockfileError(f"{path}:1", lockfiles.BUN_BINARY_HINT)
        try:
            with open(path, "rb") as f:
                raw = f.read(lockfiles.MAX_LOCKFILE_BYTES + 1)
        except OSError as exc:
            raise MirrorError(f"{path}: cannot be read ({exc.strerror})") from None
        if raw.startswith((b"#!/usr/bin/env bun", b"bun-lockfile-format")):
            raise lockfiles.LockfileError(f"{path}:1", lockfiles.BUN_BINARY_HINT)
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            line = raw[: exc.start].count(b"\n") + 1
            raise lockfiles.LockfileError(f"{path}:{line}", "is not UTF-8 text") from None
        entries += lockfiles.parse(str(path), text)
    return entries


def plan(entries: list[lockfiles.Entry]) -> tuple[dict[str, Wanted], list[lockfiles.Entry], list[str]]:
    """(name@version -> Wanted, skipped entries, problems): the lockfiles' registry packages, once
    each. Two lockfiles that pin one name@version with different sha512s are a problem."""
    wanted: dict[str, Wanted] = {}
    skipped: list[lockfiles.Entry] = []
    problems: list[str] = []
    for entry in entries:
        if entry.kind != lockfiles.REGISTRY:
            skipped.append(entry)
            continue
        item = wanted.get(entry.key)
        if item is None:
            item = wanted[entry.key] = Wanted(entry.name, entry.version, entry.integrity, [])
        item.wheres.append(entry.where)
        if entry.integrity:
            if item.integrity is None:
                item.integrity = entry.integrity
            else:
                a, b = lockfiles.strongest(item.integrity), lockfiles.strongest(entry.integrity)
                if a is None or b is None:  # never: the lockfile parsers let only usable integrities through
                    continue
                if a[0] == b[0] and a[1] != b[1]:
                    problems.append(
                        f"{entry.where}: {entry.key} has integrity {entry.integrity[:30]}..., "
                        f"but {item.wheres[0]} says {item.integrity[:30]}...: the lockfiles disagree"
                    )
                elif b[0] == "sha512" and a[0] != "sha512":
                    item.integrity = entry.integrity
    return wanted, skipped, problems


def tarball_target(into: Path, name: str, version: str) -> Path:
    return layout.safe_join(into, layout.mirrored_tarball(name, version))


def is_present(into: Path, item: Wanted) -> bool:
    """Mirrored by an earlier run: the tarball, whose sha512 is its valid sidecar's, which is the
    lockfile's when it has one (hashing is cheap next to fetching: a torn file is fetched again)."""
    target = tarball_target(into, item.name, item.version)
    try:
        meta = upstream_meta.load(upstream_meta.sidecar_path(target))
    except upstream_meta.SidecarProblem:
        return False
    if meta is None or (meta.name, meta.version) != (item.name, item.version):
        return False
    best = lockfiles.strongest(item.integrity)
    if best is not None and best[0] == "sha512" and meta.integrity != f"sha512-{best[1]}":
        return False
    digest = hashlib.sha512()
    try:
        with open(target, "rb") as f:
            while chunk := f.read(CHUNK):
                digest.update(chunk)
    except OSError:
        return False
    return meta.integrity == "sha512-" + base64.b64encode(digest.digest()).decode()


# --- the upstream's documents ------------------------------------------------------


class Packuments:
    """Each package's full document from the upstream, fetched once, shape checked."""

    def __init__(self, fetcher: Fetcher, upstream: str):
        self.fetcher, self.upstream = fetcher, upstream
        self._docs: dict[str, dict[str, Any] | MirrorError] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()

    def get(self, name: str) -> dict:
        with self._lock:
            lock = self._locks.setdefault(name, threading.Lock())
        with lock:
            if name not in self._docs:
                try:
                    self._docs[name] = self._fetch(name)
                except MirrorError as exc:
                    self._docs[name] = exc
            found = self._docs[name]
        if isinstance(found, MirrorError):
            raise found
        return found

    def _fetch(self, name: str) -> dict:
        url = layout.package_url(self.upstream, name)
        doc = self.fetcher.get_json(url, MAX_DOCUMENT_BYTES)
        if not isinstance(doc, dict) or not isinstance(doc.get("versions"), dict):
            raise MirrorError(f'{_show(url)}: the upstream\'s document for {name} has no "versions" object')
        if doc.get("name") not in (None, name):
            raise MirrorError(
                f"{_show(url)}: the upstream answered with the document of {str(doc.get('name'))[:100]!r}, not {name}"
            )
        if not isinstance(doc.get("time", {}), dict):
            doc["time"] = {}
        return doc


def version_document(doc: dict, name: str, version: str, url_hint: str) -> dict:
    found = doc["versions"].get(version)
    if not isinstance(found, dict):
        raise NotFound(f"{url_hint}: the upstream has no version {version} of {name}")
    if found.get("name", name) != name or found.get("version", version) != version:
        raise MirrorError(
            f"{url_hint}: the upstream's {name}@{version} calls itself {found.get('name')!r}@{found.get('version')!r}"
        )
    if not isinstance(found.get("dist"), dict):
        raise MirrorError(f'{url_hint}: the upstream\'s {name}@{version} has no "dist"')
    return found


# --- one package ------------------------------------------------------------------


class _Hashing:
    """A temporary file being written, hashed as it goes; `None` starts it again."""

    def __init__(self, path: Path, algorithms: set[str]):
        self.path = path
        self.algorithms = algorithms | {"sha512"}  # sha512 for the sidecar, and what is checked
        self.file = open(path, "wb")  # noqa: SIM115 - written by each call, closed by close()
        self._reset()

    def _reset(self):
        self.hashes = {algo: hashlib.new(algo) for algo in self.algorithms}
        self.size = 0

    def __call__(self, chunk: bytes | None) -> None:
        if chunk is None:
            self.file.seek(0)
            self.file.truncate()
            self._reset()
            return
        self.file.write(chunk)
        for h in self.hashes.values():
            h.update(chunk)
        self.size += len(chunk)

    def close(self) -> None:
        self.file.close()  # no fsync: see the module's docstring

    def sri(self, algo: str) -> str:
        return f"{algo}-{base64.b64encode(self.hashes[algo].digest()).decode()}"


def _expected(item: Wanted, dist: dict) -> tuple[str, str, str]:
    """(SRI to match, what it is, where it comes from): the lockfile's strongest hash,
    or the upstream's when the lockfile has none."""
    best = lockfiles.strongest(item.integrity)
    if best is not None:
        return f"{best[0]}-{best[1]}", "lockfile", item.wheres[0]
    upstream = lockfiles.strongest(dist.get("integrity") if isinstance(dist.get("integrity"), str) else None)
    if upstream is not None:
        return f"{upstream[0]}-{upstream[1]}", "upstream", "the upstream's dist.integrity"
    shasum = dist.get("shasum")
    if isinstance(shasum, str) and len(shasum) == 40 and all(c in "0123456789abcdef" for c in shasum.lower()):
        return "sha1-" + base64.b64encode(bytes.fromhex(shasum)).decode(), "upstream", "the upstream's dist.shasum"
    raise MirrorError(
        f"{item.wheres[0]}: {item.key}: neither the lockfile nor the upstream gives an integrity; it cannot be verified"
    )


def tarball_url(upstream: str, name: str, version: str, dist: dict) -> str:
    """The upstream's dist.tarball when it is on the upstream's own host; its conventional path otherwise."""
    url = dist.get("tarball")
    if isinstance(url, str) and url.lower().startswith(("http://", "https://")) and _origin(url) == _origin(upstream):
        return url
    return layout.tarball_url(upstream, name, version)


def mirror_one(
    item: Wanted, options: MirrorOptions, fetcher: Fetcher, packuments: Packuments, temp: Path
) -> tuple[int, str, dict]:
    """Fetch, verify and place one tarball with its sidecar: (bytes, "lockfile" or "upstream", version doc)."""
    doc = packuments.get(item.name)
    hint = _show(layout.package_url(options.upstream, item.name))
    version_doc = version_document(doc, item.name, item.version, hint)
    dist = version_doc["dist"]
    expected, basis, basis_where = _expected(item, dist)
    url = tarball_url(options.upstream, item.name, item.version, dist)
    target = tarball_target(options.into, item.name, item.version)
    partial = temp / f"{os.getpid()}-{threading.get_ident()}-{random.getrandbits(32):08x}.tgz"
    try:
        sink = _Hashing(partial, {expected.partition("-")[0]})
    except OSError as exc:
        raise MirrorError(f"{partial}: cannot be written ({exc.strerror or exc})") from None
    try:
        try:
            fetcher.get(url, MAX_TARBALL_BYTES, sink=sink)
        except OSError as exc:  # the temporary file (the network's errors are MirrorErrors by now)
            raise MirrorError(f"{partial}: cannot be written ({exc.strerror or exc})") from None
        finally:
            sink.close()
        got = sink.sri(expected.partition("-")[0])
        if got != expected:
            where = item.wheres[0] if basis == "lockfile" else f"{item.wheres[0]} (checked against {basis_where})"
            raise MirrorError(
                f"{where}: {item.key}: the upstream's tarball does not match: expected {expected}, "
                f"downloaded {got}; nothing was written for it"
            )
        integrity = sink.sri("sha512")
        bundle = None
        attestations = dist.get("attestations")
        if isinstance(attestations, dict) and isinstance(attestations.get("url"), str):
            # pacote asks the configured registry for this path, whatever host the URL names
            bundle_url = layout.url(options.upstream, layout.attestation_path(item.name, item.version))
            try:
                found = fetcher.get_json(bundle_url, MAX_BUNDLE_BYTES)
                bundle = found if isinstance(found, dict) else None
            except NotFound:
                bundle = None
        try:
            meta = upstream_meta.from_upstream(
                item.name, item.version, integrity, version_doc, doc["time"].get(item.version), bundle
            )
        except upstream_meta.SidecarProblem as exc:
            raise MirrorError(f"{hint}: the upstream's metadata for {item.key} {exc}") from None
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            sidecar = upstream_meta.sidecar_path(target)
            sidecar.unlink(missing_ok=True)  # an old sidecar never stands beside new bytes
            os.replace(partial, target)
            partial.write_bytes(upstream_meta.dumps(meta))
            os.replace(partial, sidecar)
        except OSError as exc:
            raise MirrorError(f"{target}: cannot be written ({exc.strerror or exc})") from None
        return sink.size, basis, version_doc
    finally:
        partial.unlink(missing_ok=True)


# --- the whole run ------------------------------------------------------------------


def mirror(options: MirrorOptions) -> MirrorReport:
    started = time.monotonic()
    report = MirrorReport()
    entries = read_lockfiles(options.lockfiles)
    wanted, report.skipped, problems = plan(entries)
    if problems:
        raise MirrorError("the lockfiles disagree; nothing was fetched:\n" + "\n".join(f"  {p}" for p in problems))
    _lockfile_copies(options)
    try:
        options.into.mkdir(parents=True, exist_ok=True)
        lock = open(options.into / LOCK_FILE, "a")  # noqa: SIM115 - entered just below: opened in this try for its message
    except OSError as exc:
        raise MirrorError(f"{options.into}: cannot be written ({exc.strerror or exc})") from None
    with lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise MirrorError(
                f"{options.into}: another staticreg mirror is writing into it; wait for it to end"
            ) from None
        _run(options, wanted, report)
    berry = {e.key for e in entries if e.kind == lockfiles.REGISTRY and e.reason == lockfiles.BERRY_CHECKSUM}
    checked = set(report.verified_upstream)
    if checked & berry:
        report.notes.append(
            f"{len(checked & berry)} tarball(s) verified against the upstream's dist.integrity, not the "
            f"lockfile: {lockfiles.BERRY_CHECKSUM.split(':')[0]}"
        )
    if checked - berry:
        report.notes.append(
            f"{len(checked - berry)} tarball(s) with no integrity in the lockfiles verified against "
            "the upstream's dist.integrity"
        )
    report.seconds = time.monotonic() - started
    return report


def _run(options: MirrorOptions, wanted: dict[str, Wanted], report: MirrorReport) -> None:
    temp = options.into / TEMP_DIR
    shutil.rmtree(temp, ignore_errors=True)  # what a killed run left
    temp.mkdir()
    fetcher = Fetcher(options)
    packuments = Packuments(fetcher, options.upstream)
    try:
        todo = [item for item in wanted.values() if not is_present(options.into, item)]
        report.wanted, report.present = len(wanted), len(wanted) - len(todo)
        docs = _fetch_all(todo, options, fetcher, packuments, temp, report)
        if options.all_platforms:
            docs.update(_versions_of_present(wanted, todo, packuments, report))
        extra = _missing_variants(wanted, docs, packuments, report, options.all_platforms)
        if extra:
            extra_todo = [item for item in extra if not is_present(options.into, item)]
            report.wanted += len(extra)
            report.present += len(extra) - len(extra_todo)
            _fetch_all(extra_todo, options, fetcher, packuments, temp, report)
        if fetcher.requests:
            _keep_keys(options, fetcher, report)
    finally:
        shutil.rmtree(temp, ignore_errors=True)


def _fetch_all(todo: list[Wanted], options, fetcher, packuments, temp, report) -> dict[str, dict]:
    docs: dict[str, dict] = {}
    if not todo:
        return docs
    progress = Progress("Mirroring tarballs", len(todo), enabled=options.show_progress)
    lock = threading.Lock()

    def run(item: Wanted):
        try:
            size, basis, version_doc = mirror_one(item, options, fetcher, packuments, temp)
        except MirrorError as exc:
            message = str(exc).split("\n")[0]
            if not message.startswith(item.wheres[0]):
                message = f"{item.wheres[0]}: {item.key}: {message}"  # each failure names its lockfile line
            with lock:
                report.failures.append(message)
        else:
            with lock:
                report.fetched.append(item.key)
                report.bytes += size
                docs[item.key] = version_doc
                if basis == "upstream":
                    report.verified_upstream.append(item.key)
        finally:
            with lock:
                progress.step()

    with ThreadPoolExecutor(max(1, options.jobs)) as pool:
        list(pool.map(run, todo))
    progress.close()
    return docs


def _versions_of_present(wanted, todo, packuments, report) -> dict[str, dict]:
    """The upstream's documents of versions mirrored earlier (for --all-platforms' check)."""
    docs = {}
    fetching = {item.key for item in todo}
    for item in wanted.values():
        if item.key in fetching:
            continue
        try:
            docs[item.key] = version_document(packuments.get(item.name), item.name, item.version, item.name)
        except MirrorError as exc:
            report.failures.append(f"{item.wheres[0]}: {exc}")
    return docs


def _missing_variants(wanted, docs, packuments, report, fetch: bool) -> list[Wanted]:
    """optionalDependencies of mirrored versions that no lockfile pins (platform variants npm
    and pnpm leave out for other platforms): named in the report; with --all-platforms, the
    highest version each range allows is mirrored too."""
    from staticreg.npm.semver import RangeProblem, parse_range, satisfies

    locked = {item.name for item in wanted.values()}
    extra: dict[str, Wanted] = {}
    for key in sorted(docs):
        optional = docs[key].get("optionalDependencies")
        if not isinstance(optional, dict):
            continue
        for dep, spec in sorted(optional.items()):
            if dep in locked or not isinstance(spec, str):
                continue
            try:
                names.check_name(dep)
            except names.NameProblem:
                continue
            if not fetch:
                report.missing_variants.append(f"{dep}@{spec} (optional dependency of {key})")
                continue
            try:
                range_ = parse_range(spec)
                versions = packuments.get(dep)["versions"]
                candidates = []
                for v in versions:
                    try:
                        if (
                            isinstance(v, str)
                            and names.clean_version(v) == v
                            and satisfies(v, range_)
                            and (not names.is_prerelease(v) or "-" in spec)
                        ):  # as npm picks: no prerelease unless asked
                            candidates.append(v)
                    except (names.NameProblem, ValueError):
                        continue
            except (MirrorError, RangeProblem) as exc:
                report.missing_variants.append(f"{dep}@{spec} (optional dependency of {key}): {str(exc)[:200]}")
                continue
            if not candidates:
                report.missing_variants.append(
                    f"{dep}@{spec} (optional dependency of {key}): no version on the upstream"
                )
                continue
            version = max(candidates, key=names.version_key)
            report.missing_variants.append(f"{dep}@{spec} (optional dependency of {key}): mirrored {dep}@{version}")
            extra.setdefault(f"{dep}@{version}", Wanted(dep, version, None, [f"optionalDependencies of {key}"]))
    return list(extra.values())


def _keep_keys(options: MirrorOptions, fetcher: Fetcher, report: MirrorReport) -> None:
    path = options.into / upstream_meta.KEYS_FILE
    try:
        upstream = fetcher.get_json(options.upstream + "-/npm/v1/keys", 1024 * 1024)
    except NotFound:
        return
    except MirrorError as exc:
        report.notes.append(f"the upstream's signing keys were not kept: {exc}")
        return
    existing = None
    if path.exists():
        try:
            existing = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            existing = None
    try:
        merged = upstream_meta.merge_keys(existing if isinstance(existing, dict) else None, upstream)
    except upstream_meta.SidecarProblem as exc:
        report.notes.append(f"the upstream's signing keys were not kept: {exc}")
        return
    write_file_atomic(path, (json.dumps(merged, indent=2, sort_keys=True) + "\n").encode())
    report.keys_written = True


def _lockfile_copies(options: MirrorOptions) -> None:
    """--yarn-lock-out and --bun-lock-out: the lockfile with its registry URLs at --registry-url."""
    for out, kind, rewrite in (
        (options.yarn_lock_out, "yarn 1 yarn.lock", lockfiles.yarn1_rewrite),
        (options.bun_lock_out, "bun.lock", lockfiles.bun_rewrite),
    ):
        if out is None:
            continue
        sources = [p for p in options.lockfiles if (p.name == "bun.lock") == (kind == "bun.lock") and _is_kind(p, kind)]
        if len(sources) != 1:
            raise MirrorError(
                f"--{'yarn' if kind != 'bun.lock' else 'bun'}-lock-out needs exactly one {kind} among the lockfiles"
            )
        if not options.registry_url:
            raise MirrorError(
                "--yarn-lock-out and --bun-lock-out need --registry-url, the URL the mirror will be served at"
            )
        text = sources[0].read_text(encoding="utf-8")
        write_file_atomic(out, rewrite(text, options.registry_url).encode())


def _is_kind(path: Path, kind: str) -> bool:
    if kind == "bun.lock":
        return True
    try:
        head = path.read_text(encoding="utf-8", errors="replace")[:4096]
    except OSError:
        return False
    return "# yarn lockfile v1" in head


def summary_lines(report: MirrorReport) -> list[str]:
    """The report for people: one line per skipped entry, failure and note."""
    lines = [f"skipped: {e.where}: {e.name} {e.version}: {e.reason}" for e in report.skipped]
    lines += [f"missing from the lockfile: {m}" for m in report.missing_variants]
    lines += [f"note: {n}" for n in report.notes]
    lines += [f"error: {f}" for f in report.failures]
    return lines


def resolve_token(upstream: str, token: str | None) -> str | None:
    """--token, or the user's .npmrc line for the upstream; a URL with a password is refused."""
    parts = urlsplit(upstream)
    if parts.username or parts.password:
        raise MirrorError("--upstream must not carry a user or password; give a token with --token or in your .npmrc")
    if token:
        return token.strip()
    path = user_npmrc(dict(os.environ))
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    return npmrc_token(upstream, text, dict(os.environ))


def run_summary(report: MirrorReport, into: Path, report_file: Path | None) -> tuple[bool, list[str]]:
    """(whether everything was mirrored, the lines to print); writes the JSON report when asked."""
    if report_file is not None:
        write_file_atomic(report_file, (json.dumps(report.to_json(), indent=2) + "\n").encode())
    lines = summary_lines(report)
    lines.append(
        f"Mirrored {len(report.fetched)} tarball(s) ({report.bytes / 1e6:.1f} MB) into {into} in {report.seconds:.1f} s; "
        f"{report.present} already there, {len(report.skipped)} skipped, {len(report.failures)} failed"
        + ("; kept the upstream's signing keys" if report.keys_written else "")
    )
    return not report.failures, lines
