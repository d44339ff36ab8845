"""YAML loading that keeps the line of every key, refuses duplicate keys, and reads ``1e-3`` as a float."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

__all__ = ["SpecSyntaxError", "Located", "load_yaml", "parse_yaml"]

Loc = tuple[Any, ...]


class SpecSyntaxError(Exception):
    """A YAML file that cannot be parsed; carries file and line."""

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
    """Parsed YAML data with the line of every node, addressed by key path."""

    def __init__(self, data: Any, lines: dict[Loc, int], file: str, text: str):
        self.data, self.lines, self.file, self.text = data, lines, file, text

    def line_of(self, loc: Loc) -> int:
        """Line of ``loc`` or of its nearest existing parent."""
        loc = tuple(loc)
        while loc and loc not in self.lines:
            loc = loc[:-1]
        return self.lines.get(loc, 1)

    def snippet(self, line: int) -> str:
        rows = self.text.splitlines()
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


def parse_yaml(text: str, file: str = "<string>") -> Located:
    """Parse YAML text into data plus line positions."""
    try:
        loader = _Loader(text)
        try:
            node = loader.get_single_node()
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
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecSyntaxError(str(path), 0, "file not found") from None
    except UnicodeDecodeError as exc:
        raise SpecSyntaxError(str(path), 1, f"not UTF-8 text: {exc.reason}") from None
    return parse_yaml(text, str(path))
