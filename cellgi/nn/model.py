"""The lazy Dango model, assembled from registered components by a :class:`~cellgi.spec.model.ModelSpec`.

Data flow of :meth:`LazyDango.forward` for a batch of ``B`` samples (each a set of deleted genes)::

    embedding [N, H0] -> preprocessor [N, H] -> broadcast to [N, B+1, H] (column B = wildtype)
    -> L x ( x + aggregator( per edge type: ConvWrapper.forward_batched(x, shared adjacency, keep) ) )
    -> pooling over kept genes: z [B+1, H];  z_w = z[B], z_i = z[:B], z_p = z_w - z_i
    -> global head (z_w, z_i, z_p);  local head (wildtype states of the deleted genes, padded [B, K, H])
    -> combiner -> prediction [B, T] and a dict of representations

``keep[N, B+1]`` is made on the device from ``batch.pert_idx``/``batch.pert_batch``; the wildtype runs as
column ``B`` (all genes kept) in the same message-passing pass, so it costs one more column, not a pass.

The first layer's input is the same in every column, so (``first_layer_delta``, default on) it runs once for
the wildtype ``[N, H]`` and again only for the (gene, column) pairs whose input a deletion changes: the
targets of the deleted genes' out-edges, per edge type (about 2% of ``N * (B+1)`` rows per edge type at
yeast scale). Every other pair of the first layer's output is the wildtype row. This is exact (it is the
same sum with the removed terms subtracted) and is used when every conv has ``forward_shared`` and no
dropout acts in the first layer; otherwise the first layer runs like the others.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict, Union

import torch
from pydantic import BaseModel
from torch import Tensor, nn

from cellgi.data.batch import PerturbationBatch
from cellgi.data.cellgraph import CellGraph
from cellgi.nn.aggregators import GraphAggregator
from cellgi.nn.convs import ConvWrapper, fused
from cellgi.nn.columns import match_columns
from cellgi.nn.convs.base import masked_input
from cellgi.nn.embedding import GeneEmbedding, Preprocessor
from cellgi.nn.additive import AdditiveTerm
from cellgi.nn.heads import Combiner, GlobalPredictor, HeadInput, LocalPredictor
from cellgi.nn.operator import GraphOperator, RemovedEdges
from cellgi.nn.pooling import Pooling
from cellgi.nn.relations import PairRelations
from cellgi.errors import CellgiError
from cellgi.registry import ComponentEntry, get_registry
from cellgi.spec.model import ModelSpec

if TYPE_CHECKING:  # pragma: no cover - typing.Unpack is Python 3.11+; the annotation is never evaluated
    from typing_extensions import Unpack

__all__ = ["LazyDango", "ModelInputs", "NonFiniteError", "REPRESENTATION_KEYS", "WildtypeStates"]

#: keys of the representation dict returned by :meth:`LazyDango.forward`
REPRESENTATION_KEYS = (
    "z_w",
    "z_i",
    "z_p",
    "local_interaction",
    "global_interaction",
    "gate_weights",
    "pert_gene_embs",
    "layer_aggregation_weights",
    "additive",
)


class NonFiniteError(CellgiError, FloatingPointError):
    """NaN or inf in the model's activations; ``stages`` names where they first appear."""

    def __init__(self, stages: list[str]):
        self.stages = stages
        super().__init__(
            f"non-finite values (NaN/inf) in the model at stage(s): {', '.join(stages)} "
            f"(the first one listed is where they appeared)"
        )


@dataclass(frozen=True)
class WildtypeStates:
    """The wildtype cell of a model, computed once (:meth:`LazyDango.wildtype_states`) and read by
    :meth:`LazyDango.predict_with_wildtype` for any number of gene sets.

    Attributes:
        x0: ``[N, H]`` initial gene states (embedding + preprocessor).
        states: ``[N, H]`` final gene states of the wildtype (every gene kept, every layer).
    """

    x0: Tensor
    states: Tensor


#: a component's spec block: the validated (tagged) params model, or a plain mapping with ``type``
ComponentSpec = Union[BaseModel, dict[str, object]]


