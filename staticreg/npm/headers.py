"""The response headers a registry's files need, whatever serves them: what the
server configurations, `deploy` and `check` agree on."""

from __future__ import annotations

import mimetypes

from staticreg.npm import layout

JSON = "application/json"
TARBALL_CACHE = "public, max-age=31536000, immutable"
OTHER_CACHE = "public, max-age=300"
_TYPES = {
    ".json": JSON,
    ".corgi": layout.ABBREVIATED_MEDIA_TYPE,
    ".tgz": "application/octet-stream",
    ".html": "text/html; charset=utf-8",
    ".css": "text/css",
    ".js": "text/javascript",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".txt": "text/plain; charset=utf-8",
}


def private(cache_control: str) -> str:
    """The same rule for a registry behind credentials: no shared cache may keep
    (and hand to anyone) what one authorised client was given."""
    return cache_control.replace("public", "private", 1)


UNAUTHORIZED_CACHE = "no-store"


def document_cache(max_age: int = 0) -> str:
    """Package documents change with every build: revalidate them."""
    return f"public, max-age={int(max_age)}, must-revalidate"


def content_type(path: str) -> str:
    """By extension; the extensionless files (-/ping, dist-tags) and attestation bundles
    (-/npm/v1/attestations/NAME@1.2.3, whatever the version's last part) are JSON documents."""
    name = path.rpartition("/")[2]
    if "." not in name or layout.is_attestation(path.lstrip("/")):
        return JSON
    return _TYPES.get("." + name.rpartition(".")[2]) or mimetypes.guess_type(name)[0] or "application/octet-stream"


def accepts_gzip(accept_encoding: str | None) -> bool:
    """Whether a request's Accept-Encoding takes gzip: gzip (or x-gzip, or else *) with a q above 0."""
    weights: dict[str, float] = {}
    for part in (accept_encoding or "").split(","):
        coding, _, parameters = part.partition(";")
        weight = 1.0
        for parameter in parameters.split(";"):
            key, _, value = parameter.partition("=")
            if key.strip().lower() == "q":
                try:
                    weight = float(value)
                except ValueError:
                    weight = 0.0
        weights[coding.strip().lower()] = weight
    return weights.get("gzip", weights.get("x-gzip", weights.get("*", 0.0))) > 0


def for_object(path: str, kind: str, document_max_age: int = 0) -> tuple[str, str]:
    """(Content-Type, Cache-Control) for one file of the registry, by its kind."""
    if kind == layout.DOCUMENT:
        return JSON, document_cache(document_max_age)
    if kind == layout.TARBALL:
        return _TYPES[".tgz"], TARBALL_CACHE
    suffix = "." + path.rpartition(".")[2] if "." in path.rpartition("/")[2] else ""
    return _TYPES.get(suffix) or mimetypes.guess_type(path)[0] or "application/octet-stream", OTHER_CACHE
