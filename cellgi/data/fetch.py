"""Downloading a :mod:`data source <cellgi.data.sources>` into the data folder, checksum verified.

pooch does the caching, the checksum check and the atomic move into place; the transfer itself is
:class:`ResumableDownloader`, a pooch downloader that keeps a partial download (``FILE.part``) when the
connection is cut and continues it with an HTTP Range request the next time, with a progress bar.

The data folder is ``$CELLGI_DATA_DIR`` when set, else ``<user cache dir>/cellgi/data`` (platformdirs).
Files land at their source's ``path`` inside it, so a spec can say ``data.root: <data folder>`` and use
the source's spec block unchanged.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import platformdirs
import pooch
from tqdm.auto import tqdm

from cellgi.data.sources import DataSource, get_source
from cellgi.errors import CellgiError

__all__ = ["DATA_DIR_ENV", "DataSourceError", "FetchResult", "ResumableDownloader", "data_dir", "fetch", "sha256_of"]

DATA_DIR_ENV = "CELLGI_DATA_DIR"
_CHUNK = 1 << 13  # small: a cut connection loses at most this much of what arrived


class DataSourceError(CellgiError):
    """A download that failed (HTTP error, cut connection, wrong checksum) or an unusable local file."""

    exit_code = 1


@dataclass
class FetchResult:
    """Where a source's file is, its SHA-256 (of what was downloaded), and whether it was downloaded now."""

    name: str
    path: Path
    sha256: str
    pinned: bool
    downloaded: bool


def data_dir() -> Path:
    """``$CELLGI_DATA_DIR``, else the user cache dir's ``cellgi/data`` (created)."""
    env = os.environ.get(DATA_DIR_ENV, "").strip()
    if env:
        d = Path(env).expanduser()
    else:
        d = Path(platformdirs.user_cache_dir("cellgi")) / "data"
    d.mkdir(parents=True, exist_ok=True)
    return d.resolve()


