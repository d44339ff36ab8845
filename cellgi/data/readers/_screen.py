"""Raw screen rows as read from a file, before identifiers are mapped to genes."""

from __future__ import annotations

import math
from array import array
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from cellgi.data.errors import DataError
from cellgi.data.readers._io import FLOAT32_NOTE, NameInterner, in_float32

__all__ = ["RawScreen", "RawScreenBuilder", "SPLIT_CODES", "parse_target", "parse_target_row"]

#: split-column values (lower-case) -> split code (0 train, 1 val, 2 test)
SPLIT_CODES = {"train": 0, "training": 0, "val": 1, "valid": 1, "validation": 1, "test": 2, "testing": 2}
_MISSING = {"", "na", "nan", "n/a", "none", "null", "-"}


def parse_target(text: str) -> float | None:
    """A target value: float, NaN for an empty/NA cell, None when it is not a finite number
    (``inf``, ``-inf`` and values that overflow a float32 such as ``1e39`` are not measurements)."""
    t = text.strip()
    if t.lower() in _MISSING:
        return float("nan")
    try:
        v = float(t)
    except ValueError:
        return None
    return v if in_float32(v) else None


def parse_target_row(
    fields: Sequence[str], header: Sequence[str], columns: Mapping[str, int], path: str | Path, lineno: int
) -> dict[str, float] | None:
    """Target values of one row (``columns``: target name -> column index); None when none is measured.

    Raises:
        DataError: a cell that is neither a number nor an NA marker, naming file, line and column.
    """
    values: dict[str, float] = {}
    for name, col in columns.items():
        v = parse_target(fields[col])
        if v is None:
            raise DataError(f"{header[col]!r} value {fields[col]!r} is not a finite number {FLOAT32_NOTE}", path, lineno)
        values[name] = v
    if all(math.isnan(v) for v in values.values()):
        return None
    return values


@dataclass
class RawScreen:
    """Measured samples of one file with gene identifiers interned.

    Attributes:
        path: the file.
        names: distinct gene identifiers as spelled in the file (after strain-suffix stripping).
        genes: ``[P]`` indices into ``names``; sample ``r`` is ``genes[ptr[r]:ptr[r+1]]``.
        ptr: ``[R+1]`` offsets.
        targets: target name -> ``[R]`` values (NaN = not measured).
        weight: ``[R]`` per-sample weights, or None.
        line: ``[R]`` 1-based input line of each sample.
        split: ``[R]`` split code from a split column (-1 = none).
        filtered: rows left out on purpose, by reason.
    """

    path: Path
    names: list[str]
    genes: np.ndarray
    ptr: np.ndarray
    targets: dict[str, np.ndarray]
    weight: np.ndarray | None
    line: np.ndarray
    split: np.ndarray
    filtered: Counter = field(default_factory=Counter)

    @property
    def num_rows(self) -> int:
        return int(self.ptr.size - 1)


class RawScreenBuilder(NameInterner):
    """Collects samples cheaply while a file is read."""

    def __init__(self, path: str | Path, target_names: Sequence[str], weighted: bool):
        self.path = Path(path)
        super().__init__()
        self._genes = array("q")
        self._ptr = array("q", [0])
        self._line = array("q")
        self._split = array("b")
        self._targets = {t: array("d") for t in target_names}
        self._w = array("d") if weighted else None
        self.filtered: Counter = Counter()

    def measured(
        self, genes: Sequence[str], fields: Sequence[str], header: Sequence[str], columns: Mapping[str, int],
        path: str | Path, lineno: int,
    ) -> dict[str, float] | None:
        """The targets of a row about to be added, or None when the row is left out (a gene named twice,
        no measured target), counted in :attr:`filtered` under its reason."""
        if len({g.upper() for g in genes}) != len(genes):
            self.filtered["gene repeated in sample"] += 1
            return None
        values = parse_target_row(fields, header, columns, path, lineno)
        if values is None:
            self.filtered["no measured target"] += 1
        return values

    def add(
        self,
        genes: Sequence[str],
        targets: dict[str, float],
        line: int,
        weight: float | None = None,
        split: int = -1,
    ) -> None:
        for g in genes:
            self._genes.append(self.intern(g))
        self._ptr.append(len(self._genes))
        self._line.append(line)
        self._split.append(split)
        for t, arr in self._targets.items():
            arr.append(targets.get(t, float("nan")))
        if self._w is not None:
            self._w.append(1.0 if weight is None else weight)

    def build(self) -> RawScreen:
        def np_(a: array, dt: type) -> np.ndarray:
            return np.frombuffer(a, dtype=dt).copy() if len(a) else np.zeros(0, dtype=dt)

        return RawScreen(
            path=self.path,
            names=self.names,
            genes=np_(self._genes, np.int64),
            ptr=np_(self._ptr, np.int64),
            targets={t: np_(a, np.float64) for t, a in self._targets.items()},
            weight=None if self._w is None else np_(self._w, np.float64),
            line=np_(self._line, np.int64),
            split=np_(self._split, np.int8),
            filtered=self.filtered,
        )
