"""YAML loading that keeps the line of every key, refuses duplicate keys, and reads ``1e-3`` as a float.

Hostile or broken YAML fails fast with a located :class:`SpecSyntaxError`, before anything is built:

- a file larger than :data:`MAX_SPEC_BYTES` is refused before it is read;
- nesting deeper than :data:`MAX_DEPTH` is refused from the event stream (no ``RecursionError``);
- aliases that would expand to more than :data:`MAX_NODES` nodes ("billion laughs") or that refer to
  themselves are refused before the document is walked or validated.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from cellgi.errors import CellgiError

__all__ = ["MAX_DEPTH", "MAX_NODES", "MAX_SPEC_BYTES", "SpecSyntaxError", "Located", "load_yaml", "parse_yaml"]

#: largest spec file read (a spec is a few kB; this is a hundred times any real one)
MAX_SPEC_BYTES = 1 << 20
#: deepest nesting of mappings/sequences (real specs nest about 5 deep)
MAX_DEPTH = 64
#: most nodes the document may have once aliases are expanded
MAX_NODES = 100_000

Loc = tuple[str | int, ...]


class SpecSyntaxError(CellgiError):
    """A YAML file that cannot be parsed; carries file and line."""

    exit_code = 2

    def render(self) -> str:
        return str(self)

    def __init__(self, file: str, line: int, message: str):
        self.file, self.line, self.message = file, line, message
        super().__init__(f"{file}:{line}: {message}")


class _Loader(yaml.SafeLoader):
    """Safe loader; YAML 1.1 needs a dot in floats, users write ``1e-3``: accept it."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
        |\.[0-9_]+(?:[eE][-+][0-9]+)?
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$""",
        re.X,
    ),
    list("-+0123456789."),
)


class Located:
    """Parsed YAML data with the line of every node, addressed by key path.

    A composed spec (:mod:`cellgi.spec.compose`) has nodes from several files: ``files`` names the file
    of each node that is not from ``file``, and ``texts`` holds every file's text for snippets.
    """

    def __init__(self, data: Any, lines: dict[Loc, int], file: str, text: str,
                 files: dict[Loc, str] | None = None, texts: dict[str, str] | None = None):
        self.data, self.lines, self.file, self.text = data, lines, file, text
        self.files = files or {}
        self.texts = {**(texts or {}), file: text}

    def _nearest(self, loc: Loc) -> Loc:
        loc = tuple(loc)
        while loc and loc not in self.lines:
            loc = loc[:-1]
        return loc

    def line_of(self, loc: Loc) -> int:
        """Line of ``loc`` or of its nearest existing parent."""
        return self.lines.get(self._nearest(loc), 1)

    def file_of(self, loc: Loc) -> str:
        """File of ``loc`` or of its nearest existing parent (``file`` unless it was included)."""
        return self.files.get(self._nearest(loc), self.file)

    def positions(self) -> dict[Loc, tuple[str, int]]:
        """``{loc: (file, line)}`` of every node."""
        return {k: (self.files.get(k, self.file), line) for k, line in self.lines.items()}

    @classmethod
    def from_positions(cls, data: Any, pos: dict[Loc, tuple[str, int]], file: str, texts: dict[str, str]) -> "Located":
        """A located document from ``{loc: (file, line)}`` (a composed spec)."""
        lines = {k: line for k, (_, line) in pos.items()}
        lines.setdefault((), 1)
        files = {k: f for k, (f, _) in pos.items() if f != file}
        return cls(data, lines, file, texts.get(file, ""), files, texts)

    def snippet(self, line: int, file: str | None = None) -> str:
        rows = self.texts.get(file or self.file, self.text).splitlines()
        if not 1 <= line <= len(rows):
            return ""
        row = rows[line - 1]
        indent = len(row) - len(row.lstrip())
        return f"    {row}\n    {' ' * indent}^"


def _walk(node: yaml.Node, loc: Loc, lines: dict[Loc, int], file: str) -> None:
    if isinstance(node, yaml.MappingNode):
        seen: dict[Any, int] = {}
        for key_node, value_node in node.value:
            key = key_node.value
            line = key_node.start_mark.line + 1
            if key in seen:
                raise SpecSyntaxError(
                    file, line, f"duplicate key {'.'.join(map(str, loc + (key,)))!r} (first on line {seen[key]})"
                )
            seen[key] = line
            lines[loc + (key,)] = line
            _walk(value_node, loc + (key,), lines, file)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            lines[loc + (i,)] = item.start_mark.line + 1
            _walk(item, loc + (i,), lines, file)


def _check_depth(text: str, file: str) -> None:
    """Refuse nesting deeper than :data:`MAX_DEPTH` from the parser's event stream (iterative)."""
    loader = _Loader(text)
    try:
        depth = 0
        while loader.check_event():
            ev = loader.get_event()
            if isinstance(ev, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
                depth += 1
                if depth > MAX_DEPTH:
                    line = ev.start_mark.line + 1 if ev.start_mark is not None else 1
                    raise SpecSyntaxError(file, line, f"YAML nested deeper than {MAX_DEPTH} levels")
            elif isinstance(ev, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
                depth -= 1
    finally:
        loader.dispose()


def _check_expansion(root: yaml.Node, file: str) -> None:
    """Refuse self-referencing aliases and documents over :data:`MAX_NODES` nodes once aliases expand.

    Aliases share one node object, so sizes are memoised per node: the check costs one visit per
    distinct node however large the expansion would be.
    """
    size: dict[int, int] = {}
    on_path: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        if done:
            on_path.discard(key)
            kids = _children(node)
            total = 1 + sum(size[id(k)] for k in kids)
            if total > MAX_NODES:
                raise SpecSyntaxError(
                    file,
                    node.start_mark.line + 1,
                    f"YAML aliases expand to more than {MAX_NODES} nodes (an alias bomb?); write the values out",
                )
            size[key] = total
            continue
        if key in size:
            continue
        if key in on_path:
            raise SpecSyntaxError(file, node.start_mark.line + 1, "YAML alias refers to itself (recursive structure)")
        on_path.add(key)
        stack.append((node, True))
        for kid in _children(node):
            kid_key = id(kid)
            if kid_key in on_path:
                raise SpecSyntaxError(file, kid.start_mark.line + 1, "YAML alias refers to itself (recursive structure)")
            if kid_key not in size:
                stack.append((kid, False))


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def parse_yaml(text: str, file: str = "<string>") -> Located:
    """Parse YAML text into data plus line positions.

    Raises:
        SpecSyntaxError: invalid YAML, a duplicate key, text over :data:`MAX_SPEC_BYTES`, nesting over
            :data:`MAX_DEPTH`, or aliases expanding past :data:`MAX_NODES` nodes (file and line given).
    """
    if len(text) > MAX_SPEC_BYTES:
        raise SpecSyntaxError(file, 1, f"spec is {len(text):,} characters; specs are limited to {MAX_SPEC_BYTES:,}")
    try:
        _check_depth(text, file)
        loader = _Loader(text)
        try:
            node = loader.get_single_node()
            if node is not None:
                _check_expansion(node, file)
            data = loader.construct_document(node) if node is not None else None
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        raise SpecSyntaxError(file, line, f"invalid YAML: {exc.problem or exc.context}") from None
    except yaml.YAMLError as exc:
        raise SpecSyntaxError(file, 1, f"invalid YAML: {exc}") from None
    lines: dict[Loc, int] = {(): 1}
    if node is not None:
        _walk(node, (), lines, file)
    return Located(data, lines, file, text)


def load_yaml(path: str | Path) -> Located:
    """Read and parse a YAML file."""
    path = Path(path)
    try:
        with path.open("rb") as fh:
            raw = fh.read(MAX_SPEC_BYTES + 1)
        if len(raw) > MAX_SPEC_BYTES:
            size = path.stat().st_size
            raise SpecSyntaxError(
                str(path), 1, f"file is {size:,} bytes; specs are limited to {MAX_SPEC_BYTES:,} bytes"
            )
        text = raw.decode("utf-8")
    except FileNotFoundError:
        raise SpecSyntaxError(str(path), 0, "file not found") from None
    except IsADirectoryError:
        raise SpecSyntaxError(str(path), 0, "is a folder, not a spec file") from None
    except OSError as exc:
        raise SpecSyntaxError(str(path), 0, f"cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise SpecSyntaxError(str(path), 1, f"not UTF-8 text: {exc.reason}") from None
    return parse_yaml(text, str(path))
