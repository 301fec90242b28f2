"""The tokens and htpasswd files: read strictly, every hostile line refused with the
file and line (through the real CLI, no traceback), and the tokens in what
`server-config` writes only where they belong."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess

import pytest

from staticreg.errors import ConfigError
from staticreg.hosting import auth, cloudfront, server_config
from tests.process import run_cli

TOKEN = "tok-0123456789abcdef"
APR1_BOB = "$apr1$abcdefgh$4kwWpt/ljvZMI.U5YgsaH/"  # 'pa ss:wörd' (openssl passwd -apr1 -salt abcdefgh)


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8") if isinstance(text, str) else text)
    return path


def test_a_tokens_file_with_comments_blank_lines_and_crlf(tmp_path):
    path = write(tmp_path, "tokens", f"# CI\n\nci: {TOKEN}\r\n  alice :  {'a' * 16}==  \n")
    tokens = auth.read_tokens(path)
    assert [(t.name, t.token, t.where) for t in tokens] == [
        ("ci", TOKEN, f"{path}:3"),
        ("alice", "a" * 16 + "==", f"{path}:4"),
    ]
    assert tokens[0].bearer == f"Bearer {TOKEN}"
    assert base64.b64decode(tokens[0].basic.split()[1]).decode() == f"ci:{TOKEN}"


HOSTILE_TOKENS = [
    ('ci: "tok-0123456789abcdef"', 1, "holds U+0022"),
    ("ci: tok-0123456789abcdef;", 1, "holds ';'"),
    ("ci: tok-0123456789abcdef}", 1, "holds '}'"),
    ("ci: tok-0123456789{abcdef", 1, "holds '{'"),
    ("ci: tok-01234567 89abcdef", 1, "holds ' '"),
    ("ci: tok-0123456789abcdef'", 1, "holds U+0027"),
    ("ci: tok-0123456789abcdef$x", 1, "holds '$'"),
    ("ci: tok-0123456789`abcdef", 1, "holds '`'"),
    ("ci: tok-0123456789\\abcdef", 1, "holds '\\\\'"),
    ("ci: tok-01234567\n89abcdef-more", 1, "needs at least 16"),  # a line break inside a token
    ("ci: tok-0123456789abcdef\n89abcdef-more", 2, "expected 'name: token'"),
    ("ci: tok-0123\r456789abcdef", 1, "U+000D"),
    ("ci: tok-0123456789abcdef\x00", 1, "U+0000"),
    ("ci: short-token", 1, "is 11 characters; a token needs at least 16"),
    ("ci: tok=0123456789abcdef", 1, "has '=' before its end"),
    ("c}i: tok-0123456789abcdef", 1, "the name is not allowed"),
    ("c i: tok-0123456789abcdef", 1, "the name is not allowed"),
    (": tok-0123456789abcdef", 1, "the name is not allowed"),
    ("ci:", 1, "ci has no token"),
    ("ci: tök-0123456789abcdef", 1, "plain ASCII only"),
    (f"ci: {TOKEN}\nci: {TOKEN}x", 2, "the name ci is already used at line 1"),
    (f"ci: {TOKEN}\ncd: {TOKEN}", 2, "the same as ci's"),
]


@pytest.mark.parametrize("text,line,message", HOSTILE_TOKENS, ids=[repr(t[0])[:40] for t in HOSTILE_TOKENS])
def test_hostile_tokens_files_are_refused_with_file_and_line(tmp_path, text, line, message):
    path = write(tmp_path, "tokens.txt", text + "\n")
    with pytest.raises(ConfigError) as refused:
        auth.read_tokens(path)
    assert refused.value.format_message().startswith(f"{path}:{line}: ")
    assert message in refused.value.format_message()
    assert "0123456789abcdef" not in refused.value.format_message()  # a token is never echoed


def test_empty_unreadable_and_binary_files(tmp_path):
    for text, message in (("# nothing\n\n", "holds no token"), (b"ci: \xff\xfe", ":1: not UTF-8")):
        with pytest.raises(ConfigError, match=message):
            auth.read_tokens(write(tmp_path, "t", text))
    with pytest.raises(ConfigError, match="cannot read"):
        auth.read_tokens(tmp_path / "missing")
    with pytest.raises(ConfigError, match="holds no user"):
        auth.read_htpasswd(write(tmp_path, "h", "\n# x\n"))


BCRYPT = "$2y$05$" + "abcdefghijklmnopqrstuv" + "A" * 31
HOSTILE_HTPASSWD = [
    ("bob}:" + APR1_BOB, "the user name is not allowed"),
    ('bo"b:' + APR1_BOB, "the user name is not allowed"),
    ("bob;x:" + APR1_BOB, "the user name is not allowed"),
    ("b ob:" + APR1_BOB, "the user name is not allowed"),
    ("bob:" + APR1_BOB + " ", "is not one the servers check"),
    ("bob:" + APR1_BOB + "}", "is not one the servers check"),
    ("bob:" + BCRYPT[:-1] + ";", "is not one the servers check"),
    ("bob:hunter2", "a plain-text password is never accepted"),
    ("bob", "expected 'user:hash'"),
    ("bob:" + APR1_BOB + "\nbob:" + BCRYPT, "the user bob is already at line 1"),
]


@pytest.mark.parametrize("text,message", HOSTILE_HTPASSWD, ids=[repr(t[0])[:30] for t in HOSTILE_HTPASSWD])
def test_hostile_htpasswd_files_are_refused_with_file_and_line(tmp_path, text, message):
    path = write(tmp_path, "htpasswd", text + "\n")
    with pytest.raises(ConfigError) as refused:
        auth.read_htpasswd(path)
    line = text.count("\n") + 1
    assert refused.value.format_message().startswith(f"{path}:{line}: ") and message in refused.value.format_message()


def test_htpasswd_formats_and_what_each_server_checks(tmp_path):
    sha = "{SHA}" + base64.b64encode(__import__("hashlib").sha1(b"pw").digest()).decode()
    path = write(tmp_path, "htpasswd", f"bob:{APR1_BOB}\ncarol:{BCRYPT}\ndave:{sha}\n")
    users = auth.read_htpasswd(path)
    assert [u.kind for u in users] == ["apr1", "bcrypt", "sha1"]
    credentials = auth.Credentials(users=users, htpasswd_file=path)
    with pytest.raises(ConfigError, match=rf"{path}:1: Caddy checks only bcrypt hashes, and bob's is apr1"):
        server_config.caddy(tmp_path, credentials=credentials)


def test_credentials_allow_exactly_the_listed_values():
    users = (auth.User("bob", APR1_BOB, "apr1", "h:1"),)
    credentials = auth.Credentials(tokens=(auth.Token("ci", TOKEN, "t:1"),), users=users)
    basic = lambda pair: "Basic " + base64.b64encode(pair.encode()).decode()  # noqa: E731
    assert credentials.allows(f"Bearer {TOKEN}")
    assert credentials.allows(basic(f"ci:{TOKEN}"))
    assert credentials.allows(basic("bob:pa ss:wörd"))
    for refused in (
        None,
        "",
        f"bearer {TOKEN}",
        f"Bearer {TOKEN.upper()}",
        f"Bearer {TOKEN}x",
        f"Bearer  {TOKEN}",
        basic("bob:wrong"),
        basic(f"alice:{TOKEN}"),
        "Basic !!!",
        basic("nobody"),
    ):
        assert not credentials.allows(refused), refused


def test_apr1_matches_openssl():
    if not shutil.which("openssl"):
        pytest.skip("openssl is not installed")
    for password, salt in (("pa ss:wörd", "abcdefgh"), ("x", "a"), ("a" * 40, "12345678")):
        made = subprocess.run(
            ["openssl", "passwd", "-apr1", "-salt", salt, password], capture_output=True, text=True, check=True
        )
        assert auth.apr1(password, salt) == made.stdout.strip()


def test_server_config_cli_refuses_a_hostile_tokens_file_without_traceback(tmp_path):
    path = write(tmp_path, "tokens.txt", f"ci: {TOKEN}\nevil: abcdefghijklmnop;}} location / {{\n")
    for command in (["nginx"], ["apache"], ["caddy"], ["cloudfront-function"]):
        result = run_cli(
            "server-config",
            *command,
            *(["--root", str(tmp_path)] if command != ["cloudfront-function"] else []),
            "--tokens",
            str(path),
        )
        assert result.returncode == 1, result.stderr
        assert result.stderr.strip() == f"Error: {path}:2: evil's token holds ';'; {auth._TOKEN_RULE}"
        assert "Traceback" not in result.stderr and result.stdout == ""
    htpasswd = write(tmp_path, "htpasswd", "ok:" + APR1_BOB + "\nevil}:" + APR1_BOB + "\n")
    result = run_cli("server-config", "nginx", "--root", str(tmp_path), "--htpasswd", str(htpasswd))
    assert result.returncode == 1 and result.stderr.startswith(f"Error: {htpasswd}:2: the user name is not allowed")


def test_tokens_appear_in_the_configuration_only_as_the_servers_match_them(tmp_path):
    path = write(tmp_path, "tokens.txt", f"ci: {TOKEN}\n")
    credentials = auth.load(path, None)
    nginx = server_config.nginx(tmp_path, credentials=credentials)
    assert r'"~^Bearer\ tok\-0123456789abcdef$" off;  # ci' in nginx
    assert "private, max-age=31536000, immutable" in nginx and "public" not in nginx
    apache = server_config.apache(tmp_path, credentials=credentials)
    assert "Require expr \"%{HTTP:Authorization} in { 'Bearer tok-0123456789abcdef', 'Basic " in apache
    assert 'AuthUserFile "/dev/null"' in apache
    caddy = server_config.caddy(tmp_path, credentials=credentials)
    assert f'header Authorization "Bearer {TOKEN}"' in caddy and "error @staticreg_anonymous 401" in caddy
    function = cloudfront.function(credentials)
    assert TOKEN not in function and json.dumps(auth.UNAUTHORIZED_BODY + "\n") in function
    # without credentials nothing of it
    for text in (server_config.nginx(tmp_path), server_config.apache(tmp_path), server_config.caddy(tmp_path)):
        assert "staticreg_realm" not in text and "Auth" not in text and "private" not in text


BCRYPT_REAL = "$2y$05$1Ua6nHGh8RQmlrtwbE8BfOfcvj2lmbDNfK1kXnn6W8Hd9yoAz4SDm"


@pytest.mark.parametrize("prefix", ["/", "/npm/"])
@pytest.mark.parametrize("which", ["tokens", "htpasswd", "both"])
@pytest.mark.parametrize("server", ["nginx", "apache", "caddy"])
def test_private_configurations_pass_the_servers_own_check(tmp_path, server, which, prefix):
    from tests.e2e.hosts import APACHE
    from tests.e2e.servers import nginx_binary

    tokens = write(tmp_path, "tokens.txt", f"ci: {TOKEN}\nalice: {'b' * 20}\n") if which != "htpasswd" else None
    htpasswd = write(tmp_path, "htpasswd", f"bob:{BCRYPT_REAL}\n") if which != "tokens" else None
    credentials = auth.load(tokens, htpasswd)
    env = None
    if server == "nginx":
        (tmp_path / "tmp").mkdir()
        conf = write(
            tmp_path,
            "nginx.conf",
            server_config.nginx(
                tmp_path,
                listen="127.0.0.1:1",
                prefix=prefix,
                standalone=True,
                state_dir=tmp_path,
                user="root",
                daemon=False,
                credentials=credentials,
            ),
        )
        command = [nginx_binary(), "-t", "-p", str(tmp_path), "-c", str(conf)]
    elif server == "apache":
        conf = write(
            tmp_path,
            "httpd.conf",
            server_config.apache(
                tmp_path,
                listen="127.0.0.1:1",
                prefix=prefix,
                standalone=True,
                state_dir=tmp_path,
                user="nobody",
                group="nogroup",
                credentials=credentials,
            ),
        )
        command = [APACHE, "-t", "-f", str(conf)]
    else:
        conf = write(
            tmp_path,
            "Caddyfile",
            server_config.caddy(tmp_path, prefix=prefix, standalone=True, state_dir=tmp_path, credentials=credentials),
        )
        env = {
            "PATH": "/usr/bin:/bin",
            "HOME": str(tmp_path),
            "XDG_DATA_HOME": str(tmp_path),
            "XDG_CONFIG_HOME": str(tmp_path),
        }
        command = ["caddy", "validate", "--adapter", "caddyfile", "--config", str(conf)]
    result = subprocess.run(command, capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr
    assert "[warn]" not in result.stderr  # nginx: no duplicate MIME type, nothing else


def test_netlify_headers_carry_basic_auth_and_private_caches(tmp_path):
    from staticreg.hosting.host_files import netlify_files

    root = tmp_path / "public"
    (root / "-").mkdir(parents=True)
    (root / "-" / "ping").write_text("{}")
    (root / "demo").mkdir()
    (root / "demo" / "index.json").write_text("{}")
    credentials = auth.load(write(tmp_path, "tokens.txt", f"ci: {TOKEN}\nalice: {'b' * 20}\n"), None)
    text = netlify_files(root, credentials=credentials)["_headers"]
    assert text.splitlines()[2:4] == ["/*", f"  Basic-Auth: ci:{TOKEN} alice:{'b' * 20}"]
    assert "public" not in text and "Cache-Control: private, max-age=31536000, immutable" in text
    assert "Basic-Auth" not in netlify_files(root)["_headers"]
