"""What a project's lockfile pins, read without trusting it: pure parsers, no I/O.

`parse(filename, text)` picks the format from the file's name and content and
returns one `Entry` per locked package: a registry package to mirror
(name@version, with the lockfile's integrity when it has one) or one that a
registry cannot serve (workspace, link, file, git, remote tarball, bundled),
with the reason. npm aliases come back as the real package. Anything that is
not the shape the format has is a `LockfileError` naming the file and line.

Formats: package-lock.json / npm-shrinkwrap.json v1, v2, v3; pnpm-lock.yaml
6.x and 9.x; yarn.lock of yarn 1 and of yarn berry (2+); bun.lock (text).
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

import yaml

from staticreg.errors import StaticregError
from staticreg.npm import names

REGISTRY, SKIPPED = "registry", "skipped"
MAX_LOCKFILE_BYTES = 256 * 1024 * 1024
MAX_ENTRIES = 500_000
INTEGRITY = re.compile(
    r"^(sha1-[A-Za-z0-9+/]{27}=|sha256-[A-Za-z0-9+/]{43}=|sha384-[A-Za-z0-9+/]{64}|sha512-[A-Za-z0-9+/]{86}==)$"
)
BUN_BINARY_HINT = (
    "bun.lockb is bun's binary lockfile, which staticreg does not read; convert it to the text bun.lock with "
    "`bun install --save-text-lockfile --frozen-lockfile --lockfile-only` (bun 1.1.39 or later) and mirror bun.lock"
)


BERRY_CHECKSUM = "yarn berry's checksum hashes yarn's own zip of the package, not the tarball: verified against the upstream's dist.integrity"


class LockfileError(StaticregError):
    """A lockfile that cannot be read: `where` is "file:line"."""

    def __init__(self, where: str, reason: str):
        self.where, self.reason = where, reason
        super().__init__(f"{where}: {reason}")


@dataclass(frozen=True)
class Entry:
    name: str  # the real package (an alias is resolved); for a skipped entry what the lockfile calls it
    version: str  # strict semver for a registry entry; the lockfile's text for a skipped one
    integrity: str | None  # an SRI string ("sha512-..."), or None when the lockfile has no npm integrity
    where: str  # "lockfile:line"
    kind: str = REGISTRY  # REGISTRY or SKIPPED
    reason: str = ""  # why it is skipped, or a note (an alias, a berry checksum)
    alias: str | None = None  # the name the project uses, for an npm alias

    @property
    def key(self) -> str:
        return f"{self.name}@{self.version}"


def strongest(integrity: str | None) -> tuple[str, str] | None:
    """('sha512', 'base64...') of the strongest hash an SRI string holds, or None."""
    best = None
    rank = {"sha1": 0, "sha256": 1, "sha384": 2, "sha512": 3}
    for part in (integrity or "").split():
        part = part.split("?", 1)[0]
        if INTEGRITY.match(part):
            algo, _, value = part.partition("-")
            if best is None or rank[algo] > rank[best[0]]:
                best = (algo, value)
    return best


def parse(filename: str, text: str) -> list[Entry]:
    """Every package the lockfile at `filename` (a name for messages) pins."""
    base = filename.replace("\\", "/").rpartition("/")[2]
    if base.endswith(".lockb"):
        raise LockfileError(f"{filename}:1", BUN_BINARY_HINT)
    if len(text) > MAX_LOCKFILE_BYTES:
        raise LockfileError(f"{filename}:1", f"is larger than {MAX_LOCKFILE_BYTES >> 20} MiB; is it a lockfile?")
    if base == "bun.lock":
        entries = parse_bun(filename, text)
    elif base.endswith(".json"):
        entries = parse_npm(filename, text)
    elif base.endswith((".yaml", ".yml")):
        entries = parse_pnpm(filename, text)
    elif base.endswith(".lock") and "# yarn lockfile v1" in text[:4096]:
        entries = parse_yarn1(filename, text)
    elif base.endswith(".lock") and "__metadata:" in text[:4096]:
        entries = parse_berry(filename, text)
    else:
        raise LockfileError(
            f"{filename}:1",
            "is not a lockfile staticreg knows (package-lock.json, npm-shrinkwrap.json, pnpm-lock.yaml, yarn.lock, bun.lock)",
        )
    if len(entries) > MAX_ENTRIES:
        raise LockfileError(f"{filename}:1", f"pins more than {MAX_ENTRIES} packages")
    return entries


# --- shared checks ------------------------------------------------------------


def _registry_entry(
    name: object, version: object, integrity: object, where: str, *, alias: str | None = None, note: str = ""
) -> Entry:
    """A registry entry, with its name, version and integrity checked: text from a stranger."""
    if not isinstance(name, str) or not isinstance(version, str):
        raise LockfileError(where, "a package entry has no name or version text")
    try:
        names.check_name(name)
        clean = names.clean_version(version)
    except names.NameProblem as exc:
        raise LockfileError(where, f"{_shown(name)}@{_shown(version, 80)}: {_shown(exc, 300)}") from None
    if clean != version.strip():
        raise LockfileError(
            where, f"{name}@{_shown(version, 80)}: the version is not strict semver as lockfiles write it"
        )
    if integrity is not None and (not isinstance(integrity, str) or strongest(integrity) is None):
        raise LockfileError(
            where, f"{name}@{version}: {_shown(integrity, 80)!r} is not an integrity (sha512-... or sha1-...)"
        )
    return Entry(name, clean, integrity, where, REGISTRY, note, alias)


def _skipped(name: object, spec: object, where: str, reason: str) -> Entry:
    return Entry(_shown(name, 214), _shown(spec, 300), None, where, SKIPPED, reason)


def _non_registry_reason(spec: str) -> str | None:
    """Why a resolved URL or version spec is not a registry package, or None if it may be one."""
    s = spec.strip()
    low = s.lower()
    if low.startswith(("workspace:",)):
        return "a workspace package: it is part of your project, not of a registry"
    if low.startswith(("link:", "portal:")):
        return "a link to a folder: nothing to mirror"
    if low.startswith(("file:", "./", "../", "/", "~/")) or low == ".":
        return "a local file or folder dependency: nothing to mirror"
    if low.startswith(("git+", "git:", "git@", "github:", "gitlab:", "bitbucket:", "gist:", "ssh:")) or ".git#" in low:
        return "a git dependency: a registry cannot serve it; vendor it as a tarball in your input folder"
    if low.startswith(("patch:", "exec:")):
        return "a yarn patch or exec resolution: nothing a registry serves"
    return None


def _conventional(url: str, name: str, version: str) -> bool:
    """Whether a tarball URL has a registry's path: .../<name>/-/<basename>-<version>.tgz."""
    path = unquote(urlsplit(url).path)
    return path.endswith(f"/{name}/-/{name.rpartition('/')[2]}-{version}.tgz")


