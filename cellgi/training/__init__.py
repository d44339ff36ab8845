"""Training, evaluation and run management (Lightning).

Modules: :mod:`~cellgi.training.losses` (registered losses), :mod:`~cellgi.training.task` (the
LightningModule), :mod:`~cellgi.metrics` (torchmetrics in original units),
:mod:`~cellgi.baselines` (the baselines), :mod:`~cellgi.training.callbacks` (the run's outputs
as Lightning callbacks), :mod:`~cellgi.training.loggers` (experiment loggers), :mod:`~cellgi.training.plots`,
:mod:`~cellgi.training.runner` (one run end to end, returning its result). What comes after runs
(seed series, ensemble, stack, ``metrics.json``, the report) is the layer above: :mod:`cellgi.experiments.series`.
The data module is :class:`cellgi.data.datamodule.CellDataModule`. Nothing is imported here: ``cellgi.registry`` imports the losses module alone.
"""

__all__: list[str] = []

