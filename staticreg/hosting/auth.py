"""Credentials for a private registry: the tokens file and the htpasswd file, read
strictly, and the check of one request's Authorization header.

A tokens file holds one `name: token` per line; `#` starts a comment line. A
token is what a client sends as `Authorization: Bearer TOKEN` (npm's and
pnpm's `_authToken`, yarn's `npmAuthToken`, bun's `token`), and `name:token`
also works as a Basic user and password (a browser, Netlify, `npmAuthIdent`).
An htpasswd file holds `user:hash` lines as Apache's `htpasswd` writes them.

Names, tokens and hashes end up inside nginx, Apache and Caddy configurations
and a CloudFront Function: anything but the few characters those can hold
unquoted and unescaped is refused with the file and line, never echoing a token.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from dataclasses import dataclass
from pathlib import Path

from staticreg.errors import ConfigError

REALM = "staticreg"
UNAUTHORIZED_BODY = (
    '{"error": "authentication required: this registry is private (send a token or a user and password)"}'
)
MIN_TOKEN_LENGTH = 16
MAX_LINE_LENGTH = 4096

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_NAME_RULE = "a name is 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit"
# RFC 7235's token68 without the characters the configurations would have to escape.
_TOKEN = re.compile(r"[A-Za-z0-9._~+/-]+=*")
_TOKEN_RULE = "a token holds only letters, digits and . _ ~ + / - (= at its end)"
_B64 = "[./0-9A-Za-z]"
HASH_FORMATS = {
    "bcrypt": re.compile(rf"\$2[aby]\$[0-9]{{2}}\${_B64}{{53}}"),
    "apr1": re.compile(rf"\$apr1\${_B64}{{1,8}}\${_B64}{{22}}"),
    "sha1": re.compile(r"\{SHA\}[A-Za-z0-9+/]{27}="),
    "sha-crypt": re.compile(rf"\$[56]\$(rounds=[0-9]{{1,9}}\$)?{_B64}{{1,16}}\$({_B64}{{43}}|{_B64}{{86}})"),
}
_HASH_RULE = "the hash must be bcrypt ($2y$, htpasswd -B), $apr1$, {SHA} or $5$/$6$ (openssl passwd -6)"


@dataclass(frozen=True)
class Token:
    name: str
    token: str
    where: str  # "tokens.txt:3"

    @property
    def bearer(self) -> str:
        return f"Bearer {self.token}"

    @property
    def basic(self) -> str:
        return "Basic " + base64.b64encode(f"{self.name}:{self.token}".encode()).decode()


@dataclass(frozen=True)
class User:
    name: str
    hash: str
    kind: str  # a key of HASH_FORMATS
    where: str


@dataclass(frozen=True)
class Credentials:
    """What a private registry accepts: tokens, htpasswd users, or both."""

    tokens: tuple[Token, ...] = ()
    users: tuple[User, ...] = ()
    tokens_file: Path | None = None
    htpasswd_file: Path | None = None

    def __bool__(self) -> bool:
        return bool(self.tokens or self.users)

    @property
    def headers(self) -> list[str]:
        """Every Authorization value a token allows, exactly as a client sends it."""
        return [value for t in self.tokens for value in (t.bearer, t.basic)]

    def allows(self, authorization: str | None) -> bool:
        """Whether one request's Authorization header is a credential of this registry."""
        if not authorization:
            return False
        given = authorization.encode("utf-8", "replace")
        found = False
        for value in self.headers:  # compare with every one, in constant time each
            found |= hmac.compare_digest(given, value.encode())
        if found:
            return True
        scheme, _, rest = authorization.partition(" ")
        if scheme.lower() != "basic" or not self.users:
            return False
        try:
            user, sep, password = base64.b64decode(rest.strip(), validate=True).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        return bool(sep) and any(u.name == user and verify_password(password, u) for u in self.users)