def _build(role: str, spec_obj: ComponentSpec, **context: int | list[str]) -> Any:
    """The component a spec block names, built with the model's structural ``context`` (the result is the
    role's type, which the registry cannot name: the caller's annotation states it)."""
    return get_registry(role).build(spec_obj, **context)


def _entry(role: str, spec_obj: ComponentSpec) -> ComponentEntry:
    """The registry entry a spec block names (its declared capabilities are what the model reads)."""
    return get_registry(role).get(_type_name(spec_obj))


class ModelInputs(TypedDict, total=False):
    """The optional keyword arguments of :class:`LazyDango` and :meth:`LazyDango.from_spec`."""

    node_features: Tensor | None
    feature_names: list[str] | None
    base_dir: str | Path | None


class LazyDango(nn.Module):
    r"""Lazy Dango: GNN over a shared gene multigraph, batched over perturbations without copies.

    Args:
        spec: the validated ``model:`` section.
        graph: the wildtype gene graph; ``spec.edge_types`` selects edge types (default all, in order).
        num_targets: number of predicted targets ``T``.
        node_features: per-gene input features ``[N, F]`` (``DataBundle.gene_features`` of
            ``data.features``); used unless ``spec.embedding.use_features`` is false.
        base_dir: unused (kept for callers of the old signature).

    Shapes:
        ``forward(batch) -> (pred [B, T], reps)`` with ``reps``:

        - ``z_w [1, H]``, ``z_i [B, H]``, ``z_p [B, H]``: pooled wildtype, perturbed and difference.
        - ``global_interaction [B, T]``, ``local_interaction [B, T]`` (None without a local head).
        - ``gate_weights [B, 2]`` (local, global) or None (combiners without a gate).
        - ``pert_gene_embs [B, K, H]``: wildtype final states of the deleted genes (padded; see
          ``batch.pert_mask``), the local head's input.
        - ``layer_aggregation_weights [L, W]`` (detached, averaged over genes and samples) or None when
          the aggregator returns no weights; ``aggregation_labels`` names the ``W`` columns.
    """

    def __init__(
        self,
        spec: ModelSpec,
        graph: CellGraph,
        num_targets: int,
        *,
        node_features: Tensor | None = None,
        feature_names: list[str] | None = None,
        base_dir: str | Path | None = None,
    ):
        super().__init__()
        if num_targets < 1:
            raise ValueError(f"num_targets must be >= 1, got {num_targets}")
        self.spec = spec
        self.num_targets = int(num_targets)
        self.num_genes = graph.num_nodes
        self.genes = list(graph.genes)
        self.check_finite = bool(spec.check_finite)
        self.edge_type_names = self._select_edge_types(spec.edge_types, graph)
        h = spec.hidden_dim

        emb = spec.embedding
        # gene_values columns are read from the features the embedding keeps (and the checkpoint saves)
        raw_features = node_features if emb.use_features else None
        if not emb.use_features:
            node_features = None
        self.embedding = GeneEmbedding(graph.num_nodes, emb.id_dim(h), emb.init_std, node_features,
                                       gene_dropout=emb.gene_dropout)
        pp = spec.preprocessor
        self.preprocessor = Preprocessor(self.embedding.out_dim, h, pp.num_layers, pp.norm, pp.activation, pp.dropout)

        self.operators = nn.ModuleList(GraphOperator.from_graph(graph, n) for n in self.edge_type_names)
        # DDP must not broadcast the (sparse, constant, identical on every rank) graph buffers
        self._ddp_params_and_buffers_to_ignore = [
            f"operators.{i}.{b}"
            for i, op in enumerate(self.operators)
            for b in ("edge_index", "adj", "adj_t", "edge_weight", "_edge_index_sl")
        ]
        cw = spec.conv_wrapper
        self.residual = bool(cw.residual)
        self.layers = nn.ModuleList()
        self.aggregators = nn.ModuleList()
        g = len(self.edge_type_names)
        for _ in range(spec.num_layers):
            convs = []
            for _name in self.edge_type_names:
                conv = _build("conv", spec.conv, in_dim=h, out_dim=h)
                if not isinstance(conv, nn.Module):  # the conv contract (forward_batched, ...) holds at registration
                    raise TypeError(f"conv {_type_name(spec.conv)!r} must be an nn.Module")
                # the residual is added once, after the aggregator (below), not once per edge type: a
                # per-type residual under a sum aggregator would multiply the input by G every layer
                convs.append(ConvWrapper(conv, h, cw.projection, cw.norm, cw.activation, cw.dropout, residual=False))
            self.layers.append(nn.ModuleList(convs))
            self.aggregators.append(_build("aggregator", spec.aggregator, dim=h, num_graphs=g))
        self.pooling: Pooling = _build("pooling", spec.pooling, dim=h)
        self.global_predictor: GlobalPredictor = _build(
            "global_predictor", spec.global_predictor, dim=h, num_targets=self.num_targets
        )
        self.relations: PairRelations | None = None
        if spec.local_predictor is None:
            self.local_predictor: LocalPredictor | None = None
        elif _entry("local_predictor", spec.local_predictor).declares("uses_relations"):
            values, value_names = _gene_value_columns(
                list(getattr(spec.local_predictor, "gene_values", None) or []), raw_features, feature_names)
            self.relations = PairRelations(graph, self.edge_type_names, values, value_names)
            self.local_predictor = _build("local_predictor", spec.local_predictor, dim=h,
                                          num_targets=self.num_targets, num_relations=self.relations.num_features)
        else:
            self.local_predictor = _build("local_predictor", spec.local_predictor, dim=h, num_targets=self.num_targets)
        add_spec = spec.additive_term
        add_values = None
        #: the additive term declares ``uses_gene_values``: the heads' input carries its value columns
        self.additive_uses_values = add_spec is not None and _entry("additive_term", add_spec).declares(
            "uses_gene_values")
        self.additive_term: AdditiveTerm | None
        if add_spec is None:
            self.additive_term = None
        elif self.additive_uses_values:
            add_values, add_names = _gene_value_columns(list(add_spec.gene_values), raw_features, feature_names,
                                                        where="additive_term.gene_values")
            if add_values is None:
                raise ValueError(f"additive_term {_type_name(add_spec)!r} declares uses_gene_values but its "
                                 f"gene_values names no feature column")
            self.additive_term = _build("additive_term", add_spec, dim=h, num_targets=self.num_targets,
                                        num_values=add_values.shape[1], num_genes=graph.num_nodes,
                                        value_names=add_names)
        else:
            self.additive_term = _build("additive_term", add_spec, dim=h, num_targets=self.num_targets)
        #: ``[N, V]`` raw values of the additive term's ``gene_values`` columns ([N, 0] when it reads none)
        self.register_buffer("additive_values", (add_values if add_values is not None else
                                                 torch.zeros(graph.num_nodes, 0)).detach().to(torch.float32).clone(),
                             persistent=False)
        combiner = _entry("combiner", spec.combiner)
        self.combiner: Combiner = _build("combiner", spec.combiner, dim=h, num_targets=self.num_targets)
        uses_local = combiner.declares("uses_local")
        #: the combiner's declared ``uses_global``: False runs message passing on the wildtype only
        self.uses_global = combiner.declares("uses_global")
        if not self.uses_global:  # local_only: wildtype states only; no pooling or global head is run
            self.pooling = None  # type: ignore[assignment]
            self.global_predictor = None  # type: ignore[assignment]
        ctype = _type_name(spec.combiner)
        if uses_local and self.local_predictor is None:
            raise ValueError(
                f"combiner {ctype!r} combines a local and a global head, but local_predictor is null; "
                f"configure a local_predictor or use combiner global_only"
            )
        if not uses_local and self.local_predictor is not None:
            raise ValueError(
                f"combiner {ctype!r} ignores the local head, but local_predictor "
                f"{_type_name(spec.local_predictor)!r} is configured; set local_predictor: null"
            )
        self.first_layer_delta = bool(spec.first_layer_delta)
        # the per-edge-type convs of a layer run fused (cellgi.nn.convs.fused) where they can: True always,
        # False never (one by one), None (default) on accelerators but not on CPUs, where one type at a
        # time keeps its blocks in cache and measured as fast or faster (docs/performance.md). Same results.
        self.fused_edge_types: bool | None = None
        self._fusable = [fused.can_fuse(list(layer)) for layer in self.layers]
        self._stacked_cache = fused.StackedOperatorCache()
        # declared capabilities (checked when the members registered), not guessed from attributes
        conv_entry = _entry("conv", spec.conv)
        self._layer0_supports_shared = conv_entry.declares("supports_shared") and _entry(
            "aggregator", spec.aggregator).declares("row_independent")
        #: the conv declares ``supports_masked_input``: the masked input is made once per layer
        self._conv_masked_input = conv_entry.declares("supports_masked_input")
        self._layer0_dropout = any(w.uses_dropout() for w in self.layers[0]) or self.aggregators[0].uses_dropout()
        labels = self.aggregators[0].weight_labels(self.edge_type_names) if isinstance(
            self.aggregators[0], GraphAggregator) else None
        self.aggregation_labels: list[str] | None = labels

    # ------------------------------------------------------------------------------ construction
    @classmethod
    def from_spec(
        cls, spec: ModelSpec, graph: CellGraph, num_targets: int, **inputs: Unpack[ModelInputs]
    ) -> "LazyDango":
        """Build every part through the registries from a validated ``ModelSpec`` (see the class docs);
        ``inputs`` are the constructor's keyword arguments (:class:`ModelInputs`)."""
        return cls(spec, graph, num_targets, **inputs)

    @staticmethod
    def _select_edge_types(wanted: list[str] | None, graph: CellGraph) -> list[str]:
        valid = graph.edge_type_names
        if not valid:
            raise ValueError("the graph has no edge types")
        if wanted is None:
            return list(valid)
        if not wanted:
            raise ValueError(f"model.edge_types is empty; valid edge types: {', '.join(valid)}")
        unknown = [w for w in wanted if w not in graph.edge_types]
        if unknown:
            raise ValueError(
                f"model.edge_types: unknown edge type(s) {unknown}; valid edge types: {', '.join(valid)}"
            )
        if len(set(wanted)) != len(wanted):
            raise ValueError(f"model.edge_types lists an edge type twice: {wanted}")
        return list(wanted)

    def reset_parameters(self) -> None:
        for m in self.modules():
            if m is not self and hasattr(m, "reset_parameters") and not isinstance(m, (nn.ModuleList, nn.Sequential)):
                m.reset_parameters()

    # ---------------------------------------------------------------------------------- pieces
    def _check_batch(self, batch: PerturbationBatch) -> None:
        """Fail loudly (no host sync) on batch fields the model needs but that are missing or empty."""
        for name in ("pert_idx", "pert_batch"):
            t = getattr(batch, name, None)
            if t is None:
                raise ValueError(f"batch.{name} is missing: the model cannot tell which genes are deleted")
        if batch.pert_idx.numel() == 0:
            raise ValueError("batch.pert_idx is empty: no sample deletes any gene")
        padded, mask = getattr(batch, "pert_padded", None), getattr(batch, "pert_mask", None)
        if padded is None or padded.numel() == 0:
            raise ValueError(
                "batch.pert_padded is missing or empty: the local head and the batch size need the padded "
                "deleted-gene sets (never silently zero)"
            )
        if mask is None or mask.shape != padded.shape:
            raise ValueError("batch.pert_mask is missing or does not match batch.pert_padded")

    def keep_mask(self, batch: PerturbationBatch) -> Tensor:
        """``keep [N, B+1]`` bool, made on the device: False where a sample deletes a gene; column B is the
        wildtype (all True)."""
        self._check_batch(batch)
        b = batch.pert_padded.shape[0]
        device = self.embedding.device
        keep = torch.ones(self.num_genes, b + 1, dtype=torch.bool, device=device)
        keep[batch.pert_idx.to(device), batch.pert_batch.to(device)] = False
        return keep

    def set_training_genes(self, genes: Tensor) -> None:
        """The genes that training samples delete (``embedding.seen``, kept in checkpoints): with a learnable
        embedding every other gene uses the shared ``unknown`` ID vector; ``pair_values`` with
        ``interaction_on_unseen: false`` predicts samples of unseen genes only by its own part."""
        self.embedding.set_seen(genes)

    def initial_states(self) -> Tensor:
        """Preprocessed gene embeddings ``[N, H]`` (shared by all samples before message passing)."""
        return self.preprocessor(self.embedding())

    @property
    def uses_first_layer_delta(self) -> bool:
        """Whether the next forward runs the first layer on the affected rows only (see the module docs)."""
        return (
            self.first_layer_delta
            and self._layer0_supports_shared
            and not (self.training and self._layer0_dropout)
        )

    def gene_states(
        self, keep: Tensor, stages: list | None = None, x0: Tensor | None = None
    ) -> tuple[Tensor, list[Tensor]]:
        """Shared-adjacency message passing: ``x [N, C, H]`` for ``C = keep.shape[1]`` columns, and each
        layer's aggregation weights (``[N, C, W]``, possibly empty). ``x0``: the initial states (default
        :meth:`initial_states`)."""
        x0 = self.initial_states() if x0 is None else x0
        if stages is not None:
            stages.append(("embedding + preprocessor", x0))
        n, c = keep.shape
        weights: list[Tensor] = []
        first = 0
        if self.uses_first_layer_delta:
            x, w = self._first_layer_shared(x0, keep)
            first = 1
            if w is not None:
                weights.append(w)
            if stages is not None:
                stages.append((f"layer 0 (convs + {_type_name(self.spec.aggregator)})", x))
        else:
            x = x0.unsqueeze(1).expand(n, c, x0.shape[-1]).contiguous()
        for li in range(first, len(self.layers)):
            fuse = self.fused_edge_types if self.fused_edge_types is not None else x.device.type != "cpu"
            if fuse and self._fusable[li]:  # one batched pass over the edge types (exact)
                y, w = self.aggregators[li].forward_stacked(
                    fused.layer_outputs(self.layers[li], self.operators, x, keep, self._stacked_cache))
            elif self._conv_masked_input:  # masked input made once
                src = masked_input(x, keep)
                y, w = self.aggregators[li](
                    [conv.forward_masked(x, src, op) for conv, op in zip(self.layers[li], self.operators)])
            else:
                outs = [conv.forward_batched(x, op, keep) for conv, op in zip(self.layers[li], self.operators)]
                y, w = self.aggregators[li](outs)
            x = x + y if self.residual else y
            if w is not None:
                weights.append(w)
            if stages is not None:
                stages.append((f"layer {li} (convs + {_type_name(self.spec.aggregator)})", x))
        return x, weights

    def _first_layer_shared(self, x0: Tensor, keep: Tensor) -> tuple[Tensor, Tensor | None]:
        """Layer 0 for an input ``x0 [N, H]`` shared by all ``C`` columns: the wildtype rows once, plus the
        (gene, column) pairs that some edge type's removed edges reach (their union, ``P`` pairs)."""
        n, c = keep.shape
        genes, cols = (~keep).nonzero(as_tuple=True)
        removed: list[RemovedEdges] = [op.removed_in_edges(genes, cols, c) for op in self.operators]
        keys = torch.unique(torch.cat([r.keys for r in removed]))  # [P] sorted, m * C + c
        rows = keys // c
        outs = []
        for conv, op, r in zip(self.layers[0], self.operators, removed):
            y = conv.forward_shared(x0, op, r)  # [N + R_g, H]: wildtype rows, then this type's pairs
            y_wt = y[:n]
            # at the union's pairs: the wildtype row unless this edge type changed it
            at_pairs = y_wt.index_select(0, rows).index_copy(0, torch.searchsorted(keys, r.keys), y[n:])
            outs.append(torch.cat([y_wt, at_pairs]))  # [N + P, H]
        y, w = self.aggregators[0](outs)
        h = x0.shape[-1]
        if self.residual:
            y = y + torch.cat([x0, x0.index_select(0, rows)])
        x = y[:n].unsqueeze(1).expand(n, c, h).reshape(n * c, h).index_copy(0, keys, y[n:]).view(n, c, h)
        if w is not None:
            k = w.shape[-1]
            w = w[:n].unsqueeze(1).expand(n, c, k).reshape(n * c, k).index_copy(0, keys, w[n:]).view(n, c, k)
        return x, w

    def reference_gene_states(self, keep: Tensor, x0: Tensor | None = None) -> tuple[Tensor, list[Tensor]]:
        """The same states computed the published way: ``C`` per-sample copies of every graph with the
        edges of deleted genes removed, batched PyG-style (node offsets ``c * N``) through the convs'
        single-graph ``forward``. Slow and memory-hungry by design (it is the reference)."""
        x0 = self.initial_states() if x0 is None else x0
        n, c = keep.shape
        h = x0.shape[-1]
        offsets = torch.arange(c, device=keep.device) * n
        edge_indices = []
        for op in self.operators:
            ei = op.edge_index
            alive = (keep.index_select(0, ei[0]) & keep.index_select(0, ei[1])).t()  # [C, E]
            big = ei.unsqueeze(1) + offsets.view(1, c, 1)  # [2, C, E]
            edge_indices.append(big[:, alive])  # edges of deleted genes removed, copy after copy
        x = x0.repeat(c, 1)  # [C*N, H], copy c = rows c*N .. (c+1)*N
        weights: list[Tensor] = []
        for convs, agg in zip(self.layers, self.aggregators):
            outs = [conv(x, ei) for conv, ei in zip(convs, edge_indices)]
            y, w = agg(outs)
            x = x + y if self.residual else y
            if w is not None:
                weights.append(w.view(c, n, -1).transpose(0, 1))
        return x.view(c, n, h).transpose(0, 1), weights

    def head_input(
        self, batch: PerturbationBatch, x0: Tensor, wt: Tensor, z: Tensor | None = None
    ) -> HeadInput:
        """What the heads read about ``batch``'s gene sets (:class:`~cellgi.nn.heads.HeadInput`), given the
        initial states ``x0 [N, H]``, the wildtype states ``wt [N, H]`` and the pooled cells ``z [B+1, H]``
        (wildtype last; None for a model without a global part). The fields the declared capabilities ask
        for are filled: relations for a local head with ``uses_relations``, values for an additive term
        with ``uses_gene_values``, seen for one whose instance has ``uses_seen``."""
        padded = batch.pert_padded.to(wt.device)
        flat = padded.reshape(-1)
        mask = batch.pert_mask.to(device=wt.device, dtype=torch.bool)
        z_w = z_i = z_p = None
        if z is not None:
            b = z.shape[0] - 1
            z_w, z_i = z[b:], z[:b]
            z_p = z_w - z_i
        return HeadInput(
            states=wt.index_select(0, flat).view(*padded.shape, -1),
            mask=mask,
            genes=padded,
            inputs=x0.index_select(0, flat).view(*padded.shape, -1),
            relations=None if self.relations is None else self.relations(padded, mask),
            values=self.additive_values.index_select(0, flat).view(*padded.shape, -1)
            if self.additive_uses_values else None,
            seen=self._any_seen(padded, mask),
            z_w=z_w,
            z_i=z_i,
            z_p=z_p,
        )

    def _with_additive(self, pred: Tensor, hin: HeadInput) -> tuple[Tensor, Tensor | None]:
        """``(pred, additive)``: the additive term's part (None without one) combined into ``pred``."""
        if self.additive_term is None:
            return pred, None
        additive = self.additive_term(hin)
        return self.additive_term.combine(additive, pred, hin), additive

    def _readout(
        self, x: Tensor, keep: Tensor, batch: PerturbationBatch, layer_w: list[Tensor], stages: list | None,
        x0: Tensor,
    ) -> tuple[Tensor, dict[str, Tensor | None]]:
        b = keep.shape[1] - 1
        z = self.pooling(x, keep)  # [B+1, H]
        hin = self.head_input(batch, x0, x[:, b], z)
        glob = self.global_predictor(hin)
        local = None if self.local_predictor is None else self.local_predictor(hin)
        pred, gate = self.combiner(local, glob, hin)
        pred, additive = self._with_additive(pred, hin)
        if stages is not None:
            stages += [("pooling", z), ("global_predictor", glob[0])]
            if local is not None:
                stages.append(("local_predictor", local[0]))
            stages.append(("combiner", pred))
            self._raise_if_not_finite(stages)
        law = None
        if layer_w:
            law = torch.stack([w.detach()[:, :b].mean(dim=(0, 1)) for w in layer_w])
        reps: dict[str, Tensor | None] = {
            "z_w": hin.z_w,
            "z_i": hin.z_i,
            "z_p": hin.z_p,
            "local_interaction": None if local is None else local[0],
            "global_interaction": glob[0],
            "gate_weights": gate,
            "pert_gene_embs": hin.states,
            "layer_aggregation_weights": law,
            "additive": additive,
        }
        return pred, reps

    def _any_seen(self, padded: Tensor, pmask: Tensor) -> Tensor | None:
        """``[B]`` bool: the sample deletes at least one gene with training samples (``embedding.seen``, set
        by :meth:`set_training_genes`); None where the additive term does not ask for it (its instance's
        ``uses_seen``)."""
        if self.additive_term is None or not self.additive_term.uses_seen:
            return None
        seen = self.embedding.seen
        return (seen[padded.to(seen.device)] & pmask.to(seen.device)).any(1)

    @staticmethod
    def _raise_if_not_finite(stages: list[tuple[str, Tensor]]) -> None:
        flags = torch.stack([torch.isfinite(t).all() for _, t in stages])
        if not bool(flags.all()):  # the one host sync of the check
            bad = [name for (name, _), ok in zip(stages, flags.tolist()) if not ok]
            raise NonFiniteError(bad)

    # -------------------------------------------------------------------------------- forwards
    def _forward_wildtype(self, batch: PerturbationBatch) -> tuple[Tensor, dict[str, Tensor | None]]:
        """Combiners without a global part (``uses_global = False``): message passing on the wildtype
        only (one column); the local head and the additive term read the deleted genes' wildtype states."""
        self._check_batch(batch)
        stages: list | None = [] if self.check_finite else None
        x0 = self.initial_states()
        keep = torch.ones(self.num_genes, 1, dtype=torch.bool, device=x0.device)
        x, layer_w = self.gene_states(keep, stages, x0=x0)
        return self.readout_wildtype(batch, x0, x[:, 0], layer_w, stages)

    def readout_wildtype(
        self, batch: PerturbationBatch, x0: Tensor, wt: Tensor, layer_w: list[Tensor] | None = None,
        stages: list | None = None,
    ) -> tuple[Tensor, dict[str, Tensor | None]]:
        """The heads of a model without a global part, given the initial states ``x0 [N, H]`` and the
        wildtype states ``wt [N, H]`` (computed once for many batches by ``cellgi screen``)."""
        layer_w = layer_w or []
        hin = self.head_input(batch, x0, wt)
        assert self.local_predictor is not None  # a combiner without a global part uses the local head
        local = self.local_predictor(hin)
        pred, gate = self.combiner(local, None, hin)
        pred, additive = self._with_additive(pred, hin)
        if stages is not None:
            stages += [("local_predictor", local[0]), ("combiner", pred)]
            self._raise_if_not_finite(stages)
        law = torch.stack([w.detach().mean(dim=(0, 1)) for w in layer_w]) if layer_w else None
        reps: dict[str, Tensor | None] = dict.fromkeys(REPRESENTATION_KEYS)
        reps.update(local_interaction=local[0], gate_weights=gate, pert_gene_embs=hin.states,
                    layer_aggregation_weights=law, additive=additive)
        return pred, reps

    def wildtype_states(self) -> WildtypeStates:
        """The initial and final gene states of the wildtype cell (one message-passing column). Run it under
        ``torch.inference_mode()`` (and ``eval()``) to reuse the result for many batches, as
        ``cellgi predict``, ``evaluate`` and ``screen`` do."""
        x0 = self.initial_states()
        keep = torch.ones(self.num_genes, 1, dtype=torch.bool, device=x0.device)
        x, _ = self.gene_states(keep, x0=x0)
        return WildtypeStates(x0, x[:, 0])

    @property
    def reads_wildtype_only(self) -> bool:
        """True when predictions read only the wildtype cell (combiners without a global part, e.g.
        ``local_only``): a gene set is then a gather of its genes' wildtype rows, their pair relations and
        the heads, so :meth:`predict_with_wildtype` needs no message passing at all."""
        return not self.uses_global

    def predict_with_wildtype(
        self, batch: PerturbationBatch, wildtype: WildtypeStates
    ) -> tuple[Tensor, dict[str, Tensor | None]]:
        """``forward(batch)`` with the wildtype cell ``wildtype`` (from :meth:`wildtype_states`) reused:
        a model without a global part runs its heads on the wildtype states only; one with a global part
        runs message passing for the batch's perturbed columns only and appends the stored wildtype
        column. Same predictions as :meth:`forward` up to float rounding (exactly the same operations for
        wildtype-only models; tests/test_predict_fast.py)."""
        if not self.uses_global:
            return self.readout_wildtype(batch, wildtype.x0, wildtype.states)
        keep = self.keep_mask(batch)  # [N, B+1], last column the wildtype
        x, _ = self.gene_states(keep[:, :-1], x0=wildtype.x0)
        x = torch.cat([x, wildtype.states.unsqueeze(1)], dim=1)
        return self._readout(x, keep, batch, [], None, x0=wildtype.x0)

    def forward(self, batch: PerturbationBatch) -> tuple[Tensor, dict[str, Tensor | None]]:
        if not self.uses_global:
            return self._forward_wildtype(batch)
        keep = self.keep_mask(batch)
        stages: list | None = [] if self.check_finite else None
        x0 = self.initial_states()
        x, layer_w = self.gene_states(keep, stages, x0=x0)
        return self._readout(x, keep, batch, layer_w, stages, x0=x0)

    def reference_forward(self, batch: PerturbationBatch) -> tuple[Tensor, dict[str, Tensor | None]]:
        """Same predictions as :meth:`forward`, through per-sample graph copies (for tests/benchmarks)."""
        if not self.uses_global:  # wildtype states only: there is no per-sample graph to copy
            return self._forward_wildtype(batch)
        keep = self.keep_mask(batch)
        x0 = self.initial_states()
        x, layer_w = self.reference_gene_states(keep, x0=x0)
        return self._readout(x, keep, batch, layer_w, [] if self.check_finite else None, x0=x0)

    def extra_repr(self) -> str:
        return (
            f"num_genes={self.num_genes}, edge_types={self.edge_type_names}, hidden_dim={self.spec.hidden_dim}, "
            f"num_layers={self.spec.num_layers}, num_targets={self.num_targets}"
        )


