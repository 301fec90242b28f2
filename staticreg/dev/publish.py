"""What the dev server does with npm's write requests: publish, dist-tag add/rm, deprecate, unpublish.

Requests as npm 11 sends them (libnpmpublish's publish.js and unpublish.js,
lib/commands/dist-tag.js and deprecate.js):

    PUT    /<name>                          packument + base64 `_attachments`   npm publish
    PUT    /<name>                          the packument with `deprecated` set  npm deprecate
    PUT    /-/package/<name>/dist-tags/<t>  a JSON string: the version          npm dist-tag add
    DELETE /-/package/<name>/dist-tags/<t>                                      npm dist-tag rm
    PUT    /<name>/-rev/<rev>               the packument without the version    npm unpublish NAME@VERSION
    DELETE /<name>/-/<tarball>/-rev/<rev>   then its tarball (gone already)
    DELETE /<name>/-rev/<rev>                                                    npm unpublish NAME --force

A published tarball is checked like any input tarball, then written into the input
folder under a file name made from its checked name and version; tags and
deprecations go to the configuration file. The watcher then rebuilds as for any
other change. Everything in a request is untrusted.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from staticreg.build.reader import read_tarball
from staticreg.dev import config_edit
from staticreg.errors import StaticregError, TarballError
from staticreg.npm import layout, names
from staticreg.npm.model import normalize_manifest

MAX_BODY_BYTES = 256 * 1024 * 1024


class Refused(Exception):
    """A write request the dev server answers with `status` and npm's {"error": ...} body."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class Target:
    """Where writes go: the watched input folder and the configuration file."""

    input_dir: Path
    config_file: Path  # may not exist yet; created on the first tag or deprecation
    output_dir: Path  # the registry being served, to compare with what is there

    def new_file_input(self) -> str | None:
        """The `input:` line of a configuration file created from nothing."""
        if self.config_file.exists():
            return None
        return os.path.relpath(self.input_dir.absolute(), self.config_file.absolute().parent).replace(os.sep, "/")

    def served(self, name: str) -> dict | None:
        try:
            return json.loads(layout.safe_join(self.output_dir, layout.packument_path(name)).read_bytes())
        except (OSError, ValueError, layout.UnsafePath):
            return None


def _checked_name(name: str) -> str:
    try:
        names.check_name(name)
        layout.package_dir(name)
    except (names.NameProblem, layout.UnsafePath) as exc:
        raise Refused(400, f"invalid package name {name!r}: {exc}") from None
    return name


def _json(body: bytes) -> object:
    try:
        return json.loads(body)
    except ValueError:
        raise Refused(400, "the request body is not JSON") from None


def put_package(target: Target, name: str, body: bytes) -> str:
    """PUT /<name>: a publish when it carries a tarball, else a deprecation. Returns what was done."""
    _checked_name(name)
    doc = _json(body)
    if not isinstance(doc, dict) or not isinstance(doc.get("versions"), dict):
        raise Refused(400, "expected a package document with versions")
    if doc.get("name", name) != name:
        raise Refused(400, f"the document is for {doc.get('name')!r}, not {name!r}")
    if doc.get("_attachments"):
        return _publish(target, name, doc)
    return _deprecate(target, name, doc)


def _publish(target: Target, name: str, doc: dict) -> str:
    attachments = doc["_attachments"]
    versions = doc["versions"]
    if not isinstance(attachments, dict) or len(attachments) != 1 or len(versions) != 1:
        raise Refused(400, "expected one version and one tarball in the publish request")
    attachment = next(iter(attachments.values()))
    try:
        data = base64.b64decode(attachment["data"], validate=True)
    except (TypeError, KeyError, binascii.Error):
        raise Refused(400, "the tarball in _attachments is not base64 data") from None
    sent_version = next(iter(versions))
    tags = doc.get("dist-tags") or {}
    if not isinstance(tags, dict):
        raise Refused(400, "dist-tags in the publish request is not an object")
    for tag in tags:
        _checked_tag(tag)
    fd, tmp = tempfile.mkstemp(dir=target.input_dir, prefix=".staticreg-publish-", suffix=".part")
    tmp_path = Path(tmp)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        try:
            record = read_tarball(tmp_path, f"{name}@{sent_version}")
            got_name, version, _, _ = normalize_manifest(record, "http://x/")
        except TarballError as exc:
            raise Refused(400, f"the tarball cannot be used: {exc.reason}") from None
        except (names.NameProblem, layout.UnsafePath) as exc:
            raise Refused(400, f"the tarball's package.json cannot be used: {exc}") from None
        try:
            sent_clean = names.clean_version(sent_version)
        except names.NameProblem as exc:
            raise Refused(400, f"the version in the publish request cannot be used: {exc}") from None
        if got_name != name or version != sent_clean:
            raise Refused(400, f"the tarball holds {got_name}@{version}, not {name}@{sent_version}")
        sent = versions[sent_version] if isinstance(versions[sent_version], dict) else {}
        declared = sent.get("dist", {}).get("integrity") if isinstance(sent.get("dist"), dict) else None
        if declared and declared != record.integrity:
            raise Refused(400, "the tarball's bytes do not match the integrity in the request")
        _refuse_republish(target, name, version, record.integrity)
        # A scoped package goes into a folder named after its scope: "@a/b" and "a-b" must
        # never share a file name, as npm pack's "a-b-1.0.0.tgz" for both would.
        scope, _, bare = name.rpartition("/")
        filename = f"{scope}/{bare}-{version}.tgz" if scope else f"{name}-{version}.tgz"
        destination = layout.safe_join(target.input_dir, filename)
        destination.parent.mkdir(exist_ok=True)
        if destination.exists():
            if read_tarball(destination, filename).integrity != record.integrity:
                raise Refused(403, f"You cannot publish over the previously published versions: {version}.")
            done = f"{name}@{version} is already in {filename}"  # its dist-tags are still set below
        else:
            try:
                os.link(tmp_path, destination)  # never over a file that appeared meanwhile
            except FileExistsError:
                raise Refused(409, f"{filename} appeared in the input folder meanwhile; publish again") from None
            done = f"published {name}@{version} as {filename}"
    finally:
        tmp_path.unlink(missing_ok=True)
    for tag, tagged in tags.items():
        if tag != "latest" and tagged == version:  # latest is always the highest stable version here
            _set_tag(target, name, tag, version)
    return done


