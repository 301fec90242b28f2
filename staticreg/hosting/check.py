"""`staticreg check URL`: look at a live registry the way npm, pnpm, yarn and bun
do, and say what is wrong with the host before a failed install does.

Each problem is one line with its fix. Notes are things that work but cost
something (a redirect per document); they do not fail the check."""

from __future__ import annotations

import base64
import contextvars
import gzip
import hashlib
import json
import re
import urllib.error
import urllib.request
import zlib
from dataclasses import dataclass, field
from urllib.parse import quote, urljoin, urlsplit

from staticreg.build.reader import sri
from staticreg.config import check_base_url
from staticreg.errors import StaticregError
from staticreg.npm import headers, layout

FULL_ACCEPT = "application/json"
ABBREVIATED_ACCEPT = "application/vnd.npm.install-v1+json; q=1.0, application/json; q=0.8, */*"
MAX_DOCUMENT_AGE = 600  # seconds; past this, users wait that long to see a new version
HOSTING = "see docs/hosting.md"


class CheckError(StaticregError):
    """The registry cannot be reached at all."""


@dataclass
class Response:
    url: str
    status: int
    headers: dict[str, str]
    body: bytes
    redirects: list[str] = field(default_factory=list)
    undecodable: bool = False  # said it was gzip, and was not: `body` is as it came


@dataclass
class CheckReport:
    """Problems and notes, each said once with the first place it was seen."""

    found: dict[tuple[str, str], list[str]] = field(default_factory=dict)  # (what, fix) -> where
    noted: dict[str, list[str]] = field(default_factory=dict)  # what -> where
    packages: int = 0
    tarballs: int = 0
    signatures: int | None = None  # verified; None: the registry lists no keys

    def problem(self, where: str, what: str, fix: str) -> None:
        self.found.setdefault((what, fix), []).append(where)

    def note(self, where: str, what: str) -> None:
        self.noted.setdefault(what, []).append(where)

    @property
    def problems(self) -> list[str]:
        return [f"{_places(where)}: {what}. Fix: {fix}" for (what, fix), where in self.found.items()]

    @property
    def notes(self) -> list[str]:
        return [f"{_places(where)}: {what}" for what, where in self.noted.items()]


def _places(where: list[str]) -> str:
    return where[0] + (f" (and {len(where) - 1} more)" if len(where) > 1 else "")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)
# (origin, Authorization value) while a private registry is checked: the credential
# goes to the registry's own origin only, never to a host a redirect names.
_CREDENTIAL: contextvars.ContextVar[tuple[str, str] | None] = contextvars.ContextVar("credential", default=None)


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def authorization(token: str | None = None, user: str | None = None) -> str | None:
    """The Authorization header for --token or --user NAME:PASSWORD (None for neither)."""
    if token and user:
        raise CheckError("give --token or --user, not both")
    if user and ":" not in user:
        raise CheckError("--user takes NAME:PASSWORD")
    if token:
        return f"Bearer {token}"
    return "Basic " + base64.b64encode(user.encode()).decode() if user else None


def fetch(
    url: str,
    accept: str | None = None,
    conditions: dict[str, str] | None = None,
    limit: int = 5,
    encoding: str = "gzip",
) -> Response:
    """GET url as the clients do (gzip accepted, unless `encoding` says otherwise), following
    up to `limit` redirects. Response.headers["content-encoding"] says how it came."""
    redirects: list[str] = []
    for _ in range(limit + 1):
        asked = {
            "Accept": accept or "*/*",
            "Accept-Encoding": encoding,
            "User-Agent": "staticreg-check",
            **(conditions or {}),
        }
        credential = _CREDENTIAL.get()
        if credential and _origin(url) == credential[0] and "Authorization" not in asked:
            asked["Authorization"] = credential[1]
        elif asked.get("Authorization") == "":
            del asked["Authorization"]  # asked for explicitly without credentials
        request = urllib.request.Request(url, headers=asked)
        try:
            with _OPENER.open(request, timeout=30) as answer:
                got = _lower(answer.headers)
                body = answer.read()
                if got.get("content-encoding") == "gzip":
                    try:
                        body = gzip.decompress(body)
                    except (OSError, EOFError, zlib.error):
                        return Response(url, answer.status, got, body, redirects, undecodable=True)
                return Response(url, answer.status, got, body, redirects)
        except urllib.error.HTTPError as exc:
            if exc.code in (301, 302, 303, 307, 308) and exc.headers.get("Location"):
                redirects.append(f"{exc.code} to {exc.headers['Location']}")
                url = urljoin(url, exc.headers["Location"])
                continue
            return Response(url, exc.code, _lower(exc.headers), exc.read(), redirects)
        except (urllib.error.URLError, OSError) as exc:
            raise CheckError(f"cannot reach {url}: {getattr(exc, 'reason', exc)}") from None
    return Response(url, 310, {}, b"", redirects)


