"""Trained predictors: what predicts from a run folder (a network, a seed ensemble, a stack)."""