def _lines(path: Path, what: str) -> list[tuple[int, str]]:
    """(number, text) of each line that is not blank or a comment; only \\n ends a line."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the {what} ({exc.strerror or exc})") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        bad_line = data[: exc.start].count(b"\n") + 1
        raise ConfigError(f"{path}:{bad_line}: not UTF-8 text; the {what} must be plain text") from None
    found: list[tuple[int, str]] = []
    for number, line in enumerate(text.split("\n"), 1):
        if line.endswith("\r"):
            line = line[:-1]  # a file written on Windows
        if len(line) > MAX_LINE_LENGTH:
            raise ConfigError(f"{path}:{number}: the line is longer than {MAX_LINE_LENGTH} characters")
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        bad = next((c for c in line if not (c == "\t" or " " <= c <= "~")), None)
        if bad is not None:
            raise ConfigError(
                f"{path}:{number}: the line holds the character {_shown(bad)}, which "
                f"the {what} may not hold (plain ASCII only)"
            )
        found.append((number, line))
    return found


def _shown(char: str) -> str:
    return (
        repr(char)
        if char.isprintable() and char not in "'\""
        else f"U+{ord(char):04X}" + (f" ({char})" if char.isprintable() else "")
    )


def read_tokens(path: Path) -> tuple[Token, ...]:
    """The tokens of a tokens file; any line that is not `name: token` is refused with its number."""
    tokens: list[Token] = []
    seen_names: dict[str, str] = {}
    seen_tokens: dict[str, str] = {}
    for number, line in _lines(path, "tokens file"):
        where = f"{path}:{number}"
        name, sep, token = line.partition(":")
        name, token = name.strip(), token.strip()
        if not sep:
            raise ConfigError(f"{where}: expected 'name: token' (a line break inside a token, or a missing name?)")
        if not _NAME.fullmatch(name):
            raise ConfigError(f"{where}: the name is not allowed: {_NAME_RULE}")
        if not token:
            raise ConfigError(f"{where}: {name} has no token after the ':'")
        if not _TOKEN.fullmatch(token):
            bad = re.search(r"[^A-Za-z0-9._~+/=-]", token)
            found = f"holds {_shown(bad.group())}" if bad else "has '=' before its end"
            raise ConfigError(f"{where}: {name}'s token {found}; {_TOKEN_RULE}")
        if len(token) < MIN_TOKEN_LENGTH:
            raise ConfigError(
                f"{where}: {name}'s token is {len(token)} characters; a token needs at least "
                f"{MIN_TOKEN_LENGTH} (make one with: openssl rand -hex 32)"
            )
        if name in seen_names:
            raise ConfigError(f"{where}: the name {name} is already used at line {seen_names[name]}")
        if token in seen_tokens:
            raise ConfigError(f"{where}: {name}'s token is the same as {seen_tokens[token]}'s; give each its own")
        seen_names[name], seen_tokens[token] = str(number), name
        tokens.append(Token(name, token, where))
    if not tokens:
        raise ConfigError(f"{path}: holds no token; add lines 'name: token' (a registry nobody can read is no use)")
    return tuple(tokens)


def read_htpasswd(path: Path) -> tuple[User, ...]:
    """The users of an htpasswd file, each `user:hash` in a format the servers check."""
    users: list[User] = []
    seen: dict[str, int] = {}
    for number, line in _lines(path, "htpasswd file"):
        where = f"{path}:{number}"
        name, sep, hashed = line.partition(":")
        if not sep:
            raise ConfigError(f"{where}: expected 'user:hash' as htpasswd writes it")
        if not _NAME.fullmatch(name):
            raise ConfigError(f"{where}: the user name is not allowed: {_NAME_RULE}")
        kind = next((k for k, rule in HASH_FORMATS.items() if rule.fullmatch(hashed)), None)
        if kind is None:
            plain = "" if hashed.startswith(("$", "{")) else " (a plain-text password is never accepted)"
            raise ConfigError(f"{where}: {name}'s password hash is not one the servers check{plain}; {_HASH_RULE}")
        if name in seen:
            raise ConfigError(f"{where}: the user {name} is already at line {seen[name]}")
        seen[name] = number
        users.append(User(name, hashed, kind, where))
    if not users:
        raise ConfigError(f"{path}: holds no user; add one with: htpasswd -B {path} NAME")
    return tuple(users)


def load(tokens_file: Path | None, htpasswd_file: Path | None) -> Credentials:
    """Both files, checked; an empty Credentials when neither is given (a public registry)."""
    return Credentials(
        tokens=read_tokens(tokens_file) if tokens_file else (),
        users=read_htpasswd(htpasswd_file) if htpasswd_file else (),
        tokens_file=tokens_file,
        htpasswd_file=htpasswd_file,
    )


def require_kinds(credentials: Credentials, kinds: set[str], who: str) -> None:
    """Refuse users whose hash format `who` (a server) cannot check."""
    for user in credentials.users:
        if user.kind not in kinds:
            raise ConfigError(
                f"{user.where}: {who} checks only {', '.join(sorted(kinds))} hashes, and "
                f"{user.name}'s is {user.kind}; set it again with: htpasswd -B FILE {user.name}"
            )


# --- checking a password against an htpasswd hash (the dev server) -----------


def verify_password(password: str, user: User) -> bool:
    if user.kind == "sha1":
        digest = base64.b64encode(hashlib.sha1(password.encode()).digest()).decode()
        return hmac.compare_digest(user.hash, "{SHA}" + digest)
    if user.kind == "apr1":
        salt = user.hash.split("$")[2]
        return hmac.compare_digest(user.hash, apr1(password, salt))
    crypt = _crypt()
    return crypt is not None and hmac.compare_digest(user.hash, crypt.crypt(password, user.hash) or "")


def _crypt():
    """The C library's crypt() (bcrypt, sha-crypt), where this Python still has it."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            import crypt  # removed in Python 3.13
        except ImportError:
            return None
    return crypt


def verifiable_kinds() -> set[str]:
    """The hash formats the dev server can check on this Python."""
    crypt = _crypt()
    kinds = {"apr1", "sha1"}
    if crypt is not None:
        for kind, sample in (("bcrypt", "$2b$04$" + "a" * 22), ("sha-crypt", "$6$saltsalt")):
            if (crypt.crypt("x", sample) or "").startswith(sample[:4]):
                kinds.add(kind)
    return kinds


_APR1_ALPHABET = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def apr1(password: str, salt: str) -> str:
    """Apache's MD5-based crypt ($apr1$), as apr_md5_encode computes it."""
    pw, salt_b = password.encode(), salt[:8].encode()
    final = hashlib.md5(pw + salt_b + pw).digest()
    ctx = pw + b"$apr1$" + salt_b
    ctx += (final * (len(pw) // 16 + 1))[: len(pw)]
    i = len(pw)
    while i:
        ctx += b"\0" if i & 1 else pw[:1]
        i >>= 1
    final = hashlib.md5(ctx).digest()
    for i in range(1000):
        step = (pw if i & 1 else final) + (salt_b if i % 3 else b"") + (pw if i % 7 else b"") + (final if i & 1 else pw)
        final = hashlib.md5(step).digest()
    out = ""
    for a, b, c in ((0, 6, 12), (1, 7, 13), (2, 8, 14), (3, 9, 15), (4, 10, 5)):
        value = (final[a] << 16) | (final[b] << 8) | final[c]
        for _ in range(4):
            out += _APR1_ALPHABET[value & 0x3F]
            value >>= 6
    value = final[11]
    for _ in range(2):
        out += _APR1_ALPHABET[value & 0x3F]
        value >>= 6
    return f"$apr1${salt[:8]}${out}"
