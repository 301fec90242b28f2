"""`staticreg serve`: build into a temporary folder, serve it on 127.0.0.1, rebuild on change.

mkdocs' model: the HTTP server runs in threads; the main thread waits for changes
(watchdog: the input folder, the configuration file, the template folder, never
the output), lets them settle, reloads the configuration and rebuilds. The build
is incremental and swaps its output in atomically, so requests always see a
whole registry; a failed rebuild keeps the last good one served, prints the error
and shows it on top of every HTML page.

The handler answers exactly as the generated nginx configuration does: decoded
paths (%2f and %2F), the abbreviated document for the abbreviated Accept
header, a package document's gzip copy for clients that accept gzip, the same
Content-Type, Cache-Control, ETag and Last-Modified. It also
takes npm publish, dist-tag and deprecate from this machine (see publish.py).
"""

from __future__ import annotations

import email.utils
import errno
import html
import io
import ipaddress
import json
import os
import re
import shutil
import signal
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import replace
from functools import partial
from http import HTTPStatus
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

from staticreg.build.discovery import TARBALL_SUFFIXES
from staticreg.build.pipeline import BuildReport, build
from staticreg.config import DEFAULT_CONFIG_NAME, Config, load_config
from staticreg.dev import publish, watch
from staticreg.errors import StaticregError
from staticreg.hosting import auth
from staticreg.npm import headers as http_headers
from staticreg.npm import layout, upstream_meta

DEFAULT_PORT = 4873
PORTS_TO_TRY = 20
DEBOUNCE_SECONDS = 0.15  # quiet time (no event, no size or mtime change) before a rebuild
RETRY_SECONDS = 1.0
RETRIES = 3  # rebuilds tried for a tarball that looks half-written before its error is shown


def cache_control(relative: str, document_max_age: int) -> str:
    return http_headers.for_object(relative, layout.kind_of(relative), document_max_age)[1]