def _lower(message) -> dict[str, str]:
    """Header names in lower case; a header sent twice (nginx sends Vary: Accept-Encoding
    and Vary: Accept) as one, its values joined as HTTP joins them."""
    got: dict[str, str] = {}
    for key, value in message.items():
        key = key.lower()
        got[key] = f"{got[key]}, {value}" if key in got else value
    return got


def _tokens(value: str) -> set[str]:
    """The names in a list header such as Vary ("Accept, Accept-Encoding"), in lower case."""
    return {token.strip().lower() for token in value.split(",") if token.strip()}


def _media_type(response: Response) -> str:
    return response.headers.get("content-type", "").split(";")[0].strip().lower()


def _max_age(cache_control: str) -> int | None:
    found = re.search(r"max-age=(\d+)", cache_control)
    return int(found.group(1)) if found else None


def package_names(registry: str) -> list[str]:
    """Every package in the site's search index (the registry has no list of its own)."""
    index = fetch(registry + layout.SITE_SEARCH_INDEX)
    if index.status != 200:
        return []
    try:
        rows = json.loads(index.body)["packages"]
        return sorted({row[0] for row in rows if isinstance(row[0], str)})
    except (ValueError, KeyError, TypeError, IndexError):
        return []


def check(
    registry: str,
    names: list[str] | None = None,
    all_tarballs: bool = False,
    sample: int = 20,
    credential: str | None = None,
) -> CheckReport:
    """`credential`: the Authorization header of a private registry (see `authorization`)."""
    try:
        registry = check_base_url(registry)
    except ValueError:
        raise CheckError(
            f"{registry!r} is not a registry URL: give its http(s) address, e.g. https://npm.example.com/"
        ) from None
    report = CheckReport()
    reset = _CREDENTIAL.set((_origin(registry), credential) if credential else None)
    try:
        _check(registry, names, all_tarballs, sample, report, credential)
    finally:
        _CREDENTIAL.reset(reset)
    return report


def _check(
    registry: str, names: list[str] | None, all_tarballs: bool, sample: int, report: CheckReport, credential: str | None
) -> None:
    ping = fetch(registry + layout.PING)
    if ping.status == 401:
        if not credential:
            raise CheckError(f"{registry} is private (it answers 401): give --token TOKEN or --user NAME:PASSWORD")
        raise CheckError(f"{registry} refuses the credential given (401): check the token, or the user and password")
    check_ping(registry, report)
    keys = check_keys(registry, report)
    names = names or package_names(registry)
    if not names:
        report.problem(
            registry,
            "found no package to check (the site's search index lists none)",
            "name packages with --package, or build with the site on",
        )
    for index, name in enumerate(names):
        document = check_document(registry, name, report)
        report.packages += 1
        if document is None:
            continue
        check_signatures(registry, name, document, keys, report)
        versions = document.get("versions") or {}
        latest = (document.get("dist-tags") or {}).get("latest")
        if all_tarballs:
            chosen = list(versions)
        elif index < sample and latest in versions:
            chosen = [latest]
        else:
            chosen = []
        for version in chosen:
            check_tarball(registry, name, versions[version], report)
            report.tarballs += 1
    if credential:
        from staticreg.hosting import private_check

        private_check.check_refusals(registry, names, fetch, report)


def check_ping(registry: str, report: CheckReport) -> None:
    url = registry + layout.PING
    response = fetch(url)
    if response.status != 200:
        report.problem(
            url, f"answers {response.status}, so npm ping fails", f"serve the -/ping file staticreg writes ({HOSTING})"
        )


