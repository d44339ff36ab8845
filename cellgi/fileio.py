"""Atomic file writes: a reader, or a process killed mid-write, sees the old file or the new one, never a
partial file. Used for checkpoints, the processed-data cache, splits and run files.

:func:`check_writable` tells, before any work, whether an output path can be written (the commands call
it first: a read-only folder, a parent that is a file, a missing folder are one line, not a traceback);
:func:`replace_when_done` writes a replacement beside a file and puts it in place only once complete."""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from pathlib import Path
from typing import IO, Iterator

from cellgi.errors import CellgiError

__all__ = ["OutputError", "atomic_open", "check_writable", "describe_os_error", "replace_when_done",
           "write_text_atomic"]


class OutputError(CellgiError):
    """An output path that cannot be written (rendered as ``error: PATH: reason``)."""

    exit_code = 2


def describe_os_error(exc: OSError) -> str:
    """The reason of a failed write in words (a full disk named as such)."""
    if exc.errno == errno.ENOSPC:
        return "no space left on device"
    if exc.errno == errno.EDQUOT:
        return "disk quota exceeded"
    if exc.errno == errno.EROFS:
        return "read-only file system"
    return exc.strerror or str(exc)


def check_writable(path: str | Path, *, label: str = "", folder_ok: bool = False,
                   make_parents: bool = False) -> Path:
    """``path`` as a :class:`Path` when a file can be created there (or replaced); else
    :class:`OutputError` naming it and why: an existing folder (unless ``folder_ok``), a parent folder
    that is missing (unless ``make_parents``: then the nearest existing one is checked), a parent that
    is a file, or a folder where nothing can be created (tried: a probe file is made and removed, so
    read-only mounts and permissions are both caught).

    Args:
        label: how the command names the path (``-o``, ``--runs-root``); shown before it.
    """
    p = Path(path).expanduser()
    name = f"{label} {p}" if label else str(p)
    if p.is_dir() and not folder_ok:
        raise OutputError(f"{name}: is a folder; give a file name")
    parent = p if (folder_ok and p.is_dir()) else p.parent
    while make_parents and not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.exists():
        # a missing folder: tell whether something on the way is a file
        up = parent
        while not up.exists() and up != up.parent:
            up = up.parent
        if up.exists() and not up.is_dir():
            raise OutputError(f"{name}: {up} is a file, not a folder")
        raise OutputError(f"{name}: folder {parent} does not exist")
    if not parent.is_dir():
        raise OutputError(f"{name}: {parent} is a file, not a folder")
    try:
        fd, probe = tempfile.mkstemp(prefix=".cellgi-write-check.", dir=parent)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise OutputError(f"{name}: cannot write in folder {parent}: {describe_os_error(exc)}") from None
    return p


@contextlib.contextmanager
def replace_when_done(path: str | Path, enabled: bool = True) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; when the block ends without error it replaces ``path``,
    else it is removed and ``path`` is left as it was (``enabled=False``: yields ``path`` itself)."""
    p = Path(path)
    if not enabled:
        yield p
        return
    tmp = p.with_name(f".{p.name}.partial")
    try:
        yield tmp
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, p)


@contextlib.contextmanager
def atomic_open(path: str | Path, mode: str = "wb") -> Iterator[IO]:
    """Open a temporary file beside ``path`` for writing; on success fsync it, rename it over ``path``
    and fsync the folder; on any error remove it and re-raise (``path`` is left untouched).

    Args:
        path: final file; its folder is created if needed.
        mode: ``"wb"`` (bytes) or ``"w"`` (UTF-8 text).
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"atomic_open writes whole files: mode 'wb' or 'w', got {mode!r}")
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent)
    try:
        with os.fdopen(fd, mode, **({"encoding": "utf-8"} if mode == "w" else {})) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the usual permissions
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    try:  # make the rename itself durable
        dfd = os.open(p.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:  # pragma: no cover - filesystems without directory fsync
        pass


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_open(path, "w") as fh:
        fh.write(text)
    return Path(path)
