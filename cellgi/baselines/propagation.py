"""The ``propagation`` baseline: what a screen says about a gene's network neighbours, carried to genes it never
screened.

Guilt by association, measured: for a pair ``(a, b)`` and a gene graph ``k`` with row-normalised adjacency
``P_k``, the screen's training pairs give

.. math::

    v_k(a, b) = \\frac{\\sum_d P_k[b, d] \\, E[d, a]}{\\sum_d P_k[b, d] \\, O[d, a]}

the mean interaction of ``a`` with the graph neighbours of ``b`` that were screened against ``a`` (``E``: the
training targets, centred on the screen's neutral value and split into a negative and a positive part, and
a 0/1 mark of a negative value;
``O``: 1 where a training pair was measured). ``v_k(b, a)`` is the same from ``a``'s side. For a pair with
one gene never screened (``b``), ``v_k(a, b)`` still exists whenever ``b`` has screened neighbours: this is
the signal a lab needs when it asks which unscreened genes will interact with its query. Per gene, the
mean negative and positive part over its training pairs (its "hubness") is a feature too (missing for
unscreened genes).

These features, per graph and per part (min, mean and max of the two directions), are added to the feature
trees' own set features (:class:`~cellgi.baselines.SetFeaturizer`) and scikit-learn's
``HistGradientBoostingRegressor`` is fitted on them, one model per target.

**Cross-fitting.** Computed on the training pairs themselves, the features would describe genes whose
every pair is known, while the test genes have none: trees fitted on that would learn the wrong regime. So
the training genes are split into ``inner_folds`` folds; the rows of the genes of fold ``i`` get features
computed from the training pairs *without* any gene of fold ``i`` (a pair whose genes lie in two folds
appears once per fold, each copy with half its weight). Every training row then looks like a row of an
unseen gene, as the validation and test rows do. The validation split (gene-disjoint under gene-held-out
splits) gets features from all training pairs, as a test file does, and drives early stopping.

**Sparse screens.** When most training rows sit at the neutral value (a listing-only screen: ~99 % of its
grid), each inner fold keeps every non-neutral row and a share ``neutral_share`` of the neutral ones, the
kept neutral rows weighted ``1 / neutral_share`` so that the fit stays unbiased.

**Two hops.** For a pair of two genes nobody screened, ``v_k`` has nothing to carry. The two-hop term

.. math::

    w_k(a, b) = \\frac{(P_k E P_k^T)[a, b]}{(P_k O P_k^T)[a, b]}

is the mean screen value between the screened neighbours of ``a`` and the screened neighbours of ``b``
(symmetric in ``a`` and ``b``), and exists when both genes have screened neighbours that were screened
against each other. It is never materialised as an ``N x N`` matrix: with ``D = P_k O`` (``N x G``, ``G``
screened genes, the one-hop denominator) and ``R`` the one-hop ratio, ``P_k E = R * D`` and
``w_k(a, b) = sum_j P_k[b, j] R[a, j] D[a, j] / sum_j P_k[b, j] D[a, j]``: a row gather of ``R`` and ``D``
and a sparse dot with ``b``'s row of ``P_k`` (whichever of the two genes has fewer screened neighbours
plays ``b``). Stored per graph: ``D`` (float16) beside the per-part ``R`` the one-hop terms use already,
and ``P_k``'s columns of screened genes (sparse). Cross-fitting covers it like the one-hop terms.

**Interaction profiles.** With ``profile > 0``, the centred 0/1 matrix of negative marks among the
screened genes, ``C = H - mu O`` (``mu``: the screen's share of negative marks, so an unmeasured pair is 0,
"no information"), is reduced to its ``profile`` leading eigenpairs ``C ~ Q diag(lam) Q^T``
(:func:`scipy.sparse.linalg.eigsh`, a fixed start vector). A screened gene's row of ``Q`` is its
interaction profile in a few dimensions; a gene's profile through graph ``k`` is the mean of its screened
neighbours' rows, ``Z_k = P_k Q`` (``P_k`` normalised over screened neighbours), and ``Z_mix`` the mean of
``Z_k`` over the graphs where the gene has screened neighbours. For a pair the terms are, per graph and for
``mix``, ``Z_k[a] diag(lam) Z_k[b]`` (a denoised two-hop term), the same with one gene's own profile against
the other's neighbours (the larger of the two ways; the one-hop term's low-rank cousin) and the cosine of
the two ``Z_mix`` profiles. Unlike the two-hop term it mixes every graph and exists for a pair of two
unscreened genes whenever each has screened neighbours in some graph.

**Predicted hubness.** A pair of two unscreened genes has no hubness feature, yet how often each of the
two genes interacts decides most of its ranking. With ``hub_trees: true``, gradient-boosted trees fitted on
the screened genes predict each gene's share of negative marks from its per-gene inputs (the set
featurizer's per-gene columns and GO-slim terms); a pair gets the min, max and product of the predicted
shares, and of the shares with the known ones put in for screened genes. Cross-fitting covers it like the
other terms (the trees of an inner fold never see that fold's genes).

Sets of three or more genes get the mean and minimum of their pairs' features; a gene alone has none.
"""

