"""The code's layering (CONTRIBUTING.md, "The layout"): modules import each other without
cycles, and the registry's rules in npm/ import nothing but errors and config."""

import ast
from pathlib import Path

import staticreg

ROOT = Path(staticreg.__file__).parent


def imports() -> dict[str, set[str]]:
    """Each module of staticreg -> the modules of staticreg it imports, anywhere in it."""
    modules = {
        ".".join(("staticreg", *p.relative_to(ROOT).with_suffix("").parts)).removesuffix(".__init__"): p
        for p in ROOT.rglob("*.py")
    }
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("staticreg"):
                for alias in node.names:
                    whole = f"{node.module}.{alias.name}"
                    found.add(whole if whole in modules else node.module)
            elif isinstance(node, ast.Import):
                found |= {a.name for a in node.names if a.name.startswith("staticreg")}
        graph[name] = {m for m in found if m in modules and m != name and m != "staticreg"}
    return graph


def cycle(graph: dict[str, set[str]]) -> list[str]:
    """One import cycle, or []."""
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = 1
        path.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                return [*path[path.index(target) :], target]
            if target not in state and (found := visit(target)):
                return found
        path.pop()
        state[node] = 2
        return []

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return []


def test_modules_import_each_other_without_cycles():
    assert cycle(imports()) == []


def test_the_check_finds_a_cycle():
    assert cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert cycle({"a": {"b"}, "b": set()}) == []


def test_the_rules_in_npm_import_only_errors_config_and_each_other():
    allowed = {"staticreg.errors", "staticreg.config"}
    for module, targets in imports().items():
        if module.startswith("staticreg.npm."):
            outside = {t for t in targets if not t.startswith("staticreg.npm.") and t not in allowed}
            assert outside == set(), module
