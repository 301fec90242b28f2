"""Private registries, proven with the real clients against real servers on 127.0.0.1:
nginx, Apache and Caddy with the configuration `staticreg server-config --tokens
--htpasswd` writes, each serving one build of the matrix's fixture (scoped and
unscoped packages). Each client installs with a token (npm and pnpm also with a
user and password); with no credentials and with a wrong token each one fails,
and says so in words of authentication, not of a missing package. Every kind of
URL is refused without credentials; `staticreg check --token` agrees; the dev
server refuses a publish without a credential."""

from __future__ import annotations

import base64
import json
import re
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from staticreg.hosting import auth
from tests.e2e import hosts
from tests.e2e.clients import client
from tests.e2e.hosts import run_check
from tests.e2e.npm import Npm, make_project, pack
from tests.e2e.project import build, check_installed, new_project
from tests.e2e.servers import Serve, free_port, start_nginx

pytestmark = pytest.mark.e2e

TOKEN = "ci-token-0123456789abcdef0123"
WRONG = "ci-token-0123456789abcdef0124"
USER, PASSWORD = "dev", "dev-password-42"
PACKAGE = "@fixture/hello"  # a scoped package of the fixture; demo-utils an unscoped one

# (client, host, case): every client on nginx; npm, pnpm and yarn 4 on Apache and Caddy.
CASES = ("token", "none", "wrong")
MATRIX = [(name, "nginx", case) for name in ("npm", "pnpm", "yarn1", "yarn4", "bun") for case in CASES]
MATRIX += [("npm", "nginx", "basic"), ("pnpm", "nginx", "basic")]
MATRIX += [(name, host, case) for host in ("apache", "caddy") for name in ("npm", "pnpm", "yarn4") for case in CASES]
MATRIX += [("npm", "apache", "basic")]
# The pitfall docs/hosting.md warns of: yarn sends a token for scoped packages only
# unless always-auth (yarn 1) or npmAlwaysAuth (yarn 4) is set.
MATRIX += [("yarn1", "nginx", "token-scoped-only"), ("yarn4", "nginx", "token-scoped-only")]
# What a failed install must say (each client's own words for a 401; yarn 1 prints
# the "error" of the body), and must not.
SPEAKS_OF_AUTH = {
    "npm": re.compile(r"npm error code E401\n"),
    "pnpm": re.compile(r"ERR_PNPM_FETCH_401\s+GET http://\S+: Unauthorized - 401"),
    "yarn1": re.compile(r"error Error: http://\S+: authentication required: this registry is private"),
    "yarn4": re.compile(r"YN0041: .*Invalid authentication \(as an (anonymous|unknown) user\)"),
    "bun": re.compile(r"error: GET http://\S+ - 401"),
}
SPEAKS_OF_MISSING = re.compile(
    r"not found|not in this registry|couldn't find|\b404\b|no matching version", re.IGNORECASE
)


@pytest.fixture(scope="module")
def credentials(scratch) -> dict[str, auth.Credentials]:
    """The same token everywhere; the user's password as apr1 (nginx, Apache) and bcrypt (Caddy)."""
    tokens = scratch / "tokens.txt"
    tokens.write_text(f"# the CI's token\nci: {TOKEN}\n")
    apr1 = subprocess.run(
        ["openssl", "passwd", "-apr1", PASSWORD], capture_output=True, text=True, check=True
    ).stdout.strip()
    bcrypt = (
        subprocess.run(["caddy", "hash-password", "--plaintext", PASSWORD], capture_output=True, text=True, check=True)
        .stdout.strip()
        .splitlines()[-1]
    )
    (scratch / "htpasswd").write_text(f"{USER}:{apr1}\n")
    (scratch / "htpasswd-bcrypt").write_text(f"{USER}:{bcrypt}\n")
    return {
        "nginx": auth.load(tokens, scratch / "htpasswd"),
        "apache": auth.load(tokens, scratch / "htpasswd"),
        "caddy": auth.load(tokens, scratch / "htpasswd-bcrypt"),
    }


@pytest.fixture(scope="module")
def registry(request, scratch, matrix_input, credentials):
    """(host, registry URL): one build and one private server per host."""
    host = request.param
    port = free_port()
    output = build(matrix_input, scratch / f"registry-{host}", f"http://127.0.0.1:{port}/", scratch)
    start = {"nginx": hosts.nginx, "apache": hosts.apache, "caddy": hosts.caddy}[host]
    with hosts.running(start(output, scratch / f"state-{host}", port, credentials=credentials[host])) as server:
        yield host, server.url("/")


