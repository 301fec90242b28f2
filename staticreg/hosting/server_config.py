"""Web server configurations that serve the tree exactly as `layout` lays it out."""

from __future__ import annotations

import re
from pathlib import Path

import jinja2

from staticreg.errors import ConfigError
from staticreg.hosting import auth
from staticreg.npm import headers, layout

_TEMPLATES = jinja2.Environment(
    loader=jinja2.FileSystemLoader(str(Path(__file__).parent / "templates")),
    autoescape=False,
    undefined=jinja2.StrictUndefined,
    keep_trailing_newline=True,
)
_NGINX_UNSAFE = re.compile(r"[\"'$;{}\\\s]")
_TEMPLATES.filters["regex"] = re.escape


def _check(label: str, value: str | None) -> str:
    """A value for the configuration ("" for none), refusing what it cannot hold."""
    if value is None:
        return ""
    if _NGINX_UNSAFE.search(value):
        raise ConfigError(
            f"{label} {value!r} has characters the nginx configuration cannot hold (quotes, $, ;, braces, spaces)"
        )
    return value


def normalize_prefix(prefix: str) -> str:
    """'/npm/' -> '/npm'; '/' -> ''."""
    prefix = "/" + prefix.strip("/")
    if not re.fullmatch(r"/[A-Za-z0-9._~/-]*", prefix) or "//" in prefix or "/../" in prefix + "/":
        raise ConfigError(f"--prefix {prefix!r} must be a plain URL path such as /npm/")
    return prefix.rstrip("/")


def _render(
    template: str,
    root: Path,
    prefix: str,
    document_max_age: int,
    standalone: bool,
    state_dir: Path | None,
    state_holds: str,
    credentials: auth.Credentials | None = None,
    **values: str | bool,
) -> str:
    """Render one server's template with what every server's configuration shares."""
    credentials = credentials or auth.Credentials()
    cache = headers.private if credentials else str
    if standalone and state_dir is None:
        raise ConfigError(f"--standalone needs --state-dir, a folder for {state_holds}")
    if not standalone and (state_dir is not None or values.get("user")):
        raise ConfigError("--state-dir and --user go with --standalone; a snippet for your own server has neither")
    prefix = normalize_prefix(prefix)
    return _TEMPLATES.get_template(template).render(
        root=_check("--root", str(root.absolute())),
        prefix=prefix or "/",
        prefix_path=prefix,
        prefix_regex=re.escape(prefix),
        # the Cache-Control values `headers` defines, so that every server sends what serve, deploy and check agree on
        tarball_cache=cache(headers.TARBALL_CACHE),
        document_cache=cache(headers.document_cache(document_max_age)),
        other_cache=cache(headers.OTHER_CACHE),
        standalone=standalone,
        # A private registry: the values were checked by `auth` as they were read.
        auth=credentials,
        htpasswd=_check("--htpasswd", str(credentials.htpasswd_file.absolute()) if credentials.htpasswd_file else None),
        realm=auth.REALM,
        not_found=layout.NEVER_WRITTEN,
        unauthorized_body=auth.UNAUTHORIZED_BODY,
        unauthorized_cache=headers.UNAUTHORIZED_CACHE,
        state_dir=_check("--state-dir", str(state_dir.absolute()) if state_dir else None),
        **values,
    )


def nginx(
    root: Path,
    listen: str = "127.0.0.1:8080",
    prefix: str = "/",
    document_max_age: int = 0,
    standalone: bool = False,
    state_dir: Path | None = None,
    user: str | None = None,
    daemon: bool = True,
    credentials: auth.Credentials | None = None,
) -> str:
    return _render(
        "nginx.conf.j2",
        root,
        prefix,
        document_max_age,
        standalone,
        state_dir,
        "nginx's pid, logs and temp files",
        credentials,
        listen=_check("--listen", listen),
        user=_check("--user", user),
        daemon=daemon,
    )


def apache(
    root: Path,
    listen: str = "127.0.0.1:8080",
    prefix: str = "/",
    document_max_age: int = 0,
    standalone: bool = False,
    state_dir: Path | None = None,
    user: str | None = None,
    group: str | None = None,
    modules_dir: Path = Path("/usr/lib/apache2/modules"),
    credentials: auth.Credentials | None = None,
) -> str:
    """Apache httpd: mod_rewrite maps URLs to the layout, AllowEncodedSlashes finds %2f."""
    return _render(
        "apache.conf.j2",
        root,
        prefix,
        document_max_age,
        standalone,
        state_dir,
        "Apache's pid and logs",
        credentials,
        listen=_check("--listen", listen),
        user=_check("--user", user),
        group=_check("--group", (group or user) if user else None),
        modules_dir=_check("--modules-dir", str(modules_dir)),
    )


def caddy(
    root: Path,
    address: str = "http://127.0.0.1:8080",
    prefix: str = "/",
    document_max_age: int = 0,
    standalone: bool = False,
    state_dir: Path | None = None,
    credentials: auth.Credentials | None = None,
) -> str:
    """Caddy: a site block (or, standalone, a whole Caddyfile with HTTPS and admin off).
    Caddy checks only bcrypt passwords, and takes the users inline."""
    if credentials:
        auth.require_kinds(credentials, {"bcrypt"}, "Caddy")
    return _render(
        "Caddyfile.j2",
        root,
        prefix,
        document_max_age,
        standalone,
        state_dir,
        "Caddy's logs and storage",
        credentials,
        address=_check("--address", address),
    )
