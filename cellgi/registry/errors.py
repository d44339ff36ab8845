"""Errors of the registry (all :class:`~cellgi.errors.CellgiError`, exit status 2)."""

from __future__ import annotations

import difflib

from cellgi.errors import CellgiError

__all__ = ["ComponentBuildError", "ComponentError", "DuplicateComponentError", "PluginLoadError", "UnknownComponentError"]


class ComponentError(CellgiError):
    """Base class of registry errors."""

    exit_code = 2


class ComponentBuildError(ComponentError, ValueError):
    """A component refused the values it was built with (its constructor raised ``ValueError``): the message
    names the role and the component, so the command line shows one line instead of a traceback. Still a
    ``ValueError`` for code that catches those."""


class UnknownComponentError(ComponentError, KeyError):
    """A name that no registry member or installed plugin provides."""

    def __init__(self, role: str, name: str, valid: list[str]):
        self.role, self.name, self.valid = role, name, valid
        close = difflib.get_close_matches(name, valid, n=1, cutoff=0.5)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        msg = f"unknown {role} {name!r}{hint} (valid: {', '.join(sorted(valid)) or 'none'})"
        super().__init__(msg)
        self.message = msg

    def __str__(self) -> str:  # KeyError would quote the message
        return self.message


class DuplicateComponentError(ComponentError):
    """Two providers claim the same name in one role."""


class PluginLoadError(ComponentError):
    """A plugin distribution failed to import or to register what its entry point promised."""

    def __init__(self, role: str, name: str, dist: str, version: str, cause: str):
        self.role, self.name, self.dist, self.version, self.cause = role, name, dist, version, cause
        super().__init__(f"plugin {dist} {version} failed to load {role} {name!r}: {cause}")
