"""Helpers for the model tests: a small real yeast subgraph and dev-screen samples. The synthetic inputs
and the conformance checks (per-sample-copies reference, spec from YAML, ...) are public in
:mod:`cellgi.testing`, re-exported here for the tests' imports.

(A uniquely named module rather than ``conftest`` so that imports never pick another folder's conftest.)
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import torch

from cellgi.data.cellgraph import CellGraph
from cellgi.testing import (  # noqa: F401 - re-exported for the tests
    keep_from_sets,
    make_batch,
    model_spec_from_yaml,
    per_sample_reference,
    random_graph,
    random_sets,
)

NEUTRAL_MARKER = "YDL227C"  # HO: a query X+YDL227C is a digenic (X, array) measurement


# ------------------------------------------------------------------------------------ real data
@dataclass
class YeastSubset:
    graph: CellGraph
    sets: list[torch.Tensor]  # deleted-gene index sets (2 or 3 genes) of the chosen dev-screen samples
    scores: torch.Tensor  # [S] epsilon / tau


def _orf(strain: str) -> list[str]:
    return strain.rsplit("_", 1)[0].upper().split("+")


def _read_pairs(path: Path) -> list[tuple[str, str]]:
    out = []
    with path.open() as fh:
        for line in fh:
            parts = line.split()
            if len(parts) >= 2:
                out.append((parts[0].upper(), parts[1].upper()))
    return out


def _read_regulatory(yeast: Path) -> list[tuple[str, str]]:
    common: dict[str, str] = {}
    with (yeast / "genes" / "SGD_features.tab").open() as fh:
        for row in csv.reader(fh, delimiter="\t"):
            if len(row) > 4 and row[1] == "ORF" and row[4]:
                common[row[4].upper()] = row[3].upper()
    out = []
    with (yeast / "networks" / "other" / "regulatory_2010.tsv").open() as fh:
        for line in fh:
            parts = line.rstrip("\n").split("\t")
            if len(parts) >= 2 and parts[0].upper() in common:
                out.append((common[parts[0].upper()], parts[1].upper()))
    return out


def load_yeast_subset(yeast: Path, num_genes: int = 300, num_samples: int = 32, seed: int = 0) -> YeastSubset:
    """A ~``num_genes`` real subgraph (Krogan physical, Hu coexpression: undirected; regulatory: directed)
    around ``num_samples`` dev-screen samples (half digenic, half trigenic, chosen with a seeded RNG)."""
    rows = []
    with (yeast / "interactions" / "kuzmin_format_screen_dev.tsv").open() as fh:
        reader = csv.reader(fh, delimiter="\t")
        next(reader)
        for r in reader:
            q, a = _orf(r[0]), _orf(r[1])
            genes = [g for g in q if g != NEUTRAL_MARKER] + a
            if len(set(genes)) == len(genes):
                rows.append((genes, float(r[2])))
    g = torch.Generator().manual_seed(seed)
    di = [r for r in rows if len(r[0]) == 2]
    tri = [r for r in rows if len(r[0]) == 3]
    pick = [di[i] for i in torch.randperm(len(di), generator=g)[: num_samples // 2]]
    pick += [tri[i] for i in torch.randperm(len(tri), generator=g)[: num_samples - num_samples // 2]]

    edges = {
        "physical": (_read_pairs(yeast / "networks" / "other" / "physical_krogan2006.txt"), False),
        "coexpression": (_read_pairs(yeast / "networks" / "other" / "coexpression_hu2007.txt"), False),
        "regulatory": (_read_regulatory(yeast), True),
    }
    chosen: list[str] = []
    for genes, _ in pick:
        chosen += [x for x in genes if x not in chosen]
    degree: dict[str, int] = {}
    neighbours: dict[str, set[str]] = {}
    for pairs, _ in edges.values():
        for a, b in pairs:
            degree[a] = degree.get(a, 0) + 1
            degree[b] = degree.get(b, 0) + 1
            neighbours.setdefault(a, set()).add(b)
            neighbours.setdefault(b, set()).add(a)
    near = sorted({n for x in chosen for n in neighbours.get(x, ())} - set(chosen), key=lambda n: -degree[n])
    for n in near + sorted(degree, key=lambda n: -degree[n]):
        if len(chosen) >= num_genes:
            break
        if n not in chosen:
            chosen.append(n)
    index = {x: i for i, x in enumerate(chosen)}
    types = []
    for name, (pairs, directed) in edges.items():
        kept = [(index[a], index[b]) for a, b in pairs if a in index and b in index]
        ei = torch.tensor(kept, dtype=torch.long).t().reshape(2, -1)
        types.append((name, ei, directed))
    graph = CellGraph.from_edges(chosen, types)
    sets = [torch.tensor([index[x] for x in genes]) for genes, _ in pick]
    return YeastSubset(graph, sets, torch.tensor([s for _, s in pick]))
