"""The suite's own layout: no module under tests/ imports a test module (test_*.py) or a
conftest.py. Shared plain helpers live in tests/helpers.py, tests/process.py and the
helper modules of tests/e2e; fixtures in the conftest.py files, which pytest loads itself."""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parent


def _is_test_module(root: Path, name: str) -> bool:
    """Whether the dotted `name` is a test module or a conftest under the package at `root`."""
    parts = name.split(".")
    if parts[0] != root.name:
        return False
    path = root.parent.joinpath(*parts).with_suffix(".py")
    return path.is_file() and (path.stem.startswith("test_") or path.stem == "conftest")


def _imported(path: Path, package: str) -> list[tuple[int, str]]:
    """(line, dotted name) of every module, or name in a module, that `path` imports anywhere."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            found.append((node.lineno, base))
            found += [(node.lineno, f"{base}.{alias.name}") for alias in node.names]
    return found


def offending_imports(root: Path) -> list[str]:
    """'path:line: imports NAME' for every import of a test module or conftest in the package at root."""
    offences = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root.parent)
        package = ".".join(rel.parent.parts)
        for line, name in _imported(path, package):
            if _is_test_module(root, name):
                offences.append(f"{rel.as_posix()}:{line}: imports {name}")
    return offences


def test_no_module_of_the_suite_imports_a_test_module_or_a_conftest():
    assert offending_imports(TESTS) == [], "move what is shared into tests/helpers.py (or a helper module of tests/e2e)"


def test_the_check_finds_every_form_of_such_an_import(tmp_path):
    root = tmp_path / "tests"
    (root / "e2e").mkdir(parents=True)
    for name in ("__init__.py", "conftest.py", "test_a.py", "e2e/__init__.py", "e2e/conftest.py"):
        (root / name).write_text("")
    (root / "helpers.py").write_text("def make():\n    pass\n")
    (root / "test_b.py").write_text(
        "from tests.helpers import make\n"  # allowed
        "from tests.conftest import x\n"
        "import tests.test_a\n"
        "def test_b():\n"
        "    from tests import test_a\n"
    )
    (root / "e2e" / "hosts.py").write_text("from ..test_a import y\nfrom . import conftest\nfrom .. import helpers\n")
    assert offending_imports(root) == [
        "tests/e2e/hosts.py:1: imports tests.test_a",
        "tests/e2e/hosts.py:2: imports tests.e2e.conftest",
        "tests/test_b.py:2: imports tests.conftest",
        "tests/test_b.py:3: imports tests.test_a",
        "tests/test_b.py:5: imports tests.test_a",
    ]
