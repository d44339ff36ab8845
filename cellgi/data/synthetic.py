"""Synthetic yeast-scale gene graphs and perturbation screens with a planted, graph-dependent signal.

Two entry points:

- :func:`generate_graph`: a multigraph with realistic degree skew (Chung-Lu sampling on power-law
  node weights that are correlated across edge types, plus modules that give clustering, and
  transcription-factor-like sources for directed types). Fully vectorised: yeast scale with the
  published edge counts (about 2.4 M stored edges) takes a few seconds.
- :func:`generate_dataset`: graph + digenic/trigenic samples whose targets follow a planted rule (see
  its docstring) that depends on the graph: the pair's own edges and shared neighbours (what feature
  trees read), a field carried several hops through the graph, and a trigenic term that is not a sum of
  pair terms (what a message-passing model with learned gene vectors exists to capture).
"""

from __future__ import annotations

import math
import zlib
from typing import Iterable, Mapping

import numpy as np
import torch

from cellgi.data.cellgraph import CellGraph, EdgeType, normalize_edges
from cellgi.data.perturbations import PerturbationDataset
from cellgi.spec.data import SyntheticSpec

__all__ = [
    "FIELD_HOPS",
    "SYNTHETIC_TARGETS",
    "diffused_field",
    "generate_dataset",
    "generate_graph",
    "pair_features",
    "planted_field",
    "synthetic_gene_names",
]

#: targets a synthetic data set provides
SYNTHETIC_TARGETS = ("gene_interaction", "fitness")


def synthetic_gene_names(num_genes: int) -> list[str]:
    """``SYN0001``, ``SYN0002``, ... (zero-padded to at least 4 digits, as wide as needed)."""
    width = max(4, len(str(num_genes)))
    return [f"SYN{i:0{width}d}" for i in range(1, num_genes + 1)]


def _rng(seed: int, *tags: str | int) -> np.random.Generator:
    """A generator for one purpose; tags (e.g. the edge type name) keep streams independent."""
    words = [int(seed) & 0xFFFFFFFF] + [zlib.crc32(str(t).encode()) for t in tags]
    return np.random.default_rng(np.random.SeedSequence(words))


def _power_weights(latent: np.ndarray, gamma: float) -> np.ndarray:
    """Weights ``rank^-gamma`` by descending ``latent`` (rank 1 = largest), normalised to sum 1."""
    n = latent.size
    rank = np.empty(n, dtype=np.int64)
    rank[np.argsort(-latent, kind="stable")] = np.arange(1, n + 1)
    w = rank.astype(np.float64) ** (-gamma)
    return w / w.sum()


def _pick_gamma(n: int, endpoints: float, cap: float) -> float:
    """The steepest skew (<= 0.8) whose expected top degree stays below ``cap`` neighbours."""
    ranks = np.arange(1, n + 1, dtype=np.float64)
    for gamma in np.arange(0.8, 0.0, -0.05):
        w = ranks ** (-gamma)
        if endpoints * w[0] / w.sum() <= cap:
            return float(gamma)
    return 0.0


def _draw(rng: np.random.Generator, p: np.ndarray, size: int) -> np.ndarray:
    """``size`` draws of node ids with probabilities ``p`` (inverse-CDF; fast for millions)."""
    cdf = np.cumsum(p)
    cdf /= cdf[-1]
    return np.minimum(np.searchsorted(cdf, rng.random(size), side="right"), p.size - 1)


