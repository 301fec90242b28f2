"""Change dist_tags and deprecations in staticreg.yml, leaving the rest of the file as the user wrote it.

Only the block of the one top-level key that changes is rewritten (or appended when
the file has none); other settings and comments around them stay byte for byte.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import yaml

from staticreg.build.output import write_file_atomic
from staticreg.errors import ConfigError

NEW_FILE_HEADER = (
    "# staticreg configuration, created by `staticreg serve` for npm dist-tag and npm deprecate.\n"
    "# Paths are relative to this file. `staticreg build` also needs base_url: the URL the\n"
    "# registry will be served at, e.g. https://npm.example.com/\n"
)


def _last_line(node: yaml.Node) -> int:
    """The last line (0-based) that holds a scalar of `node`, so comments after it are kept."""
    if isinstance(node, yaml.ScalarNode):
        return node.end_mark.line
    children = node.value if isinstance(node, yaml.SequenceNode) else [n for pair in node.value for n in pair]
    return max([node.start_mark.line] + [_last_line(child) for child in children])


def update_mapping(path: Path, key: str, change: Callable[[dict], dict], new_file_input: str | None = None) -> None:
    """Apply `change` to the mapping under top-level `key` and write the file back."""
    if path.exists():
        text = path.read_text(encoding="utf-8-sig")
    else:
        text = NEW_FILE_HEADER + (
            f"input: {yaml.safe_dump(new_file_input).splitlines()[0]}\n" if new_file_input else ""
        )
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML, so it was not changed: {exc}") from None
    if data is None:
        data, root = {}, None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of settings; it was not changed")
    current = data.get(key) or {}
    if not isinstance(current, dict):
        raise ConfigError(f"{path}: {key} is not a mapping; fix it by hand")
    updated = change({k: (dict(v) if isinstance(v, dict) else v) for k, v in current.items()})
    block = (
        yaml.safe_dump({key: updated}, sort_keys=False, allow_unicode=True, default_flow_style=False) if updated else ""
    )
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    for key_node, value_node in root.value if root is not None else []:
        if isinstance(key_node, yaml.ScalarNode) and key_node.value == key:
            start, end = key_node.start_mark.line, _last_line(value_node) + 1
            lines[start:end] = [block]
            break
    else:
        lines.append(block)
    write_file_atomic(path, "".join(lines).encode("utf-8"))


def set_dist_tag(path: Path, name: str, tag: str, version: str | None, new_file_input: str | None = None) -> None:
    """Point `tag` of `name` at `version`, or remove the tag when version is None."""

    def change(tags: dict) -> dict:
        entry = dict(tags.get(name) or {})
        if version is None:
            entry.pop(tag, None)
        else:
            entry[tag] = version
        if entry:
            tags[name] = entry
        else:
            tags.pop(name, None)
        return tags

    update_mapping(path, "dist_tags", change, new_file_input)


def set_deprecations(path: Path, name: str, messages: dict[str, str], new_file_input: str | None = None) -> None:
    """`messages` maps versions to a message, or to "" to drop that version's entry."""

    def change(entries: dict) -> dict:
        for version, message in messages.items():
            if message:
                entries[f"{name}@{version}"] = message
            else:
                entries.pop(f"{name}@{version}", None)
        return entries

    update_mapping(path, "deprecations", change, new_file_input)
