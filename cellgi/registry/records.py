"""Entry-point records: *find* (metadata only) -> *load* (import, guarded) -> *classify* (accept or refuse).

A :class:`PluginRecord` is an immutable description of one entry point in one of cellgi's groups,
built from distribution metadata without importing anything. cellgi's own components are records of
the ``cellgi`` distribution (its ``pyproject.toml`` declares them), so built-ins and plugins are found
the same way; :func:`classify` decides which plugin records may provide a name (never a built-in's).

Loading a record imports its module with ``sys.stdout`` sent to ``sys.stderr`` (a plugin that prints
on import cannot corrupt ``--json`` output) and names the distribution on stderr when the import is
slow (``CELLGI_PLUGIN_SLOW_SECONDS``, default 5). ``CELLGI_PLUGIN_TIMEOUT`` (seconds) makes a slower
import fail with an error naming the distribution (main thread only, where a timer signal can
interrupt it).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from importlib import metadata
from types import FrameType
from typing import Callable, Iterable, Iterator, Union

__all__ = [
    "BUILTIN_DIST",
    "SLOW_ENV",
    "TIMEOUT_ENV",
    "PluginRecord",
    "PluginTimeout",
    "classify",
    "find",
    "load",
]

#: the distribution whose records are the built-ins
BUILTIN_DIST = "cellgi"
SLOW_ENV = "CELLGI_PLUGIN_SLOW_SECONDS"
#: what ``signal.signal`` returns: a handler, SIG_DFL/SIG_IGN, or None (not installed from Python)
_Handler = Union[Callable[[int, Union[FrameType, None]], object], int, signal.Handlers, None]
TIMEOUT_ENV = "CELLGI_PLUGIN_TIMEOUT"


@dataclass(frozen=True)
class PluginRecord:
    """One entry point: ``name = value`` in ``group``, declared by distribution ``dist`` ``version``."""

    group: str
    name: str
    dist: str
    version: str
    value: str
    entry_point: metadata.EntryPoint = field(compare=False, repr=False)

    @property
    def builtin(self) -> bool:
        return self.dist == BUILTIN_DIST

    @property
    def who(self) -> str:
        return f"{self.dist} {self.version}"


def find(group: str) -> list[PluginRecord]:
    """Every entry point of ``group`` as a record (reads metadata, imports nothing)."""
    out = []
    for ep in metadata.entry_points(group=group):
        dist = ep.dist.metadata["Name"] if ep.dist is not None else "<unknown>"
        version = ep.dist.version if ep.dist is not None else "unknown"
        out.append(PluginRecord(group, ep.name, dist, version, ep.value, ep))
    return out


class PluginTimeout(Exception):
    """An entry point's import took longer than ``CELLGI_PLUGIN_TIMEOUT`` seconds."""


def _seconds(env: str, default: float | None) -> float | None:
    raw = os.environ.get(env, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{env}={raw!r} is not a number of seconds") from None
    return value if value > 0 else None


@contextlib.contextmanager
def _watch(record: PluginRecord) -> Iterator[None]:
    """Name the distribution on stderr while a slow import runs; enforce the optional timeout."""
    slow = _seconds(SLOW_ENV, 5.0)
    limit = _seconds(TIMEOUT_ENV, None)
    t0 = time.perf_counter()
    done = threading.Event()
    err = sys.stderr  # the real stderr, also when stdout is redirected to it

    def notice() -> None:
        step = slow or 0.0
        while step and not done.wait(step):
            print(
                f"cellgi: still importing plugin {record.who} ({record.group}: {record.name} = "
                f"{record.value}) after {time.perf_counter() - t0:.0f} s"
                + ("" if limit else f"; set {TIMEOUT_ENV}=SECONDS to stop waiting"),
                file=err,
                flush=True,
            )

    watcher = threading.Thread(target=notice, name="cellgi-plugin-watch", daemon=True) if slow else None
    armed = False
    old_handler: _Handler = None
    if limit and threading.current_thread() is threading.main_thread() and hasattr(signal, "setitimer"):

        def on_alarm(signum: int, frame: FrameType | None) -> None:
            raise PluginTimeout(f"import did not finish within {TIMEOUT_ENV}={limit:g} s")

        old_handler = signal.signal(signal.SIGALRM, on_alarm)
        signal.setitimer(signal.ITIMER_REAL, limit)
        armed = True
    if watcher is not None:
        watcher.start()
    try:
        yield
    finally:
        done.set()
        if armed:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, signal.SIG_DFL if old_handler is None else old_handler)


def load(record: PluginRecord) -> object:
    """Import the object an entry point names, stdout sent to stderr, slow imports named."""
    with _watch(record), contextlib.redirect_stdout(sys.stderr):
        return record.entry_point.load()


@dataclass(frozen=True)
class Classified:
    """Outcome of :func:`classify` for one role."""

    accepted: dict[str, PluginRecord]
    #: ``(record, reason)`` of every refused plugin record
    refused: list[tuple[PluginRecord, str]]


def classify(records: Iterable[PluginRecord], builtins: dict[str, str], role: str) -> Classified:
    """Decide which plugin records may provide their names.

    ``builtins``: name -> ``"cellgi VERSION"`` of the role's built-in members. A plugin claiming a
    built-in's name is refused, and so are several plugins claiming one name (every provider listed).
    """
    claims: dict[str, dict[str, PluginRecord]] = {}
    for r in records:
        if not r.builtin:
            claims.setdefault(r.name, {})[r.dist] = r
    accepted: dict[str, PluginRecord] = {}
    refused: list[tuple[PluginRecord, str]] = []
    for name, by_dist in claims.items():
        if name in builtins:
            for r in by_dist.values():
                refused.append((r, f"refused: name {name!r} is already provided by {builtins[name]}; "
                                   f"plugin {r.who} must use another name"))
        elif len(by_dist) > 1:
            who = ", ".join(r.who for r in by_dist.values())
            for r in by_dist.values():
                refused.append((r, f"refused: {role} {name!r} is provided by several plugins: {who}"))
        else:
            accepted[name] = next(iter(by_dist.values()))
    return Classified(accepted, refused)