def _document_urls(registry: str, name: str) -> list[str]:
    if name.startswith("@"):
        scope, _, rest = name.partition("/")
        return [registry + quote(scope, safe="@") + sep + quote(rest) for sep in ("%2f", "%2F")]
    return [registry + quote(name, safe="@")]


def check_document(registry: str, name: str, report: CheckReport) -> dict | None:
    """Every spelling clients use, with and without the abbreviated Accept header."""
    full = None
    for number, url in enumerate(_document_urls(registry, name)):
        who = "pnpm asks" if "%2F" in url else "npm, yarn and bun ask"
        for accept in (FULL_ACCEPT, ABBREVIATED_ACCEPT):
            response = fetch(url, accept)
            if response.undecodable:
                report.problem(
                    url,
                    "says Content-Encoding: gzip, and is not gzip (a damaged .gz copy beside the document?)",
                    "copy the whole output of one build again, or delete the damaged .gz files",
                )
                break
            if response.status != 200:
                fix = (
                    "the host must decode %2f and %2F in paths (Apache: AllowEncodedSlashes On; a CDN or worker: decode the path)"
                    if "%2" in url
                    else f"serve {layout.packument_path(name)} for this URL"
                )
                report.problem(url, f"answers {response.status} ({who} for this URL)", f"{fix}; {HOSTING}")
                break
            data = _parse(response, report)
            if data is None:
                break
            if response.redirects:
                codes = ", ".join(r.split()[0] for r in response.redirects)
                report.note(
                    url, f"redirects ({codes}) before the document: clients follow, at one extra request per document"
                )
            check_document_headers(response, accept, report)
            check_revalidation(response, accept, report)
            if number == 0:
                check_encodings(response, accept, report)
            if accept == FULL_ACCEPT:
                full = full or data
                check_document_body(url, name, data, report)
            elif full is not None and _signatures_of(data) != _signatures_of(full):
                report.problem(
                    url,
                    "the abbreviated document's dist.signatures differ from the full document's: they are not of one build",
                    "deploy the whole output of one build",
                )
            if accept != FULL_ACCEPT and "time" in data and _media_type(response) == layout.ABBREVIATED_MEDIA_TYPE:
                report.problem(
                    url,
                    "the abbreviated document carries the full document's time",
                    "serve the index.corgi staticreg writes for the abbreviated Accept header",
                )
    return full


def _signatures_of(document: dict) -> dict:
    versions = document.get("versions")
    if not isinstance(versions, dict):
        versions = {}
    return {v: (m.get("dist") or {}).get("signatures") for v, m in versions.items() if isinstance(m, dict)}


def _parse(response: Response, report: CheckReport) -> dict | None:
    try:
        data = json.loads(response.body)
    except ValueError:
        report.problem(response.url, "the body is not JSON", f"serve the document file, not a page about it; {HOSTING}")
        return None
    if not isinstance(data, dict):
        report.problem(response.url, "the body is not a JSON object", "rebuild with staticreg build")
        return None
    return data


def check_document_headers(response: Response, accept: str, report: CheckReport) -> None:
    url, got = response.url, response.headers
    media = _media_type(response)
    if media == layout.ABBREVIATED_MEDIA_TYPE:
        if accept == FULL_ACCEPT:
            report.problem(
                url,
                "answers a request for the full document with the abbreviated one",
                "only send index.corgi when the Accept header asks for application/vnd.npm.install-v1+json",
            )
        if not _tokens(got.get("vary", "")) & {"accept", "*"}:
            report.problem(
                url,
                "negotiates on Accept without Vary: Accept, so a cache can give npm the abbreviated document",
                "add Vary: Accept to package documents",
            )
    elif media != headers.JSON:
        report.problem(
            url,
            f"Content-Type is {media or 'missing'}, not application/json (pnpm reads it)",
            f"serve package documents as application/json; {HOSTING}",
        )
    cache_control = got.get("cache-control", "")
    max_age = _max_age(cache_control)
    if not cache_control:
        report.problem(
            url,
            "no Cache-Control: npm then caches the document for a tenth of its age and misses new versions",
            f"send Cache-Control: {headers.document_cache()} on package documents",
        )
    elif "immutable" in cache_control or (max_age is not None and max_age > MAX_DOCUMENT_AGE):
        report.problem(
            url,
            f"Cache-Control: {cache_control} keeps a stale document after every new version",
            f"send Cache-Control: {headers.document_cache()} (or a max-age of a few minutes) on package documents",
        )
    if not got.get("etag") and not got.get("last-modified"):
        report.problem(
            url,
            "neither ETag nor Last-Modified: clients download the whole document every time",
            "let the host send ETag or Last-Modified",
        )