class RegistryHandler(SimpleHTTPRequestHandler):
    server_version = "staticreg"
    document_max_age = 0
    dev: DevServer | None = None
    credentials = auth.Credentials()  # --tokens / --htpasswd: a private dev registry

    def _unauthorized(self) -> io.BytesIO | None:
        """None when the request may go on; otherwise the 401 it gets, whatever it asked for."""
        if not self.credentials or self.credentials.allows(self.headers.get("Authorization")):
            return None
        data = (auth.UNAUTHORIZED_BODY + "\n").encode()
        self.send_response(HTTPStatus.UNAUTHORIZED)
        self.send_header("WWW-Authenticate", f'Basic realm="{auth.REALM}"')
        self.send_header("Content-Type", http_headers.JSON)
        self.send_header("Cache-Control", http_headers.UNAUTHORIZED_CACHE)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        return io.BytesIO(data)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the parameter name of BaseHTTPRequestHandler.log_message
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

    def send_head(self):
        refused = self._unauthorized()
        if refused is not None:
            return refused
        file = self._resolve()
        error = self.dev.error if self.dev else None
        if file is None:
            if error and not Path(self.directory).is_dir():
                return self._error_page(error)  # no good build yet
            page = Path(self.directory) / layout.SITE_NOT_FOUND
            if page.is_file():  # as nginx's error_page does: the site's page for a missing package
                return self._send_bytes(HTTPStatus.NOT_FOUND, "text/html; charset=utf-8", page.read_bytes())
            self.send_error(HTTPStatus.NOT_FOUND, "Not found")
            return None
        relative = file.relative_to(self.directory).as_posix()
        if error and _is_site_page(relative):
            return self._with_banner(file, error)
        copy = layout.precompressed_copy(relative)
        encoded = copy is not None and http_headers.accepts_gzip(self.headers.get("Accept-Encoding"))
        if encoded and copy is not None:  # the build's gzip copy of the document, as nginx's gzip_static sends it
            packed = layout.safe_join(Path(self.directory), copy)
            encoded = packed.is_file()
            file = packed if encoded else file
        stat = file.stat()
        etag = f'"{int(stat.st_mtime):x}-{stat.st_size:x}"'
        last_modified = email.utils.formatdate(stat.st_mtime, usegmt=True)
        headers = {
            "Content-Type": http_headers.content_type(relative),
            "Cache-Control": (http_headers.private if self.credentials else str)(
                cache_control(relative, self.document_max_age)
            ),
            "ETag": etag,
            "Last-Modified": last_modified,
        }
        if relative.rpartition("/")[2] in (layout.FULL_DOCUMENT, layout.ABBREVIATED_DOCUMENT):
            headers["Vary"] = "Accept, Accept-Encoding" if copy else "Accept"
        if encoded:
            headers["Content-Encoding"] = "gzip"
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
        f = open(file, "rb")  # noqa: SIM115 - send_head's contract: the caller copies it out and closes it
        self.send_response(HTTPStatus.OK)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(stat.st_size))
        self.end_headers()
        return f

    # -- the last rebuild's error, on every page ------------------------------
    def _send_bytes(self, status: int, content_type: str, data: bytes) -> io.BytesIO:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Cache-Control", "no-store")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        return io.BytesIO(data)

    def _with_banner(self, file: Path, error: str) -> io.BytesIO:
        page = file.read_bytes()
        match = re.search(rb"<body[^>]*>", page, re.IGNORECASE)
        at = match.end() if match else 0
        page = page[:at] + error_banner(error).encode("utf-8") + page[at:]
        return self._send_bytes(HTTPStatus.OK, http_headers.content_type("index.html"), page)

    def _error_page(self, error: str) -> io.BytesIO:
        page = f"<!doctype html><meta charset=utf-8><title>staticreg: build failed</title>{error_banner(error)}"
        return self._send_bytes(
            HTTPStatus.SERVICE_UNAVAILABLE, http_headers.content_type("index.html"), page.encode("utf-8")
        )

    # -- npm publish, dist-tag, deprecate (loopback only) ---------------------
    def do_PUT(self) -> None:
        self._write("PUT")

    def do_DELETE(self) -> None:
        self._write("DELETE")

    def _drop_body(self, length: int) -> None:
        """Read a refused request's body, a piece at a time, so that the client reads the answer."""
        remaining = length if length <= publish.MAX_BODY_BYTES else 0
        while remaining > 0:
            piece = self.rfile.read(min(remaining, 1 << 16))
            if not piece:
                break
            remaining -= len(piece)

    def _reply(self, status: int, doc: dict) -> None:
        data = json.dumps(doc).encode()
        self.send_response(status)
        if status == 401:
            self.send_header("WWW-Authenticate", f'Basic realm="{auth.REALM}"')
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _write(self, method: str) -> None:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            return self._reply(400, {"error": "Content-Length is not a number"})
        if self.credentials and not self.credentials.allows(self.headers.get("Authorization")):
            self._drop_body(length)
            return self._reply(
                401, {"error": "publishing to this private registry needs a token or a user and password"}
            )
        if self.dev is None or not _is_loopback(self.client_address[0]):
            return self._reply(403, {"error": "this registry takes npm publish only from the machine it runs on"})
        if length > publish.MAX_BODY_BYTES:
            return self._reply(413, {"error": "the request is too large"})
        body = self.rfile.read(length)
        path = unquote(urlsplit(self.path).path).strip("/")
        tag_route = re.fullmatch(r"-/package/(.+)/dist-tags/([^/]+)", path)
        rev_route = re.fullmatch(r"((?:@[^/]+/)?[^/@][^/]*)(/-/[^/]+\.tgz)?/-rev/[^/]+", path)
        try:
            with self.dev.write_lock:
                target = self.dev.target()
                if tag_route:
                    done = publish.dist_tag(target, tag_route[1], tag_route[2], body if method == "PUT" else None)
                elif rev_route and rev_route[2]:  # npm unpublish's last request: the PUT before removed it
                    if method != "DELETE":
                        raise publish.Refused(405, f"{method} {path} is not something this registry does")
                    return self._reply(200, {"ok": True})
                elif rev_route:
                    done = publish.unpublish(target, rev_route[1], body if method == "PUT" else None)
                elif method == "PUT":
                    done = publish.put_package(target, path, body)
                else:
                    raise publish.Refused(405, f"{method} {path} is not something this registry does")
        except publish.Refused as refused:
            print(f"refused {method} /{path}: {refused.message}", file=sys.stderr, flush=True)
            return self._reply(refused.status, {"error": refused.message})
        except (StaticregError, OSError) as exc:  # e.g. a read-only input folder, a broken file already there
            message = exc.format_message() if isinstance(exc, StaticregError) else f"{exc.filename}: {exc.strerror}"
            print(f"failed {method} /{path}: {message}", file=sys.stderr, flush=True)
            return self._reply(500, {"error": message})
        print(done, flush=True)
        error = self.dev.rebuild_and_wait()
        if error:
            return self._reply(500, {"error": f"{done}, but the registry could not be rebuilt: {error}"})
        self._reply(201, {"ok": True, "success": True, "id": path})


