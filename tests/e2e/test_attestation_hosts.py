"""A mirrored version's attestation bundle (/-/npm/v1/attestations/NAME@VERSION, which
npm fetches from the registry it installs from) is served as JSON by every configured
host and the dev server, whatever the version's last part looks like ("1.0.0-rc.html")."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from staticreg.build.reader import read_tarball
from staticreg.npm import upstream_meta
from tests.e2e import hosts
from tests.e2e.servers import fetch, free_port
from tests.helpers import make_tarball

pytestmark = pytest.mark.e2e
BUNDLE = {"attestations": [{"predicateType": "https://slsa.dev/provenance/v1", "bundle": {"<b>": "not html"}}]}
PATHS = ("-/npm/v1/attestations/@s/tricky@1.0.0-rc.html", "-/npm/v1/attestations/plain@2.0.0")


@pytest.fixture(scope="module")
def input_dir(scratch):
    folder = scratch / "input"
    for name, version in (("@s/tricky", "1.0.0-rc.html"), ("plain", "2.0.0")):
        path = make_tarball(folder, {"name": name, "version": version})
        record = read_tarball(path, path.name)
        upstream_meta.sidecar_path(path).write_text(
            json.dumps(
                {
                    "name": name,
                    "version": version,
                    "integrity": record.integrity,
                    "time": "2020-01-01T00:00:00.000Z",
                    "attestations": {"url": f"https://upstream.example/{PATHS[0]}", "provenance": {}},
                    "attestation_bundle": BUNDLE,
                }
            )
        )
    return folder


def built(input_dir, output, base_url):
    result = subprocess.run(
        [sys.executable, "-m", "staticreg", "build", str(input_dir), "-o", str(output), "--base-url", base_url, "-q"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    return output


def check(url: str) -> None:
    for path in PATHS:
        status, headers, body = fetch(url + path)
        assert (status, headers.get("content-type"), json.loads(body)) == (200, "application/json", BUNDLE), path


@pytest.mark.parametrize(
    "host,prefix", [("nginx", "/"), ("nginx", "/npm/"), ("apache", "/"), ("caddy", "/"), ("caddy", "/npm/")]
)
def test_configured_hosts_serve_the_bundle_as_json(scratch, input_dir, host, prefix):
    port = free_port()
    tag = f"{host}{prefix.replace('/', '-')}"
    output = built(input_dir, scratch / f"out-{tag}", f"http://127.0.0.1:{port}{prefix}")
    start = {"nginx": hosts.nginx, "apache": hosts.apache, "caddy": hosts.caddy}[host]
    with hosts.running(start(output, scratch / f"state-{tag}", port, prefix=prefix)) as server:
        check(server.url(prefix))


def test_s3_serves_the_bundle_as_json(scratch, input_dir):
    with hosts.running(hosts.moto(scratch / "state-moto", free_port())) as server:
        url = hosts.s3_registry_url(server)
        output = built(input_dir, scratch / "out-s3", url)
        hosts.make_bucket(server)
        result = hosts.staticreg_deploy(output, server)
        assert result.returncode == 0, result.stderr
        check(url)


def test_the_dev_server_serves_the_bundle_as_json(scratch, input_dir):
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "staticreg", "serve", str(input_dir), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        hosts.wait_for(port, process, timeout=30)
        deadline = time.monotonic() + 30
        while fetch(f"http://127.0.0.1:{port}/plain")[0] != 200 and time.monotonic() < deadline:
            time.sleep(0.2)
        check(f"http://127.0.0.1:{port}/")
        # a sidecar the mirror rewrites is followed like a tarball
        sidecar = upstream_meta.sidecar_path(input_dir / "plain-2.0.0.tgz")
        data = json.loads(sidecar.read_text())
        tmp = sidecar.with_name(".new")
        tmp.write_text(json.dumps({**data, "deprecated": "said upstream"}))
        os.replace(tmp, sidecar)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            doc = json.loads(fetch(f"http://127.0.0.1:{port}/plain")[2])
            if doc["versions"]["2.0.0"].get("deprecated") == "said upstream":
                break
            time.sleep(0.2)
        assert doc["versions"]["2.0.0"].get("deprecated") == "said upstream"
        os.replace(sidecar, tmp)  # as it was, for the other tests
        tmp.write_text(json.dumps(data))
        os.replace(tmp, sidecar)
    finally:
        process.terminate()
        process.wait(10)
