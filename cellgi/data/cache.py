"""On-disk cache of processed data, keyed by input file contents and the options that shape the result.

Files are ``<dir>/<key>.pt``: a 64-byte hex SHA-256 of the payload, a newline, then the payload (a
``torch.save`` of tensors, strings, numbers, lists and dicts; read with ``weights_only=True``, never
unpickling arbitrary objects). Writes go to a temporary file in the same folder and are moved into
place with ``os.replace``, so an interrupted build leaves no partial entry; a file whose checksum or
payload does not verify is reported as corrupt, deleted and rebuilt.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from pathlib import Path
from typing import Any, Iterable

import torch

from cellgi.fileio import atomic_open

__all__ = ["CACHE_VERSION", "cache_dir", "cache_key", "file_digest", "read_cache", "write_cache"]

#: bump when the processed layout changes, so old entries are not reused
CACHE_VERSION = 1

_DIGESTS: dict[tuple[str, int, int], str] = {}


def cache_dir(configured: str | None = None) -> Path:
    """``configured``, else ``$CELLGI_CACHE_DIR``, else ``~/.cache/cellgi``."""
    if configured:
        return Path(configured).expanduser()
    env = os.environ.get("CELLGI_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "cellgi"


def file_digest(path: str | Path) -> str:
    """SHA-256 of a file's contents (memoised per process by path, size and mtime)."""
    p = Path(path)
    st = p.stat()
    key = (str(p.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _DIGESTS:
        h = hashlib.sha256()
        with open(p, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
        _DIGESTS[key] = h.hexdigest()
    return _DIGESTS[key]


def cache_key(options: Any, files: Iterable[str | Path] = ()) -> str:
    """Hex key of JSON-able ``options`` plus the contents of ``files`` (their order counts)."""
    h = hashlib.sha256()
    h.update(f"cellgi-data-v{CACHE_VERSION}".encode())
    h.update(json.dumps(options, sort_keys=True, default=str).encode())
    for f in files:
        h.update(b"\0" + file_digest(f).encode())
    return h.hexdigest()[:32]


def read_cache(path: str | Path) -> tuple[dict[str, Any] | None, str]:
    """``(payload, "")`` on a hit, ``(None, "missing")`` or ``(None, "corrupt: ...")`` otherwise.

    A corrupt file is deleted so that the rebuild replaces it.
    """
    p = Path(path)
    if not p.is_file():
        return None, "missing"
    try:
        blob = p.read_bytes()
        digest, payload = blob[:64].decode("ascii"), blob[65:]
        if blob[64:65] != b"\n" or hashlib.sha256(payload).hexdigest() != digest:
            raise ValueError("checksum mismatch")
        obj = torch.load(io.BytesIO(payload), weights_only=True, map_location="cpu")
        if not isinstance(obj, dict):
            raise ValueError("payload is not a dict")
        return obj, ""
    except Exception as exc:  # noqa: BLE001 - any failure means: rebuild
        p.unlink(missing_ok=True)
        return None, f"corrupt: {type(exc).__name__}: {exc}"


def write_cache(path: str | Path, payload: dict[str, Any]) -> Path:
    """Write ``payload`` atomically (temp file + ``os.replace``)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    torch.save(payload, buf)
    data = buf.getvalue()
    with atomic_open(p) as fh:
        fh.write(hashlib.sha256(data).hexdigest().encode("ascii") + b"\n")
        fh.write(data)
    return p