def _is_site_page(relative: str) -> bool:
    """The browsable site's HTML (not the documents' index.html copies, which are JSON)."""
    return relative == layout.SITE_HOME or (relative.startswith(layout.SITE_DIR + "/") and relative.endswith(".html"))


def _is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address.split("%")[0]).is_loopback
    except ValueError:
        return False


def error_banner(error: str) -> str:
    return (
        '<div role="alert" style="background:#fee;color:#900;border:2px solid #c00;padding:1em;margin:0 0 1em;'
        'font:14px/1.4 monospace;white-space:pre-wrap">'
        "<strong>staticreg serve: the last build failed; the last good registry (if any) is still served.</strong>\n"
        f"{html.escape(error)}</div>"
    )


class DevServer:
    """What the build loop (main thread) and the request threads share."""

    def __init__(self, load: Callable[[], Config], workdir: Path, base_url: str, poll: bool, config: Config):
        self.load = load
        self.workdir = workdir
        self.base_url = base_url
        self.poll = poll
        self.output = workdir / "registry"
        self.changes = watch.Changes(DEBOUNCE_SECONDS)
        self.write_lock = threading.Lock()
        self.error: str | None = None
        self.config = config  # as load() last gave it: a rebuild loads it again

    def target(self) -> publish.Target:
        config = self.config
        config_file = config.config_file or Path(DEFAULT_CONFIG_NAME)
        return publish.Target(config.input_dir, config_file.absolute(), self.output)

    def rebuild_and_wait(self, timeout: float = 120.0) -> str | None:
        ticket = self.changes.note()
        if not self.changes.wait_built(ticket, timeout):
            return "the rebuild did not finish in time"
        return self.error

    def build_once(self, announce: bool = True) -> tuple[BuildReport | None, str, bool]:
        """Rebuild: (report or None, what failed, whether a tarball looked half-written)."""
        try:
            self.config = self.load()
            config = replace(
                self.config, output_dir=self.output, base_url=self.base_url, report_file=self.workdir / "report.json"
            )
            report = build(config, show_progress=False)
        except StaticregError as exc:
            text = exc.format_message()
            # A tarball still being copied in stops short: that means "try again soon", not "broken".
            return None, text, getattr(exc, "ends_early", False)
        except Exception:  # a bug in staticreg: say so, keep serving the last good build
            return (
                None,
                "staticreg crashed while rebuilding (a bug; please report it):\n" + traceback.format_exc(),
                False,
            )
        problems = [f"rejected: {p}" for p in report.rejected]
        self.error = "\n".join(problems) or None
        if announce and (report.added or report.changed or report.removed or problems):
            print(
                f"Rebuilt in {report.timings['total']:.2f} s: {report.packages} packages ({report.versions} versions); "
                f"files {len(report.added)} added, {len(report.changed)} changed, {len(report.removed)} removed",
                flush=True,
            )
            for line in problems:
                print(line, file=sys.stderr, flush=True)
        return report, "", False

    def loop(self) -> None:
        """The main thread's life: wait for settled changes, rebuild, repeat."""
        retry_at, retries, covered = None, 0, 0
        while True:
            previous, covered = covered, self.changes.next(retry_at)
            if covered != previous:
                retries = 0  # something new happened: a half-written tarball gets its tries again
            report, failed, incomplete = self.build_once()
            retry_at = None
            if report is None and incomplete and retries < RETRIES:
                if retries == 0:
                    print("A tarball looks half-written; waiting for it to be complete.", file=sys.stderr, flush=True)
                retries += 1
                retry_at = time.monotonic() + RETRY_SECONDS
            elif report is None:
                self.error = failed
                print(f"Rebuild failed; still serving the last good registry.\n{failed}", file=sys.stderr, flush=True)
            self.changes.built(covered)


def bind(host: str, port: int | None) -> ThreadingHTTPServer:
    """A server on host:port; without a port, 4873 or the next free one."""
    candidates = [port] if port is not None else range(DEFAULT_PORT, DEFAULT_PORT + PORTS_TO_TRY)
    for candidate in candidates:
        try:
            return ThreadingHTTPServer((host, candidate), RegistryHandler)
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise StaticregError(f"cannot listen on {host}:{candidate}: {exc.strerror or exc}") from None
    if port is not None:
        raise StaticregError(f"port {port} on {host} is taken; choose another with --port, or leave --port out")
    raise StaticregError(f"ports {DEFAULT_PORT}-{DEFAULT_PORT + PORTS_TO_TRY - 1} on {host} are all taken; give --port")


