"""Composed specs: a spec that extends another file, and blocks included from shared files.

```yaml
# runs/mine.yaml
extends: base.yaml                 # the whole base spec; this file's keys win
name: mine
data:
  include: shared/yeast_data.yaml  # a shared block: the data section's base; keys written here win
  batch_size: 64
training:
  trainer: {include: shared/gpu.yaml}
```

- ``extends: FILE`` (or a list, later files winning) at the top of a spec takes that spec as the base.
- ``include: FILE`` (or a list) in any mapping takes the file's mapping as the base of that mapping.
- Merging is key by key for mappings; a list or a scalar replaces the base's value as a whole, and so
  does a component mapping whose ``type`` differs from the base's (the old type's parameters go).
- Paths are relative to the file that names them; a relative ``data.root`` written in a base or included
  file is taken from that file's folder. Cycles are refused.
- Every value keeps the file and line it came from, so an error in an included block is reported at
  ``shared/yeast_data.yaml:LINE``, not at the spec that includes it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cellgi.spec.yamlio import Located, SpecSyntaxError, load_yaml

__all__ = ["EXTENDS_KEY", "INCLUDE_KEY", "compose", "load_composed"]

EXTENDS_KEY = "extends"
INCLUDE_KEY = "include"

Loc = tuple[str | int, ...]


def _positions(loc: Located, prefix: Loc = ()) -> dict[Loc, tuple[str, int]]:
    """``{loc: (file, line)}`` of every node of ``loc`` (prefixed)."""
    return {prefix + k: (loc.file_of(k), line) for k, line in loc.lines.items()}


def _paths(value: Any, file: str, line: int, key: str) -> list[str]:
    items = value if isinstance(value, list) else [value]
    if not items or not all(isinstance(v, str) and v.strip() for v in items):
        raise SpecSyntaxError(file, line, f"{key}: give a file path or a list of file paths")
    return items


def _merge(base: Any, over: Any, loc: Loc, pos: dict[Loc, tuple[str, int]],
           over_pos: dict[Loc, tuple[str, int]]) -> Any:
    """``over`` merged onto ``base`` at ``loc``; ``pos`` (the base's positions) is updated in place."""
    if isinstance(base, dict) and isinstance(over, dict) and not _retyped(base, over):
        out = dict(base)
        if loc in over_pos:
            pos[loc] = over_pos[loc]
        for k, v in over.items():
            out[k] = _merge(base.get(k), v, loc + (k,), pos, over_pos) if k in base else v
            if k not in base:
                _replace(loc + (k,), pos, over_pos)
        return out
    _replace(loc, pos, over_pos)
    return over


def _retyped(base: dict[str, Any], over: dict[str, Any]) -> bool:
    """A component whose ``type`` changes is replaced whole: the old type's parameters do not apply."""
    return "type" in base and "type" in over and base["type"] != over["type"]


def _replace(loc: Loc, pos: dict[Loc, tuple[str, int]], over_pos: dict[Loc, tuple[str, int]]) -> None:
    n = len(loc)
    for k in [k for k in pos if k[:n] == loc]:
        del pos[k]
    for k, v in over_pos.items():
        if k[:n] == loc:
            pos[k] = v


def _resolve(data: Any, loc: Loc, located: Located, folder: Path, chain: tuple[Path, ...],
             pos: dict[Loc, tuple[str, int]], texts: dict[str, str]) -> Any:
    """``data`` (at ``loc`` of ``located``) with every ``include`` (and, at the top, ``extends``) applied."""
    if isinstance(data, list):
        return [_resolve(v, loc + (i,), located, folder, chain, pos, texts) for i, v in enumerate(data)]
    if not isinstance(data, dict):
        return data
    keys = [INCLUDE_KEY] + ([EXTENDS_KEY] if loc == () else [])
    base: Any = None
    base_pos: dict[Loc, tuple[str, int]] = {}
    own = dict(data)
    for key in keys:
        if key not in own:
            continue
        line = located.line_of(loc + (key,))
        for rel in _paths(own.pop(key), located.file_of(loc + (key,)), line, key):
            sub = _load(folder / rel, located.file_of(loc + (key,)), line, chain, texts)
            texts.update(sub.texts)
            if not isinstance(sub.data, dict):
                raise SpecSyntaxError(sub.file, 1, f"{key}d file must hold a mapping (it is the base of "
                                      f"{'.'.join(map(str, loc)) or 'the spec'})")
            sub_pos = {loc + k: v for k, v in sub.positions().items()}
            if base is None:
                base, base_pos = sub.data, sub_pos
            else:
                base = _merge(base, sub.data, loc, base_pos, sub_pos)
        pos.pop(loc + (key,), None)
    own = {k: _resolve(v, loc + (k,), located, folder, chain, pos, texts) for k, v in own.items()}
    if base is None:
        return own
    own_pos = {k: v for k, v in pos.items() if k[: len(loc)] == loc}
    merged_pos = dict(base_pos)
    out = _merge(base, own, loc, merged_pos, own_pos)
    for k in [k for k in pos if k[: len(loc)] == loc]:
        del pos[k]
    pos.update(merged_pos)
    return out


def _load(path: Path, from_file: str, line: int, chain: tuple[Path, ...], texts: dict[str, str]) -> Located:
    real = path.resolve()
    if real in chain:
        cycle = " -> ".join(str(p) for p in (*chain[chain.index(real):], real))
        raise SpecSyntaxError(from_file, line, f"include cycle: {cycle}")
    if not path.is_file():
        raise SpecSyntaxError(from_file, line, f"{path}: file not found (paths are relative to {Path(from_file).parent or '.'})")
    return compose(load_yaml(path), path.parent, chain + (real,), texts)


def compose(located: Located, folder: str | Path, chain: tuple[Path, ...] = (),
            texts: dict[str, str] | None = None) -> Located:
    """``located`` with its ``extends``/``include`` keys resolved (files relative to ``folder``).

    Raises:
        SpecSyntaxError: a missing or unparsable file, a cycle, a value that is not a path, an included
            file that is not a mapping (file and line of the key that names it).
    """
    if not _mentions(located.data):
        return located
    texts = dict(texts or {})
    texts.update(located.texts)
    pos = located.positions()
    data = _resolve(located.data, (), located, Path(folder), chain, pos, texts)
    # a relative data.root written in another file is relative to that file's folder
    root_pos = pos.get(("data", "root"))
    if (isinstance(data, dict) and isinstance(data.get("data"), dict) and root_pos is not None
            and root_pos[0] != located.file and isinstance(data["data"].get("root"), str)):
        root = Path(data["data"]["root"]).expanduser()
        if not root.is_absolute():
            data["data"] = {**data["data"], "root": str((Path(root_pos[0]).parent / root).resolve())}
    return Located.from_positions(data, pos, located.file, texts)


def load_composed(path: str | Path) -> Located:
    """Read a spec file and resolve its ``extends``/``include`` keys (:func:`compose`)."""
    path = Path(path)
    return compose(load_yaml(path), path.parent, (path.resolve(),))


def _mentions(data: Any, top: bool = True) -> bool:
    if isinstance(data, dict):
        if INCLUDE_KEY in data or (top and EXTENDS_KEY in data):
            return True
        return any(_mentions(v, False) for v in data.values())
    if isinstance(data, list):
        return any(_mentions(v, False) for v in data)
    return False