class _Modules:
    """Gene modules of skewed sizes; draws endpoint pairs inside one module."""

    def __init__(self, rng: np.random.Generator, n: int, mean_size: float = 40.0):
        num = max(1, int(round(n / mean_size)))
        sizes = rng.lognormal(0.0, 0.6, num)
        sizes = np.maximum(2, np.floor(sizes / sizes.sum() * n)).astype(np.int64)
        while sizes.sum() > n:  # rounding up the small ones may overshoot
            sizes[np.argmax(sizes)] -= 1
        sizes[0] += n - sizes.sum()
        self.order = rng.permutation(n)  # genes in module order
        self.start = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        self.sizes = sizes
        self.capacity = int((sizes * (sizes - 1) // 2).sum())

    def pairs(self, rng: np.random.Generator, w: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
        wm = w[self.order]
        cw = np.cumsum(wm)
        lo = np.concatenate([[0.0], cw[:-1]])[self.start]  # mass before each module
        mass = cw[self.start + self.sizes - 1] - lo
        m = _draw(rng, mass / mass.sum(), size)
        first, last = self.start[m], self.start[m] + self.sizes[m] - 1
        out = []
        for _ in range(2):
            u = lo[m] + rng.random(size) * mass[m]
            pos = np.clip(np.searchsorted(cw, u, side="right"), first, last)
            out.append(self.order[pos])
        return out[0], out[1]


def _sample_type(
    rng: np.random.Generator,
    n: int,
    count: int,
    directed: bool,
    latent: np.ndarray,
    modules: _Modules,
    module_fraction: float,
) -> np.ndarray:
    """``count`` distinct keys ``a * n + b`` (a < b when undirected; never a == b)."""
    max_pairs = n * (n - 1) if directed else n * (n - 1) // 2
    if count > max_pairs:
        raise ValueError(f"{count} edges requested but only {max_pairs} distinct pairs exist among {n} genes")
    if count == 0:
        return np.zeros(0, dtype=np.int64)
    # Per-type node weights: correlated with the shared hub latent, skew capped so that the top
    # gene keeps well under half of the genes as neighbours.
    own = 0.7 * latent + math.sqrt(1 - 0.49) * rng.standard_normal(n)
    cap = max(3.0, 0.2 * n)
    if directed:
        # transcription-factor-like: few sources with skewed out-degree, targets mildly skewed
        n_src = int(min(n, max(5, round(0.03 * n), math.ceil(count / (0.3 * (n - 1))))))
        src_ids = np.argsort(-own, kind="stable")[:n_src]
        src_p = _power_weights(own[src_ids], _pick_gamma(n_src, count, cap))
        dst_p = _power_weights(own, _pick_gamma(n, count, cap) * 0.5)
    else:
        p = _power_weights(own, _pick_gamma(n, 2.0 * count, cap))
        frac = min(module_fraction, 0.3 * modules.capacity / count)
    keys = np.zeros(0, dtype=np.int64)
    for it in range(60):
        need = count - keys.size
        if need <= 0:
            break
        size = int(need * 1.3) + 64
        if it >= 30:  # nearly saturated: finish with uniform draws, which reach the rare pairs
            a, b = rng.integers(0, n, size), rng.integers(0, n, size)
        elif directed:
            a = src_ids[_draw(rng, src_p, size)]
            b = _draw(rng, dst_p, size)
        else:
            n_mod = rng.binomial(size, frac)
            ma, mb = modules.pairs(rng, p, n_mod)
            ga, gb = _draw(rng, p, size - n_mod), _draw(rng, p, size - n_mod)
            a, b = np.concatenate([ma, ga]), np.concatenate([mb, gb])
        if not directed:
            a, b = np.minimum(a, b), np.maximum(a, b)
        ok = a != b
        keys = np.unique(np.concatenate([keys, a[ok] * n + b[ok]]))
    if keys.size < count:  # only for (almost) complete graphs: add missing pairs explicitly
        if max_pairs > 20_000_000:  # pragma: no cover - would need a near-complete huge graph
            raise RuntimeError(f"could not draw {count} distinct edges among {n} genes")
        ii, jj = np.nonzero(~np.eye(n, dtype=bool)) if directed else np.triu_indices(n, 1)
        missing = np.setdiff1d(ii * n + jj, keys, assume_unique=True)
        extra = rng.choice(missing, count - keys.size, replace=False)
        keys = np.sort(np.concatenate([keys, extra]))
    if keys.size > count:
        keys = keys[np.sort(rng.choice(keys.size, count, replace=False))]
    return keys


def generate_graph(
    num_genes: int,
    edge_counts: Mapping[str, int],
    directed: Iterable[str] = (),
    seed: int = 0,
    *,
    genes: list[str] | None = None,
    weighted: Iterable[str] = (),
    module_fraction: float = 0.5,
) -> CellGraph:
    """A random gene multigraph with realistic degree skew.

    Each edge type is a Chung-Lu graph on power-law node weights (``rank^-gamma``, gamma chosen per
    type so the largest hub stays below a fifth of the genes), correlated across types through a
    shared hub latent (hubs of one network tend to be hubs of others), with ``module_fraction`` of
    the undirected edges drawn inside gene modules (clustering: neighbours share neighbours).
    Directed types look like regulation: about 3% of the genes act as sources.

    Args:
        num_genes: N.
        edge_counts: edge type -> number of distinct edges: gene *pairs* for undirected types
            (stored in both directions, so ``num_edges`` is twice this), directed edges otherwise.
        directed: names of the directed types.
        seed: everything is deterministic given the seed; each type has its own stream, so adding
            a type leaves the others unchanged.
        genes: gene names (default :func:`synthetic_gene_names`).
        weighted: types that get weights in (0, 1] (skewed towards small values, STRING-like).
        module_fraction: share of undirected edges drawn inside modules (capped by module capacity).

    Returns:
        A :class:`CellGraph`; undirected types hold both directions, no self-loops, no repeats.
    """
    if num_genes < 2:
        raise ValueError("num_genes must be at least 2")
    names = synthetic_gene_names(num_genes) if genes is None else list(genes)
    if len(names) != num_genes:
        raise ValueError(f"{len(names)} gene names for num_genes={num_genes}")
    directed = set(directed)
    weighted = set(weighted)
    unknown = (directed | weighted) - set(edge_counts)
    if unknown:
        raise ValueError(f"directed/weighted name edge types not in edge_counts: {sorted(unknown)}")
    base = _rng(seed, "graph")
    latent = base.standard_normal(num_genes)
    modules = _Modules(base, num_genes)
    types: dict[str, EdgeType] = {}
    for name, count in edge_counts.items():
        if int(count) < 0:
            raise ValueError(f"edge count of {name!r} must be >= 0")
        rng = _rng(seed, "edges", name)
        is_dir = name in directed
        keys = _sample_type(rng, num_genes, int(count), is_dir, latent, modules, module_fraction)
        w = rng.beta(1.2, 3.0, keys.size) * 0.999 + 0.001 if name in weighted else None
        ei, ew, _ = normalize_edges(keys // num_genes, keys % num_genes, num_genes, directed=is_dir, weight=w, name=name)
        types[name] = EdgeType(name, is_dir, ei, ew)
    return CellGraph(names, types)


class _Union:
    """Undirected union of all edge types as CSR (numpy), with membership tests per type."""

    def __init__(self, graph: CellGraph):
        n = graph.num_nodes
        self.n = n
        self.type_keys: dict[str, np.ndarray] = {}
        all_keys = []
        for name, et in graph.edge_types.items():
            ei = et.edge_index.numpy()
            a, b = np.minimum(ei[0], ei[1]), np.maximum(ei[0], ei[1])
            k = np.unique(a * n + b)
            self.type_keys[name] = k
            all_keys.append(k)
        keys = np.unique(np.concatenate(all_keys)) if all_keys else np.zeros(0, dtype=np.int64)
        a, b = keys // n, keys % n
        src, dst = np.concatenate([a, b]), np.concatenate([b, a])
        order = np.argsort(src, kind="stable")
        self.indices = dst[order]
        self.indptr = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(np.bincount(src, minlength=n), out=self.indptr[1:])
        self.pair_keys = keys

    def has(self, name: str, i: np.ndarray, j: np.ndarray) -> np.ndarray:
        """``[M]`` float: 1 where (i, j) is an edge of type ``name`` (either direction)."""
        k = np.minimum(i, j) * self.n + np.maximum(i, j)
        keys = self.type_keys[name]
        if keys.size == 0:
            return np.zeros(k.shape, dtype=bool)
        pos = np.minimum(np.searchsorted(keys, k), keys.size - 1)
        return keys[pos] == k

    def dense_rows(self, nodes: np.ndarray) -> np.ndarray:
        """``[len(nodes), N]`` bool neighbour indicator rows."""
        deg = self.indptr[nodes + 1] - self.indptr[nodes]
        row = np.repeat(np.arange(nodes.size), deg)
        start = np.repeat(self.indptr[nodes], deg)
        off = np.arange(int(deg.sum())) - np.repeat(np.cumsum(deg) - deg, deg)
        out = np.zeros((nodes.size, self.n), dtype=bool)
        out[row, self.indices[start + off]] = True
        return out

    def common(self, *cols: np.ndarray, chunk: int = 2048) -> np.ndarray:
        """``[M]`` number of genes adjacent to every node of each row of ``cols``."""
        m = cols[0].size
        out = np.zeros(m, dtype=np.int64)
        for lo in range(0, m, chunk):
            acc = None
            for c in cols:
                r = self.dense_rows(c[lo : lo + chunk])
                acc = r if acc is None else acc & r
            out[lo : lo + chunk] = acc.sum(1)  # type: ignore[union-attr]
        return out


def _z(v: np.ndarray) -> np.ndarray:
    sd = v.std()
    return (v - v.mean()) / sd if sd > 0 else v - v.mean()


#: width of the latent gene field that the multi-hop term diffuses over the graph
_FIELD_DIM = 4
#: hops the field travels (``P + P^2 + ... + P^HOPS``)
FIELD_HOPS = 3


def diffused_field(u: "_Union", x: np.ndarray, hops: int = FIELD_HOPS) -> np.ndarray:
    """``[N, D]`` random gene vectors ``x`` carried ``1..hops`` steps over the union graph,
    ``F = z(z(P x) + z(P^2 x) + ... + z(P^hops x))`` with ``P = D^-1 U`` (a random walk's transition
    matrix; an isolated gene receives nothing) and ``z`` standardising each column, so every hop weighs
    the same however much averaging shrank it. ``F_i`` summarises what lies up to ``hops`` steps from gene
    ``i``; its own ``x_i`` enters only through walks that come back to it."""
    n = u.n
    deg = np.diff(u.indptr).astype(np.float64)
    src = np.repeat(np.arange(n), np.diff(u.indptr))
    cur = np.asarray(x, dtype=np.float64)
    acc = np.zeros_like(cur)
    for _ in range(hops):
        nxt = np.zeros_like(cur)
        np.add.at(nxt, src, cur[u.indices])
        cur = nxt / np.maximum(deg, 1.0)[:, None]
        acc += np.stack([_z(cur[:, d]) for d in range(cur.shape[1])], 1)
    return np.stack([_z(acc[:, d]) for d in range(acc.shape[1])], 1)


def planted_field(graph: CellGraph, seed: int, *, union: "_Union | None" = None) -> np.ndarray:
    """``[N, 4]`` the diffused gene field :func:`generate_dataset` plants for data seed ``seed`` on ``graph``
    (:func:`diffused_field` of random vectors from the seed's own stream), for tests and analyses."""
    u = union if union is not None else _Union(graph)
    return diffused_field(u, _rng(seed, "field").standard_normal((graph.num_nodes, _FIELD_DIM)))


def pair_features(graph: CellGraph, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """Features of gene pairs computable from the graph alone: one edge indicator per type and
    ``log1p`` of the common neighbours in the union graph. ``[M, G + 1]`` float64."""
    u = _Union(graph)
    feats = [u.has(name, i, j).astype(np.float64) for name in graph.edge_types]
    feats.append(np.log1p(u.common(i, j)).astype(np.float64))
    return np.stack(feats, 1)


def _sample_sets(rng: np.random.Generator, u: _Union, n_di: int, n_tri: int) -> np.ndarray:
    """``[S, 3]`` gene sets (third column -1 for digenic); about half the pairs are graph neighbours."""
    n = u.n
    s = n_di + n_tri
    a = rng.integers(0, n, s)
    b = rng.integers(0, n, s)
    near = rng.random(s) < 0.5
    if u.pair_keys.size:
        k = u.pair_keys[rng.integers(0, u.pair_keys.size, int(near.sum()))]
        flip = rng.random(k.size) < 0.5
        ka, kb = k // n, k % n
        a[near] = np.where(flip, kb, ka)
        b[near] = np.where(flip, ka, kb)
    c = np.full(s, -1, dtype=np.int64)
    tri = np.arange(n_di, s)
    c[tri] = rng.integers(0, n, n_tri)
    deg = u.indptr[a[tri] + 1] - u.indptr[a[tri]]
    use_nb = (rng.random(n_tri) < 0.5) & (deg > 0)
    pick = u.indptr[a[tri]] + np.floor(rng.random(n_tri) * np.maximum(deg, 1)).astype(np.int64)
    c[tri[use_nb]] = u.indices[pick[use_nb]]
    for _ in range(100):  # redraw collisions (vectorised; converges in a few rounds)
        bad_b = b == a
        bad_c = (c >= 0) & ((c == a) | (c == b))
        if not (bad_b.any() or bad_c.any()):
            break
        b[bad_b] = rng.integers(0, n, int(bad_b.sum()))
        c[bad_c] = rng.integers(0, n, int(bad_c.sum()))
    return np.stack([a, b, c], 1)


def generate_dataset(
    spec: SyntheticSpec | None = None,
    *,
    target_names: Iterable[str] = ("gene_interaction",),
) -> tuple[CellGraph, PerturbationDataset, dict[str, object]]:
    """Graph and samples of a :class:`~cellgi.spec.data.SyntheticSpec` (defaults when None).

    The planted rule. With ``U`` the undirected union of all edge types, per gene pair::

        p0(i, j) = - sum_t c_t [i ~_t j] - 0.8 z(log1p |N_U(i) & N_U(j)|) + 0.6 z(<h_i, h_j>)
        p(i, j)  = z(p0(i, j)) + multihop * z(<F_i, F_j>)

    where ``c_t`` in [0.5, 1.5] is a per-type coefficient, ``h = D^-1 U x`` smooths random 8-dimensional
    gene vectors ``x`` over direct neighbourhoods, and ``F`` (:func:`diffused_field`, :func:`planted_field`)
    carries other random 4-dimensional gene vectors 1, 2 and 3 steps over ``U``, each hop weighted
    alike. ``p0`` is what the feature trees of ``training.baselines`` read almost directly (edges and shared
    neighbours of the pair); the multi-hop term is not: it is a property of the genes' 3-step
    surroundings, which a pair's own edges, shared neighbours and degrees do not show, and which a
    message-passing model with learned gene vectors can represent. A digenic score is ``p(a, b)``; a
    trigenic one is::

        t(a, b, c) = z((p(a,b) + p(a,c) + p(b,c)) / sqrt(3) - 0.7 z(log1p |N(a) & N(b) & N(c)|))
                     + trigenic_synergy * z(sum_d F_ad F_bd F_cd)

    the last term a three-way product that no sum of pair terms gives. (``multihop = 0`` and
    ``trigenic_synergy = 0`` give the pairwise rule alone, with the same graph and samples.) The graph
    part is standardised, a per-gene additive part ``additive * sum_i g_i / sqrt(k)`` and Gaussian noise
    (``noise`` times the signal std) are added, and everything is scaled by 0.1 (epsilon-like
    magnitudes). ``fitness`` is ``prod_i f_i + gene_interaction`` with single-mutant fitness ``f_i``
    around 0.95. Half the pairs are drawn among graph neighbours (as screens favour related genes), half
    uniformly.

    Returns:
        ``(graph, dataset, info)``; ``info`` gives the shares of the interaction variance due to the
        graph part, the additive part and the noise (``graph_var_fraction``, ``additive_var_fraction``,
        ``noise_var_fraction``).
    """
    cfg = spec if spec is not None else SyntheticSpec()
    names = list(target_names)
    unknown = [t for t in names if t not in SYNTHETIC_TARGETS]
    if unknown:
        raise ValueError(f"synthetic data provides targets {list(SYNTHETIC_TARGETS)}, not {unknown}")
    n = cfg.num_genes
    seed = cfg.seed
    graph = generate_graph(n, cfg.edge_types, set(cfg.directed), seed)
    u = _Union(graph)
    rng = _rng(seed, "samples")
    s = cfg.num_samples
    n_tri = int(round(s * cfg.trigenic_fraction))
    n_di = s - n_tri
    sets = _sample_sets(rng, u, n_di, n_tri)
    coef = {t: 0.5 + _rng(seed, "coef", t).random() for t in graph.edge_types}
    x = rng.standard_normal((n, 8))
    deg = np.diff(u.indptr).astype(np.float64)
    src = np.repeat(np.arange(n), np.diff(u.indptr))
    h = np.zeros((n, 8))
    np.add.at(h, src, x[u.indices])
    h = h / np.maximum(deg, 1.0)[:, None]

    tri = np.arange(n_di, s)
    # all pairs that need a score: (a, b) of every sample, (a, c) and (b, c) of trigenic ones
    pi = np.concatenate([sets[:, 0], sets[tri, 0], sets[tri, 1]])
    pj = np.concatenate([sets[:, 1], sets[tri, 2], sets[tri, 2]])
    edge_term = sum(coef[t] * u.has(t, pi, pj) for t in graph.edge_types) if graph.edge_types else np.zeros(pi.size)
    cn = np.log1p(u.common(pi, pj))
    dot = (h[pi] * h[pj]).sum(1)
    p = -np.asarray(edge_term, dtype=np.float64) - 0.8 * _z(cn) + 0.6 * _z(dot)
    multihop = float(getattr(cfg, "multihop", 0.0))
    synergy = float(getattr(cfg, "trigenic_synergy", 0.0))
    field = None
    if multihop > 0 or (synergy > 0 and n_tri):
        field = planted_field(graph, seed, union=u)
    if multihop > 0:
        p = _z(p) + multihop * _z((field[pi] * field[pj]).sum(1))  # type: ignore[index]
    graph_part = p[:s].copy()
    if n_tri:
        m = n_tri
        cn3 = np.log1p(u.common(sets[tri, 0], sets[tri, 1], sets[tri, 2]))
        graph_part[tri] = (p[:s][tri] + p[s : s + m] + p[s + m :]) / math.sqrt(3) - 0.7 * _z(cn3)
        if synergy > 0:
            fa, fb, fc = (field[sets[tri, q]] for q in range(3))  # type: ignore[index]
            graph_part[tri] = _z(graph_part[tri]) + synergy * _z((fa * fb * fc).sum(1))
    graph_part = _z(graph_part)
    gene_effect = rng.standard_normal(n)
    k = np.where(sets[:, 2] >= 0, 3, 2)
    ge = gene_effect[sets[:, 0]] + gene_effect[sets[:, 1]] + np.where(sets[:, 2] >= 0, gene_effect[np.maximum(sets[:, 2], 0)], 0.0)
    additive = cfg.additive * ge / np.sqrt(k)
    clean = graph_part + additive
    noise = cfg.noise * clean.std() * rng.standard_normal(s)
    gi = 0.1 * (clean + noise)
    f_single = np.clip(rng.normal(0.95, 0.08, n), 0.3, 1.1)
    prod = f_single[sets[:, 0]] * f_single[sets[:, 1]] * np.where(sets[:, 2] >= 0, f_single[np.maximum(sets[:, 2], 0)], 1.0)
    values = {"gene_interaction": gi, "fitness": prod + gi}
    y = np.stack([values[t] for t in names], 1).astype(np.float32)
    sizes = k
    ptr = np.zeros(s + 1, dtype=np.int64)
    ptr[1:] = np.cumsum(sizes)
    flat = sets[sets >= 0]  # row-major: a, b, (c)
    ds = PerturbationDataset(
        pert_idx=torch.from_numpy(flat),
        ptr=torch.from_numpy(ptr),
        y=torch.from_numpy(y),
        target_names=names,
        num_genes=n,
        line=torch.arange(1, s + 1, dtype=torch.int32),
        sources=[f"synthetic(seed={seed})"],
    )
    total = (gi / 0.1).var()
    info = {
        "graph_var_fraction": float(graph_part.var() / total),
        "additive_var_fraction": float(additive.var() / total),
        "noise_var_fraction": float(noise.var() / total),
    }
    return graph, ds, info