def config_loader(
    input_dir: Path | None, config_file: Path | None, signing_key: Path | None = None
) -> Callable[[], Config]:
    """Reads the configuration again at every rebuild, so edits to it take effect."""

    def load() -> Config:
        return load_config(
            config_file,
            require_base_url=False,
            input_dir=input_dir,
            output_dir=Path(".staticreg-serve"),
            signing_key=signing_key,
        )

    return load


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _publish_hint(base_url: str, credentials: auth.Credentials) -> str:
    nerf = "//" + base_url.split("://", 1)[1]
    if not credentials:
        return (
            f"  publish: npm publish --registry {base_url} (npm wants a token, any will do:\n"
            f"           npm config set {nerf}:_authToken=dev)\n"
        )
    line = (
        f"{nerf}:_authToken=TOKEN (a token of --tokens)"
        if credentials.tokens
        else f"{nerf}:_auth=BASE64_OF_USER:PASSWORD"
    )
    return (
        f"  private: every request needs a credential; in .npmrc: {line}\n"
        f"  publish: npm publish --registry {base_url}\n"
    )


def _on_sigterm(signum, frame) -> None:
    raise KeyboardInterrupt


def serve(
    input_dir: Path | None,
    config_file: Path | None,
    host: str = "127.0.0.1",
    port: int | None = None,
    base_url: str = "",
    poll: bool = False,
    credentials: auth.Credentials | None = None,
    signing_key: Path | None = None,
) -> None:
    previous_sigterm = signal.signal(signal.SIGTERM, _on_sigterm)  # `kill` cleans up as Ctrl-C does
    load = config_loader(input_dir, config_file, signing_key)
    config = load()  # a broken configuration stops here, before anything listens
    credentials = credentials or auth.Credentials()
    if not _is_loopback(host) and not credentials:
        print(
            f"warning: serving on {host}, reachable from other machines; the dev server has no authentication "
            "(it takes npm publish only from this machine)",
            file=sys.stderr,
            flush=True,
        )
    server = bind(host, port)
    actual_port = server.server_address[1]
    shown_host = f"[{host}]" if ":" in host else host
    base_url = base_url or f"http://{shown_host}:{actual_port}/"
    workdir = Path(tempfile.mkdtemp(prefix="staticreg-serve-"))
    dev = DevServer(load, workdir, base_url, poll, config)
    observer = http_thread = None
    try:
        report, failed, _ = dev.build_once(announce=False)
        if report is None:
            dev.error = failed
            print(f"The build failed; fix it and the registry appears.\n{failed}", file=sys.stderr, flush=True)
        handler = type(
            "Handler",
            (RegistryHandler,),
            {"dev": dev, "document_max_age": config.document_max_age, "credentials": credentials},
        )
        server.RequestHandlerClass = partial(handler, directory=str(dev.output))
        events = watch.InputEvents(
            dev.changes,
            dev.config.input_dir,
            dev.target().config_file,
            dev.config.template_dir,
            ignore=[workdir],
            tarball_suffixes=TARBALL_SUFFIXES + (upstream_meta.SUFFIX,),  # and mirrored tarballs' sidecars
        )
        observer = watch.start_observer(events, poll)
        http_thread = threading.Thread(target=server.serve_forever, name="http", daemon=True)
        http_thread.start()
        packages = (
            _count(report.packages, "package") + f" ({_count(report.versions, 'version')})" if report else "nothing yet"
        )
        print(
            f"Serving {packages} at {base_url}\n"
            f"  npm:    npm install --registry {base_url} <package>\n"
            f"  pnpm:   pnpm add --registry {base_url} <package>\n"
            f"  yarn:   YARN_NPM_REGISTRY_SERVER={base_url} yarn add <package>   (yarn 1: --registry {base_url})\n"
            f"  or put registry={base_url} in .npmrc.\n"
            + _publish_hint(base_url, credentials)
            + f"Watching {dev.config.input_dir}{' (polling)' if poll else ''}. Press Ctrl-C to stop.",
            flush=True,
        )
        dev.loop()
    except KeyboardInterrupt:
        print("Shutting down.", file=sys.stderr)
    finally:
        signal.signal(signal.SIGTERM, previous_sigterm)
        if observer is not None:
            observer.stop()
        if http_thread is not None:
            server.shutdown()
        server.server_close()
        shutil.rmtree(workdir, ignore_errors=True)
