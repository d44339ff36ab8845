"""cellgi: genetic interaction prediction with graph neural networks over gene networks.

Notebook entry points (imported on first use, so that ``import cellgi`` stays light)::

    import cellgi
    model = cellgi.load("runs/quickstart/20260101-120000")   # cellgi.api.Model
    model.predict([["YAL015C", "YBL007C"]])                   # pandas.DataFrame
    result = cellgi.train("quickstart", overrides=["training.max_epochs=2"])
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

__all__ = ["Model", "__version__", "load", "train"]

_LAZY = {"load": "cellgi.api", "Model": "cellgi.api"}


def __getattr__(name: str) -> Any:
    import importlib

    if name == "train":
        # the subpackage cellgi.train, made callable (it forwards to cellgi.api.train): Python binds
        # ``cellgi.train`` to the subpackage whenever it is imported, so both must be one object
        return importlib.import_module("cellgi.train")
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'cellgi' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY) | {"train"})
