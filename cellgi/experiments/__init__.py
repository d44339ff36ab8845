"""Experiments built from runs, above the training layer: a run or a seed series with its ensemble and
stack (:mod:`~cellgi.experiments.series`), grids of overrides, Optuna sweeps. They return values (progress
lines aside); the command line renders them (:mod:`~cellgi.experiments.report`)."""
