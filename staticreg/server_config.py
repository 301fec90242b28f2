"""Web server configurations that serve the tree exactly as `layout` lays it out."""

from __future__ import annotations

import re
from pathlib import Path

import jinja2

from staticreg.errors import ConfigError

_TEMPLATES = jinja2.Environment(
    loader=jinja2.FileSystemLoader(str(Path(__file__).parent / "server_templates")),
    autoescape=False,
    undefined=jinja2.StrictUndefined,
    keep_trailing_newline=True,
)
_NGINX_UNSAFE = re.compile(r"[\"'$;{}\\\s]")


def _check(label: str, value: str) -> str:
    if _NGINX_UNSAFE.search(value):
        raise ConfigError(f"{label} {value!r} has characters the nginx configuration cannot hold (quotes, $, ;, braces, spaces)")
    return value


def normalize_prefix(prefix: str) -> str:
    """'/npm/' -> '/npm'; '/' -> ''."""
    prefix = "/" + prefix.strip("/")
    if not re.fullmatch(r"/[A-Za-z0-9._~/-]*", prefix) or "//" in prefix or "/../" in prefix + "/":
        raise ConfigError(f"--prefix {prefix!r} must be a plain URL path such as /npm/")
    return prefix.rstrip("/")


def nginx(
    root: Path,
    listen: str = "127.0.0.1:8080",
    prefix: str = "/",
    document_max_age: int = 0,
    standalone: bool = False,
    state_dir: Path | None = None,
    user: str | None = None,
    daemon: bool = True,
) -> str:
    prefix = normalize_prefix(prefix)
    if standalone and state_dir is None:
        raise ConfigError("--standalone needs --state-dir, a folder for nginx's pid, logs and temp files")
    return _TEMPLATES.get_template("nginx.conf.j2").render(
        root=_check("--root", str(root.absolute())),
        listen=_check("--listen", listen),
        prefix=prefix or "/",
        prefix_regex=re.escape(prefix),
        document_max_age=int(document_max_age),
        standalone=standalone,
        state_dir=_check("--state-dir", str(state_dir.absolute())) if state_dir else "",
        user=_check("--user", user) if user else "",
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
) -> str:
    """Apache httpd: mod_rewrite maps URLs to the layout, AllowEncodedSlashes finds %2f."""
    prefix = normalize_prefix(prefix)
    if standalone and state_dir is None:
        raise ConfigError("--standalone needs --state-dir, a folder for Apache's pid and logs")
    return _TEMPLATES.get_template("apache.conf.j2").render(
        root=_check("--root", str(root.absolute())),
        listen=_check("--listen", listen),
        prefix=prefix or "/",
        prefix_regex=re.escape(prefix),
        document_max_age=int(document_max_age),
        standalone=standalone,
        state_dir=_check("--state-dir", str(state_dir.absolute())) if state_dir else "",
        user=_check("--user", user) if user else "",
        group=_check("--group", group or user) if user else "",
        modules_dir=_check("--modules-dir", str(modules_dir)),
    )


def caddy(
    root: Path,
    address: str = "http://127.0.0.1:8080",
    prefix: str = "/",
    document_max_age: int = 0,
    standalone: bool = False,
    state_dir: Path | None = None,
) -> str:
    """Caddy: a site block (or, standalone, a whole Caddyfile with HTTPS and admin off)."""
    if standalone and state_dir is None:
        raise ConfigError("--standalone needs --state-dir, a folder for Caddy's logs and storage")
    return _TEMPLATES.get_template("Caddyfile.j2").render(
        root=_check("--root", str(root.absolute())),
        address=_check("--address", address),
        prefix=normalize_prefix(prefix),
        document_max_age=int(document_max_age),
        standalone=standalone,
        state_dir=_check("--state-dir", str(state_dir.absolute())) if state_dir else "",
    )
