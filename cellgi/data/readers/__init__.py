"""Readers, one module per source format. Each returns raw rows with identifiers as spelled in the
file (edges: :class:`RawEdges`; screens: :class:`RawScreen`); :mod:`cellgi.data.graphs` and
:mod:`cellgi.data.screens` map them to genes and count what could not be mapped.

Each file format is a registered component of the ``graph_format`` or ``screen_format`` role (a
:class:`GraphFormat`/:class:`ScreenFormat` subclass in its module, found through cellgi's entry points
like a plugin's): adding a format is one module or one plugin, no dispatch code to edit. Plugins build
their rows with :class:`RawEdgesBuilder` / :class:`RawScreenBuilder`.

| format | module | reads |
|---|---|---|
| ``string_v9`` | :mod:`.string_v9` | STRING v9.1 ``id_a id_b weight`` + genes.txt (1-based ids) |
| ``string_actions`` | :mod:`.string_actions` | STRING v11 actions TSV (``4932.`` ids, score, mode, direction) |
| ``edgelist`` | :mod:`.edgelist` | ``ORF ORF [weight]`` |
| ``regulatory`` | :mod:`.regulatory` | ``TF<TAB>target`` (common names, mixed case) |
| ``table`` (graph) | :mod:`.table` | CSV/TSV/Parquet with named source/target/weight columns |
| ``kuzmin`` | :mod:`.kuzmin` | Kuzmin 2018 Data S1 screen layout |
| ``table`` (screen) | :mod:`.screen_table` | CSV/TSV/Parquet with gene and target columns |
| ``sga_grid`` | :mod:`.sga_grid` | genome-wide SGA screens as a grid (Costanzo 2010 listing, 2016 full matrix) |
| genes | :mod:`.sgd` | SGD_features.tab, plain gene lists |
"""

from cellgi.data.readers._edges import RawEdges, RawEdgesBuilder
from cellgi.data.readers._screen import RawScreen, RawScreenBuilder
from cellgi.data.readers.base import DataFormat, GraphFormat, ScreenFormat
from cellgi.data.readers.edgelist import read_edgelist
from cellgi.data.readers.kuzmin import read_kuzmin, read_strain_table
from cellgi.data.readers.regulatory import read_regulatory
from cellgi.data.readers.screen_table import read_screen_table
from cellgi.data.readers.sgd import SgdFeatures, read_gene_list, read_sgd_features
from cellgi.data.readers.string_actions import read_string_actions
from cellgi.data.readers.string_v9 import read_string_v9
from cellgi.data.readers.table import read_edge_table

__all__ = [
    "DataFormat",
    "GraphFormat",
    "RawEdges",
    "RawEdgesBuilder",
    "RawScreen",
    "RawScreenBuilder",
    "ScreenFormat",
    "SgdFeatures",
    "read_edge_table",
    "read_edgelist",
    "read_gene_list",
    "read_kuzmin",
    "read_regulatory",
    "read_screen_table",
    "read_sgd_features",
    "read_strain_table",
    "read_string_actions",
    "read_string_v9",
]
