"""The one frozen Config, from staticreg.yml and the command line.

The file is read with PyYAML's safe loader only. Every problem in it is
collected and reported at once, each with its key and line; flags given on the
command line override the file.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import yaml

from staticreg.errors import ConfigError
from staticreg.npm import names

if TYPE_CHECKING:
    from staticreg.npm.signatures import Keyring

DEFAULT_CONFIG_NAME = "staticreg.yml"
TIMES_FILE_NAME = "staticreg-times.json"
UPSTREAM_KEYS_NAME = "staticreg-upstream-keys.json"  # the upstreams' /-/npm/v1/keys; staticreg mirror writes it
SIGNING_KEY_ENV = "STATICREG_SIGNING_KEY"  # the signing key's PEM text itself, for CI secrets


@dataclass(frozen=True)
class Override:
    """One entry of dist_tags, deprecations or publish_times, with where it was written."""

    name: str
    where: str  # "staticreg.yml:12", for messages
    tag: str = ""
    version: str = ""
    range: str = ""
    message: str = ""
    time: datetime | None = None


@dataclass(frozen=True)
class Config:
    input_dir: Path
    output_dir: Path
    base_url: str  # always ends with "/"
    config_file: Path | None = None
    keep_going: bool = False
    title: str = "npm registry"
    site: bool = True
    index_html: bool = True
    # A gzip copy (NAME.gz) beside each package document, for servers that send it as it is.
    precompress: bool = True
    template_dir: Path | None = None
    times_file: Path | None = None
    report_file: Path | None = None
    jobs: int = 0
    document_max_age: int = 0
    dist_tags: tuple[Override, ...] = field(default=())
    deprecations: tuple[Override, ...] = field(default=())
    publish_times: tuple[Override, ...] = field(default=())
    # The keys that sign and are listed at /-/npm/v1/keys (signing_key, retired_keys,
    # upstream_keys); None: no signatures of our own and no keys document.
    signing: Keyring | None = None

    @property
    def times_path(self) -> Path:
        return self.times_file or self.input_dir / TIMES_FILE_NAME

    @property
    def report_path(self) -> Path:
        return self.report_file or self.output_dir.with_name(self.output_dir.name + ".report.json")

    @property
    def workers(self) -> int:
        return self.jobs or os.cpu_count() or 1


_KEYS = {
    "input": "folder of .tgz files",
    "output": "folder to write the registry to",
    "base_url": "URL the registry is served at",
    "keep_going": "true or false",
    "title": "text",
    "site": "true or false",
    "index_html": "true or false",
    "precompress": "true or false",
    "template_dir": "folder",
    "times_file": "file",
    "report": "file",
    "jobs": "number",
    "document_max_age": "seconds",
    "dist_tags": "mapping",
    "deprecations": "mapping",
    "publish_times": "mapping",
    "signing_key": "file (a PEM private key from staticreg keygen)",
    "retired_keys": "list of {file: or key:, expires:}",
    "upstream_keys": "file (a /-/npm/v1/keys document)",
}


class _Problems:
    def __init__(self, file_label: str):
        self.file_label = file_label
        self.items: list[tuple[int, str]] = []

    def add(self, line: int | None, key: str, message: str) -> None:
        where = f"{self.file_label}:{line}" if line else self.file_label
        self.items.append((line or 0, f"{where}: {key}: {message}"))


def _yaml_error(path: Path, exc: yaml.YAMLError, text: str) -> ConfigError:
    mark = getattr(exc, "problem_mark", None)
    line = mark.line + 1 if mark else None
    where = f"{path}:{line}" if line else str(path)
    message = f"{where}: not valid YAML: {getattr(exc, 'problem', None) or exc}"
    if mark is not None:
        bad_line = text.splitlines()[mark.line] if mark.line < len(text.splitlines()) else ""
        if "@" in bad_line[mark.column : mark.column + 1] or bad_line.lstrip().startswith("@"):
            message += (
                "\n  An npm scope starts with '@', which YAML reserves: quote the name, e.g. \"@acme/widgets\": ..."
            )
    return ConfigError(message)


def _compose(path: Path) -> tuple[object, yaml.Node | None]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the configuration file ({exc.strerror or exc})") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: the configuration file is not UTF-8 text") from None
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as exc:
        raise _yaml_error(path, exc, text) from None
    finally:
        loader.dispose()
    return data, node


def _entries(node: yaml.Node | None, problems: _Problems, key: str) -> list[tuple[object, yaml.Node, int]]:
    """(key, value node, line) for a mapping node; reports duplicate keys."""
    if node is None:
        return []
    if not isinstance(node, yaml.MappingNode):
        problems.add(node.start_mark.line + 1, key, "expected a mapping (key: value lines)")
        return []
    seen: dict[object, int] = {}
    out = []
    for key_node, value_node in node.value:
        k = key_node.value if isinstance(key_node, yaml.ScalarNode) else str(_scalar(key_node))
        line = key_node.start_mark.line + 1
        if k in seen:
            problems.add(line, f"{key}{'.' if key else ''}{k}", f"given twice (also on line {seen[k]})")
        seen[k] = line
        out.append((k, value_node, line))
    return out


def _scalar(node: yaml.Node) -> object:
    loader = yaml.SafeLoader("")
    try:
        return loader.construct_object(node, deep=True)
    finally:
        loader.dispose()


def _parse_time(value: object) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=timezone.utc)
    if isinstance(value, str):
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
    return None


def check_base_url(url: object) -> str:
    if not isinstance(url, str) or not url.strip():
        raise ValueError("expected a URL such as https://npm.example.com/ or http://127.0.0.1:8080/npm/")
    url = url.strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"{url!r} is not an absolute http(s) URL; clients need one for dist.tarball")
    if parts.query or parts.fragment:
        raise ValueError(f"{url!r} has a query or fragment; give only scheme, host and path")
    return url if url.endswith("/") else url + "/"


def load_config(config_file: Path | None = None, require_base_url: bool = True, **overrides: object) -> Config:
    """Read `config_file` (or ./staticreg.yml if it exists) and apply the non-None overrides."""
    if config_file is None and Path(DEFAULT_CONFIG_NAME).is_file():
        config_file = Path(DEFAULT_CONFIG_NAME)
    data: dict = {}
    root = None
    base = Path.cwd()
    label = "command line"
    if config_file is not None:
        config_file = Path(config_file)
        raw, root = _compose(config_file)
        label = str(config_file)
        base = config_file.resolve().parent
        if raw is None:
            raw = {}
        if not isinstance(raw, dict):
            raise ConfigError(f"{config_file}: expected a mapping of settings (key: value lines)")
        data = raw
    problems = _Problems(label)
    lines: dict[str, int] = {}
    nodes: dict[str, yaml.Node] = {}
    for key, value_node, line in _entries(root, problems, ""):
        lines[str(key)] = line
        nodes[str(key)] = value_node
        if key not in _KEYS:
            known = ", ".join(sorted(_KEYS))
            problems.add(line, str(key), f"unknown setting (known: {known})")

    def get(key: str, default: object = None) -> object:
        cli_key = {"input": "input_dir", "output": "output_dir", "report": "report_file"}.get(key, key)
        if overrides.get(cli_key) is not None:
            return overrides[cli_key]
        return data.get(key, default)

    def path_setting(key: str) -> Path | None:
        value = get(key)
        if value is None:
            return None
        if isinstance(value, Path):
            return value
        if not isinstance(value, str) or not value:
            problems.add(lines.get(key), key, "expected a path")
            return None
        return Path(os.path.normpath(base / value))

    def bool_setting(key: str, default: bool) -> bool:
        value = get(key, default)
        if not isinstance(value, bool):
            problems.add(lines.get(key), key, "expected true or false")
            return default
        return value

    def int_setting(key: str, default: int) -> int:
        value = get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            problems.add(lines.get(key), key, "expected a whole number, 0 or more")
            return default
        return value

    input_dir = path_setting("input")
    output_dir = path_setting("output")
    if input_dir is None and "input" not in lines:
        problems.add(None, "input", "no input folder: give INPUT_DIR or set 'input' in staticreg.yml")
    if output_dir is None and "output" not in lines:
        problems.add(None, "output", "no output folder: give -o/--output or set 'output' in staticreg.yml")
    base_url = ""
    try:
        value = get("base_url")
        if value is None and not require_base_url:
            pass
        elif value is None:
            raise ValueError(
                "no base URL: give --base-url or set base_url, the URL the registry will be "
                "served at (e.g. https://npm.example.com/); clients need it in every dist.tarball"
            )
        else:
            base_url = check_base_url(value)
    except ValueError as exc:
        problems.add(lines.get("base_url"), "base_url", str(exc))
    title = get("title", "npm registry")
    if not isinstance(title, str):
        problems.add(lines.get("title"), "title", "expected text")
        title = "npm registry"

    dist_tags = _read_dist_tags(nodes.get("dist_tags"), problems, label)
    deprecations = _read_deprecations(nodes.get("deprecations"), problems, label)
    publish_times = _read_publish_times(nodes.get("publish_times"), problems, label)
    signing = _read_signing(overrides.get("signing_key"), path_setting, base, nodes, lines, problems, input_dir)

    config = Config(
        input_dir=input_dir or Path("."),
        output_dir=output_dir or Path("."),
        base_url=base_url,
        config_file=config_file,
        keep_going=bool_setting("keep_going", False),
        title=title,
        site=bool_setting("site", True),
        index_html=bool_setting("index_html", True),
        precompress=bool_setting("precompress", True),
        template_dir=path_setting("template_dir"),
        times_file=path_setting("times_file"),
        report_file=path_setting("report"),
        jobs=int_setting("jobs", 0),
        document_max_age=int_setting("document_max_age", 0),
        dist_tags=dist_tags,
        deprecations=deprecations,
        publish_times=publish_times,
        signing=signing,
    )
    if not problems.items and config.output_dir.resolve() == config.input_dir.resolve():
        problems.add(lines.get("output"), "output", "the output folder must not be the input folder")
    if problems.items:
        count = len(problems.items)
        raise ConfigError(
            f"{count} configuration problem{'s' if count > 1 else ''}:\n"
            + "\n".join(f"  {text}" for _, text in sorted(problems.items, key=lambda item: item[0]))
        )
    return config


def _read_dist_tags(node, problems: _Problems, label: str) -> tuple[Override, ...]:
    out = []
    for name, tags_node, line in _entries(node, problems, "dist_tags"):
        key = f"dist_tags.{name}"
        try:
            names.check_name(name)
        except names.NameProblem as exc:
            problems.add(line, key, str(exc))
            continue
        for tag, version_node, tag_line in _entries(tags_node, problems, key):
            version = _scalar(version_node)
            try:
                tag = names.check_tag(tag)
                if not isinstance(version, str):
                    raise names.NameProblem(f'expected a version in quotes, e.g. "1.10.0" (YAML read {version!r})')
                clean = names.clean_version(version)
            except names.NameProblem as exc:
                problems.add(tag_line, f"{key}.{tag}", str(exc))
                continue
            # str(name): check_name above let only a string through
            out.append(Override(name=str(name), tag=tag, version=clean, where=f"{label}:{tag_line}"))
    return tuple(out)


def _read_deprecations(node, problems: _Problems, label: str) -> tuple[Override, ...]:
    if node is None:
        return ()  # semver (semantic_version, 15 ms to import) is loaded only for a config with deprecations
    from staticreg.npm.semver import RangeProblem, parse_range

    out = []
    for spec, message_node, line in _entries(node, problems, "deprecations"):
        key = f"deprecations.{spec}"
        message = _scalar(message_node)
        name, rng = names.split_spec(str(spec))
        try:
            names.check_name(name)
            parse_range(rng)
        except (names.NameProblem, RangeProblem) as exc:
            problems.add(line, key, f'{exc} (write name@range, e.g. "@acme/widgets@<2.0.0")')
            continue
        if not isinstance(message, str) or not message.strip():
            problems.add(line, key, "expected the deprecation message as text")
            continue
        out.append(Override(name=name, range=rng, message=message, where=f"{label}:{line}"))
    return tuple(out)


def _read_publish_times(node, problems: _Problems, label: str) -> tuple[Override, ...]:
    out = []
    for spec, time_node, line in _entries(node, problems, "publish_times"):
        key = f"publish_times.{spec}"
        name, version = names.split_spec(str(spec))
        try:
            names.check_name(name)
            version = names.clean_version(version)
        except names.NameProblem as exc:
            problems.add(line, key, f"{exc} (write name@version)")
            continue
        when = _parse_time(_scalar(time_node))
        if when is None:
            problems.add(line, key, "expected a time like 2024-05-01T12:00:00Z")
            continue
        out.append(Override(name=name, version=version, time=when, where=f"{label}:{line}"))
    return tuple(out)


def _read_signing(
    flag, path_setting, base: Path, nodes, lines, problems: _Problems, input_dir: Path | None
) -> Keyring | None:
    """The keyring: the signing key from --signing-key, else $STATICREG_SIGNING_KEY (the PEM
    itself), else signing_key; retired_keys; the upstreams' keys file. None when there is
    nothing to sign with or list (and `cryptography` is not even loaded)."""
    env = os.environ.get(SIGNING_KEY_ENV, "").strip()
    upstream_file = path_setting("upstream_keys")
    default_upstream = input_dir / UPSTREAM_KEYS_NAME if input_dir is not None else None
    if flag is not None:
        signing_file = Path(flag)
    elif env:
        signing_file = None
    else:
        signing_file = path_setting("signing_key")
    wanted = signing_file or env or "retired_keys" in nodes or upstream_file
    if not wanted and not (default_upstream and default_upstream.is_file()):
        return None
    from staticreg import keyfiles
    from staticreg.npm.signatures import KeyProblem, Keyring, PublicKey

    signer = None
    try:
        if signing_file is not None:
            signer = keyfiles.signer_from_file(signing_file)
        elif env:
            signer = keyfiles.signer_from_pem(env.encode(), f"${SIGNING_KEY_ENV}")
    except KeyProblem as exc:
        if flag is not None:
            problems.items.append((0, f"--signing-key: {exc}"))
        elif signing_file is not None:
            problems.add(lines.get("signing_key"), "signing_key", str(exc))
        else:
            problems.items.append((0, str(exc)))  # it names the variable, never its value
    retired = _read_retired_keys(nodes.get("retired_keys"), problems, base)
    if signer is not None and any(key.keyid == signer.keyid for key in retired):
        problems.add(lines.get("retired_keys"), "retired_keys", f"lists the signing key itself ({signer.keyid})")
    keys_file = upstream_file or default_upstream
    upstream: tuple[PublicKey, ...] = ()
    try:
        upstream = keyfiles.upstream_keys(keys_file, required=upstream_file is not None) if keys_file else ()
    except KeyProblem as exc:
        problems.add(lines.get("upstream_keys"), "upstream_keys", str(exc))
    return Keyring(signer, retired, upstream, str(keys_file or ""))


def _read_retired_keys(node, problems: _Problems, base: Path) -> tuple:
    """retired_keys: a list of {file: PEM key file, or key: base64 SPKI as in a keys document;
    expires: the time from which its signatures no longer count}."""
    from staticreg import keyfiles
    from staticreg.npm import signatures

    if node is None:
        return ()
    if not isinstance(node, yaml.SequenceNode):
        problems.add(node.start_mark.line + 1, "retired_keys", "expected a list of {file: ..., expires: ...}")
        return ()
    found = []
    for index, item in enumerate(node.value):
        line, key = item.start_mark.line + 1, f"retired_keys[{index}]"
        value = _scalar(item)
        if (
            not isinstance(value, dict)
            or set(value) - {"file", "key", "expires"}
            or len({"file", "key"} & set(value)) != 1
        ):
            problems.add(
                line, key, "expected {file: a PEM key file, expires: time} or {key: base64 public key, expires: time}"
            )
            continue
        when = _parse_time(value.get("expires"))
        if when is None:
            problems.add(line, key, "expires: expected a time like 2026-06-01T00:00:00Z (a retired key needs one)")
            continue
        expires = signatures.iso(when)
        try:
            if "file" in value:
                if not isinstance(value["file"], str) or not value["file"]:
                    raise signatures.KeyProblem("file: expected a path")
                found.append(keyfiles.public_key_from_file(Path(os.path.normpath(base / value["file"])), expires))
            else:
                public = signatures.public_key_from_base64(value["key"])
                found.append(signatures.PublicKey(signatures.key_id(public), value["key"], expires))
        except signatures.KeyProblem as exc:
            problems.add(line, key, str(exc))
    return tuple(found)


_PACKAGE_DIR = Path(__file__).parent


def builtin_template_dir() -> Path:
    """site-template/ inside the installed package, or at the top of a source checkout."""
    for candidate in (_PACKAGE_DIR / "site-template", _PACKAGE_DIR.parent / "site-template"):
        if candidate.is_dir():
            return candidate
    raise RuntimeError("staticreg is installed without its site-template folder")


def template_digest(config: Config) -> str:
    """A digest of the user's template folder ("" without one): pages made with other
    templates differ, so a hosted registry remembers which ones made it."""
    if config.template_dir is None:
        return ""
    digest = hashlib.sha256()
    root = config.template_dir
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(path.relative_to(root).as_posix().encode("utf-8", "surrogateescape") + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()[:20]


def template_dirs(config: Config) -> list[Path]:
    """Where templates and assets are looked up, first match wins: the user's folder, then ours."""
    return ([config.template_dir] if config.template_dir else []) + [builtin_template_dir()]
