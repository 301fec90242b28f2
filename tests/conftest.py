"""Fixtures only: a folder for the tarballs a test makes, and a config factory.
Plain helpers are in tests/helpers.py; import them from there, never from here."""

from __future__ import annotations

from pathlib import Path

import pytest

from staticreg.config import Config
from tests.helpers import BASE_URL


@pytest.fixture
def tarballs(tmp_path: Path) -> Path:
    folder = tmp_path / "tarballs"
    folder.mkdir()
    return folder


@pytest.fixture
def make_config(tmp_path: Path):
    def factory(input_dir: Path, **kwargs) -> Config:
        kwargs.setdefault("output_dir", tmp_path / "out")
        kwargs.setdefault("base_url", BASE_URL)
        return Config(input_dir=input_dir, **kwargs)

    return factory