def check_encodings(response: Response, accept: str, report: CheckReport) -> None:
    """A gzip-encoded document must hold what the plain one does: a precompressed copy
    (NAME.gz, which nginx's gzip_static sends as it is) older than its document is not."""
    if response.headers.get("content-encoding") != "gzip":
        return
    for attempt in range(2):
        plain = fetch(response.url, accept, encoding="identity")
        if plain.status != 200 or plain.body == response.body:
            return
        if attempt == 0:  # a publish between the two requests: ask again once
            response = fetch(response.url, accept)
            if response.headers.get("content-encoding") != "gzip" or response.undecodable:
                return
    report.problem(
        response.url,
        "the gzip-encoded answer differs from the plain one: a .gz copy beside the document "
        "is not of it, so clients that accept gzip (all of them) get another document",
        "copy the whole output of one build (staticreg build and publish write each .gz with its document), "
        "or delete the .gz files written by anything else",
    )


def check_revalidation(response: Response, accept: str, report: CheckReport) -> None:
    """Clients ask again with the validators they were given: the answer must be 304."""
    etag, modified = response.headers.get("etag"), response.headers.get("last-modified")
    conditions = {"If-None-Match": etag} if etag else {"If-Modified-Since": modified} if modified else None
    if conditions is None:
        return
    again = fetch(response.url, accept, conditions)
    if again.status != 304:
        asked = next(iter(conditions))
        report.problem(
            response.url,
            f"answers {again.status}, not 304, to {asked} with its own validator: every revalidation downloads the document again",
            f"let the host honour its validators (Apache with mod_deflate: DeflateAlterETag Remove); {HOSTING}",
        )


def check_document_body(url: str, name: str, data: dict, report: CheckReport) -> None:
    versions, tags, times = data.get("versions"), data.get("dist-tags"), data.get("time") or {}
    fix = "rebuild with staticreg build and deploy the whole output"
    if data.get("name") != name:
        report.problem(url, f"the document is for {data.get('name')!r}, not {name!r}", fix)
    if not isinstance(versions, dict) or not versions:
        report.problem(url, "the document has no versions", fix)
    elif not isinstance(tags, dict) or tags.get("latest") not in versions:
        report.problem(url, "dist-tags.latest is missing or names no version (yarn and pnpm fail)", fix)
    elif missing := [v for v in versions if v not in times]:
        report.problem(
            url, f"time has no entry for {', '.join(missing)} (yarn 4 quarantines them, pnpm drops all times)", fix
        )


def check_tarball(registry: str, name: str, manifest: dict, report: CheckReport) -> None:
    dist = manifest.get("dist") or {}
    url = dist.get("tarball", "")
    where = f"{name}@{manifest.get('version')}"
    if urlsplit(url).scheme not in ("http", "https"):
        report.problem(
            where,
            f"dist.tarball {url!r} is not an absolute http(s) URL (npm, pnpm, yarn 4 and bun fail)",
            "build with --base-url set to the URL the registry is served at",
        )
        return
    if not url.startswith(registry):
        report.note(
            where, f"the tarball is on another host ({url}): npm users must not set replace-registry-host=always"
        )
    response = fetch(url)
    if response.status != 200:
        report.problem(
            url,
            f"answers {response.status}: every install of {where} fails",
            "deploy the whole output, tarballs first (staticreg deploy does)",
        )
        return
    body = response.body
    integrity = sri(hashlib.sha512(body))
    if (dist.get("integrity") and dist["integrity"] != integrity) or (
        dist.get("shasum") and dist["shasum"] != hashlib.sha1(body).hexdigest()
    ):
        report.problem(
            url,
            f"the bytes served do not match {where}'s integrity and shasum: clients refuse it",
            "upload the tarball again as it is (no recompression, no text mode); rebuild if it changed",
        )
    if (
        "immutable" not in response.headers.get("cache-control", "")
        and (_max_age(response.headers.get("cache-control", "")) or 0) < 86400
    ):
        report.note(url, f"tarballs never change; Cache-Control: {headers.TARBALL_CACHE} saves revalidations")
    if name.startswith("@") and url.startswith(registry):
        # yarn 4 rebuilds a conventional scoped tarball URL itself, with %2f.
        rebuilt = registry + quote(url[len(registry) :], safe="/@").replace("/", "%2f", 1)
        if rebuilt != url and fetch(rebuilt).status != 200:
            report.problem(
                rebuilt,
                "not found: yarn 4 asks for scoped tarballs with %2f",
                f"the host must decode %2f in paths; {HOSTING}",
            )


