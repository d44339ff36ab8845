"""Message-passing convs (role ``conv``), each with a single-graph and a batched shared-adjacency path."""

from cellgi.nn.convs.base import MaskedConv
from cellgi.nn.convs.masked_gatv2 import MaskedGATv2, MaskedGATv2Params
from cellgi.nn.convs.masked_gin import MaskedGIN, MaskedGINParams
from cellgi.nn.convs.wrapper import ConvWrapper

__all__ = ["ConvWrapper", "MaskedConv", "MaskedGATv2", "MaskedGATv2Params", "MaskedGIN", "MaskedGINParams"]