def _refuse_republish(target: Target, name: str, version: str, integrity: str) -> None:
    served = target.served(name) or {}
    existing = (served.get("versions") or {}).get(version)
    if existing and existing.get("dist", {}).get("integrity") != integrity:
        raise Refused(403, f"You cannot publish over the previously published versions: {version}.")


def _deprecate(target: Target, name: str, doc: dict) -> str:
    served = target.served(name)
    if served is None:
        raise Refused(404, f"{name} is not in this registry")
    changes = {}
    for version, manifest in doc["versions"].items():
        old = served["versions"].get(version)
        if old is None or not isinstance(manifest, dict):
            continue
        message = manifest.get("deprecated") or ""
        if not isinstance(message, str):
            raise Refused(400, f"the deprecation message of {version} is not text")
        if message != (old.get("deprecated") or ""):
            changes[version] = message
    if not changes:
        return f"{name}: nothing to change"
    try:
        config_edit.set_deprecations(target.config_file, name, changes, target.new_file_input())
    except StaticregError as exc:
        raise Refused(500, exc.format_message()) from None
    return f"{name}: deprecations of {', '.join(changes)} written to {target.config_file}"


def dist_tag(target: Target, name: str, tag: str, body: bytes | None) -> str:
    """PUT (body: the version as a JSON string) or DELETE (body None) /-/package/<name>/dist-tags/<tag>."""
    _checked_name(name)
    _checked_tag(tag)
    if body is None:
        if tag == "latest":
            raise Refused(400, "latest is always the highest stable version here; it cannot be removed")
        _set_tag(target, name, tag, None)
        return f"{name}: tag {tag} removed"
    version = _json(body)
    served = target.served(name)
    if served is None:
        raise Refused(404, f"{name} is not in this registry")
    if not isinstance(version, str) or version not in served.get("versions", {}):
        raise Refused(404, f"{name} has no version {version!r}")
    _set_tag(target, name, tag, version)
    return f"{name}: {tag} -> {version}"


def _checked_tag(tag: object) -> str:
    try:
        return names.check_tag(tag)
    except names.NameProblem as exc:
        raise Refused(400, f"invalid tag {tag!r}: {exc}") from None


def _set_tag(target: Target, name: str, tag: str, version: str | None) -> None:
    try:
        config_edit.set_dist_tag(target.config_file, name, tag, version, target.new_file_input())
    except StaticregError as exc:
        raise Refused(500, exc.format_message()) from None


def unpublish(target: Target, name: str, body: bytes | None) -> str:
    """PUT /<name>/-rev/<rev> with the document less the versions to remove, or DELETE
    /<name>/-rev/<rev> (body None) for the whole package: their tarballs leave the input
    folder, and the dist-tags naming them the configuration. The watcher then rebuilds."""
    _checked_name(name)
    served = target.served(name)
    if served is None:
        raise Refused(404, f"{name} is not in this registry")
    versions = set(served.get("versions") or {})
    if body is None:
        gone = versions
    else:
        doc = _json(body)
        if not isinstance(doc, dict) or not isinstance(doc.get("versions"), dict):
            raise Refused(400, "expected the package document without the versions to unpublish")
        gone = versions - set(doc["versions"])
    if not gone:
        return f"{name}: nothing to unpublish"
    files = _input_files(target, name)
    missing = sorted(v for v in gone if v not in files)
    if missing:
        raise Refused(409, f"{name}@{', '.join(missing)}: no tarball in the input folder holds it; build again")
    for version in sorted(gone):
        for path in files[version]:
            path.unlink(missing_ok=True)
    for tag, version in (served.get("dist-tags") or {}).items():
        if tag != "latest" and version in gone:
            _set_tag(target, name, tag, None)
    return f"unpublished {', '.join(f'{name}@{v}' for v in sorted(gone))}"


def _input_files(target: Target, name: str) -> dict[str, list[Path]]:
    """version -> the input folder's tarballs of `name` (each read: the dev server's input is small)."""
    found: dict[str, list[Path]] = {}
    for path in sorted(target.input_dir.rglob("*")):
        if not path.name.endswith((".tgz", ".tar.gz")) or not path.is_file() or path.is_symlink():
            continue
        try:
            record = read_tarball(path, path.name)
            got_name, version, _, _ = normalize_manifest(record, "http://x/")
        except (TarballError, OSError, names.NameProblem, layout.UnsafePath):
            continue
        if got_name == name:
            found.setdefault(version, []).append(path)
    return found
