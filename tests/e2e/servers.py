"""Real web servers on 127.0.0.1 for the end-to-end tests, started and waited for:
nginx with the configuration staticreg writes, python -m http.server with none, and
`staticreg serve` (Serve, with `until` to wait for what it does in the background);
free_port to listen on, fetch to ask them without a proxy."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from staticreg.hosting import server_config


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(port: int, process: subprocess.Popen, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


def nginx_binary() -> str:
    found = shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if os.path.exists(p)), None)
    if not found:
        raise RuntimeError("nginx is not installed: scripts/test installs it (apt-get install nginx-light)")
    return found


class Server:
    def __init__(self, process: subprocess.Popen, port: int, log: Path | None = None):
        self.process, self.port, self.log = process, port, log

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_nginx(root: Path, state_dir: Path, port: int, prefix: str = "/", edit=None, credentials=None) -> Server:
    """`edit`, when given, changes the configuration's text (tests that break it on purpose);
    `credentials` (auth.Credentials) make the registry private."""
    state_dir.mkdir(parents=True, exist_ok=True)
    (state_dir / "tmp").mkdir(exist_ok=True)
    conf = state_dir / "nginx.conf"
    user = "root" if os.geteuid() == 0 else None
    text = server_config.nginx(
        root,
        listen=f"127.0.0.1:{port}",
        prefix=prefix,
        standalone=True,
        state_dir=state_dir,
        user=user,
        daemon=False,
        credentials=credentials,
    )
    conf.write_text(edit(text) if edit else text)
    binary = nginx_binary()
    check = subprocess.run([binary, "-t", "-p", str(state_dir), "-c", str(conf)], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    process = subprocess.Popen([binary, "-p", str(state_dir), "-c", str(conf)], stderr=subprocess.PIPE)
    wait_for(port, process)
    return Server(process, port, state_dir / "access.log")


def start_http_server(root: Path, port: int) -> Server:
    process = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1", "--directory", str(root)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_for(port, process)
    return Server(process, port)


def fetch(url: str, accept: str | None = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers={"Accept": accept} if accept else {})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=10) as response:
            return response.status, {k.lower(): v for k, v in response.headers.items()}, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, {k.lower(): v for k, v in exc.headers.items()}, exc.read()


class Serve:
    """`staticreg serve INPUT --port N` in `cwd`; stdout and stderr go to files the test can read."""

    def __init__(self, input_dir: Path, cwd: Path, *args: str):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.out, self.err = cwd / f"serve-{self.port}.out", cwd / f"serve-{self.port}.err"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "staticreg", "serve", str(input_dir), "--port", str(self.port), *args],
            stdout=self.out.open("w"),
            stderr=self.err.open("w"),
            cwd=cwd,
        )
        until(lambda: "Watching" in self.out.read_text(), self.process, what="the dev server to start")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)

    def status(self, path: str) -> int:
        return fetch(self.url + path.lstrip("/"))[0]


def until(condition, process: subprocess.Popen | None = None, what: str = "it", timeout: float = 30.0) -> None:
    """Wait for something the dev server does in the background (no timing is asserted)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if process is not None and process.poll() is not None:
            raise AssertionError(f"staticreg serve exited with {process.returncode} while waiting for {what}")
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.1)
