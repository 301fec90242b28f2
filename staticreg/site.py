"""The browsable HTML site, rendered from site-template/ with Jinja2.

Everything from a package is untrusted: autoescape is on for every page and
templates never mark package text as safe.
"""

from __future__ import annotations

from pathlib import Path

import jinja2

from staticreg import __version__, layout
from staticreg.config import Config
from staticreg.model import Registry
from staticreg.output import Staging

_PACKAGE_DIR = Path(__file__).parent


def builtin_template_dir() -> Path:
    """site-template/ inside the installed package, or at the top of a source checkout."""
    for candidate in (_PACKAGE_DIR / "site-template", _PACKAGE_DIR.parent / "site-template"):
        if candidate.is_dir():
            return candidate
    raise RuntimeError("staticreg is installed without its site-template folder")


def environment(config: Config) -> jinja2.Environment:
    """The one Jinja2 environment: the user's template folder first, then ours."""
    dirs = [str(config.template_dir)] if config.template_dir else []
    dirs.append(str(builtin_template_dir()))
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(dirs),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        auto_reload=False,
        keep_trailing_newline=True,
    )


def _relative_root(page: str) -> str:
    return "../" * page.count("/")


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def write_site(registry: Registry, staging: Staging, config: Config) -> None:
    env = environment(config)
    site = {"title": config.title, "base_url": config.base_url, "version": __version__}
    rows = []
    for package in registry.packages.values():
        latest = package.latest
        page = layout.site_package_page(package.name)
        rows.append(
            {
                "name": package.name,
                "latest": latest.version,
                "description": _text(latest.manifest.get("description")),
                "published": package.modified,
                "page": page[: -len("index.html")],
            }
        )
        root = _relative_root(page)
        versions = [
            {
                "version": v,
                "time": e.time,
                "tarball": root + layout.tarball_path(package.name, v),
                "filename": layout.tarball_filename(package.name, v),
                "deprecated": _text(e.manifest.get("deprecated")),
            }
            for v, e in reversed(package.versions.items())
        ]
        html = env.get_template("package.html").render(
            site={**site, "root": root},
            package={
                "name": package.name,
                "description": _text(latest.manifest.get("description")),
                "dist_tags": package.dist_tags,
                "versions": versions,
            },
        )
        staging.write(page, html.encode("utf-8"))
    home = env.get_template("index.html").render(site={**site, "root": ""}, packages=rows)
    staging.write(layout.SITE_HOME, home.encode("utf-8"))
    assets = builtin_template_dir() / "assets"
    for asset in sorted(assets.iterdir()):
        override = config.template_dir / "assets" / asset.name if config.template_dir else None
        source = override if override and override.is_file() else asset
        staging.write(f"{layout.SITE_DIR}/assets/{asset.name}", source.read_bytes())
