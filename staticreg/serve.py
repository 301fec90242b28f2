"""`staticreg serve`: build into a temporary folder and serve it on 127.0.0.1.

The handler answers exactly as the generated nginx configuration does: decoded
paths (%2f and %2F), the abbreviated document for the abbreviated Accept
header, the same Content-Type, Cache-Control, ETag and Last-Modified.
"""

from __future__ import annotations

import email.utils
import mimetypes
import os
import shutil
import sys
import tempfile
from dataclasses import replace
from functools import partial
from http import HTTPStatus
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

from staticreg import layout
from staticreg.build import build
from staticreg.config import Config

_TYPES = {
    ".json": "application/json",
    ".corgi": layout.ABBREVIATED_MEDIA_TYPE,
    ".tgz": "application/octet-stream",
    ".html": "text/html; charset=utf-8",
    ".css": "text/css",
    ".js": "text/javascript",
    ".svg": "image/svg+xml",
}


def cache_control(relative: str, document_max_age: int) -> str:
    if relative.endswith(".tgz") and "/-/" in "/" + relative:
        return "public, max-age=31536000, immutable"
    if relative.endswith(("/" + layout.FULL_DOCUMENT, "/" + layout.ABBREVIATED_DOCUMENT)) or relative.startswith(
        ("-/ping", "-/package/")
    ):
        return f"public, max-age={document_max_age}, must-revalidate"
    return "public, max-age=300"


class RegistryHandler(SimpleHTTPRequestHandler):
    server_version = "staticreg"
    document_max_age = 0

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        if os.environ.get("STATICREG_ACCESS_LOG"):
            super().log_message(format, *args)

    def _resolve(self) -> Path | None:
        path = unquote(urlsplit(self.path).path)
        if "\0" in path or any(part == ".." for part in path.split("/")):
            return None
        root = Path(self.directory)
        wants = layout.ABBREVIATED_MEDIA_TYPE in self.headers.get("Accept", "")
        for candidate in layout.document_for_request(path, wants):
            try:
                file = layout.safe_join(root, candidate)
            except layout.UnsafePath:
                return None
            if file.is_file():
                return file
        return None

    def send_head(self):  # noqa: D102 - same contract as SimpleHTTPRequestHandler
        file = self._resolve()
        if file is None:
            self.send_error(HTTPStatus.NOT_FOUND, "Not found")
            return None
        relative = file.relative_to(self.directory).as_posix()
        stat = file.stat()
        etag = '"%x-%x"' % (int(stat.st_mtime), stat.st_size)
        last_modified = email.utils.formatdate(stat.st_mtime, usegmt=True)
        suffix = file.suffix if file.suffix else ".json"
        headers = {
            "Content-Type": _TYPES.get(suffix) or mimetypes.guess_type(file.name)[0] or "application/octet-stream",
            "Cache-Control": cache_control(relative, self.document_max_age),
            "ETag": etag,
            "Last-Modified": last_modified,
        }
        if file.name in (layout.FULL_DOCUMENT, layout.ABBREVIATED_DOCUMENT):
            headers["Vary"] = "Accept"
        inm = self.headers.get("If-None-Match")
        ims = self.headers.get("If-Modified-Since")
        not_modified = inm == etag if inm else False
        if not inm and ims:
            try:
                not_modified = email.utils.parsedate_to_datetime(ims).timestamp() >= int(stat.st_mtime)
            except (TypeError, ValueError):
                pass
        if not_modified:
            self.send_response(HTTPStatus.NOT_MODIFIED)
            for key in ("Cache-Control", "ETag", "Last-Modified", "Vary"):
                if key in headers:
                    self.send_header(key, headers[key])
            self.end_headers()
            return None
        f = open(file, "rb")
        self.send_response(HTTPStatus.OK)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(stat.st_size))
        self.end_headers()
        return f


def serve(config: Config, host: str, port: int) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="staticreg-serve-"))
    try:
        server = ThreadingHTTPServer((host, port), RegistryHandler)
        actual_port = server.server_address[1]
        base_url = config.base_url or f"http://{host}:{actual_port}/"
        built = replace(config, output_dir=workdir / "registry", base_url=base_url, report_file=workdir / "report.json")
        report = build(built)
        handler = partial(RegistryHandler, directory=str(built.output_dir))
        RegistryHandler.document_max_age = config.document_max_age
        server.RequestHandlerClass = handler
        print(
            f"Serving {report.packages} packages ({report.versions} versions) at {base_url}\n"
            f"  npm:    npm install --registry {base_url} <package>\n"
            f"  pnpm:   pnpm add --registry {base_url} <package>\n"
            f"  yarn:   YARN_NPM_REGISTRY_SERVER={base_url} yarn add <package>   (yarn 1: --registry {base_url})\n"
            f"  or put registry={base_url} in .npmrc. Press Ctrl-C to stop.",
            flush=True,
        )
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            print("Shutting down.", file=sys.stderr)
        finally:
            server.server_close()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