def configure(user, name: str, case: str, url: str) -> None:
    """The client's own lines for a credential, as docs/hosting.md gives them: the
    secret in an environment variable (NPM_TOKEN, or NPM_AUTH for Basic), as in CI."""
    if case == "none":
        return
    token = {"token": TOKEN, "wrong": WRONG, "token-scoped-only": TOKEN}.get(case)
    always = case != "token-scoped-only"
    nerf = "//" + url.split("://", 1)[1]
    secret = {"NPM_TOKEN": token} if token else {"NPM_AUTH": base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()}
    user.env = lambda env=user.env: {**env(), **secret}
    if name in ("npm", "pnpm", "yarn1"):
        line = f"{nerf}:_authToken=${{NPM_TOKEN}}\n" if token else f"{nerf}:_auth=${{NPM_AUTH}}\n"
        with (user.home / ".npmrc").open("a") as f:
            f.write(line + ("always-auth=true\n" if name == "yarn1" and always else ""))
    elif name == "yarn4":
        user.extra_settings = 'npmAuthToken: "${NPM_TOKEN}"\n' + ("npmAlwaysAuth: true\n" if always else "")
    elif name == "bun":

        def prepare(project: Path) -> None:
            (project / "bunfig.toml").write_text(
                f'[install]\nregistry = {{ url = "{url}", token = "$NPM_TOKEN" }}\nsaveTextLockfile = true\n'
            )

        user.prepare = prepare
    assert name != "bun" or token, "bun's Basic is not in the matrix"


@pytest.mark.parametrize(
    "name,registry,case", MATRIX, ids=[f"{n}-{h}-{c}" for n, h, c in MATRIX], indirect=["registry"]
)
def test_install(name, registry, case, scratch):
    host, url = registry
    user = client(name, scratch / f"client-{name}-{host}-{case}", url)
    configure(user, name, case, url)
    project = new_project(scratch / f"project-{name}-{host}-{case}")
    result = user.install(project, check=case in ("token", "basic"))
    output = result.stdout + result.stderr
    if case in ("token", "basic"):
        check_installed(project)
        return
    assert result.returncode != 0, output
    assert SPEAKS_OF_AUTH[name].search(output), output
    assert not SPEAKS_OF_MISSING.search(output), output
    assert TOKEN not in output and WRONG not in output


def get(url: str, authorization: str | None = None, accept: str | None = None):
    headers = {k: v for k, v in (("Authorization", authorization), ("Accept", accept)) if v}
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(urllib.request.Request(url, headers=headers), timeout=10) as answer:
            return answer.status, {k.lower(): v for k, v in answer.headers.items()}, answer.read()
    except urllib.error.HTTPError as exc:
        return exc.code, {k.lower(): v for k, v in exc.headers.items()}, exc.read()


KINDS = {  # every kind of URL the registry serves, and one it does not
    "document": ("@fixture%2fhello", None),
    "document (pnpm's %2F)": ("@fixture%2Fhello", None),
    "abbreviated document": (
        "@fixture%2fhello",
        "application/vnd.npm.install-v1+json; q=1.0, application/json; q=0.8, */*",
    ),
    "unscoped document": ("demo-utils", None),
    "version document": ("demo-utils/1.2.0", None),
    "tag document": ("demo-utils/latest", None),
    "dist-tags": ("-/package/demo-utils/dist-tags", None),
    "tarball": ("@fixture/hello/-/hello-1.0.0.tgz", None),
    "tarball (yarn 4's %2f)": ("@fixture%2fhello/-/hello-1.0.0.tgz", None),
    "unscoped tarball": ("demo-utils/-/demo-utils-1.2.0.tgz", None),
    "ping": ("-/ping", None),
    "home page": ("", None),
    "package page": ("-/web/package/@fixture/hello/", None),
    "404 page": ("404.html", None),
    "asset": ("-/web/assets/style.css", None),
    "search index": ("-/web/search-index.json", None),
}


@pytest.mark.parametrize("registry", ["nginx", "apache", "caddy"], indirect=True)
def test_every_kind_of_url_is_401_without_credentials(registry):
    _host, url = registry
    basic = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    for kind, (path, accept) in {**KINDS, "missing package": ("no-such-package", None)}.items():
        for given in (
            None,
            f"Bearer {WRONG}",
            f"bearer {TOKEN}",
            "Basic " + base64.b64encode(f"{USER}:wrong".encode()).decode(),
        ):
            status, headers, body = get(url + path, given, accept)
            assert status == 401, (kind, given, status)
            assert headers["www-authenticate"] == f'Basic realm="{auth.REALM}"', kind
            assert headers["content-type"].startswith("application/json"), kind
            assert isinstance(json.loads(body)["error"], str), kind
            assert b"fixture" not in body and b"demo" not in body
        if kind == "missing package":
            continue
        for given in (f"Bearer {TOKEN}", basic):
            status, headers, _ = get(url + path, given, accept)
            assert status == 200, (kind, given, status)
            assert "public" not in headers.get("cache-control", "") and "private" in headers["cache-control"], kind
    assert (
        get(url + "no-such-package", f"Bearer {TOKEN}")[0] == 404
    )  # only a client with credentials learns it is missing