def _url_reason(url: str, name: str, version: str) -> str | None:
    reason = _non_registry_reason(url)
    if reason:
        return reason
    if url.lower().startswith(("http://", "https://")) and not _conventional(url, name, version):
        return f"a remote tarball ({_short(url)}), not a registry package: vendor it as a tarball in your input folder"
    return None


def _short(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or ''}{parts.path}"[:200]


def _line_finder(text: str) -> Callable[[str], int]:
    """A function: needle -> line number of its next occurrence after the last one found
    (entries are looked up in the order they are written; lines counted once, as it goes)."""
    state = {"pos": 0, "line": 1}

    def find(needle: str) -> int:
        pos = text.find(needle, state["pos"])
        if pos == -1:
            return state["line"]
        state["line"] += text.count("\n", state["pos"], pos)
        state["pos"] = pos
        return state["line"]

    return find


def _shown(value: object, limit: int = 200) -> str:
    """Lockfile text for a message or report line: printable, one line, bounded."""
    text = value if isinstance(value, str) else repr(value)
    return "".join(c if c.isprintable() else "?" for c in text[:limit])


# --- package-lock.json, npm-shrinkwrap.json -----------------------------------


PACKAGES, DEPENDENCIES = '"packages"', '"dependencies"'


def parse_npm(filename: str, text: str) -> list[Entry]:
    data = _json(filename, text)
    if not isinstance(data, dict):
        raise LockfileError(f"{filename}:1", "is not a JSON object; is it a package-lock.json?")
    version = data.get("lockfileVersion", 1)
    if version not in (1, 2, 3):
        raise LockfileError(f"{filename}:1", f"lockfileVersion {str(version)[:20]!r} is not one npm writes (1, 2 or 3)")
    find = _line_finder(text)
    packages = data.get("packages")
    if version >= 2 and packages is not None:
        if not isinstance(packages, dict):
            raise LockfileError(f"{filename}:{find(PACKAGES)}", '"packages" is not an object')
        return _npm_packages(filename, packages, find)
    deps = data.get("dependencies") or {}
    if not isinstance(deps, dict):
        raise LockfileError(f"{filename}:{find(DEPENDENCIES)}", '"dependencies" is not an object')
    entries: list[Entry] = []
    _npm_v1(filename, deps, find, entries, bundled=False, depth=0)
    return entries


