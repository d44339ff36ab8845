"""Helpers for the model tests: small synthetic graphs, a small real yeast subgraph and dev-screen samples,
spec building from YAML, and the per-sample-copies (PyG ``Batch``) reference for convs.

(A uniquely named module rather than ``conftest`` so that imports never pick another folder's conftest.)
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import torch
from torch_geometric.data import Batch, Data

from cellgi.data.batch import PerturbationBatch, collate_index_sets
from cellgi.data.cellgraph import CellGraph
from cellgi.spec import parse_spec

NEUTRAL_MARKER = "YDL227C"  # HO: a query X+YDL227C is a digenic (X, array) measurement


def model_spec_from_yaml(model_yaml: str):
    """Validate a ``model:`` section given as YAML (indented body, without the ``model:`` line)."""
    body = "\n".join("  " + line if line.strip() else line for line in model_yaml.strip("\n").splitlines())
    text = f"name: t\ndata:\n  synthetic: {{}}\ntraining: {{}}\nmodel:\n{body}\n"
    return parse_spec(text).model


def random_graph(num_nodes: int = 40, seed: int = 0) -> CellGraph:
    """Two undirected and one directed edge type, with self-loops and isolated genes in the mix."""
    g = torch.Generator().manual_seed(seed)
    genes = [f"G{i:03d}" for i in range(num_nodes)]
    und = torch.randint(0, num_nodes - 3, (2, 3 * num_nodes), generator=g)  # last 3 genes isolated
    und2 = torch.randint(0, num_nodes, (2, num_nodes), generator=g)
    und2[:, :3] = torch.tensor([[5, 6, 7], [5, 6, 7]])  # self-loops
    directed = torch.randint(0, num_nodes, (2, 2 * num_nodes), generator=g)
    return CellGraph.from_edges(genes, [("und_a", und, False), ("und_b", und2, False), ("dir", directed, True)])


def random_sets(num_nodes: int, sizes: list[int], seed: int = 1) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randperm(num_nodes, generator=g)[:k] for k in sizes]


def make_batch(sets: list[torch.Tensor], num_targets: int = 1, seed: int = 2) -> PerturbationBatch:
    y = torch.randn(len(sets), num_targets, generator=torch.Generator().manual_seed(seed))
    return collate_index_sets(sets, y)


def keep_from_sets(num_nodes: int, sets: list[torch.Tensor]) -> torch.Tensor:
    keep = torch.ones(num_nodes, len(sets), dtype=torch.bool)
    for b, s in enumerate(sets):
        keep[s, b] = False
    return keep


def per_sample_reference(conv, x: torch.Tensor, edge_index: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """B per-sample copies with the deleted genes' edges removed, batched by PyG ``Batch`` -> [N, B, H]."""
    n, b = keep.shape
    data = []
    for i in range(b):
        alive = keep[edge_index[0], i] & keep[edge_index[1], i]
        data.append(Data(x=x, edge_index=edge_index[:, alive], num_nodes=n))
    big = Batch.from_data_list(data)
    out = conv(big.x, big.edge_index)
    return out.view(b, n, -1).transpose(0, 1)


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
