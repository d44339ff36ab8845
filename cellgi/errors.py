"""One error hierarchy: every error cellgi raises on purpose derives from :class:`CellgiError`.

An error carries the exit status the command line returns for it (``exit_code``) and renders itself
(:meth:`CellgiError.render`), so that ``cellgi`` catches them once, in :func:`cellgi.cli.main.main`.

| class | module | exit |
|---|---|---|
| :class:`SpecError`, :class:`SpecSyntaxError` | :mod:`cellgi.spec` | 2 |
| :class:`ComponentError` and its subclasses | :mod:`cellgi.registry` | 2 |
| :class:`DataError` | :mod:`cellgi.data.errors` | 2 |
| :class:`CheckpointError`, :class:`RunDirError`, ``TrainerConfigError``, ``ModelBuildError`` | :mod:`cellgi.training` | 2 |
| ``PredictError``, ``EvaluateError``, ``ScreenError`` | :mod:`cellgi.apps.predict`, :mod:`cellgi.apps.evaluate`, :mod:`cellgi.apps.screen` | 2 |
| ``EmbedError``, ``DeviceError`` (``--device``) | :mod:`cellgi.cli.embed`, :mod:`cellgi.cli._common` | 2 |
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["CellgiError", "resolve_path"]


class CellgiError(Exception):
    """Base of cellgi's own errors: a message a user can act on, and the exit status for it."""

    #: what ``cellgi`` exits with when this error ends a command (2: bad input, 1: the work failed)
    exit_code: int = 1

    def render(self) -> str:
        """The text the command line prints (after ``error: `` unless it already carries a location)."""
        return f"error: {self}"


def resolve_path(root: str | Path | None, path: str | Path) -> Path:
    """``path`` with ``~`` expanded; a relative one is taken from ``root`` (unchanged when root is None).

    The single resolver for every file a spec names (``data.root`` for data files, the spec's folder for
    ``data.root`` itself).
    """
    p = Path(path).expanduser()
    if p.is_absolute() or root is None:
        return p
    return Path(root) / p
