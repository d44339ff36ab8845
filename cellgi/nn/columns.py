"""Per-gene feature columns named in a spec by exact name or fnmatch pattern (``emap.*``, ``smf.fitness``)."""

from __future__ import annotations

from fnmatch import fnmatchcase
from typing import Sequence

__all__ = ["match_columns"]


def match_columns(patterns: Sequence[str], names: Sequence[str]) -> tuple[list[int], list[str]]:
    """``(indices, unmatched)``: the positions of ``names`` that some pattern matches, in the order of
    ``names``, and the patterns that match no name (the caller turns those into its located error)."""
    unmatched = [p for p in patterns if not any(fnmatchcase(n, p) for n in names)]
    return [i for i, n in enumerate(names) if any(fnmatchcase(n, p) for p in patterns)], unmatched
