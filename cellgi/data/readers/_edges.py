"""Raw edge rows as read from a file, before identifiers are mapped to genes."""

from __future__ import annotations

from array import array
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from cellgi.data.readers._io import NameInterner

__all__ = ["RawEdges", "RawEdgesBuilder"]


@dataclass
class RawEdges:
    """Edge rows of one file with identifiers interned.

    Attributes:
        path: the file.
        names: distinct identifiers as spelled in the file.
        src, dst: ``[R]`` indices into ``names`` (one oriented row each).
        weight: ``[R]`` weights or None.
        line: ``[R]`` 1-based line of each row.
        filtered: rows left out on purpose, by reason (score threshold, mode filter, ...).
    """

    path: Path
    names: list[str]
    src: np.ndarray
    dst: np.ndarray
    weight: np.ndarray | None
    line: np.ndarray
    filtered: Counter = field(default_factory=Counter)

    @property
    def num_rows(self) -> int:
        return int(self.src.size)


class RawEdgesBuilder(NameInterner):
    """Collects rows cheaply (identifier interning, typed arrays) while a file is read."""

    def __init__(self, path: str | Path, weighted: bool):
        self.path = Path(path)
        super().__init__()
        self._src = array("q")
        self._dst = array("q")
        self._line = array("q")
        self._w = array("d") if weighted else None
        self.filtered: Counter = Counter()

    def add(self, a: str, b: str, line: int, weight: float | None = None) -> None:
        self._src.append(self.intern(a))
        self._dst.append(self.intern(b))
        self._line.append(line)
        if self._w is not None:
            self._w.append(1.0 if weight is None else weight)

    def add_ids(self, a: int, b: int, line: int, weight: float | None = None) -> None:
        """Add a row whose endpoints are already interned ids."""
        self._src.append(a)
        self._dst.append(b)
        self._line.append(line)
        if self._w is not None:
            self._w.append(1.0 if weight is None else weight)

    def build(self) -> RawEdges:
        return RawEdges(
            path=self.path,
            names=self.names,
            src=np.frombuffer(self._src, dtype=np.int64).copy(),
            dst=np.frombuffer(self._dst, dtype=np.int64).copy(),
            weight=None if self._w is None else np.frombuffer(self._w, dtype=np.float64).copy(),
            line=np.frombuffer(self._line, dtype=np.int64).copy(),
            filtered=self.filtered,
        )
