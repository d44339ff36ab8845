"""Trained predictors: what predicts from a run folder (a network, a seed ensemble, a stack, a plugin's
kind), behind one protocol (:class:`~cellgi.predictors.base.TrainedPredictor`) and one loader
(:func:`~cellgi.predictors.loader.load_predictor`).

Modules: :mod:`~cellgi.predictors.base` (the protocol and the kind protocol), :mod:`~cellgi.predictors.loader`
(dispatch through the registered kinds), :mod:`~cellgi.predictors.kinds` (cellgi's own kinds),
:mod:`~cellgi.predictors.network`, :mod:`~cellgi.predictors.ensemble`, :mod:`~cellgi.predictors.stack` (the
kinds' predictors) and :mod:`~cellgi.predictors.scoring` (the scorers and batch sizes).
"""

from cellgi.predictors.base import PredictorKind, TrainedPredictor
from cellgi.predictors.loader import load_predictor

__all__ = ["PredictorKind", "TrainedPredictor", "load_predictor"]
