"""Training, evaluation and run management (Lightning).

Modules: :mod:`~cellgi.train.losses` (registered losses), :mod:`~cellgi.train.task` (the
LightningModule), :mod:`~cellgi.train.metrics` (torchmetrics in original units),
:mod:`~cellgi.train.baselines` (the baselines), :mod:`~cellgi.train.checkpoint` (safe, self-contained
checkpoints), :mod:`~cellgi.train.runs` (run folders), :mod:`~cellgi.train.callbacks` (the run's outputs
as Lightning callbacks), :mod:`~cellgi.train.loggers` (experiment loggers), :mod:`~cellgi.train.plots`,
:mod:`~cellgi.train.runner` (one run end to end) and :mod:`~cellgi.train.replicates` (seed replicates).
The data module is :class:`cellgi.data.datamodule.CellDataModule`. Nothing is imported here: ``cellgi.registry`` imports the losses module alone.
"""

__all__: list[str] = []


# ``cellgi.train`` is both this subpackage and the notebook call ``cellgi.train(spec, overrides=[...])``
# (:func:`cellgi.api.train`): Python binds the name ``train`` in ``cellgi`` to this module as soon as any
# ``cellgi.train.*`` is imported, so the module itself is made callable and forwards to the API.
import sys as _sys
import types as _types


class _CallableModule(_types.ModuleType):
    def __call__(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        """Train one run: see :func:`cellgi.api.train`."""
        from cellgi.api import train

        return train(*args, **kwargs)


_sys.modules[__name__].__class__ = _CallableModule
del _sys, _types
