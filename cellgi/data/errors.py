"""The data layer's error type: bad input names the file and, where it can, the line."""

from __future__ import annotations

from pathlib import Path

from cellgi.errors import CellgiError

__all__ = ["DataError"]


class DataError(CellgiError):
    """A problem with input data (missing file, malformed line, unknown gene, empty split, ...).

    Args:
        message: what is wrong, in words a user can act on.
        path: the offending file, when there is one.
        line: 1-based line number in ``path``, when known.

    ``str(err)`` is ``PATH:LINE: message`` (or ``PATH: message`` / ``message``).
    """

    exit_code = 2

    def __init__(self, message: str, path: str | Path | None = None, line: int | None = None):
        self.message = message
        self.path = None if path is None else str(path)
        self.line = line
        where = ""
        if self.path is not None:
            where = self.path + (f":{line}" if line is not None else "") + ": "
        super().__init__(where + message)
