"""Bases of the data-format roles ``graph_format`` and ``screen_format``.

A format is one registered class: its params model holds the fields a ``data.graphs`` (or
``data.screens``) entry may add to the shared ones, its ``path_fields`` name the entry's fields that
are files, and :meth:`read` turns the entry into raw rows. The files a reader gets are exactly the
declared ones, resolved against ``data.root``; the processed-data cache key is derived from the same
declaration, so a reader can never read a file the cache does not watch. Adding a format is one module
(or one plugin) with an entry point in ``cellgi.graph_formats`` / ``cellgi.screen_formats``::

    class MyParams(Params):
        sep: str = Field("\\t", description="column separator")

    @register("graph_format", "my_edges", summary="ORF pairs, my lab's layout", params=MyParams)
    class MyEdges(GraphFormat[MyParams]):
        def read(self, spec: MyParams, files: dict[str, Path]) -> RawEdges:
            ...  # files["path"] is the data file; return RawEdges

The validated entry :meth:`read` gets is an instance of the format's params model (and of
``GraphEntryBase``/``ScreenEntryBase``, for the shared fields): a format is generic in the entry type it
reads, its params model, or a ``Protocol`` naming the fields it reads where it also reads a shared one.

The entry in a spec then reads ``{name: ..., format: my_edges, path: ..., sep: ","}``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Generic, TypeVar

from cellgi.data.errors import DataError
from cellgi.data.readers._edges import RawEdges
from cellgi.data.readers._screen import RawScreen
from cellgi.errors import resolve_path
from cellgi.registry import get_registry
from cellgi.spec.data import GraphEntryBase, ScreenEntryBase

#: a validated ``data.graphs`` or ``data.screens`` entry (the model built for its format: base fields + params)
FormatEntry = GraphEntryBase | ScreenEntryBase

#: the entry type a format's :meth:`~DataFormat.read` takes (see the module docstring)
EntryT = TypeVar("EntryT", contravariant=True)

__all__ = ["DataFormat", "EntryT", "FormatEntry", "GraphFormat", "ScreenFormat", "format_input_files", "format_reader", "read_entry"]


class DataFormat(Generic[EntryT]):
    """Common part of the format roles (see the module docstring)."""

    #: fields of the spec entry that name input files (None-valued optional ones are skipped)
    path_fields: ClassVar[tuple[str, ...]] = ("path",)
    #: the type :meth:`read` returns (checked after every read)
    yields: ClassVar[type] = object

    def __init__(self, **options: Any):
        self.options = options

    def files(self, spec: FormatEntry, root: str | Path) -> dict[str, Path]:
        """The declared input files of one entry, ``{field: path}`` resolved against ``root``."""
        out = {}
        for f in self.path_fields:
            value = getattr(spec, f)
            if value is not None:
                out[f] = resolve_path(root, value)
        return out

    def input_files(self, spec: FormatEntry, root: str | Path) -> list[Path]:
        """Every file the entry reads (the cache key watches these)."""
        return list(self.files(spec, root).values())

    def read(self, spec: EntryT, files: dict[str, Path]) -> object:  # pragma: no cover - abstract
        raise NotImplementedError


class GraphFormat(DataFormat[EntryT]):
    """Base of the ``graph_format`` role: :meth:`read` returns :class:`RawEdges`."""

    yields = RawEdges

    def read(self, spec: EntryT, files: dict[str, Path]) -> RawEdges:  # pragma: no cover - abstract
        raise NotImplementedError


class ScreenFormat(DataFormat[EntryT]):
    """Base of the ``screen_format`` role: :meth:`read` returns :class:`RawScreen`."""

    yields = RawScreen

    def read(self, spec: EntryT, files: dict[str, Path]) -> RawScreen:  # pragma: no cover - abstract
        raise NotImplementedError


def format_reader(role: str, spec: FormatEntry) -> DataFormat[FormatEntry]:
    """The reader registered in ``role`` (``graph_format``/``screen_format``) under ``spec.format``."""
    return get_registry(role).get(spec.format).factory()  # type: ignore[misc]


def format_input_files(role: str, spec: FormatEntry, root: str | Path) -> list[Path]:
    """Every file a ``data.graphs``/``data.screens`` entry reads, as its format declares (cache keys)."""
    return format_reader(role, spec).input_files(spec, root)


def read_entry(role: str, spec: FormatEntry, root: str | Path) -> object:
    """Read one entry with the reader of its format (built-in or plugin); check what it yields."""
    reader = format_reader(role, spec)
    files = reader.files(spec, root)
    raw = reader.read(spec, files)
    if not isinstance(raw, reader.yields):
        raise DataError(
            f"{role.replace('_', ' ')} {spec.format!r} returned {type(raw).__name__}, not {reader.yields.__name__}",
            files.get("path"),
        )
    return raw
