"""Fixtures: tarballs made by the tests themselves, and a config factory."""

from __future__ import annotations

import gzip
import io
import json
import os
import tarfile
from pathlib import Path

import pytest

from staticreg.config import Config

OLD_MTIME = 1_600_000_000  # 2020-09-13: past yarn berry's one-day age gate


def tar_bytes(members: list[tuple[tarfile.TarInfo, bytes | None]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def file_member(name: str, data: bytes, mode: int = 0o644) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = mode
    info.mtime = 499162500
    return info, data


def make_tarball(
    folder: Path,
    manifest: dict | bytes | None = None,
    files: dict[str, bytes | str] | None = None,
    root: str = "package",
    filename: str | None = None,
    compress: bool = True,
    mtime: float | None = OLD_MTIME,
    extra: list[tuple[tarfile.TarInfo, bytes | None]] | None = None,
) -> Path:
    """A tarball like npm pack makes, with anything a test wants to change."""
    folder.mkdir(parents=True, exist_ok=True)
    members = []
    if manifest is not None:
        data = manifest if isinstance(manifest, bytes) else json.dumps(manifest, indent=2).encode()
        members.append(file_member(f"{root}/package.json", data))
    for name, content in (files or {}).items():
        members.append(file_member(f"{root}/{name}", content.encode() if isinstance(content, str) else content))
    members += extra or []
    raw = tar_bytes(members)
    if compress:
        raw = gzip.compress(raw, mtime=0)
    if filename is None:
        m = manifest if isinstance(manifest, dict) else {}
        name = str(m.get("name", "pkg")).lstrip("@").replace("/", "-")
        filename = f"{name}-{m.get('version', '0.0.0')}.tgz"
    path = folder / filename
    path.write_bytes(raw)
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return path


@pytest.fixture
def tarballs(tmp_path: Path) -> Path:
    folder = tmp_path / "tarballs"
    folder.mkdir()
    return folder


@pytest.fixture
def make_config(tmp_path: Path):
    def factory(input_dir: Path, **kwargs) -> Config:
        kwargs.setdefault("output_dir", tmp_path / "out")
        kwargs.setdefault("base_url", "http://registry.test/")
        return Config(input_dir=input_dir, **kwargs)

    return factory
