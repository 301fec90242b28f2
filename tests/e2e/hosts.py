"""The hosts of the client x host matrix, each started for real on 127.0.0.1 with
the configuration staticreg writes: nginx, Apache httpd, Caddy, python -m
http.server, and moto's S3-compatible server filled by `staticreg deploy`; a scratch
folder their workers can read, and `staticreg check` (run_check) against any of them."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from staticreg.hosting import server_config
from tests.e2e.servers import Server, start_http_server, start_nginx, wait_for

APACHE = "/usr/sbin/apache2"
BUCKET = "registry"
S3_PREFIX = "npm"
# The policy docs/hosting.md gives: anyone may read, only the deployer writes.
PUBLIC_READ = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{BUCKET}/*"}
    ],
}


@contextlib.contextmanager
def running(server: Server):
    try:
        yield server
    finally:
        server.stop()


@contextlib.contextmanager
def readable_scratch():
    """A scratch folder Apache's unprivileged workers can read (pytest's own is
    private to its user), removed at the end."""
    folder = Path(tempfile.mkdtemp(prefix="staticreg-e2e-"))
    folder.chmod(0o755)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def nginx(root: Path, state_dir: Path, port: int, prefix: str = "/", edit=None, credentials=None) -> Server:
    """nginx with staticreg's configuration; `edit` changes its text (to break it)."""
    return start_nginx(root, state_dir, port, prefix=prefix, edit=edit, credentials=credentials)


def http_server(root: Path, port: int) -> Server:
    return start_http_server(root, port)


def apache(root: Path, state_dir: Path, port: int, prefix: str = "/", edit=None, credentials=None) -> Server:
    if not os.path.exists(APACHE):
        raise RuntimeError("Apache is not installed: scripts/setup --test installs apache2-bin")
    state_dir.mkdir(parents=True, exist_ok=True)
    conf = state_dir / "httpd.conf"
    user = "nobody" if os.geteuid() == 0 else None
    text = server_config.apache(
        root,
        listen=f"127.0.0.1:{port}",
        prefix=prefix,
        standalone=True,
        state_dir=state_dir,
        user=user,
        group="nogroup",
        credentials=credentials,
    )
    conf.write_text(edit(text) if edit else text)
    check = subprocess.run([APACHE, "-t", "-f", str(conf)], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    process = subprocess.Popen([APACHE, "-f", str(conf), "-DFOREGROUND"], stderr=subprocess.DEVNULL)
    wait_for(port, process)
    return Server(process, port, state_dir / "access.log")


def caddy(root: Path, state_dir: Path, port: int, prefix: str = "/", credentials=None) -> Server:
    binary = shutil.which("caddy")
    if not binary:
        raise RuntimeError("Caddy is not installed: scripts/setup --test installs it")
    state_dir.mkdir(parents=True, exist_ok=True)
    conf = state_dir / "Caddyfile"
    conf.write_text(
        server_config.caddy(
            root,
            address=f"http://127.0.0.1:{port}",
            prefix=prefix,
            standalone=True,
            state_dir=state_dir,
            credentials=credentials,
        )
    )
    env = {**os.environ, "HOME": str(state_dir), "XDG_DATA_HOME": str(state_dir), "XDG_CONFIG_HOME": str(state_dir)}
    process = subprocess.Popen(
        [binary, "run", "--adapter", "caddyfile", "--config", str(conf)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_for(port, process)
    return Server(process, port, state_dir / "access.log")


def moto(state_dir: Path, port: int) -> Server:
    """moto in server mode: an S3-compatible object store on 127.0.0.1."""
    state_dir.mkdir(parents=True, exist_ok=True)
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=s3_env(),
    )
    wait_for(port, process, timeout=30)
    return Server(process, port)


def s3_env() -> dict[str, str]:
    """Credentials for the test server only; no other S3 is reachable."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
    )
    return env


def s3_registry_url(server: Server) -> str:
    """Path-style URL of the deployed registry: http://127.0.0.1:PORT/bucket/prefix/."""
    return server.url(f"/{BUCKET}/{S3_PREFIX}/")


def make_bucket(server: Server) -> None:
    import boto3

    saved = dict(os.environ)
    os.environ.update(s3_env())
    try:
        s3 = boto3.client("s3", endpoint_url=server.url())
        s3.create_bucket(Bucket=BUCKET)
        s3.put_bucket_policy(Bucket=BUCKET, Policy=json.dumps(PUBLIC_READ))
    finally:
        os.environ.clear()
        os.environ.update(saved)


def bucket_keys(server: Server, prefix: str) -> set[str]:
    """Every key under `prefix` ("npm/") in the test bucket."""
    import boto3

    saved = dict(os.environ)
    os.environ.update(s3_env())
    try:
        s3 = boto3.client("s3", endpoint_url=server.url())
        pages = s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
        return {item["Key"] for page in pages for item in page.get("Contents", [])}
    finally:
        os.environ.clear()
        os.environ.update(saved)


def registry_keys(registry: Path, prefix: str) -> set[str]:
    """The keys a built registry has in a store under `prefix` (what deploy uploads)."""
    from staticreg.npm import layout

    paths = {p.relative_to(registry).as_posix() for p in registry.rglob("*") if p.is_file()}
    return {prefix + key for key in layout.object_keys(paths)}


def dead_links(base_url: str, keys: set[str], prefix: str) -> list[str]:
    """Links of the site's pages in the store (as a browser follows them from the plain
    endpoint) that do not answer 200, or name an anchor the page does not have. Not the
    package page's link to the document's file, NAME/index.json: a store keeps the
    document at the key NAME alone (a known gap, as old as the link)."""
    import re
    import urllib.parse

    from tests.e2e.servers import fetch

    pages = sorted(k for k in keys if k.endswith((".html", "/")))
    dead, seen = [], {}
    for key in pages:
        page_url = base_url + urllib.parse.quote(key[len(prefix) :], safe="/@")
        status, _, body = fetch(page_url)
        if status != 200 or key.endswith("404.html"):
            continue
        for href in re.findall(r'href="([^"]*)"', body.decode("utf-8")):
            target = urllib.parse.urljoin(page_url, href.replace("&amp;", "&"))
            if not target.startswith(base_url) or target.endswith("/index.json"):
                continue
            where, _, anchor = target.partition("#")
            if where not in seen:
                seen[where] = fetch(where)
            status, _, text = seen[where]
            if status != 200 or (anchor and f'id="{anchor}"'.encode() not in text):
                dead.append(f"{key} -> {href}")
    return dead


def staticreg_deploy(registry: Path, server: Server, *flags: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "staticreg",
            "deploy",
            str(registry),
            f"s3://{BUCKET}/{S3_PREFIX}",
            "--endpoint-url",
            server.url(),
            "--verbose",
            *flags,
        ],
        capture_output=True,
        text=True,
        env=s3_env(),
    )


def run_check(url: str, *flags: str) -> subprocess.CompletedProcess:
    """`staticreg check URL FLAGS`: what the registry a host serves gets wrong."""
    return subprocess.run([sys.executable, "-m", "staticreg", "check", url, *flags], capture_output=True, text=True)


def deploy_to_s3(server: Server, input_dir: Path, scratch: Path) -> str:
    """Build for the bucket's URL, create the bucket, deploy: the registry URL."""
    from tests.e2e.project import build

    url = s3_registry_url(server)
    registry = build(input_dir, scratch / "registry-s3", url, scratch)
    make_bucket(server)
    result = staticreg_deploy(registry, server)
    assert result.returncode == 0, result.stderr
    return url