def sha256_of(path: str | Path) -> str:
    """SHA-256 of a file, hex."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class ResumableDownloader:
    """A pooch downloader (``downloader(url, output_file, pooch)``) that resumes a cut transfer.

    Bytes go to ``part`` first; on a cut connection they stay there and the next call asks the server
    for the rest (``Range: bytes=N-``); a server that ignores the range (status 200) sends it all again.
    When complete, the bytes are copied to pooch's output file and ``part`` is removed, so a download
    that then fails its checksum starts from zero next time.
    """

    def __init__(self, part: Path, *, progressbar: bool = True, timeout: float = 60.0):
        self.part, self.progressbar, self.timeout = part, progressbar, timeout

    def __call__(self, url: str, output_file: Any, pooch: Any, check_only: bool = False) -> Any:
        import requests  # imported here for startup time (~0.25 s): only a download needs it

        if check_only:
            try:
                return requests.head(url, allow_redirects=True, timeout=self.timeout).ok
            except requests.RequestException:
                return False
        self.part.parent.mkdir(parents=True, exist_ok=True)
        have = self.part.stat().st_size if self.part.exists() else 0
        headers = {"Range": f"bytes={have}-"} if have else {}
        try:
            with requests.get(url, stream=True, headers=headers, timeout=self.timeout, allow_redirects=True) as r:
                if r.status_code == 416 and have:  # the part is already complete
                    total = have
                else:
                    r.raise_for_status()
                    if have and r.status_code != 206:  # no range support: start over
                        have = 0
                    length = r.headers.get("Content-Length")
                    total = have + int(length) if length is not None and length.isdigit() else None
                    self._receive(r, have, total)
        except requests.HTTPError as exc:
            code = exc.response.status_code if exc.response is not None else "?"
            reason = exc.response.reason if exc.response is not None else ""
            raise DataSourceError(f"HTTP {code} {reason} from {url}".rstrip()) from None
        except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError) as exc:
            got = self.part.stat().st_size if self.part.exists() else 0
            raise DataSourceError(
                f"download from {url} was interrupted after {got:,} bytes ({type(exc).__name__}); "
                f"run the same command again to resume it"
            ) from None
        got = self.part.stat().st_size
        if total is not None and got < total:
            raise DataSourceError(
                f"download from {url} was interrupted after {got:,} of {total:,} bytes; "
                f"run the same command again to resume it"
            )
        if hasattr(output_file, "write"):
            with self.part.open("rb") as src:
                shutil.copyfileobj(src, output_file)
        else:
            shutil.copyfile(self.part, output_file)
        self.part.unlink()

    def _receive(self, r: Any, have: int, total: int | None) -> None:
        bar = None
        if self.progressbar:
            bar = tqdm(total=total, initial=have, unit="B", unit_scale=True, unit_divisor=1024,
                       desc=self.part.name.removesuffix(".part"), file=sys.stderr, leave=True)
        try:
            with self.part.open("ab" if have else "wb") as fh:
                for chunk in r.iter_content(chunk_size=_CHUNK):
                    fh.write(chunk)
                    if bar is not None:
                        bar.update(len(chunk))
        finally:
            if bar is not None:
                bar.close()


def _download_name(source: DataSource) -> str:
    """The name of the downloaded file (the URL's last segment, or the path's name)."""
    tail = unquote(urlparse(source.url).path.rsplit("/", 1)[-1])
    return tail.replace(":", "_").replace(" ", "_") or Path(source.path).name


def _unpack(source: DataSource, downloaded: Path, target: Path) -> None:
    """Keep what ``source.archive`` says of ``downloaded`` at ``target`` (written atomically)."""
    tmp = target.with_name(target.name + ".tmp")
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        if source.archive == "gzip":
            with gzip.open(downloaded, "rb") as src, tmp.open("wb") as dst:
                shutil.copyfileobj(src, dst)
        elif source.archive.startswith("zip:"):
            member = source.archive[4:]
            with zipfile.ZipFile(downloaded) as zf:
                names = zf.namelist()
                match = [n for n in names if n == member or n.rsplit("/", 1)[-1] == member]
                if not match:
                    shown = ", ".join(names[:20]) + (" ..." if len(names) > 20 else "")
                    raise DataSourceError(f"{source.name}: {downloaded.name} has no member {member} (it has: {shown})")
                with zf.open(match[0]) as src, tmp.open("wb") as dst:
                    shutil.copyfileobj(src, dst)
        else:
            raise DataSourceError(f"{source.name}: unknown archive kind {source.archive!r} (gzip or zip:MEMBER)")
    except (OSError, zipfile.BadZipFile, EOFError) as exc:
        tmp.unlink(missing_ok=True)
        raise DataSourceError(f"{source.name}: cannot unpack {downloaded}: {exc}") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, target)


def fetch(
    name_or_source: str | DataSource,
    *,
    folder: str | Path | None = None,
    progressbar: bool = True,
    force: bool = False,
    local_file: str | Path | None = None,
) -> FetchResult:
    """Download a source (by name or object) into ``folder`` (default :func:`data_dir`).

    A file already in place is kept (its checksum is checked again when pinned); ``force`` downloads it
    again. ``local_file``: a copy obtained by hand (a site that refuses scripted downloads), checked
    and installed as if downloaded.

    Raises:
        DataSourceError: HTTP error (404, ...), a cut connection (the next call resumes), a checksum that
            does not match (nothing is kept), an archive without the expected member.
        UnknownComponentError: no source of that name.
    """
    pooch.get_logger().setLevel("WARNING")  # the command line says what happened, once
    source = get_source(name_or_source) if isinstance(name_or_source, str) else name_or_source
    root = Path(folder).resolve() if folder is not None else data_dir()
    target = root / source.path
    raw_dir = root / "downloads" if source.archive else target.parent
    raw_name = _download_name(source) if source.archive else target.name
    raw = raw_dir / raw_name
    known = f"sha256:{source.sha256}" if source.sha256 else None
    if force:
        raw.unlink(missing_ok=True)
        if source.archive:
            target.unlink(missing_ok=True)
    if local_file is not None:
        found = sha256_of(local_file)
        if source.sha256 and found != source.sha256:
            raise DataSourceError(f"{source.name}: {local_file} has SHA-256 {found}, expected {source.sha256}")
        raw_dir.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(local_file, raw.with_name(raw.name + ".tmp"))
        os.replace(raw.with_name(raw.name + ".tmp"), raw)
    existed = raw.exists()
    downloader = ResumableDownloader(raw.with_name(raw.name + ".part"), progressbar=progressbar)
    try:
        got = pooch.retrieve(source.url, known_hash=known, fname=raw_name, path=raw_dir, downloader=downloader,
                             progressbar=False)
    except ValueError as exc:  # pooch: the hash does not match
        if "hash" not in str(exc).lower():
            raise
        raw.unlink(missing_ok=True)
        raise DataSourceError(
            f"{source.name}: the file from {source.url} does not have the pinned checksum ({exc}); "
            f"nothing was kept. The provider may have changed the file: check it before trusting it"
        ) from None
    digest = sha256_of(got)
    if source.archive and (force or not target.exists() or not existed):
        _unpack(source, Path(got), target)
    elif not source.archive:
        target = Path(got)
    return FetchResult(source.name, target, digest, source.pinned, downloaded=not existed)