def _npm_packages(filename: str, packages: dict[str, Any], find: Callable[[str], int]) -> list[Entry]:
    entries = []
    for key, entry in packages.items():
        where = f"{filename}:{find(json.dumps(key) + ':')}"
        if key == "":
            continue
        if not isinstance(entry, dict):
            raise LockfileError(where, f"the entry {key[:200]!r} is not an object")
        alias = key.rpartition("node_modules/")[2] if "node_modules/" in key else key
        name = entry.get("name", alias)
        if entry.get("link"):
            entries.append(
                _skipped(alias, entry.get("resolved", ""), where, "a workspace or linked folder: nothing to mirror")
            )
            continue
        if "node_modules/" not in key:
            entries.append(_skipped(name, key, where, "a workspace folder: part of your project, not of a registry"))
            continue
        if entry.get("inBundle"):
            entries.append(_skipped(name, entry.get("version", ""), where, "bundled inside its parent's tarball"))
            continue
        resolved = entry.get("resolved")
        version = entry.get("version")
        if resolved is not None and not isinstance(resolved, str):
            raise LockfileError(where, f'{key[:200]}: "resolved" is not text')
        if version is None:
            entries.append(
                _skipped(name, "", where, "has no version (npm wrote it without resolving it); nothing to fetch")
            )
            continue
        if not isinstance(version, str):
            raise LockfileError(where, f'{key[:200]}: "version" is not text')
        reason = _url_reason(resolved, str(name), version) if resolved else _non_registry_reason(version)
        if reason:
            entries.append(_skipped(name, resolved or version, where, reason))
            continue
        entries.append(
            _registry_entry(name, version, entry.get("integrity"), where, alias=alias if alias != name else None)
        )
    return entries


def _npm_v1(
    filename: str, deps: dict[str, Any], find: Callable[[str], int], entries: list[Entry], bundled: bool, depth: int
) -> None:
    if depth > 200:
        raise LockfileError(f"{filename}:1", "dependencies nest more than 200 levels deep")
    for alias, entry in deps.items():
        where = f"{filename}:{find(json.dumps(alias) + ':')}"
        if not isinstance(entry, dict):
            raise LockfileError(where, f"the entry {alias[:200]!r} is not an object")
        version = entry.get("version")
        resolved = entry.get("resolved")
        inner_bundled = bundled or bool(entry.get("bundled"))
        if not isinstance(version, str) or (resolved is not None and not isinstance(resolved, str)):
            raise LockfileError(where, f'{alias[:200]}: "version" or "resolved" is not text')
        name = alias
        if version.startswith("npm:"):  # an alias: "npm:real@1.0.0"
            name, version = names.split_spec(version[4:])
        if inner_bundled:
            entries.append(_skipped(name, version, where, "bundled inside its parent's tarball"))
        else:
            reason = _url_reason(resolved, name, version) if resolved else _non_registry_reason(version)
            if reason:
                entries.append(_skipped(name, resolved or version, where, reason))
            else:
                entries.append(
                    _registry_entry(
                        name, version, entry.get("integrity"), where, alias=alias if alias != name else None
                    )
                )
        nested = entry.get("dependencies")
        if nested is not None:
            if not isinstance(nested, dict):
                raise LockfileError(where, f'{alias[:200]}: "dependencies" is not an object')
            _npm_v1(filename, nested, find, entries, inner_bundled, depth + 1)


