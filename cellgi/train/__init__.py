"""Training, evaluation and run management (Lightning).

Modules: :mod:`~cellgi.train.losses` (registered losses), :mod:`~cellgi.train.task` (the
LightningModule), :mod:`~cellgi.train.metrics` (torchmetrics in original units),
:mod:`~cellgi.train.baselines` (per-gene additive ridge), :mod:`~cellgi.train.loaders` (DDP-aware
loaders), :mod:`~cellgi.train.checkpoint` (safe, self-contained checkpoints),
:mod:`~cellgi.train.runs` (run folders), :mod:`~cellgi.train.plots` and :mod:`~cellgi.train.runner`
(one run end to end). Nothing is imported here: ``cellgi.registry`` imports the losses module alone.
"""

__all__: list[str] = []
