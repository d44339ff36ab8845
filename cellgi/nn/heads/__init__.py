"""Prediction heads, one module per role (like :mod:`cellgi.nn.convs`).

- :mod:`~cellgi.nn.heads.base`: :class:`HeadInput` (the one value every head reads) and the role bases
  :class:`LocalPredictor`, :class:`GlobalPredictor`, :class:`Combiner`;
- :mod:`~cellgi.nn.heads.local`: ``local_predictor`` members (hypergraph attention, pair relations);
- :mod:`~cellgi.nn.heads.global_head`: ``global_predictor`` members (MLP on the pooled cell states);
- :mod:`~cellgi.nn.heads.combiners`: ``combiner`` members (gate, concat, global_only, local_only).
"""

from cellgi.nn.heads.base import Combiner, GlobalPredictor, Head, HeadInput, LocalPredictor
from cellgi.nn.heads.combiners import (
    ConcatCombiner,
    ConcatParams,
    GateCombiner,
    GateParams,
    GlobalOnlyCombiner,
    LocalOnlyCombiner,
)
from cellgi.nn.heads.global_head import MLPGlobalParams, MLPGlobalPredictor
from cellgi.nn.heads.local import (
    PAIR_READS,
    HypergraphAttention,
    HypergraphAttentionParams,
    PairRelationHead,
    PairRelationParams,
)

__all__ = [
    "PAIR_READS",
    "Combiner",
    "ConcatCombiner",
    "ConcatParams",
    "GateCombiner",
    "GateParams",
    "GlobalOnlyCombiner",
    "GlobalPredictor",
    "Head",
    "HeadInput",
    "HypergraphAttention",
    "HypergraphAttentionParams",
    "LocalOnlyCombiner",
    "LocalPredictor",
    "MLPGlobalParams",
    "MLPGlobalPredictor",
    "PairRelationHead",
    "PairRelationParams",
]
