"""The errors a user can cause and fix. Anything else that escapes is a bug."""

from __future__ import annotations

from dataclasses import dataclass

import click


class StaticregError(click.ClickException):
    """Base of every error that is the user's to fix: printed without a traceback, exit 1."""

    exit_code = 1


class ConfigError(StaticregError):
    """The configuration file or the command line is wrong."""


class TarballError(StaticregError):
    """One input tarball cannot be used. `path` names it, `reason` says why.
    `ends_early`: the file stops short, as one still being copied in does."""

    def __init__(self, path: str, reason: str, ends_early: bool = False):
        self.path = path
        self.reason = reason
        self.ends_early = ends_early
        super().__init__(f"{path}: {reason}")


class BuildError(StaticregError):
    """The build was refused; `problems` lists every reason, one line each."""

    def __init__(self, summary: str, problems: list[str] | tuple[str, ...] = (), ends_early: bool = False):
        self.problems = list(problems)
        self.ends_early = ends_early  # a rejected tarball stops short: perhaps it is still being written
        lines = [summary] + [f"  {p}" for p in self.problems]
        super().__init__("\n".join(lines))


@dataclass(frozen=True)
class Problem:
    """Something that stops a tarball (or a setting) from being used: what a build reports
    and, with --keep-going, builds without. Here rather than in npm.model, which re-exports
    it, so that a no-op rebuild can report the problems it remembers without loading the model."""

    source: str  # a tarball path relative to the input folder, or "staticreg.yml:12"
    reason: str
    ends_early: bool = False  # the tarball stops short (see TarballError)

    def __str__(self) -> str:
        return f"{self.source}: {self.reason}"
