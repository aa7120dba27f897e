"""YAML reading that remembers the line of every key, for error messages.

Reading is strict and bounded: a file is read up to MAX_BYTES (so /dev/zero or a huge file
stops at once), a key may not repeat within a mapping, and aliases may neither refer to
themselves nor expand past MAX_NODES values (a "billion laughs" document is refused before
it is built).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from xinyong.errors import XinyongError

Lines = dict[tuple[str | int, ...], int]

MAX_BYTES = 8 << 20  # a resolved scenario with packs embedded is about 40 kB
MAX_NODES = 200_000  # values after expanding aliases; a resolved scenario has about 3,000
MERGE_TAG = "tag:yaml.org,2002:merge"


class _LineLoader(yaml.SafeLoader):
    pass


def _check_graph(root: yaml.Node, path: str | Path) -> None:
    """Refuse self-referencing aliases and documents that expand past MAX_NODES values.

    Aliases share their node objects, so sizes are memoised per node: the check costs the
    number of distinct nodes, not the expanded size it measures."""
    size: dict[int, int] = {}
    active: set[int] = set()
    # Iterative post-order walk: a deep document must not exhaust Python's stack either.
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        if done:
            active.discard(key)
            total = 1 + sum(size[id(c)] for c in _children(node))
            if total > MAX_NODES:
                raise XinyongError(
                    f"document expands to more than {MAX_NODES:,} values (aliases?)",
                    file=path,
                    line=node.start_mark.line + 1,
                )
            size[key] = total
            continue
        if key in size:
            continue
        if key in active:
            raise XinyongError(
                "an alias refers to itself", file=path, line=node.start_mark.line + 1
            )
        active.add(key)
        stack.append((node, True))
        for child in _children(node):
            if id(child) in active:
                raise XinyongError(
                    "an alias refers to itself", file=path, line=child.start_mark.line + 1
                )
            if id(child) not in size:
                stack.append((child, False))


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _compose_lines(root: yaml.Node, path: str | Path, lines: Lines) -> None:
    """Record the line of every key path and refuse repeated keys. Runs after _check_graph,
    so the walk (which expands aliases) is bounded."""
    stack: list[tuple[yaml.Node, tuple]] = [(root, ())]
    while stack:
        node, where = stack.pop()
        lines.setdefault(where, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            seen: set[tuple[str, str]] = set()
            for key_node, value_node in node.value:
                if key_node.tag == MERGE_TAG:
                    stack.append((value_node, where))
                    continue
                if not isinstance(key_node, yaml.ScalarNode):
                    raise XinyongError(
                        "a key must be a plain value, not a list or mapping",
                        file=path,
                        line=key_node.start_mark.line + 1,
                        field=_dotted(where) or None,
                    )
                key = key_node.value
                ident = (key_node.tag, key)
                if ident in seen:
                    raise XinyongError(
                        "key repeats in this mapping (the YAML would keep the last silently)",
                        file=path,
                        line=key_node.start_mark.line + 1,
                        field=_dotted((*where, key)),
                    )
                seen.add(ident)
                lines[(*where, key)] = key_node.start_mark.line + 1
                stack.append((value_node, (*where, key)))
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                stack.append((item, (*where, i)))


def _dotted(where: tuple) -> str:
    return ".".join(str(p) for p in where)


def load_yaml(path: str | Path) -> tuple[Any, Lines]:
    """Parse a YAML file; return the data and a map from key path to line number."""
    path = Path(path)
    try:
        with path.open("rb") as f:
            raw = f.read(MAX_BYTES + 1)
        if len(raw) > MAX_BYTES:
            raise XinyongError(f"file is larger than {MAX_BYTES >> 20} MiB", file=path)
        text = raw.decode("utf-8")
    except FileNotFoundError:
        raise XinyongError("file not found", file=path) from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:  # ValueError: a NUL in the name
        raise XinyongError(f"cannot read file ({exc.__class__.__name__})", file=path) from None
    return parse_yaml(text, path)


def parse_yaml(text: str, path: str | Path = "<string>") -> tuple[Any, Lines]:
    """Parse YAML text (one document) strictly; see the module's docstring."""
    if len(text) > MAX_BYTES:
        raise XinyongError(f"text is larger than {MAX_BYTES >> 20} MiB", file=path)
    try:
        # The reader checks the characters as it is made (a control character raises here).
        loader = _LineLoader(text)
    except yaml.YAMLError as exc:
        raise XinyongError(f"invalid YAML: {str(exc).splitlines()[0]}", file=path) from None
    lines: Lines = {}
    try:
        node = loader.get_single_node()
        if node is None:
            return None, lines
        _check_graph(node, path)
        _compose_lines(node, path, lines)
        data = loader.construct_document(node)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise XinyongError(f"invalid YAML: {problem}", file=path, line=line) from None
    except (RecursionError, ValueError, TypeError, OverflowError) as exc:
        # Constructors of odd scalars (a timestamp out of range, a huge exponent) raise these.
        raise XinyongError(f"invalid YAML ({exc.__class__.__name__})", file=path) from None
    finally:
        loader.dispose()
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
