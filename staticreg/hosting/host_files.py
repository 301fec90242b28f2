"""_headers and _redirects for hosts configured by files inside the site
(Netlify, Cloudflare Pages). One exact rule per package, no wildcards over the
root: Cloudflare applies _redirects even where a file exists."""

from __future__ import annotations

from pathlib import Path

from staticreg.hosting import auth
from staticreg.npm import headers, layout

# Cloudflare Pages applies the first 100 rules of _headers and ignores the rest.
CLOUDFLARE_HEADER_RULES = 100


def package_names(root: Path) -> list[str]:
    """The packages of a built registry: <name>/index.json and @scope/<name>/index.json."""
    found = [*root.glob(f"*/{layout.FULL_DOCUMENT}"), *root.glob(f"@*/*/{layout.FULL_DOCUMENT}")]
    paths = (p.relative_to(root).as_posix() for p in found)
    return sorted(name for name in map(layout.package_of_document, paths) if name)


def header_rules(headers_text: str) -> int:
    return sum(1 for line in headers_text.splitlines() if line.startswith("/"))


def netlify_files(root: Path, document_max_age: int = 0, credentials: auth.Credentials | None = None) -> dict[str, str]:
    """File name -> text, for a built registry at `root` served at the site's root.
    With credentials, Netlify's Basic-Auth lets in each token's NAME:TOKEN (Netlify
    takes plain passwords only, so htpasswd users cannot be used)."""
    if not (root / layout.PING).is_file():
        from staticreg.errors import ConfigError

        raise ConfigError(f"{root} is not a built registry (it has no {layout.PING}): run staticreg build first")
    cache = headers.private if credentials else str
    document = cache(headers.document_cache(document_max_age))
    head = ["# staticreg: response headers for Netlify and Cloudflare Pages", ""]
    if credentials:
        head += ["/*", "  Basic-Auth: " + " ".join(f"{t.name}:{t.token}" for t in credentials.tokens)]
    for path in (f"/{layout.PING}", f"/{layout.KEYS}", "/-/package/*"):
        head += [path, f"  Content-Type: {headers.JSON}", f"  Cache-Control: {document}"]
    if (root / layout.ATTESTATIONS_DIR).is_dir():  # a mirror's attestation bundles: JSON, whatever the version
        head += [f"/{layout.ATTESTATIONS_DIR}/*", f"  Content-Type: {headers.JSON}"]
    redirects = ["# staticreg: each package's URL serves its document (a rewrite, not a redirect)", ""]
    for name in package_names(root):
        url = "/" + name
        head += [
            url,
            f"  Cache-Control: {document}",
            f"  Content-Type: {headers.JSON}",
            f"{url}/-/*",
            f"  Cache-Control: {cache(headers.TARBALL_CACHE)}",
        ]
        redirects.append(f"{url} /{layout.packument_path(name)} 200")
    return {layout.NETLIFY_HEADERS: "\n".join(head) + "\n", layout.NETLIFY_REDIRECTS: "\n".join(redirects) + "\n"}


def write_netlify_files(
    root: Path, document_max_age: int = 0, credentials: auth.Credentials | None = None
) -> list[Path]:
    written = []
    for filename, text in netlify_files(root, document_max_age, credentials).items():
        path = layout.safe_join(root, filename)
        path.write_text(text)
        written.append(path)
    return written
