"""The lazy data layer: a shared cell graph, perturbation samples as index sets, splits, batches.

Entry point: :func:`build_data` (spec -> :class:`DataBundle`, ``build.py``), cached on disk (``cache.py``).
Below the model layer and above the spec (docs/architecture.md): the file-format readers (``readers/``),
gene mapping (``genes.py``), the cell graph (``cellgraph.py``, ``graphs.py``), screens and genome-wide grids
(``screens.py``, ``grid.py``), per-gene features (``features/``), splits and target normalisers, the batch
iterator over gene sets (``batch.py``), the Lightning DataModule (``datamodule.py``, imported on first use
here), the public data sources and their download (``sources.py``, ``fetch.py``). See docs/data.md.
"""

from cellgi.data.batch import PerturbationBatch, collate_flat, collate_index_sets
from cellgi.data.build import DataBundle, DataReport, build_data
from cellgi.data.cellgraph import CellGraph, EdgeType, normalize_edges
from cellgi.data.errors import DataError
from cellgi.data.genes import GeneMapper, UnmappedLog
from cellgi.data.grid import GridDataset, GridLoad, map_grid
from cellgi.data.normalize import TargetNormalizer
from cellgi.data.perturbations import KINDS, PerturbationDataset, concat_datasets, merge_duplicates
from cellgi.data.screens import ScreenLoad, load_screen, map_screen
from cellgi.data.splits import SplitResult, load_splits, make_splits, save_splits
from cellgi.data.synthetic import generate_dataset, generate_graph

__all__ = [
    "KINDS",
    "CellDataModule",
    "CellGraph",
    "DataBundle",
    "DataError",
    "DataReport",
    "EdgeType",
    "GeneMapper",
    "GridDataset",
    "GridLoad",
    "PerturbationBatch",
    "PerturbationDataset",
    "ScreenLoad",
    "SplitResult",
    "TargetNormalizer",
    "UnmappedLog",
    "build_data",
    "collate_flat",
    "collate_index_sets",
    "concat_datasets",
    "generate_dataset",
    "generate_graph",
    "load_screen",
    "map_grid",
    "load_splits",
    "make_splits",
    "map_screen",
    "merge_duplicates",
    "normalize_edges",
    "save_splits",
]


def __getattr__(name: str):  # lightning is imported only when the DataModule is used
    if name == "CellDataModule":
        from cellgi.data.datamodule import CellDataModule

        return CellDataModule
    raise AttributeError(name)
