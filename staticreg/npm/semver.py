"""npm version ranges, as `npm deprecate` reads them.

semantic_version implements npm's range grammar (^, ~, x, ||, hyphen ranges).
`npm deprecate` matches with includePrerelease, so a range like <2.0.0 also
covers 1.5.0-beta.1; the subclass below does the same.
"""

from __future__ import annotations

import semantic_version as sv


class RangeProblem(ValueError):
    pass


# semantic_version has no annotations (and no stubs package): to mypy its classes are Any.
class _IncludePrereleaseSpec(sv.NpmSpec):  # type: ignore[misc]
    class Parser(sv.NpmSpec.Parser):  # type: ignore[misc]
        @classmethod
        def range(cls, operator: str, target: sv.Version) -> sv.base.Range:
            return sv.base.Range(operator, target, prerelease_policy=sv.base.Range.PRERELEASE_ALWAYS)


def parse_range(text: str) -> _IncludePrereleaseSpec:
    try:
        return _IncludePrereleaseSpec(text.strip() or "*")
    except ValueError as exc:
        raise RangeProblem(f"{text!r} is not an npm version range ({exc})") from None


def satisfies(version: str, spec: _IncludePrereleaseSpec) -> bool:
    matched: bool = spec.match(sv.Version(version))
    return matched
