"""cellgi: genetic interaction prediction with graph neural networks over gene networks.

Notebook entry points (imported on first use, so that ``import cellgi`` stays light)::

    import cellgi
    model = cellgi.fit("quickstart", overrides=["training.max_epochs=2"])   # cellgi.Model, trained
    model = cellgi.load("runs/quickstart/20260101-120000")   # or a pretrained name: cellgi.load("emap_real")
    model.predict([["YAL015C", "YBL007C"]])                   # pandas.DataFrame
    model.screen(["YAL015C"])                                 # the query against every gene, DataFrame
    result = cellgi.train("quickstart", overrides=["training.max_epochs=2"])   # the run's result only
    cellgi.pretrained.build("emap_real")                      # train a shipped spec once, use it by name
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

__all__ = ["Model", "__version__", "fit", "load", "pretrained", "train"]

_LAZY = {"load": "cellgi.api", "Model": "cellgi.api", "fit": "cellgi.api", "train": "cellgi.api"}


def __getattr__(name: str) -> Any:
    import importlib

    if name == "pretrained":
        return importlib.import_module("cellgi.pretrained")
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'cellgi' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY) | {"pretrained"})