# -- registry signatures: what npm's and pnpm's audit signatures verify ---------------------
SIGNING_FIX = "rebuild with a signing_key (README: Registry signatures) and deploy the whole output"


def check_keys(registry: str, report: CheckReport) -> dict | None:
    """keyid -> signatures.PublicKey from -/npm/v1/keys; None when the registry has none (404)."""
    from staticreg.npm.signatures import KeyProblem, keys_from_document

    url = registry + layout.KEYS
    response = fetch(url, FULL_ACCEPT)
    if response.status in (400, 404):
        return None
    if response.status != 200:
        report.problem(
            url,
            f"answers {response.status}: npm and pnpm audit signatures stop at it",
            f"serve the -/npm/v1/keys file staticreg writes, readable with the documents' credentials; {HOSTING}",
        )
        return None
    try:
        keys = keys_from_document(json.loads(response.body), "the keys document")
    except (ValueError, KeyProblem) as exc:
        report.problem(
            url, f"is not a keys document clients can use ({exc})", "serve the -/npm/v1/keys file staticreg writes"
        )
        return None
    report.signatures = 0
    return {key.keyid: key for key in keys}


def check_signatures(registry: str, name: str, document: dict, keys: dict | None, report: CheckReport) -> None:
    """Every version's dist.signatures against the keys, as npm verifies them: each signature
    by a listed key, not expired at the version's publish time, valid over NAME@VERSION:INTEGRITY."""
    from staticreg.npm.signatures import message, verify

    times = document.get("time")
    if not isinstance(times, dict):
        times = {}
    for version, manifest in (document.get("versions") or {}).items():
        dist = manifest.get("dist") if isinstance(manifest, dict) else None
        dist = dist if isinstance(dist, dict) else {}
        signatures, where = dist.get("signatures"), f"{name}@{version}"
        if keys is None:
            if signatures:
                report.problem(
                    where,
                    f"carries dist.signatures, but {registry}{layout.KEYS} answers 404: no client can verify them",
                    "serve the -/npm/v1/keys file staticreg writes with the documents",
                )
            continue
        if not signatures:
            report.problem(
                where,
                "has no dist.signatures, though the registry lists signing keys: npm and pnpm audit signatures report it missing",
                SIGNING_FIX,
            )
            continue
        if not isinstance(signatures, list):
            report.problem(where, "dist.signatures is not a list: audit signatures fails", SIGNING_FIX)
            continue
        data = message(name, version, str(dist.get("integrity", "")))
        for signature in signatures:
            keyid = signature.get("keyid") if isinstance(signature, dict) else None
            key = keys.get(keyid) if isinstance(keyid, str) else None
            if key is None:
                report.problem(
                    where,
                    f"is signed by the key {keyid}, which -/npm/v1/keys does not list: npm audit signatures fails",
                    "list it (retired_keys, or the upstream keys file for mirrored versions) and rebuild",
                )
            elif not key.valid_at(str(times.get(version, ""))):
                report.problem(
                    where,
                    f"is signed by the key {keyid}, which expired ({key.expires}) before the version's publish time: npm audit signatures fails",
                    "rebuild: staticreg signs a version with the signing key when its retired key had expired",
                )
            elif not verify(key.public_key, data, signature.get("sig")):
                report.problem(
                    where,
                    f"has a signature by {keyid} that does not verify over its name, version and integrity: the document or the tarball was changed after signing",
                    "rebuild and deploy the whole output; if nobody here changed it, find out who did",
                )
            else:
                report.signatures = (report.signatures or 0) + 1