@pytest.mark.parametrize("registry", ["nginx", "apache", "caddy"], indirect=True)
def test_check_with_a_token_finds_nothing_wrong(registry):
    _, url = registry
    result = run_check(url, "--all", "--token", TOKEN)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines()[-1] == f"Checked 8 packages and 12 tarballs at {url}: 0 problems."
    user = run_check(url, "--user", f"{USER}:{PASSWORD}")
    assert user.returncode == 0, user.stdout + user.stderr
    anonymous = run_check(url)
    assert anonymous.returncode == 1 and "is private (it answers 401): give --token" in anonymous.stderr
    wrong = run_check(url, "--token", WRONG)
    assert wrong.returncode == 1 and "refuses the credential given" in wrong.stderr
    assert TOKEN not in result.stdout + user.stdout + anonymous.stderr + wrong.stderr


def test_check_with_a_token_reports_a_registry_left_public(scratch, matrix_input):
    port = free_port()
    output = build(matrix_input, scratch / "registry-public", f"http://127.0.0.1:{port}/", scratch)
    with hosts.running(start_nginx(output, scratch / "state-public", port)) as server:
        result = run_check(server.url("/"), "--token", TOKEN)
    assert result.returncode == 1
    problems = [line for line in result.stdout.splitlines() if line.startswith("problem: ")]
    kinds = {re.search(r": the (.+?) (is served|answers)", line).group(1) for line in problems}
    assert {
        "ping",
        "document",
        "abbreviated document",
        "version document",
        "dist-tags",
        "tarball",
        "site page",
        "package page",
        "asset",
        "search index",
        "missing file",
    } <= kinds
    assert "a shared cache may keep it" in result.stdout


def test_dev_server_with_tokens_refuses_reads_and_publishes_without_credential(scratch, tmp_path):
    input_dir = tmp_path / "input"
    input_dir.mkdir()
    tokens = tmp_path / "tokens.txt"
    tokens.write_text(f"ci: {TOKEN}\n")
    server = Serve(input_dir, tmp_path, "--tokens", str(tokens))
    try:
        assert "private: every request needs a credential" in server.out.read_text()
        status, headers, _body = get(server.url + "-/ping")
        assert (status, headers["www-authenticate"]) == (401, f'Basic realm="{auth.REALM}"')
        assert get(server.url + "-/ping", f"Bearer {TOKEN}")[0] == 200
        source = pack(
            tmp_path / "src",
            tmp_path / "packed",
            {"name": "@acme/private-pkg", "version": "1.0.0"},
            {"index.js": "module.exports = 1\n"},
        )
        package = source.parent.parent / "src"
        # npm itself will not publish with no credential at all (ENEEDAUTH): what it
        # would send, sent without one.
        data = base64.b64encode(source.read_bytes()).decode()
        document = {
            "_id": "@acme/private-pkg",
            "name": "@acme/private-pkg",
            "dist-tags": {"latest": "1.0.0"},
            "versions": {"1.0.0": {"name": "@acme/private-pkg", "version": "1.0.0"}},
            "_attachments": {
                "@acme/private-pkg-1.0.0.tgz": {
                    "content_type": "application/octet-stream",
                    "data": data,
                    "length": source.stat().st_size,
                }
            },
        }
        request = urllib.request.Request(
            server.url + "@acme%2fprivate-pkg",
            data=json.dumps(document).encode(),
            method="PUT",
            headers={"Content-Type": "application/json"},
        )
        with pytest.raises(urllib.error.HTTPError) as anonymous:
            urllib.request.build_opener(urllib.request.ProxyHandler({})).open(request, timeout=30)
        assert anonymous.value.code == 401 and "needs a token" in json.loads(anonymous.value.read())["error"]
        assert list(input_dir.glob("**/*.tgz")) == []
        wrong = Npm(tmp_path / "wrong", server.url)
        with (wrong.home / ".npmrc").open("a") as f:
            f.write(f"//127.0.0.1:{server.port}/:_authToken={WRONG}\n")
        refused = wrong.run("publish", "--registry", server.url, cwd=package, check=False)
        assert refused.returncode != 0 and "E401" in refused.stderr, refused.stderr
        assert list(input_dir.glob("**/*.tgz")) == []
        holder = Npm(tmp_path / "holder", server.url)
        with (holder.home / ".npmrc").open("a") as f:
            f.write(f"//127.0.0.1:{server.port}/:_authToken={TOKEN}\n")
        holder.run("publish", "--registry", server.url, cwd=package)
        assert [p.name for p in input_dir.glob("**/*.tgz")] == ["private-pkg-1.0.0.tgz"]
        project = make_project(tmp_path / "project", {"@acme/private-pkg": "1.0.0"})
        holder.run("install", "--no-audit", cwd=project)
        assert (project / "node_modules/@acme/private-pkg/index.js").is_file()
    finally:
        server.stop()
    assert TOKEN not in server.out.read_text() + server.err.read_text()


