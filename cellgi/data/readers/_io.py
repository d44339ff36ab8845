"""Line-oriented reading shared by the readers: gzip, encodings and errors that name file and line."""

from __future__ import annotations

import gzip
import math
import zlib
from pathlib import Path
from typing import Any, Iterator

from cellgi.data.errors import DataError

__all__ = ["FLOAT32_MAX", "FLOAT32_NOTE", "NameInterner", "check_file", "in_float32", "iter_lines", "parse_float",
           "require_rows"]


def check_file(path: str | Path, what: str = "file") -> Path:
    """``path`` as a :class:`Path`; a :class:`DataError` when it does not exist or is not a file."""
    p = Path(path)
    if not p.exists():
        raise DataError(f"{what} not found", p)
    if not p.is_file():
        raise DataError(f"{what} is not a regular file", p)
    return p


def iter_lines(path: str | Path, what: str = "file") -> Iterator[tuple[int, str]]:
    """``(line_number, line)`` without the newline; ``.gz`` is decompressed.

    A truncated gzip stream, invalid UTF-8 (the exact line is found in a second, binary pass), or an
    I/O error becomes a :class:`DataError` naming the file and the line where reading stopped.
    """
    p = check_file(path, what)
    opener = gzip.open if p.suffix == ".gz" else open
    lineno = 0
    try:
        with opener(p, "rt", encoding="utf-8-sig", newline="") as fh:  # type: ignore[operator]
            for lineno, line in enumerate(fh, 1):
                yield lineno, line.rstrip("\r\n")
    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise DataError(f"truncated or corrupt gzip data ({exc})", p, lineno + 1) from None
    except UnicodeDecodeError as exc:
        # text mode decodes ahead in chunks: find the exact line in a second, binary pass
        raise DataError(f"not UTF-8 text ({exc.reason})", p, _bad_utf8_line(p, opener)) from None
    except OSError as exc:
        raise DataError(f"cannot read: {exc.strerror or exc}", p) from None


def _bad_utf8_line(p: Path, opener) -> int | None:  # type: ignore[no-untyped-def]
    try:
        with opener(p, "rb") as fh:
            for lineno, raw in enumerate(fh, 1):
                try:
                    raw.decode("utf-8")
                except UnicodeDecodeError:
                    return lineno
    except (OSError, EOFError, zlib.error):
        return None
    return None


#: the largest magnitude a float32 tensor holds: data values (targets, weights, features) live in float32,
#: so a cell beyond it would become inf there
FLOAT32_MAX = 3.4028234663852886e38
#: said after a value refused for its size
FLOAT32_NOTE = "(cellgi holds data values as float32: |x| <= 3.4e+38)"


def in_float32(v: float) -> bool:
    """Whether ``v`` is finite and stays finite as a float32."""
    return math.isfinite(v) and abs(v) <= FLOAT32_MAX


def parse_float(text: str, path: str | Path, line: int, what: str = "number") -> float:
    """``float(text)`` or a :class:`DataError` quoting the bad value; ``inf``, ``nan`` and values that
    overflow a float32 (``1e39``, ``1e999``) are refused too."""
    try:
        v = float(text)
    except ValueError:
        raise DataError(f"{what} {text!r} is not a number", path, line) from None
    if not in_float32(v):
        raise DataError(f"{what} {text.strip()!r} is not a finite number {FLOAT32_NOTE}", path, line)
    return v


class NameInterner:
    """Gives each distinct identifier read from a file a dense id, in order of first appearance."""

    def __init__(self) -> None:
        self._ids: dict[str, int] = {}
        self.names: list[str] = []

    def intern(self, name: str) -> int:
        i = self._ids.get(name)
        if i is None:
            i = self._ids[name] = len(self.names)
            self.names.append(name)
        return i


def require_rows(raw: Any, message: str) -> Any:
    """``raw`` (RawEdges/RawScreen) unless the file gave no row and none was filtered on purpose:
    then a DataError ``message`` naming the file."""
    if raw.num_rows == 0 and not raw.filtered:
        raise DataError(message, raw.path)
    return raw