def _json(filename: str, text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise LockfileError(f"{filename}:{exc.lineno}", f"is not valid JSON ({exc.msg}, column {exc.colno})") from None
    except RecursionError:
        raise LockfileError(f"{filename}:1", "nests too deeply to be a lockfile") from None


# --- pnpm-lock.yaml -----------------------------------------------------------


class _NoAliasLoader(yaml.SafeLoader):
    """YAML with no anchors or aliases (none of the lockfile writers make them; a billion laughs needs them)."""

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()  # type: ignore[no-untyped-call]  # types-PyYAML leaves it unannotated
            raise yaml.MarkedYAMLError(None, None, "aliases are not allowed in a lockfile", event.start_mark)
        return super().compose_node(parent, index)


def _yaml_tree(filename: str, text: str) -> yaml.Node | None:
    try:
        return yaml.compose(text, Loader=_NoAliasLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        raise LockfileError(f"{filename}:{line}", f"is not valid YAML ({exc.problem or exc.context})") from None
    except yaml.YAMLError as exc:
        raise LockfileError(f"{filename}:1", f"is not valid YAML ({str(exc).splitlines()[0][:200]})") from None
    except RecursionError:
        raise LockfileError(f"{filename}:1", "nests too deeply to be a lockfile") from None


def _map(node: yaml.Node | None, filename: str, what: str) -> list[tuple[str, yaml.Node, int]]:
    """(key, value node, line) of a YAML mapping whose keys are scalars."""
    if node is None:
        return []
    line = node.start_mark.line + 1
    if isinstance(node, yaml.ScalarNode) and node.value in ("", "null", "~"):
        return []
    if not isinstance(node, yaml.MappingNode):
        raise LockfileError(f"{filename}:{line}", f"{what} is not a mapping")
    out = []
    for key, value in node.value:
        if not isinstance(key, yaml.ScalarNode):
            raise LockfileError(f"{filename}:{key.start_mark.line + 1}", f"a key in {what} is not text")
        out.append((key.value, value, key.start_mark.line + 1))
    return out


def _scalar(node: yaml.Node | None, filename: str, what: str) -> str | None:
    if node is None:
        return None
    if not isinstance(node, yaml.ScalarNode):
        raise LockfileError(f"{filename}:{node.start_mark.line + 1}", f"{what} is not text")
    value: str = node.value  # a scalar node's value is its text
    return value


def _fields(node: yaml.Node | None, filename: str, what: str) -> dict[str, yaml.Node]:
    return {k: v for k, v, _ in _map(node, filename, what)}


def parse_pnpm(filename: str, text: str) -> list[Entry]:
    root = _fields(_yaml_tree(filename, text), filename, "the lockfile")
    raw = _scalar(root.get("lockfileVersion"), filename, "lockfileVersion")
    try:
        major = int(float(raw or ""))
    except ValueError:
        major = 0
    if major not in (6, 7, 9):
        raise LockfileError(
            f"{filename}:1",
            f"pnpm lockfileVersion {str(raw)[:20]!r} is not supported (6.0 or 9.0); run `pnpm install --lockfile-only` "
            "with pnpm 8 or later to write a newer one",
        )
    entries = []
    for key, node, line in _map(root.get("packages"), filename, "packages"):
        where = f"{filename}:{line}"
        fields = _fields(node, filename, f"packages.{_shown(key, 100)}")
        if major < 9:
            key = key[1:] if key.startswith("/") else key
        key = re.sub(r"\(.*\)$", "", key)  # a peer suffix: (react@18.2.0)
        at = key.find("@", 1)
        name, spec = (key[:at], key[at + 1 :]) if at > 0 else (key, "")
        name = _scalar(fields.get("name"), filename, "name") or name
        version = _scalar(fields.get("version"), filename, "version") or spec
        resolution = fields.get("resolution")
        res: dict[str, str] = {
            k: v.value for k, v, _ in _map(resolution, filename, "resolution") if isinstance(v, yaml.ScalarNode)
        }
        kind = res.get("type")
        if kind == "git" or "repo" in res:
            entries.append(_skipped(name, res.get("repo", spec), where, "a git dependency: a registry cannot serve it"))
        elif kind == "directory" or "directory" in res:
            entries.append(
                _skipped(name, res.get("directory", spec), where, "a local folder dependency: nothing to mirror")
            )
        elif kind is not None:
            entries.append(_skipped(name, spec, where, f"a pnpm {kind[:40]} resolution: not a registry package"))
        elif "tarball" in res and (reason := _url_reason(res["tarball"], name, version)):
            entries.append(_skipped(name, res["tarball"], where, reason))
        elif reason := _non_registry_reason(spec):
            entries.append(_skipped(name, spec, where, reason))
        else:
            entries.append(_registry_entry(name, version, res.get("integrity"), where))
    return entries


# --- yarn.lock, yarn berry (2+) -----------------------------------------------


def parse_berry(filename: str, text: str) -> list[Entry]:
    root = _map(_yaml_tree(filename, text), filename, "the lockfile")
    entries = []
    for key, node, line in root:
        if key == "__metadata":
            continue
        where = f"{filename}:{line}"
        fields = _fields(node, filename, _shown(key, 100))
        resolution = _scalar(fields.get("resolution"), filename, "resolution")
        if not resolution:
            raise LockfileError(where, f"the entry {key[:200]!r} has no resolution")
        at = resolution.find("@", 1)
        if at <= 0:
            raise LockfileError(where, f"the resolution {resolution[:200]!r} is not name@reference")
        name, reference = resolution[:at], resolution[at + 1 :]
        if reference == "workspace:.":
            continue  # the project itself
        pattern = key.split(",")[0].strip()
        alias = pattern[: pattern.find("@", 1)] if pattern.find("@", 1) > 0 else None
        if reference.startswith("npm:"):
            version, _, extra = reference[4:].partition("::")
            if "__archiveUrl=" in extra:
                url = unquote(extra.split("__archiveUrl=", 1)[1].split("&")[0])
                if not _conventional(url, name, version):
                    entries.append(
                        _skipped(name, url, where, f"pinned to the archive {_short(url)}, not a registry path")
                    )
                    continue
            entries.append(
                _registry_entry(name, version, None, where, alias=alias if alias != name else None, note=BERRY_CHECKSUM)
            )
            continue
        reason = _non_registry_reason(reference)
        if reason is None:
            low = reference.lower()
            reason = (
                "a remote tarball, not a registry package"
                if low.startswith(("http:", "https:"))
                else f"a yarn {reference.split(':')[0][:40]} resolution: not a registry package"
            )
        entries.append(_skipped(name, reference, where, reason))
    return entries


# --- yarn.lock, yarn 1 ---------------------------------------------------------

_Y1_PAIR = re.compile(r'^("(?:[^"\\]|\\.)*"|[^\s"]+)\s+("(?:[^"\\]|\\.)*"|\S+)$')


def _y1_text(token: str, where: str) -> str:
    if token.startswith('"'):
        try:
            value: str = json.loads(token)  # JSON text that starts with '"' is a string
        except json.JSONDecodeError:
            raise LockfileError(where, f"{_shown(token, 80)} is not a quoted string") from None
        return value
    return token


def parse_yarn1(filename: str, text: str) -> list[Entry]:
    blocks: list[tuple[str, int, dict[str, str | dict[str, str]]]] = []
    current: dict[str, str | dict[str, str]] | None = None
    section: dict[str, str] | None = None
    for number, raw in enumerate(text.splitlines(), 1):
        where = f"{filename}:{number}"
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        indent = len(raw) - len(raw.lstrip(" "))
        line = raw.strip()
        if "\t" in raw[: indent + 1]:
            raise LockfileError(where, "yarn.lock is indented with spaces, not tabs")
        if indent == 0:
            if not line.endswith(":"):
                raise LockfileError(where, "expected a package pattern ending with ':'")
            current = {}
            section = None
            blocks.append((line[:-1], number, current))
        elif current is None:
            raise LockfileError(where, "an indented line before any package pattern")
        elif indent == 2:
            if line.endswith(":"):
                found = current.setdefault(_y1_text(line[:-1], where), {})
                if not isinstance(found, dict):
                    raise LockfileError(where, f"{_shown(line, 80)} is given twice")
                section = found
                continue
            section = None
            match = _Y1_PAIR.match(line)
            if not match:
                raise LockfileError(where, f"expected `key value`, found {line[:80]!r}")
            current[_y1_text(match.group(1), where)] = _y1_text(match.group(2), where)
        elif indent == 4 and section is not None:
            match = _Y1_PAIR.match(line)
            if not match:
                raise LockfileError(where, f"expected `name range`, found {line[:80]!r}")
            section[_y1_text(match.group(1), where)] = _y1_text(match.group(2), where)
        else:
            raise LockfileError(where, "unexpected indentation for a yarn 1 lockfile")
    entries = []
    for patterns, number, fields in blocks:
        where = f"{filename}:{number}"
        first = patterns.split(",")[0].strip()
        first = _y1_text(first, where) if first.startswith('"') else first
        at = first.find("@", 1)
        if at <= 0:
            raise LockfileError(where, f"the pattern {first[:200]!r} is not name@range")
        alias, spec = first[:at], first[at + 1 :]
        name = alias
        if spec.startswith("npm:"):
            inner = spec[4:]
            name = inner[: inner.find("@", 1)] if inner.find("@", 1) > 0 else inner
        version, resolved = fields.get("version"), fields.get("resolved", "")
        if not isinstance(version, str) or not isinstance(resolved, str):
            raise LockfileError(where, f"{first[:200]}: no version, or a version or resolved that is not text")
        reason = _non_registry_reason(spec)
        url, _, fragment = resolved.partition("#")
        if not reason and url:
            reason = _url_reason(url, name, version)
        if reason:
            entries.append(_skipped(name, resolved or spec, where, reason))
            continue
        integrity = fields.get("integrity")
        if integrity is None and re.fullmatch(r"[0-9a-f]{40}", fragment):
            integrity = "sha1-" + base64.b64encode(bytes.fromhex(fragment)).decode()
        entries.append(_registry_entry(name, version, integrity, where, alias=alias if alias != name else None))
    return entries


def mirror_url(url: str, registry_url: str) -> str | None:
    """A conventional registry tarball URL (<any prefix>/<name>/-/<file>.tgz) moved under
    `registry_url` (ending with '/'), keeping its fragment; None for any other URL."""
    base, hash_, fragment = url.partition("#")
    if not base.lower().startswith(("http://", "https://")):
        return None
    path = urlsplit(base).path
    cut = path.find("/-/")
    if cut == -1 or not path.endswith(".tgz"):
        return None
    parts = path[:cut].split("/")
    scoped = len(parts) >= 2 and unquote(parts[-2]).startswith("@")
    package = unquote("/".join(parts[-2:]) if scoped else parts[-1])
    return registry_url + package + path[cut:] + hash_ + fragment


def yarn1_rewrite(text: str, registry_url: str) -> str:
    """yarn 1's lockfile with every registry `resolved` URL pointing at `registry_url`:
    yarn 1 fetches the lockfile's URLs as they are written. Other URLs stay."""
    lines = text.split("\n")
    for i, line in enumerate(lines):
        if not line.startswith("  resolved "):
            continue
        token = line[len("  resolved ") :].strip()
        try:
            url = json.loads(token) if token.startswith('"') else token
        except json.JSONDecodeError:
            continue
        new = mirror_url(url, registry_url) if isinstance(url, str) else None
        if new is not None:
            lines[i] = f"  resolved {json.dumps(new)}"
    return "\n".join(lines)


def bun_rewrite(text: str, registry_url: str) -> str:
    """bun.lock with the tarball URLs bun wrote for a registry other than its default
    pointing at `registry_url`: bun fetches those as written (for its default registry it
    writes "" and asks the configured one)."""

    def swap(match: re.Match[str]) -> str:
        new = mirror_url(json.loads(match.group(0)), registry_url)
        return json.dumps(new) if new is not None else match.group(0)

    return re.sub(r'"https?://[^"\\\s]+\.tgz"', swap, text)


# --- bun.lock (text, JSON with trailing commas) -----------------------------------


def _jsonc_to_json(text: str) -> str:
    """bun.lock is JSON with trailing commas (and perhaps comments): made plain JSON,
    every newline kept so that line numbers stay right."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append(text[i : j + 1])
            i = j + 1
        elif c == "/" and text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j == -1 else j
        elif c == "/" and text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j == -1 else j + 2
            out.append("\n" * text.count("\n", i, j))
            i = j
        elif c == ",":
            j = i + 1
            while j < n and text[j] in " \t\r\n":
                j += 1
            if j < n and text[j] in "]}":
                out.append(text[i + 1 : j])  # the whitespace, without the comma
                i = j
            else:
                out.append(c)
                i += 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def parse_bun(filename: str, text: str) -> list[Entry]:
    data = _json(filename, _jsonc_to_json(text))
    if not isinstance(data, dict) or not isinstance(data.get("packages", {}), dict):
        raise LockfileError(f"{filename}:1", 'is not a bun.lock (a JSON object with "packages")')
    if data.get("lockfileVersion") not in (0, 1, 2):
        raise LockfileError(
            f"{filename}:1", f"bun lockfileVersion {str(data.get('lockfileVersion'))[:20]!r} is not 0, 1 or 2"
        )
    find = _line_finder(text)
    entries = []
    for key, value in data.get("packages", {}).items():
        where = f"{filename}:{find(json.dumps(key) + ':')}"
        if not isinstance(value, list) or not value or not isinstance(value[0], str):
            raise LockfileError(where, f'the entry {key[:200]!r} is not ["name@version", ...]')
        ident = value[0]
        at = ident.find("@", 1)
        if at <= 0:
            raise LockfileError(where, f"{ident[:200]!r} is not name@version")
        name, spec = ident[:at], ident[at + 1 :]
        segments = key.split("/")
        alias = "/".join(segments[-2:]) if len(segments) >= 2 and segments[-2].startswith("@") else segments[-1]
        reason = _non_registry_reason(spec)
        if spec.startswith("root:"):
            continue
        if reason is None and spec.lower().startswith(("http://", "https://")):
            reason = "a remote tarball, not a registry package"
        if reason:
            entries.append(_skipped(name, spec, where, reason))
            continue
        registry = value[1] if len(value) > 1 else ""
        info = value[2] if len(value) > 2 else {}
        integrity = value[3] if len(value) > 3 else None
        if not isinstance(registry, str) or not isinstance(info, dict):
            raise LockfileError(where, f'{ident[:200]}: the entry is not ["name@version", registry, info, integrity]')
        if registry and (url_reason := _url_reason(registry, name, spec)):
            entries.append(_skipped(name, registry, where, url_reason))
            continue
        entries.append(_registry_entry(name, spec, integrity, where, alias=alias if alias != name else None))
    return entries
