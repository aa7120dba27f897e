"""YAML reading that remembers the line of every key, for error messages."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from xinyong.errors import XinyongError

Lines = dict[tuple[str | int, ...], int]


class _LineLoader(yaml.SafeLoader):
    pass


def _compose_lines(node: yaml.Node, path: tuple, lines: Lines) -> None:
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = key_node.value
            lines[(*path, key)] = key_node.start_mark.line + 1
            _compose_lines(value_node, (*path, key), lines)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _compose_lines(item, (*path, i), lines)


def load_yaml(path: str | Path) -> tuple[Any, Lines]:
    """Parse a YAML file; return the data and a map from key path to line number."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise XinyongError("file not found", file=path) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise XinyongError(f"cannot read file ({exc.__class__.__name__})", file=path) from None
    return parse_yaml(text, path)


def parse_yaml(text: str, path: str | Path = "<string>") -> tuple[Any, Lines]:
    try:
        node = yaml.compose(text, Loader=_LineLoader)
        data = yaml.load(text, Loader=_LineLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise XinyongError(f"invalid YAML: {problem}", file=path, line=line) from None
    lines: Lines = {}
    if node is not None:
        _compose_lines(node, (), lines)
    return data, lines


def resolve(ref: str | Path, builtin_dir: Path, relative_to: Path | None = None) -> Path:
    """A reference to a YAML file: a built-in name (`r1`) or a path, relative paths taken
    from `relative_to` (the referring file's folder)."""
    s = str(ref)
    if s.endswith((".yaml", ".yml")) or "/" in s:
        p = Path(s)
        return relative_to / p if relative_to is not None and not p.is_absolute() else p
    return builtin_dir / f"{s}.yaml"


def line_of(lines: Lines, loc: tuple) -> int | None:
    """The line of the deepest known prefix of a key path."""
    loc = tuple(loc)
    while loc:
        if loc in lines:
            return lines[loc]
        loc = loc[:-1]
    return lines.get(())
