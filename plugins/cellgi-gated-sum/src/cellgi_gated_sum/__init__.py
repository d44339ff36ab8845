"""cellgi-gated-sum: an example cellgi plugin.

Components (each registered by its module, found by cellgi through entry points):

- aggregator ``gated_sum`` (:mod:`cellgi_gated_sum.aggregators`): per-gene sigmoid gate per graph;
- aggregator ``topk_attention``: attention over each gene's k best-scoring graphs;
- loss ``quantile`` (:mod:`cellgi_gated_sum.losses`): pinball loss for the tau-quantile;
- pooling ``masked_max`` (:mod:`cellgi_gated_sum.pooling`): max (or smooth max) over the kept genes;
- baseline ``gene_mean`` (:mod:`cellgi_gated_sum.baselines`): each deleted gene's shrunk mean training
  score, averaged over the set (a reference beside the network, and a stack member);
- additive term ``value_linear`` (:mod:`cellgi_gated_sum.additive`): a linear map of each deleted gene's
  measured per-gene values, summed over the set (declares the capability ``uses_gene_values``).

Importing this package imports none of them: cellgi imports a module only when a spec names one of
its components, so an installed plugin costs nothing at start-up.
"""

from __future__ import annotations

from importlib import metadata

__all__ = ["__version__"]

try:
    __version__ = metadata.version("cellgi-gated-sum")
except metadata.PackageNotFoundError:  # pragma: no cover - imported from a source tree, not installed
    __version__ = "0.0.0+unknown"
