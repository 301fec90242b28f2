"""`staticreg mirror` against an upstream that misbehaves: a real HTTP server on 127.0.0.1
whose answers each test scripts (busy, wrong, hostile, slow), and the real command line.
What must hold: retries where they help, one clear line per failure and no traceback,
nothing unverified in the folder, the token only ever sent to the upstream's own host
and never printed, and a killed run that leaves no partial tarball."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from staticreg.npm import upstream_meta
from tests.helpers import make_tarball

pytestmark = pytest.mark.e2e
TOKEN = "s3cret-token-value"


class Upstream:
    """routes: path -> list of answers, used in turn (the last one again and again); an answer
    is (status, headers, body) or a function(handler) that answers itself."""

    def __init__(self):
        self.routes: dict[str, list] = {}
        self.seen: list[tuple[str, str | None]] = []  # (path, Authorization)
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                upstream.seen.append((self.path, self.headers.get("Authorization")))
                answers = upstream.routes.get(self.path) or [(404, {}, b"{}")]
                answer = answers.pop(0) if len(answers) > 1 else answers[0]
                if callable(answer):
                    return answer(self)
                status, headers, body = answer
                self.send_response(status)
                for k, v in {"Content-Length": str(len(body)), **headers}.items():
                    self.send_header(k, v)
                self.end_headers()
                try:
                    self.wfile.write(body)
                except OSError:
                    pass

            def log_message(self, *args):
                pass

        self.stopping = threading.Event()  # ends the answers that hang on purpose
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = False  # server_close waits for every answer: no thread outlives the test
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        self.thread = threading.Thread(target=self.server.serve_forever)
        self.thread.start()

    def stop(self):
        self.stopping.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


@pytest.fixture
def upstream():
    server = Upstream()
    yield server
    server.stop()


@pytest.fixture
def other():
    server = Upstream()
    yield server
    server.stop()


def sri(data: bytes) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()


def package(server: Upstream, folder: Path, name: str, version: str = "1.0.0", **extra) -> bytes:
    """A real tarball and its packument on the scripted upstream."""
    path = make_tarball(folder, {"name": name, "version": version}, {"index.js": f"// {name} {'x' * 3000}"})
    data = path.read_bytes()
    doc = {
        "name": name,
        "dist-tags": {"latest": version},
        "time": {version: "2020-01-02T03:04:05.000Z"},
        "versions": {
            version: {
                "name": name,
                "version": version,
                **extra,
                "dist": {
                    "integrity": sri(data),
                    "tarball": f"{server.url}{name}/-/{name.rpartition('/')[2]}-{version}.tgz",
                },
            }
        },
    }
    server.routes[f"/{name.replace('/', '%2F')}"] = [
        (200, {"Content-Type": "application/json"}, json.dumps(doc).encode())
    ]
    server.routes[f"/{name}/-/{name.rpartition('/')[2]}-{version}.tgz"] = [(200, {}, data)]
    return data


def lockfile(folder: Path, pins: dict[str, bytes]) -> Path:
    packages = {"": {"name": "app"}}
    for key, data in pins.items():
        name, _, version = key.rpartition("@")
        packages[f"node_modules/{name}"] = {
            "version": version,
            "integrity": sri(data),
            "resolved": f"https://elsewhere.example/{name}/-/{name.rpartition('/')[2]}-{version}.tgz",
        }
    path = folder / "package-lock.json"
    path.write_text(json.dumps({"name": "app", "lockfileVersion": 3, "packages": packages}, indent=2))
    return path


def mirror(lock: Path, url: str, into: Path, *extra: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "staticreg", "mirror", str(lock), "--upstream", url, "--into", str(into), *extra],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


def test_busy_upstream_is_retried_with_backoff(upstream, tmp_path):
    data = package(upstream, tmp_path / "src", "busy")
    upstream.routes["/busy"] = [(503, {}, b"busy"), (500, {}, b"oops")] + upstream.routes["/busy"]
    upstream.routes["/busy/-/busy-1.0.0.tgz"] = [(429, {"Retry-After": "0"}, b"slow down")] + upstream.routes[
        "/busy/-/busy-1.0.0.tgz"
    ]
    result = mirror(lockfile(tmp_path, {"busy@1.0.0": data}), upstream.url, tmp_path / "into")
    assert result.returncode == 0, result.stderr
    assert [p for p, _ in upstream.seen].count("/busy") == 3
    assert [p for p, _ in upstream.seen].count("/busy/-/busy-1.0.0.tgz") == 2
    assert (tmp_path / "into/busy/busy-1.0.0.tgz").read_bytes() == data


def test_hostile_answers_are_one_line_each_and_nothing_lands(upstream, other, tmp_path):
    pins = {}
    for name in ("notjson", "othername", "noversion", "huge", "short", "badmeta", "wrongbytes", "elsewhere"):
        pins[f"{name}@1.0.0"] = package(upstream, tmp_path / "src", name)
    upstream.routes["/notjson"] = [(200, {}, b"<html>hello</html>")]
    upstream.routes["/othername"] = [(200, {}, json.dumps({"name": "evil", "versions": {}}).encode())]
    upstream.routes["/noversion"] = [(200, {}, json.dumps({"name": "noversion", "versions": {"2.0.0": {}}}).encode())]
    upstream.routes["/huge/-/huge-1.0.0.tgz"] = [(200, {"Content-Length": str(2 << 30)}, b"")]
    upstream.routes["/short/-/short-1.0.0.tgz"] = [(200, {"Content-Length": "999999"}, b"only this")]
    doc = json.loads(upstream.routes["/badmeta"][0][2])
    doc["versions"]["1.0.0"]["os"] = ["linux; rm -rf /"]
    upstream.routes["/badmeta"] = [(200, {}, json.dumps(doc).encode())]
    upstream.routes["/wrongbytes/-/wrongbytes-1.0.0.tgz"] = [(200, {}, b"not the bytes")]
    # dist.tarball on another host: the upstream's own conventional path is used instead
    doc = json.loads(upstream.routes["/elsewhere"][0][2])
    doc["versions"]["1.0.0"]["dist"]["tarball"] = other.url + "stolen.tgz"
    upstream.routes["/elsewhere"] = [(200, {}, json.dumps(doc).encode())]
    into = tmp_path / "into"
    result = mirror(lockfile(tmp_path, pins), upstream.url, into, "--token", TOKEN, "--retries", "1")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    errors = sorted(line for line in result.stderr.splitlines() if line.startswith("error: "))
    says = {
        "notjson": "is not UTF-8 JSON",
        "othername": "answered with the document of 'evil'",
        "noversion": "has no version 1.0.0 of noversion",
        "huge": "more than the 1073741824 allowed",
        "short": "cannot be fetched",
        "badmeta": "not a list of platform names",
        "wrongbytes": "wrongbytes@1.0.0: the upstream's tarball does not match: expected sha512-",
    }
    assert len(errors) == len(says), result.stderr
    for name, text in says.items():
        assert any(name in line and text in line for line in errors), (name, errors)
    assert all(line.startswith(f"error: {tmp_path / 'package-lock.json'}:") for line in errors), errors
    assert sorted(p.relative_to(into).as_posix() for p in into.rglob("*.tgz")) == ["elsewhere/elsewhere-1.0.0.tgz"]
    assert other.seen == []
    assert TOKEN not in result.stdout + result.stderr


def test_token_goes_to_the_upstream_only_never_through_a_redirect(upstream, other, tmp_path):
    data = package(upstream, tmp_path / "src", "@s/moved")
    other.routes["/blob"] = [(200, {}, data)]
    upstream.routes["/@s/moved/-/moved-1.0.0.tgz"] = [(302, {"Location": other.url + "blob"}, b"")]
    home = tmp_path / "home"
    home.mkdir()
    host = upstream.url.split("//")[1]
    (home / ".npmrc").write_text(f"//{host}:_authToken=${{MIRROR_TOKEN}}\n//127.0.0.1:9/:_authToken=wrong\n")
    env = {k: v for k, v in os.environ.items() if not k.lower().startswith("npm_config_")}
    env.update(HOME=str(home), MIRROR_TOKEN=TOKEN)
    env.pop("STATICREG_UPSTREAM_TOKEN", None)
    result = mirror(
        lockfile(tmp_path, {"@s/moved@1.0.0": data}),
        upstream.url,
        tmp_path / "into",
        "--report",
        str(tmp_path / "r.json"),
        env=env,
    )
    assert result.returncode == 0, result.stderr
    assert {auth for _, auth in upstream.seen} == {f"Bearer {TOKEN}"}
    assert other.seen == [("/blob", None)]
    assert TOKEN not in result.stdout + result.stderr + (tmp_path / "r.json").read_text()


def test_unauthorized_says_how_to_give_a_token(upstream, tmp_path):
    data = package(upstream, tmp_path / "src", "private")
    upstream.routes["/private"] = [(401, {}, b"{}")]
    env = {**os.environ, "HOME": str(tmp_path)}
    env.pop("STATICREG_UPSTREAM_TOKEN", None)
    result = mirror(lockfile(tmp_path, {"private@1.0.0": data}), upstream.url, tmp_path / "into", env=env)
    assert result.returncode == 1
    assert "401 from the upstream; give a token with --token or in your .npmrc" in result.stderr


def test_a_killed_run_leaves_no_partial_tarball_and_a_rerun_completes(upstream, tmp_path):
    pins = {f"slow{i}@1.0.0": package(upstream, tmp_path / "src", f"slow{i}") for i in range(12)}
    started = threading.Event()

    def slowly(data):
        def answer(handler):
            handler.send_response(200)
            handler.send_header("Content-Length", str(len(data)))
            handler.end_headers()
            try:
                handler.wfile.write(data[:100])
                handler.wfile.flush()
                started.set()
                upstream.stopping.wait(30)
                handler.wfile.write(data[100:])
            except OSError:
                pass

        return answer

    for i in range(6, 12):  # half arrive at once, half hang midway
        upstream.routes[f"/slow{i}/-/slow{i}-1.0.0.tgz"] = [slowly(pins[f"slow{i}@1.0.0"])]
    lock = lockfile(tmp_path, pins)
    into = tmp_path / "into"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "staticreg",
            "mirror",
            str(lock),
            "--upstream",
            upstream.url,
            "--into",
            str(into),
            "-j",
            "4",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert started.wait(60)
        time.sleep(0.5)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    for tarball in into.rglob("*.tgz"):
        if ".staticreg-mirror-partial" in tarball.parts:
            continue
        name = tarball.parent.name
        assert tarball.read_bytes() == pins[f"{name}@1.0.0"], tarball  # complete, or not there at all
    partial_names = {p.name for p in into.rglob("*.tgz")}
    assert len(partial_names) < 12
    for i in range(6, 12):
        upstream.routes[f"/slow{i}/-/slow{i}-1.0.0.tgz"] = [(200, {}, pins[f"slow{i}@1.0.0"])]
    before = len(upstream.seen)
    result = mirror(lock, upstream.url, into, "--report", str(tmp_path / "r.json"))
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["already_present"] + len(report["fetched"]) == 12 and report["already_present"] >= 1
    fetched_again = [p for p, _ in upstream.seen[before:] if p.endswith(".tgz")]
    assert len(fetched_again) == len(report["fetched"])
    assert not (into / ".staticreg-mirror-partial").exists()
    for key, data in pins.items():
        name = key.split("@")[0]
        assert (into / name / f"{name}-1.0.0.tgz").read_bytes() == data
        assert upstream_meta.load(into / name / f"{name}-1.0.0.tgz.upstream.json").integrity == sri(data)


def test_two_runs_into_one_folder_the_second_is_refused(upstream, tmp_path):
    import fcntl

    data = package(upstream, tmp_path / "src", "once")
    into = tmp_path / "into"
    into.mkdir()
    with open(into / ".staticreg-mirror.lock", "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        result = mirror(lockfile(tmp_path, {"once@1.0.0": data}), upstream.url, into)
    assert result.returncode == 1
    assert f"Error: {into}: another staticreg mirror is writing into it; wait for it to end" in result.stderr
    assert upstream.seen == []


def test_settings_mistakes_are_one_line_before_any_request(upstream, tmp_path):
    data = package(upstream, tmp_path / "src", "x")
    lock = lockfile(tmp_path, {"x@1.0.0": data})
    (tmp_path / "bun.lockb").write_bytes(b"#!/usr/bin/env bun\nbun-lockfile-format-v0\n\x00\x01")
    cases = [
        ([str(tmp_path / "bun.lockb")], "bun install --save-text-lockfile --frozen-lockfile --lockfile-only"),
        (
            [str(lock), "--yarn-lock-out", str(tmp_path / "y.lock")],
            "--yarn-lock-out needs exactly one yarn 1 yarn.lock",
        ),
    ]
    for args, says in cases:
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "staticreg",
                "mirror",
                *args,
                "--upstream",
                upstream.url,
                "--into",
                str(tmp_path / "into"),
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 1 and says in result.stderr and "Traceback" not in result.stderr, result.stderr
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "staticreg",
            "mirror",
            str(lock),
            "--upstream",
            "ftp://x/",
            "--into",
            str(tmp_path / "into"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2 and "--upstream" in result.stderr
    assert upstream.seen == []
