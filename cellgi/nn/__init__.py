"""The lazy Dango model and its registered components (convs, aggregators, poolings, heads, additive terms)."""

from cellgi.nn.aggregators import GraphAggregator
from cellgi.nn.convs import ConvWrapper, MaskedConv, MaskedGATv2, MaskedGIN
from cellgi.nn.embedding import GeneEmbedding, Preprocessor
from cellgi.nn.heads import Combiner, GlobalPredictor, HeadInput, LocalPredictor
from cellgi.nn.operator import GraphOperator, spmm
from cellgi.nn.pooling import Pooling

__all__ = [
    "Combiner",
    "ConvWrapper",
    "GeneEmbedding",
    "GlobalPredictor",
    "GraphAggregator",
    "GraphOperator",
    "HeadInput",
    "LazyDango",
    "LocalPredictor",
    "MaskedConv",
    "MaskedGATv2",
    "MaskedGIN",
    "Pooling",
    "Preprocessor",
    "spmm",
]


def __getattr__(name: str):
    # model.py imports cellgi.data; keep `import cellgi.nn.convs` (the registry's import) light
    if name == "LazyDango":
        from cellgi.nn.model import LazyDango

        return LazyDango
    raise AttributeError(name)
