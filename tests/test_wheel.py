"""The wheel carries site-template/: built, installed into a fresh virtual environment
outside the checkout, and used to render a site."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

from tests.helpers import make_tarball

ROOT = Path(__file__).resolve().parents[1]
TEMPLATES = sorted(
    p.relative_to(ROOT / "site-template").as_posix() for p in (ROOT / "site-template").rglob("*") if p.is_file()
)


def run(*args: object, **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run([str(a) for a in args], capture_output=True, text=True, **kwargs)
    assert result.returncode == 0, f"{args}\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    # --no-build-isolation: hatchling comes with the test extras, so nothing is downloaded.
    run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--quiet", "-w", out, ROOT)
    (found,) = out.glob("staticreg-*.whl")
    return found


def test_wheel_holds_every_template(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    missing = [t for t in TEMPLATES if f"staticreg/site-template/{t}" not in names]
    assert TEMPLATES and not missing


def test_installed_wheel_renders_the_site(wheel, tmp_path):
    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", venv)
    python = venv / "bin" / "python"
    run(python, "-m", "pip", "install", "--no-deps", "--no-index", "--quiet", "--disable-pip-version-check", wheel)
    # Dependencies come from this test environment's site-packages, added as plain
    # paths: .pth files there (the editable install of this checkout) are not read.
    purelib = run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])").stdout.strip()
    ours = [p for p in sys.path if p.endswith("site-packages")]
    Path(purelib, "zz_test_dependencies.pth").write_text("\n".join(ours) + "\n")

    make_tarball(
        tmp_path / "in",
        {"name": "wheel-test", "version": "1.0.0"},
        {"README.md": "# From the wheel\n\n| a |\n|---|\n| b |\n"},
    )
    script = textwrap.dedent(f"""
        import sys
        from pathlib import Path
        import staticreg
        from staticreg.build.pipeline import build
        from staticreg.config import Config
        from staticreg.config import builtin_template_dir
        # Only the installed wheel can provide staticreg, and with it site-template/.
        sources = [p for p in sys.path if Path(p or ".", "staticreg", "__init__.py").is_file()]
        assert len(sources) == 1 and sources[0].startswith({str(venv)!r}), sys.path
        assert staticreg.__file__.startswith({str(venv)!r}), staticreg.__file__
        assert builtin_template_dir() == Path(staticreg.__file__).parent / "site-template"
        config = Config(input_dir=Path("in"), output_dir=Path("out"), base_url="http://x.test/", jobs=1)
        build(config, show_progress=False)
        print(builtin_template_dir())
    """)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    result = run(python, "-c", script, cwd=tmp_path, env=env)
    assert result.stdout.strip().startswith(str(venv))
    page = (tmp_path / "out/-/web/package/wheel-test/index.html").read_text()
    assert "<h1>From the wheel</h1>" in page and "<table>" in page
    assert (tmp_path / "out/-/web/assets/style.css").read_bytes() == (
        ROOT / "site-template/assets/style.css"
    ).read_bytes()
    assert (tmp_path / "out/404.html").is_file() and (tmp_path / "out/index.html").is_file()
