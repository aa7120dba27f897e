"""YAML reading that remembers the line of every key, for error messages.

Reading is strict and bounded: a file is read up to MAX_BYTES (regular files only: a FIFO
or /dev/zero is refused at once); a document may hold at most MAX_VALUES values, counted as
they are read (a large plain file is refused after MAX_VALUES values, not once parsed
whole), nested at most MAX_DEPTH deep; a key may not repeat within a mapping; and aliases
may neither refer to themselves nor expand past MAX_NODES values (a "billion laughs"
document is refused before it is built).

References to other files (`extends:`, packs named by path) go through `resolve`, the one
rule for a path a user gives; within `builtin_only()` (the web application) only built-in
names are followed, and whether a named file exists is never revealed.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from contextvars import ContextVar
from pathlib import Path
from typing import Any

import yaml

from xinyong.errors import XinyongError
from xinyong.files import read_bytes

Lines = dict[tuple[str | int, ...], int]

MAX_BYTES = 8 << 20  # a resolved scenario with packs embedded is about 40 kB
MAX_VALUES = 50_000  # values as written; the largest built-in scenario resolved has 3,549
MAX_NODES = 200_000  # values after expanding aliases
MAX_DEPTH = 64  # mappings and lists within each other; a scenario nests 10 deep
MERGE_TAG = "tag:yaml.org,2002:merge"
BUILTIN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")


class _LineLoader(yaml.SafeLoader):
    """Counts the values it composes and stops past MAX_VALUES: the pure-Python parser takes
    about 0.1 ms a value, so a large plain file is refused in seconds, not minutes."""

    values = 0
    depth = 0
    path: str | Path = "<string>"

    def compose_node(self, parent: Any, index: Any) -> Any:
        self.values += 1
        self.depth += 1
        if self.values > MAX_VALUES or self.depth > MAX_DEPTH:
            problem = (
                f"more than {MAX_VALUES:,} values (a scenario has a few thousand)"
                if self.values > MAX_VALUES
                else f"nested more than {MAX_DEPTH} deep"
            )
            raise XinyongError(problem, file=self.path, line=self.peek_event().start_mark.line + 1)
        try:
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


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
        text = read_bytes(path, MAX_BYTES).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise XinyongError(f"cannot read file ({exc.__class__.__name__})", file=path) from None
    return parse_yaml(text, path)


def parse_yaml(text: str, path: str | Path = "<string>") -> tuple[Any, Lines]:
    """Parse YAML text (one document) strictly; see the module's docstring."""
    if len(text) > MAX_BYTES:
        raise XinyongError(f"text is larger than {MAX_BYTES >> 20} MiB", file=path)
    try:
        # The reader checks the characters as it is made (a control character raises here).
        loader = _LineLoader(text)
        loader.path = path
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


_BUILTIN_ONLY: ContextVar[frozenset[Path] | None] = ContextVar("builtin_only", default=None)


@contextlib.contextmanager
def builtin_only(*allowed: Path) -> Iterator[None]:
    """Within the block, `resolve` follows built-in names only (and the files `allowed`):
    what the web application reads for a design or an upload."""
    token = _BUILTIN_ONLY.set(frozenset(Path(p) for p in allowed))
    try:
        yield
    finally:
        _BUILTIN_ONLY.reset(token)


def resolve(
    ref: str | Path, builtin_dir: Path, relative_to: Path | None = None, *, what: str = "file"
) -> Path:
    """The one rule for a path a user names (a scenario, its `extends:`, a pack of any kind):
    a built-in name (`r1`) or a path, relative paths taken from `relative_to` (the referring
    file's folder). Within `builtin_only()` a path is refused, in the same words whether or
    not the file exists."""
    s = str(ref)
    if "\0" in s:
        raise XinyongError(f"{what} {s[:80]!r} not found (a NUL in its name)")
    is_path = s.endswith((".yaml", ".yml")) or "/" in s
    path = Path(s) if is_path else builtin_dir / f"{s}.yaml"
    if is_path and relative_to is not None and not path.is_absolute():
        path = relative_to / path
    allowed = _BUILTIN_ONLY.get()
    if allowed is None or path in allowed:
        return path
    if is_path or not BUILTIN_NAME.fullmatch(s) or not path.is_file():
        known = ", ".join(sorted(p.stem for p in builtin_dir.glob("*.yaml")))
        raise XinyongError(
            f"{what} '{s[:80]}' is not a built-in name ({known}); here a design cannot "
            "refer to files"
        )
    return path


def line_of(lines: Lines, loc: tuple) -> int | None:
    """The line of the deepest known prefix of a key path."""
    loc = tuple(loc)
    while loc:
        if loc in lines:
            return lines[loc]
        loc = loc[:-1]
    return lines.get(())
