import json

from click.testing import CliRunner

from staticreg.cli import cli
from tests.helpers import make_tarball


def run(*args, cwd=None):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_build_prints_a_summary(tarballs, tmp_path):
    make_tarball(tarballs, {"name": "a", "version": "1.0.0"})
    out = tmp_path / "out"
    result = run("build", str(tarballs), "-o", str(out), "--base-url", "http://r.test")
    assert result.exit_code == 0, result.output
    assert "Built 1 package (1 version) from 1 tarball" in result.stdout
    assert (
        json.loads((out / "a/index.json").read_bytes())["versions"]["1.0.0"]["dist"]["tarball"]
        == "http://r.test/a/-/a-1.0.0.tgz"
    )


def test_bad_tarballs_exit_1_naming_each_file_without_traceback(tarballs, tmp_path):
    (tarballs / "one.tgz").write_bytes(b"junk")
    make_tarball(tarballs, {"name": "UPPER CASE", "version": "1"}, filename="two.tgz")
    result = run("build", str(tarballs), "-o", str(tmp_path / "out"), "--base-url", "http://r.test/")
    assert result.exit_code == 1
    assert "one.tgz: not a valid tar archive" in result.stderr
    assert "two.tgz: the package name 'UPPER CASE' has characters" in result.stderr
    assert "Traceback" not in result.output
    assert not (tmp_path / "out").exists()


def test_keep_going_exits_0_and_lists_rejects(tarballs, tmp_path):
    (tarballs / "one.tgz").write_bytes(b"junk")
    make_tarball(tarballs, {"name": "a", "version": "1.0.0"})
    result = run("build", str(tarballs), "-o", str(tmp_path / "out"), "--base-url", "http://r.test/", "--keep-going")
    assert result.exit_code == 0
    assert "rejected: one.tgz: not a valid tar archive" in result.stderr
    assert "1 rejected" in result.stdout


def test_missing_base_url_is_explained(tarballs, tmp_path):
    result = run("build", str(tarballs), "-o", str(tmp_path / "out"))
    assert result.exit_code == 1 and "no base URL: give --base-url" in result.stderr


def test_config_file_and_flags(tarballs, tmp_path):
    make_tarball(tarballs, {"name": "a", "version": "1.0.0"})
    config = tmp_path / "staticreg.yml"
    config.write_text(f"input: {tarballs}\noutput: out\nbase_url: http://from-file.test/\n")
    result = run("build", "-c", str(config), "--base-url", "http://from-flag.test/", "-q")
    assert result.exit_code == 0 and result.stdout == ""
    doc = json.loads((tmp_path / "out/a/index.json").read_bytes())
    assert doc["versions"]["1.0.0"]["dist"]["tarball"].startswith("http://from-flag.test/")


def test_nginx_config_command(tmp_path):
    result = run("server-config", "nginx", "--root", str(tmp_path), "--prefix", "/npm/")
    assert result.exit_code == 0 and "location ~ ^/npm(?<staticreg_path>/.*)?$" in result.stdout


def test_version():
    assert run("--version").stdout.startswith("staticreg, version ")


def test_the_command_ends_after_flushing_its_output_and_its_threads(tmp_path):
    """main() ends a build's process with os._exit, leaving the build's objects unfreed:
    what was printed, and threads still removing old folders, must not be lost."""
    import os
    import subprocess
    import sys

    done = tmp_path / "done"
    script = (
        "import sys, threading, time\n"
        "from pathlib import Path\n"
        "from staticreg import cli\n"
        f"threading.Thread(target=lambda: (time.sleep(0.5), Path({str(done)!r}).write_text('x'))).start()\n"
        "print('printed, not flushed', end='')\n"
        "sys.stderr.write('to stderr')\n"
        "cli._end_now(3)\n"
        "print('never')\n"
    )
    buffered = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}  # as a pipe is, by default
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, env=buffered)
    assert (result.returncode, result.stdout, result.stderr) == (3, "printed, not flushed", "to stderr")
    assert done.read_text() == "x"


def test_a_build_from_the_command_line_prints_its_summary_and_leaves_no_trash(tarballs, tmp_path):
    from tests.process import run_cli

    make_tarball(tarballs, {"name": "a", "version": "1.0.0"})
    out = tmp_path / "out"
    first = run_cli("build", tarballs, "-o", out, "--base-url", "http://r.test/")
    make_tarball(tarballs, {"name": "a", "version": "1.1.0"})
    second = run_cli("build", tarballs, "-o", out, "--base-url", "http://r.test/")  # the first output: the spare
    (tmp_path / ".out.staticreg-cache").unlink()  # so the next build discards the spare, in a thread
    third = run_cli("build", tarballs, "-o", out, "--base-url", "http://r.test/")
    for result, versions in ((first, 1), (second, 2), (third, 2)):
        assert result.returncode == 0, result.stderr
        assert f"Built 1 package ({versions} version" in result.stdout
    assert json.loads((out / "a/index.json").read_bytes())["dist-tags"] == {"latest": "1.1.0"}
    assert not [p.name for p in tmp_path.iterdir() if "trash" in p.name or "staging" in p.name]