def test_dev_server_refuses_a_hostile_tokens_file(tmp_path):
    tokens = tmp_path / "tokens.txt"
    tokens.write_text("ci: 0123456789abcdef\nevil: 0123456789abcdef}\n")
    result = subprocess.run(
        [*__import__("tests.process", fromlist=["CLI"]).CLI, "serve", str(tmp_path), "--tokens", str(tokens)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 1 and result.stderr.startswith(f"Error: {tokens}:2: evil's token holds '}}'")
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("registry", ["nginx"], indirect=True)
def test_a_browser_with_basic_credentials_loads_the_site_and_searches(registry):
    from tests.e2e.browser import Browser

    _, url = registry
    b = Browser()
    try:
        b.get(url)  # no credentials: headless Chromium shows nothing of the registry
        assert "fixture" not in b.driver.page_source
        assert any("status of 401" in error for error in b.console_errors())
        b.get(url.replace("http://", f"http://{USER}:{PASSWORD}@"))  # what a user types into the browser's prompt
        assert "@fixture/hello" in b.texts("#listing .package-name")
        search = b.css("#q")
        search.click()
        search.send_keys("hello")  # fetches the search index, with the browser's cached credentials
        b.wait(lambda d: b.texts("#search-list .package-name") == ["@fixture/hello"])
        b.css("#search-list .package-name").click()
        b.wait(lambda d: d.current_url.endswith("/-/web/package/@fixture/hello/"))
        assert b.css("h1").text.startswith("@fixture/hello")
        b.screenshot("private-package")
        assert b.console_errors() == []
        # the page's own requests carry the credentials; without them the same URL is refused
        script = "return fetch(arguments[0], {credentials: arguments[1], cache: 'no-store'}).then(r => r.status)"
        index = url + "-/web/search-index.json"
        assert [b.driver.execute_script(script, index, mode) for mode in ("same-origin", "omit")] == [200, 401]
    finally:
        b.quit()


def test_dev_server_with_htpasswd_takes_its_users(tmp_path):
    input_dir = tmp_path / "input"
    input_dir.mkdir()
    apr1 = subprocess.run(
        ["openssl", "passwd", "-apr1", PASSWORD], capture_output=True, text=True, check=True
    ).stdout.strip()
    sha512 = subprocess.run(
        ["openssl", "passwd", "-6", PASSWORD], capture_output=True, text=True, check=True
    ).stdout.strip()
    htpasswd = tmp_path / "htpasswd"
    htpasswd.write_text(f"{USER}:{apr1}\nother:{sha512}\n")
    server = Serve(input_dir, tmp_path, "--htpasswd", str(htpasswd))
    try:
        basic = lambda pair: "Basic " + base64.b64encode(pair.encode()).decode()  # noqa: E731
        assert get(server.url + "-/ping", basic(f"{USER}:{PASSWORD}"))[0] == 200
        assert get(server.url + "-/ping", basic(f"other:{PASSWORD}"))[0] == 200
        for refused in (None, basic(f"{USER}:wrong"), basic(f"nobody:{PASSWORD}"), f"Bearer {TOKEN}"):
            assert get(server.url + "-/ping", refused)[0] == 401
            assert get(server.url + "no-such-package", refused)[0] == 401
    finally:
        server.stop()


def test_check_sends_the_credential_to_the_registrys_origin_only():
    """A redirect to another host (a CDN, a presigned URL) gets no Authorization from check."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from staticreg.hosting import check

    seen: dict[int, list] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            port = self.server.server_address[1]
            seen.setdefault(port, []).append(self.headers.get("Authorization"))
            if port == registry.server_address[1]:
                self.send_response(302)
                self.send_header("Location", f"http://127.0.0.1:{elsewhere.server_address[1]}/file.tgz")
            else:
                self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    registry, elsewhere = ThreadingHTTPServer(("127.0.0.1", 0), Handler), ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    for server in (registry, elsewhere):
        threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{registry.server_address[1]}/"
        token = check._CREDENTIAL.set((check._origin(url), f"Bearer {TOKEN}"))
        try:
            assert check.fetch(url + "a/-/a-1.0.0.tgz").status == 200
        finally:
            check._CREDENTIAL.reset(token)
    finally:
        registry.shutdown()
        elsewhere.shutdown()
    assert seen == {registry.server_address[1]: [f"Bearer {TOKEN}"], elsewhere.server_address[1]: [None]}
