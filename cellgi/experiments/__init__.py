"""Experiments built from many runs (grids of overrides, Optuna sweeps). They return values and print
nothing; the command line renders them."""
