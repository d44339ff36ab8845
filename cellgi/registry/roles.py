"""The roles a component can play, each with its entry-point group and its contract.

A role's contract is checked when a member registers (:meth:`Contract.check`): the methods every member
defines, and the optional *capabilities* a member declares with a class attribute (``supports_shared =
True``) together with the method the capability promises. Nothing is guessed from ``hasattr`` later: the
model reads the declared flags. The role base classes that declare the defaults live with the roles'
code (``cellgi.nn.convs.base.MaskedConv``, ``cellgi.nn.aggregators.GraphAggregator``, ...); this module
imports none of them, so the registry stays the bottom layer.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any, NamedTuple

__all__ = ["ROLES", "Capability", "Contract", "Role"]


@dataclass(frozen=True)
class Capability:
    """An optional ability a member declares with ``flag = True`` on its class.

    Attributes:
        flag: class attribute holding the declaration (a bool).
        method: the method the capability promises (required when the flag is True; when the flag is
            False the method must not be defined either, so that nothing a member wrote goes unused).
        description: what the capability means, for docs and ``registry show``.
    """

    flag: str
    method: str | None
    description: str


@dataclass(frozen=True)
class Contract:
    """What a member of one role must provide.

    Attributes:
        methods: methods every member defines (a member that is a plain function, not a class, is
            accepted only when this is empty and no capability is declared).
        capabilities: optional abilities, declared with a class flag.
        attributes: class attributes every member carries (with their meaning), e.g. ``uses_local``.
    """

    methods: tuple[str, ...] = ()
    capabilities: tuple[Capability, ...] = ()
    attributes: tuple[tuple[str, str], ...] = ()

    def check(self, role: str, name: str, factory: Any) -> list[str]:
        """Problems of ``factory`` against this contract (an empty list when it conforms)."""
        if not inspect.isclass(factory):
            if self.methods or self.attributes:
                return [f"must be a class with {', '.join(self.methods or [a for a, _ in self.attributes])}"]
            return []
        problems = []
        for m in self.methods:
            if not callable(getattr(factory, m, None)):
                problems.append(f"lacks method {m}()")
        for attr, _ in self.attributes:
            if not hasattr(factory, attr):
                problems.append(f"lacks class attribute {attr}")
        for cap in self.capabilities:
            declared = getattr(factory, cap.flag, False)
            if not isinstance(declared, bool):
                problems.append(f"{cap.flag} must be True or False, not {declared!r}")
                continue
            if cap.method is None:
                continue
            has = callable(getattr(factory, cap.method, None))
            if declared and not has:
                problems.append(f"declares {cap.flag} = True but defines no {cap.method}()")
            elif has and not declared:
                problems.append(
                    f"defines {cap.method}() but does not declare {cap.flag} = True "
                    f"({cap.description}); declare it, or remove the method"
                )
        return problems

    def declared(self, factory: Any) -> dict[str, bool]:
        """The capability flags of a member, ``{flag: bool}``."""
        return {c.flag: bool(getattr(factory, c.flag, False)) for c in self.capabilities}


class Role(NamedTuple):
    """One role: its entry-point group, a one-line description, the structural context the assembler
    passes to a member's constructor, and its contract."""

    group: str
    description: str
    context: str
    contract: Contract = Contract()


_ROW = Capability(
    "row_independent", None, "each output row depends on its own (gene, column) inputs and the graph only"
)

#: role -> :class:`Role` (entry-point group, description, structural context, contract)
ROLES: dict[str, Role] = {
    "conv": Role(
        "cellgi.convs",
        "message-passing layer over one gene graph (batched over samples)",
        "in_dim, out_dim",
        Contract(
            methods=("forward", "forward_batched", "reset_parameters", "uses_dropout"),
            capabilities=(
                Capability(
                    "supports_shared",
                    "forward_shared",
                    "first-layer delta: the wildtype output once plus the affected (gene, column) pairs",
                ),
                Capability(
                    "supports_fused",
                    "forward_fused",
                    "the G per-edge-type convs of a layer run as one stacked pass (with can_fuse(convs))",
                ),
                Capability(
                    "supports_masked_input",
                    "forward_masked",
                    "takes the layer's masked input (x * keep, the same for every edge type) made once",
                ),
                _ROW,
            ),
        ),
    ),
    "aggregator": Role(
        "cellgi.aggregators",
        "combines the per-graph outputs of one layer into one gene state",
        "dim, num_graphs",
        Contract(methods=("forward", "weight_labels", "uses_dropout"), capabilities=(_ROW,)),
    ),
    "pooling": Role(
        "cellgi.poolings",
        "pools gene states of a (perturbed) cell into one vector",
        "dim",
        Contract(methods=("forward",)),
    ),
    "local_predictor": Role(
        "cellgi.local_predictors",
        "predicts the interaction from the perturbed genes' embeddings (hypergraph head)",
        "dim, num_targets",
        Contract(methods=("forward",)),
    ),
    "global_predictor": Role(
        "cellgi.global_predictors",
        "predicts the interaction from the pooled cell states z_w, z_i, z_p",
        "dim, num_targets",
        Contract(methods=("forward",)),
    ),
    "combiner": Role(
        "cellgi.combiners",
        "combines the local and global predictions into the final one",
        "dim, num_targets",
        Contract(methods=("forward",), attributes=(("uses_local", "True: needs a local head; False: refuses one"),)),
    ),
    "loss": Role(
        "cellgi.losses",
        "training loss on (prediction, target, weight)",
        "(none)",
    ),
    "graph_format": Role(
        "cellgi.graph_formats",
        "reads a gene graph file (data.graphs[*].format) into raw edges",
        "name, path, directed, self_loops, min_weight, duplicates",
        Contract(methods=("input_files", "read")),
    ),
    "screen_format": Role(
        "cellgi.screen_formats",
        "reads a perturbation screen file (data.screens[*].format) into raw screen rows",
        "path, duplicates",
        Contract(methods=("input_files", "read")),
    ),
    "gene_features": Role(
        "cellgi.gene_features",
        "per-gene input features that exist for unseen genes (tables, annotations, graph structure)",
        "(none)",
        Contract(methods=("input_files", "compute")),
    ),
    "additive_term": Role(
        "cellgi.additive_terms",
        "per-gene additive part of the prediction from the gene inputs; interaction part added on top",
        "dim, num_targets",
        Contract(methods=("forward", "combine", "reset_parameters")),
    ),
    "baseline": Role(
        "cellgi.baselines",
        "a predictor fitted beside the network on the training split (baseline_<name>.* metrics, stack member)",
        "context",
        Contract(methods=("fit", "predict", "state_dict", "load_state_dict")),
    ),
    "predictor_kind": Role(
        "cellgi.predictor_kinds",
        "a kind of trained predictor a path loads as (network, seed ensemble, stack, or a plugin's own)",
        "(none)",
        Contract(methods=("recognises", "load"), attributes=(
            ("precedence", "kinds are asked in decreasing precedence; the first that recognises a path loads it"),
        )),
    ),
    "data_source": Role(
        "cellgi.data_sources",
        "a public data file by name (`cellgi data get NAME`): address, checksum, licence, layout, spec block",
        "(none)",
        Contract(attributes=(
            ("url", "where the file is downloaded from"),
            ("path", "where it lands, relative to the data folder (the layout data.root points at)"),
            ("sha256", "the file's SHA-256, or None when not pinned"),
            ("licence", "the provider's licence or terms"),
            ("layout", "what the file holds and how"),
            ("spec_block", "the spec block that reads it, or None"),
        )),
    ),
}