def _gene_value_columns(
    patterns: list[str], features: Tensor | None, names: list[str] | None, where: str = "local_predictor.gene_values"
) -> tuple[Tensor | None, list[str]]:
    """The feature columns a head's ``gene_values`` names (exact names or fnmatch patterns), in the
    order of the features; every pattern must match at least one column."""
    if not patterns:
        return None, []
    if features is None or not names:
        raise ValueError(
            f"{where} {patterns} reads per-gene feature columns, but the model has no "
            f"named features (declare them under data.features, and keep model.embedding.use_features true)"
        )
    if len(names) != features.shape[1]:
        raise ValueError(f"{len(names)} feature names for {features.shape[1]} feature columns")
    cols, unmatched = match_columns(patterns, names)
    if unmatched:
        shown = ", ".join(n for n in names if not n.startswith("go.")) or ", ".join(names[:20])
        raise ValueError(
            f"{where}: {', '.join(repr(p) for p in unmatched)} matches no feature column; "
            f"columns (GO terms not listed): {shown}"
        )
    return features[:, cols], [names[i] for i in cols]


def _type_name(spec_obj: ComponentSpec | None) -> str:
    if spec_obj is None:
        return "none"
    name = spec_obj.get("type") if isinstance(spec_obj, dict) else getattr(spec_obj, "type", None)
    return name if isinstance(name, str) else "?"