from __future__ import annotations

import warnings
from typing import Any, Literal, Sequence

import numpy as np
import scipy.sparse as sp
import torch
from scipy.sparse.linalg import ArpackNoConvergence, eigsh
from sklearn.ensemble import HistGradientBoostingRegressor
from pydantic import Field
from torch import Tensor

from cellgi.baselines import (
    BaselineContext,
    BaselineData,
    FeatureBaseline,
    FeatureTreesBaseline,
    SetFeaturizer,
    fit_feature_baseline,
)
from cellgi.data.cellgraph import CellGraph
from cellgi.registry import Params, register

__all__ = ["PropagationParams", "PropagationTreesBaseline", "ScreenPropagation", "hub_inputs", "predicted_share"]

#: what is propagated of a centred target: its negative part, its positive part, and whether it is negative (a
#: 0/1 "hit": on a listing-only screen, a listed negative interaction)
_PARTS = ("neg", "pos", "hit")
Part = Literal["neg", "pos", "hit"]
#: smallest positive one-hop denominator stored (float16 keeps it distinct from 0, so that "has a screened
#: neighbour measured against this gene" survives the cast)
_DEN_FLOOR = 2.0 ** -14


class ScreenPropagation:
    """The propagation features of the module docstring, for one set of known (training) pairs.

    Args:
        graph: the run's :class:`~cellgi.data.cellgraph.CellGraph`.
        pairs: ``[P, 2]`` gene indices of the known pairs (unordered; each once).
        values: ``[P, T]`` their targets (NaN = not measured for that target).
        center: ``[T]`` the neutral value of each target (subtracted before splitting into parts).
        graphs: the edge types to propagate over (default: all of the graph's).
        two_hop: the parts that also get the two-hop term (module docstring); empty: none.
        profile: rank of the interaction-profile terms (module docstring); 0: none.
        gene_inputs: ``[N, F]`` per-gene inputs for the predicted-hubness terms (module docstring,
            :func:`hub_inputs`); None: none.
    """

    def __init__(self, graph: CellGraph, pairs: Tensor, values: Tensor, center: Tensor,
                 graphs: Sequence[str] | None = None, two_hop: Sequence[str] = (), profile: int = 0,
                 gene_inputs: np.ndarray | None = None) -> None:

        self.n = int(graph.num_nodes)
        self.graphs = list(graphs) if graphs else list(graph.edge_type_names)
        bad = [p for p in two_hop if p not in _PARTS]
        if bad:
            raise ValueError(f"two_hop names parts {bad}; known parts: {list(_PARTS)}")
        self.two_hop = [p for p in _PARTS if p in set(two_hop)]
        if profile < 0:
            raise ValueError(f"profile must be 0 (none) or a positive rank, not {profile}")
        self.profile = int(profile)
        pairs = torch.as_tensor(pairs, dtype=torch.long).reshape(-1, 2).numpy()
        values = torch.as_tensor(values, dtype=torch.float64).reshape(pairs.shape[0], -1).numpy()
        center = torch.as_tensor(center, dtype=torch.float64).reshape(-1).numpy()
        self.num_targets = values.shape[1]
        # the screened genes: columns of the propagated matrices
        self.screened = np.unique(pairs) if pairs.size else np.zeros(0, dtype=np.int64)
        col = np.full(self.n, -1, dtype=np.int64)
        col[self.screened] = np.arange(self.screened.size)
        self.col = col
        g = self.screened.size
        a, b = pairs[:, 0], pairs[:, 1]
        adj = {}
        for name in self.graphs:
            ei = graph.edge_index(name).to(torch.long).numpy()
            w = graph.edge_weight(name)
            w = np.ones(ei.shape[1]) if w is None else w.double().numpy()
            m = sp.coo_matrix((np.abs(w), (ei[0], ei[1])), shape=(self.n, self.n)).tocsr()
            m = m.maximum(m.T).tocsr()  # propagation runs both ways along an edge
            m.setdiag(0)
            m.eliminate_zeros()
            deg = np.asarray(m.sum(1)).ravel()
            deg[deg == 0] = 1.0
            adj[name] = (sp.diags(1.0 / deg) @ m).tocsr()[:, self.screened].tocsr().astype(np.float32) if g else None
        # the two-hop terms' sparse dot runs over these rows (N x G, screened columns only)
        self.adj = adj if self.two_hop else {}
        # per target: gene "hubness" [N] and per graph the propagated parts [N, G] (float32, NaN where no
        # screened neighbour of the row gene was measured with the column gene)
        self.hub: list[dict[str, np.ndarray]] = []
        self.prop: list[dict[tuple[str, str], np.ndarray]] = []
        # per target and graph: the one-hop denominator P O [N, G] (float16; kept only for the two-hop terms)
        self.den: list[dict[str, np.ndarray]] = []
        # per target: the profile terms' eigenvalues [r], own profiles [N, r] (0 for an unscreened gene) and
        # per graph (and "mix") the neighbours' mean profile [N, r] with its 0/1 coverage [N]
        self.lam: list[np.ndarray] = []
        self.own: list[np.ndarray] = []
        self.nbr: list[dict[str, tuple[np.ndarray, np.ndarray]]] = []
        # per target with gene_inputs: the predicted share of negative marks [N] and the same with the known
        # shares put in for screened genes
        self.hub_pred: list[tuple[np.ndarray, np.ndarray]] = []
        self.hub_trees = gene_inputs is not None
        for t in range(self.num_targets):
            y = values[:, t]
            ok = np.isfinite(y)
            at, bt, yt = col[a[ok]], col[b[ok]], y[ok] - center[t]
            hub, prop = {}, {}
            hit = None  # the 0/1 negative marks [G, G] of the "hit" part, kept for the profile terms
            obs = np.zeros((g, g), dtype=np.float32)
            obs[at, bt] = 1.0
            obs[bt, at] = 1.0
            cnt = np.zeros(self.n)
            np.add.at(cnt, a[ok], 1.0)
            np.add.at(cnt, b[ok], 1.0)
            for part in _PARTS:
                v = {"neg": np.minimum(yt, 0.0), "pos": np.maximum(yt, 0.0), "hit": (yt < 0).astype(np.float64)}[part]
                e = np.zeros((g, g), dtype=np.float32)
                e[at, bt] = v
                e[bt, at] = v
                if part == "hit":
                    hit = e
                s = np.zeros(self.n)
                np.add.at(s, a[ok], v)
                np.add.at(s, b[ok], v)
                hub[part] = np.where(cnt > 0, s / np.maximum(cnt, 1.0), np.nan).astype(np.float32)
                for name in self.graphs:
                    if adj[name] is None:
                        continue
                    num = np.asarray(adj[name] @ e, dtype=np.float32)
                    den = np.asarray(adj[name] @ obs, dtype=np.float32) if part == "neg" else prop[(name, "_den")]
                    if part == "neg":
                        prop[(name, "_den")] = den
                    with np.errstate(invalid="ignore", divide="ignore"):
                        prop[(name, part)] = np.where(den > 0, num / den, np.nan).astype(np.float16)  # half: N x G per graph
            den16 = {}
            for name in self.graphs:
                d = prop.pop((name, "_den"), None)
                if d is not None and self.two_hop:
                    den16[name] = np.where(d > 0, np.maximum(d, _DEN_FLOOR), 0.0).astype(np.float16)
            self.hub.append(hub)
            self.prop.append(prop)
            self.den.append(den16)
            if gene_inputs is not None:
                self.hub_pred.append(predicted_share(gene_inputs, hub["hit"]))
            if self.profile:
                self._profiles(hit.astype(np.float64), obs, adj)

    def _profiles(self, hit: np.ndarray, obs: np.ndarray, adj: dict[str, sp.csr_matrix | None]) -> None:
        """The interaction-profile state of one target (module docstring) from the ``[G, G]`` 0/1 negative marks
        ``hit`` and measured marks ``obs`` of the screened genes."""
        g, r = hit.shape[0], self.profile
        lam, own = np.zeros(r), np.zeros((self.n, r), np.float32)
        nbr: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        if g > r + 1 and obs.any():
            c = hit - (hit.sum() / obs.sum()) * obs
            v0 = np.full(g, 1.0 / np.sqrt(g))  # a fixed start vector: the same eigenvectors on every run
            try:
                lam, q = eigsh(c, k=r, which="LM", v0=v0)
            except ArpackNoConvergence as exc:  # keep what converged; a missing pair is a zero column
                lam = np.zeros(r)
                q = np.zeros((g, r))
                k = exc.eigenvalues.size
                lam[:k], q[:, :k] = exc.eigenvalues, exc.eigenvectors
            own[self.screened] = q
            for name in self.graphs:
                a = adj[name]
                if a is None:
                    continue
                d = np.asarray(a.sum(1), dtype=np.float64).ravel()
                z = np.asarray(a @ q) / np.maximum(d, 1e-12)[:, None]
                nbr[name] = (z.astype(np.float32), (d > 0).astype(np.float32))
        if nbr:
            cov = np.stack([c for _, c in nbr.values()])
            z = np.einsum("knr,kn->nr", np.stack([z for z, _ in nbr.values()]), cov) / np.maximum(cov.sum(0), 1)[:, None]
            nbr["mix"] = (z.astype(np.float32), (cov.sum(0) > 0).astype(np.float32))
        self.lam.append(lam.astype(np.float32))
        self.own.append(own)
        self.nbr.append(nbr)

    def _profile_terms(self, t: int, a: np.ndarray, b: np.ndarray) -> list[np.ndarray]:
        """The profile terms ``[M]`` of target ``t`` (see :attr:`names`)."""
        lam, own, nbr = self.lam[t], self.own[t], self.nbr[t]
        missing = np.full(a.size, np.nan, np.float32)

        def dot(x: np.ndarray, y: np.ndarray) -> np.ndarray:
            return np.einsum("mr,r,mr->m", x, lam, y)

        out = []
        for name in [*self.graphs, "mix"]:
            if name not in nbr:
                out.append(missing)
                continue
            z, cov = nbr[name]
            out.append(np.where((cov[a] > 0) & (cov[b] > 0), dot(z[a], z[b]), np.nan).astype(np.float32))
        if "mix" not in nbr:
            return out + [missing, missing]
        z, cov = nbr["mix"]
        sa, sb = self.col[a] >= 0, self.col[b] >= 0
        one_a = np.where(sa & (cov[b] > 0), dot(own[a], z[b]), np.nan)  # a's own profile against b's neighbours
        one_b = np.where(sb & (cov[a] > 0), dot(own[b], z[a]), np.nan)
        with np.errstate(invalid="ignore"):
            out.append(np.fmax(one_a, one_b).astype(np.float32))
            s = np.sqrt(np.abs(lam))
            za, zb = z[a] * s, z[b] * s
            norm = np.linalg.norm(za, axis=1) * np.linalg.norm(zb, axis=1)
            out.append(np.where(norm > 0, (za * zb).sum(1) / np.where(norm > 0, norm, 1.0), np.nan).astype(np.float32))
        return out

    @property
    def names(self) -> list[str]:
        """Feature names (per target block: hubness min/max per part, then per graph: per part min/mean/max of the
        one-hop term, and the two-hop term of each part in ``two_hop``; then with ``profile`` the profile terms
        per graph and ``mix``, the own-against-neighbours term and the profiles' cosine)."""
        out = ["screened_genes"]
        for t in range(self.num_targets):
            pre = f"t{t}." if self.num_targets > 1 else ""
            for part in _PARTS:
                out += [f"{pre}hub_{part}.min", f"{pre}hub_{part}.max"]
            for name in self.graphs:
                for part in _PARTS:
                    out += [f"{pre}prop_{part}.{name}.min", f"{pre}prop_{part}.{name}.mean",
                            f"{pre}prop_{part}.{name}.max"]
                out += [f"{pre}two_hop_{part}.{name}" for part in self.two_hop]
            if self.hub_trees:
                out += [f"{pre}hub_pred.{k}.{f}" for k in ("predicted", "filled") for f in ("min", "max", "product")]
            if self.profile:
                out += [f"{pre}profile.{name}" for name in [*self.graphs, "mix"]]
                out += [f"{pre}profile.own_vs_neighbours", f"{pre}profile.cosine"]
        return out

    def _two_hop(self, t: int, name: str, a: np.ndarray, b: np.ndarray) -> list[np.ndarray]:
        """The two-hop terms ``[M]`` of target ``t`` over graph ``name``, one per part of ``two_hop``."""
        adj, den = self.adj.get(name), self.den[t].get(name)
        if adj is None or den is None:
            return [np.full(a.size, np.nan, np.float32) for _ in self.two_hop]
        deg = np.diff(adj.indptr)
        # the sum is symmetric in a and b: run it over the neighbours of whichever gene has fewer
        swap = deg[a] < deg[b]
        a, b = np.where(swap, b, a), np.where(swap, a, b)
        lens = deg[b]
        row = np.repeat(np.arange(a.size), lens)  # the pair of each (pair, screened neighbour of b) entry
        start = np.repeat(adj.indptr[b] - (np.cumsum(lens) - lens), lens)
        k = np.arange(row.size) + start  # positions in adj.indices / adj.data
        j, w = adj.indices[k], adj.data[k]
        ar = a[row]
        wd = w * den[ar, j].astype(np.float32)
        dd = np.bincount(row, wd, minlength=a.size)
        out = []
        for part in self.two_hop:
            r = np.nan_to_num(self.prop[t][(name, part)][ar, j].astype(np.float32), nan=0.0)
            num = np.bincount(row, wd * r, minlength=a.size)
            with np.errstate(invalid="ignore", divide="ignore"):
                out.append(np.where(dd > 0, num / dd, np.nan).astype(np.float32))
        return out

    def _pair(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Features ``[M, D]`` of the pairs ``(a[i], b[i])`` (symmetric in a and b)."""
        ca, cb = self.col[a], self.col[b]
        cols = [((ca >= 0).astype(np.float32) + (cb >= 0))]
        with np.errstate(invalid="ignore"), _quiet():
            for t in range(self.num_targets):
                for part in _PARTS:
                    h = self.hub[t][part]
                    cols += [np.fmin(h[a], h[b]), np.fmax(h[a], h[b])]
                for name in self.graphs:
                    for part in _PARTS:
                        m = self.prop[t].get((name, part))
                        if m is None:
                            cols += [np.full(a.size, np.nan, np.float32)] * 3
                            continue
                        v1 = np.where(ca >= 0, m[b, np.maximum(ca, 0)].astype(np.float32), np.nan)  # a against b's neighbours
                        v2 = np.where(cb >= 0, m[a, np.maximum(cb, 0)].astype(np.float32), np.nan)  # b against a's neighbours
                        cols += [np.fmin(v1, v2), np.nanmean(np.stack([v1, v2]), 0), np.fmax(v1, v2)]
                    if self.two_hop:
                        cols += self._two_hop(t, name, a, b)
                if self.hub_trees:
                    for h in self.hub_pred[t]:
                        cols += [np.fmin(h[a], h[b]), np.fmax(h[a], h[b]), (h[a] * h[b]).astype(np.float32)]
                if self.profile:
                    cols += self._profile_terms(t, a, b)
        return np.stack(cols, 1).astype(np.float32) if cols else np.zeros((a.size, 0), np.float32)

    def __call__(self, padded: Tensor, mask: Tensor) -> np.ndarray:
        """Features ``[S, 2 D]`` of gene sets (mean and min over each set's pairs; NaN for a single gene)."""
        p = torch.as_tensor(padded, dtype=torch.long).cpu().numpy()
        m = torch.as_tensor(mask, dtype=torch.bool).cpu().numpy()
        # genes sorted within each set (padding last): the sums below then run in one order whatever order
        # the set came in, so that the same set always gives the same bits
        key = np.where(m, p, np.iinfo(np.int64).max)
        order = np.argsort(key, axis=1, kind="stable")
        p = np.take_along_axis(p, order, 1)
        m = np.take_along_axis(m, order, 1)
        s, k = p.shape
        d = len(self.names)
        if k < 2:
            return np.full((s, 2 * d), np.nan, np.float32)
        iu, ju = np.triu_indices(k, 1)
        ok = m[:, iu] & m[:, ju]  # [S, Q]
        rows, q = np.nonzero(ok)
        feats = self._pair(p[rows, iu[q]], p[rows, ju[q]])
        out = np.full((s, 2 * d), np.nan, np.float32)
        if rows.size == 0:
            return out
        if (ok.sum(1) <= 1).all():  # pairs only: one row each
            out[rows, :d] = feats
            out[rows, d:] = feats
            return out
        # several pairs per set: nan-aware mean and min per set
        vals = np.nan_to_num(feats, nan=0.0)
        present = (~np.isnan(feats)).astype(np.float32)
        tot = np.zeros((s, d), np.float32)
        num = np.zeros((s, d), np.float32)
        np.add.at(tot, rows, vals)
        np.add.at(num, rows, present)
        mn = np.full((s, d), np.inf, np.float32)
        np.minimum.at(mn, rows, np.where(np.isnan(feats), np.inf, feats))
        with np.errstate(invalid="ignore", divide="ignore"):
            out[:, :d] = np.where(num > 0, tot / num, np.nan)
            out[:, d:] = np.where(np.isfinite(mn), mn, np.nan)
        return out


def hub_inputs(featurizer: SetFeaturizer) -> np.ndarray:
    """``[N, F]`` the per-gene inputs the predicted-hubness trees read: the set featurizer's per-gene columns
    (log1p degree per graph, ``data.features``) and its GO-slim terms."""
    parts = [featurizer.per_gene.numpy()] + ([] if featurizer.go is None else [featurizer.go.numpy()])
    return np.concatenate(parts, 1)


def predicted_share(inputs: np.ndarray, share: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(predicted [N], filled [N])``: trees on the per-gene ``inputs [N, F]`` fitted on the genes whose
    ``share`` is known (not NaN), their prediction for every gene, and the same with the known shares put
    in (float32). Fewer than 20 known genes: the mean known share for every gene."""
    known = np.flatnonzero(np.isfinite(share))
    if known.size < 20:
        pred = np.full(share.shape, float(np.nanmean(share)) if known.size else np.nan)
    else:
        trees = HistGradientBoostingRegressor(max_iter=300, learning_rate=0.05, min_samples_leaf=20,
                                              early_stopping=False, random_state=0)
        pred = trees.fit(inputs[known], share[known]).predict(inputs)
    return pred.astype(np.float32), np.where(np.isfinite(share), share, pred).astype(np.float32)


class _quiet:
    """Silence numpy's "mean of empty slice" warning of :func:`numpy.nanmean` (an all-NaN pair is expected)."""

    def __enter__(self) -> None:
        self._w = warnings.catch_warnings()
        self._w.__enter__()
        warnings.simplefilter("ignore", category=RuntimeWarning)

    def __exit__(self, *exc: Any) -> None:
        self._w.__exit__(*exc)


class PropagationParams(Params):
    graphs: list[str] | None = Field(None, description="edge types to propagate the screen over (null: every graph "
                                     "of data.graphs)")
    inner_folds: int = Field(5, ge=2, le=20, description="folds of the training genes for cross-fitting (module docs)")
    neutral_share: float = Field(0.05, gt=0, le=1, description="share of the neutral training rows kept per inner "
                                 "fold when most rows are neutral (weighted 1 / share)")
    max_iter: int = Field(300, ge=1, description="boosting rounds at most (early stopping on validation ends sooner)")
    learning_rate: float = Field(0.05, gt=0, description="shrinkage of each tree")
    max_leaf_nodes: int = Field(15, ge=2, description="leaves per tree")
    min_samples_leaf: int = Field(200, ge=1, description="training rows per leaf at least")
    l2_regularization: float = Field(10.0, ge=0, description="L2 penalty on the leaf values")
    two_hop: list[Part] = Field(default_factory=lambda: ["hit"],
                                description="parts of the screen that also get the two-hop term (the mean screen "
                                "value between the two genes' screened neighbours, module docs); [] for one hop only. "
                                "Default: the 0/1 negative mark only, chosen on the Costanzo 2010 validation grid "
                                "(docs/benchmarks.md)")
    profile: int = Field(0, ge=0, le=256, description="rank of the interaction-profile terms (the screen's leading "
                         "eigenvectors carried over every graph, module docs); 0: none")
    hub_trees: bool = Field(False, description="add each gene's share of negative interactions as predicted from its "
                            "per-gene inputs by trees fitted on the screened genes (module docs)")


def _pairs_of(padded: Tensor, mask: Tensor) -> np.ndarray:
    """Rows that are pairs (exactly two genes): ``[S]`` bool."""
    return (torch.as_tensor(mask).sum(1) == 2).cpu().numpy()


@register("baseline", "propagation", params=PropagationParams,
          summary="feature trees plus the screen propagated over the gene graphs (a pair's interactions with "
                  "its partner's network neighbours), cross-fitted so that unscreened genes are scored as trained")
class PropagationTreesBaseline(FeatureTreesBaseline):
    """Gradient-boosted trees on the feature trees' set features plus :class:`ScreenPropagation` features
    (module docstring). Stores the training pairs and their targets (the propagation is rebuilt from them
    and the run's graph when a run folder is loaded), the two-hop parts the trees were fitted with (a state
    written before the two-hop terms has none and loads as one hop only) and the trees as node arrays. The trees' settings and
    the set featurizer are :class:`~cellgi.baselines.FeatureTreesBaseline`'s."""

    kind = "propagation"
    #: rows whose features are computed at once in fit and predict (memory, not results: a row's features
    #: depend on that row alone)
    feature_batch = 65536

    def __init__(self, graphs: list[str] | None = None, inner_folds: int = 5, neutral_share: float = 0.05,
                 max_iter: int = 300, learning_rate: float = 0.05, max_leaf_nodes: int = 15,
                 min_samples_leaf: int = 200, l2_regularization: float = 10.0,
                 two_hop: Sequence[str] = ("hit",), profile: int = 0, hub_trees: bool = False, *,
                 context: BaselineContext):
        super().__init__(max_iter=max_iter, learning_rate=learning_rate, max_leaf_nodes=max_leaf_nodes,
                         min_samples_leaf=min_samples_leaf, l2_regularization=l2_regularization, context=context)
        known = set(context.graph.edge_type_names)
        unknown = [g for g in (graphs or []) if g not in known]
        if unknown:
            raise ValueError(f"propagation.graphs names {unknown}, not graphs of this run ({sorted(known)})")
        self.graphs = list(graphs) if graphs else None
        self.inner_folds = int(inner_folds)
        self.neutral_share = float(neutral_share)
        bad = [p for p in two_hop if p not in _PARTS]
        if bad:
            raise ValueError(f"propagation.two_hop names parts {bad}; known parts: {list(_PARTS)}")
        self.two_hop = [p for p in _PARTS if p in set(two_hop)]
        self.profile = int(profile)
        self.hub_trees = bool(hub_trees)
        self.known: dict[str, Tensor] | None = None
        self._prop: ScreenPropagation | None = None

    # ------------------------------------------------------------------------------------------ helpers
    def _propagation(self, pairs: Tensor, values: Tensor, center: Tensor) -> ScreenPropagation:
        return ScreenPropagation(self.context.graph, pairs, values, center, self.graphs, self.two_hop,
                                 self.profile, hub_inputs(self.featurizer) if self.hub_trees else None)

    @property
    def propagation(self) -> ScreenPropagation:
        if self._prop is None:
            if self.known is None:
                raise RuntimeError("the propagation baseline is not fitted")
            k = self.known
            self._prop = self._propagation(k["pairs"], k["values"], k["center"])
        return self._prop

    def _features(self, padded: Tensor, mask: Tensor, prop: ScreenPropagation) -> np.ndarray:
        """The rows' set features followed by their propagation features (float32)."""
        return np.concatenate([self.featurizer(padded, mask).astype(np.float32), prop(padded, mask)], 1)

    def _features_of(self, padded: Tensor, mask: Tensor, prop: ScreenPropagation,
                     batch_size: int = 65536) -> np.ndarray:
        """Every row's features, computed ``batch_size`` rows at a time: the propagation's gathers over the
        screened genes are ``rows x G`` per graph, which for hundreds of thousands of training rows would
        cost gigabytes at once (each row's features depend on that row alone)."""
        parts = [self._features(padded[lo:lo + batch_size], mask[lo:lo + batch_size], prop)
                 for lo in range(0, padded.shape[0], batch_size)]
        return np.concatenate(parts, 0)

    # ------------------------------------------------------------------------------------------ the role
    def fit(self, data: BaselineData) -> dict[str, Any]:
        tr = torch.as_tensor(data.splits["train"], dtype=torch.long)
        padded, mask = data.sets(tr)
        y = data.y[tr].to(torch.float64).reshape(tr.numel(), -1)
        w_all = data.dataset.weight
        w = (w_all[tr].double() if w_all is not None else torch.ones(tr.numel(), dtype=torch.float64)).numpy()
        is_pair = _pairs_of(padded, mask)
        if not is_pair.any():
            raise ValueError("the propagation baseline needs pairs (two-gene samples) in the training split")
        pairs = torch.sort(padded[torch.from_numpy(is_pair), :2], dim=1).values
        pvals = y[torch.from_numpy(is_pair)]
        center = torch.nanmedian(pvals, dim=0).values  # the neutral value of a sparse screen; the median otherwise
        neutral = (y == center).all(1).numpy()
        sparse_screen = neutral.mean() > 0.5
        rng = np.random.default_rng(int(data.seed))
        genes = np.unique(pairs.numpy())
        fold_of = np.full(self.context.graph.num_nodes, -1, dtype=np.int64)
        fold_of[rng.permutation(genes)] = np.arange(genes.size) % self.inner_folds
        p_np = padded.numpy()
        m_np = mask.numpy()
        pk = pairs.numpy()
        in_fold = np.stack([((fold_of[p_np] == i) & m_np).any(1) for i in range(self.inner_folds)], 1)  # [S, F]
        copies = np.maximum(in_fold.sum(1), 1)
        names = None
        plan = []  # (inner fold, its rows, their weight scale): drawn first, so the matrix is allocated once
        for i in range(self.inner_folds):
            rows = np.flatnonzero(in_fold[:, i])
            if sparse_screen:
                keep = ~neutral[rows] | (rng.random(rows.size) < self.neutral_share)
                rows = rows[keep]
                scale = np.where(neutral[rows], 1.0 / self.neutral_share, 1.0)
            else:
                scale = np.ones(rows.size)
            if rows.size:
                plan.append((i, rows, scale))
        # float64, as the trees read it: no float32 list, concatenated copy and float64 copy side by side
        # (at half of the Costanzo grid's neutral pairs, about 700,000 rows, those were gigabytes each)
        x_train: np.ndarray | None = None
        at = 0
        ys, ws = [], []
        for i, rows, scale in plan:
            # the known pairs of this fold: no gene of fold i
            ok = (fold_of[pk[:, 0]] != i) & (fold_of[pk[:, 1]] != i)
            prop = self._propagation(pairs[torch.from_numpy(ok)], pvals[torch.from_numpy(ok)], center)
            rt = torch.from_numpy(rows)
            for lo in range(0, rows.size, self.feature_batch):
                part = rt[lo:lo + self.feature_batch]
                chunk = self._features(padded[part], mask[part], prop)
                if x_train is None:
                    x_train = np.empty((sum(r.size for _, r, _ in plan), chunk.shape[1]), dtype=np.float64)
                x_train[at:at + chunk.shape[0]] = chunk
                at += chunk.shape[0]
            ys.append(y[rt])
            ws.append(w[rows] * scale / copies[rows])
            names = list(self.featurizer.names) + [f"{s}.{n}" for s in ("mean", "min") for n in prop.names]
            del prop
        assert x_train is not None and at == x_train.shape[0]  # is_pair.any() above: some fold has rows
        self.known = {"pairs": pairs.to(torch.int32), "values": pvals.to(torch.float32), "center": center}
        self._prop = None
        prop = self.propagation
        va = data.splits.get("val")
        x_val = y_val = None
        if va is not None and va.numel() >= 20:
            va = torch.as_tensor(va, dtype=torch.long)
            if sparse_screen and va.numel() > 200_000:  # a uniform sample of a large validation grid
                va = va[torch.from_numpy(np.sort(rng.choice(va.numel(), 200_000, replace=False)))]
            vp, vm = data.sets(va)
            x_val = self._features_of(vp, vm, prop, self.feature_batch)
            y_val = data.y[va]
        self.fitted = fit_feature_baseline(
            x_train, torch.cat(ys, 0), torch.from_numpy(np.concatenate(ws)), x_val, y_val,
            feature_names=names or [], seed=data.seed, **self.hyper)
        info = dict(self.fitted.info)
        info.update(known_pairs=int(pairs.shape[0]), training_rows=int(x_train.shape[0]),
                    sparse_screen=bool(sparse_screen))
        return info

    def predict(self, padded: Tensor, mask: Tensor, *, batch_size: int = 65536) -> Tensor:
        fit = self._fit()
        out = []
        for lo in range(0, padded.shape[0], batch_size):
            p, m = padded[lo:lo + batch_size], mask[lo:lo + batch_size]
            out.append(fit.predict(self._features(p, m, self.propagation)))
        return torch.cat(out, 0) if out else torch.zeros(0, self.context.num_targets, dtype=torch.float64)

    def predict_samples(self, data: BaselineData, idx: Tensor) -> Tensor:
        return self.predict(*data.sets(idx))

    def _fit(self) -> FeatureBaseline:
        if self.fitted is None:
            raise RuntimeError("the propagation baseline is not fitted")
        return self.fitted

    def state_dict(self) -> dict[str, Any]:
        if self.known is None:
            raise RuntimeError("the propagation baseline is not fitted")
        return {"trees": self._fit().state_dict(), "known": dict(self.known), "two_hop": list(self.two_hop),
                "profile": int(self.profile), "hub_trees": bool(self.hub_trees)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        known = {k: torch.as_tensor(v) for k, v in state["known"].items()}
        n = self.context.graph.num_nodes
        if known["pairs"].numel() and int(known["pairs"].max()) >= n:
            raise ValueError(f"the propagation baseline knows genes beyond this run's {n}")
        self.known = known
        # the parts the trees were fitted with decide (a state written before the two-hop terms has none)
        two_hop = [str(p) for p in state.get("two_hop", [])]
        bad = [p for p in two_hop if p not in _PARTS]
        if bad:
            raise ValueError(f"the propagation state names two-hop parts {bad}; known parts: {list(_PARTS)}")
        self.two_hop = two_hop
        self.profile = int(state.get("profile", 0))  # a state written before the profile terms has none
        self.hub_trees = bool(state.get("hub_trees", False))
        self._prop = None
        self.fitted = FeatureBaseline.from_state_dict(state["trees"])

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v}" for k, v in self.hyper.items())
        return (f"PropagationTreesBaseline(graphs={self.graphs}, inner_folds={self.inner_folds}, "
                f"two_hop={self.two_hop}, profile={self.profile}, hub_trees={self.hub_trees}, {args})")
