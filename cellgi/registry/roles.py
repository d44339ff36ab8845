"""The roles a component can play, each with its entry-point group and its contract.

A role's contract is checked when a member registers (:meth:`Contract.check`): the methods every member
defines, and the optional *capabilities* it may declare. Each capability of a role has a name, a type
(``bool``), a default, an optional method it promises, optional constructor keywords the model then passes
(``context``), and whether an instance may narrow the class's declaration from its params
(``per_instance``). A member declares a capability with a class attribute of that name (a typed
``ClassVar`` on the role's base class carries the default); :meth:`Contract.check` refuses a value of the
wrong type, a promised method that is missing (or a method defined without the declaration), and a
constructor that does not take the capability's context. The registry records the declared values
(:attr:`~cellgi.registry.core.ComponentEntry.capabilities`) and the model reads them there (or, for a
per-instance capability, on the built instance, whose base class declares the attribute): nothing is
guessed with ``getattr`` defaults or signature sniffing later. The role base classes that declare the
defaults live with the roles' code (``cellgi.nn.convs.base.MaskedConv``,
``cellgi.nn.aggregators.GraphAggregator``, ``cellgi.nn.heads.base.Combiner``, ...); this module imports
none of them, so the registry stays the bottom layer.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Callable, NamedTuple

__all__ = ["ROLES", "Capability", "Contract", "Role"]


@dataclass(frozen=True)
class Capability:
    """An optional ability a member declares with a class attribute ``flag = value``.

    Attributes:
        flag: the class attribute holding the declaration.
        method: the method the capability promises (required when the flag is True; when the flag is
            False the method must not be defined either, so that nothing a member wrote goes unused).
        description: what the capability means, for docs and ``registry show``.
        default: the value of a member that does not declare it.
        value_type: the declaration's type (``bool`` for every capability today).
        context: constructor keywords the model passes to a member declaring the capability True (its
            constructor must accept each of them; checked at registration).
        per_instance: an instance may narrow a True declaration to False from its params (e.g.
            ``pair_values`` wants a memory only with ``partner_memory`` set): the class attribute must
            then be present (the role's base class declares it), the model and the training code read the
            built instance's attribute, and a built instance is checked against the class
            (:meth:`Contract.check_instance`).
    """

    flag: str
    method: str | None
    description: str
    default: bool = False
    value_type: type = bool
    context: tuple[str, ...] = ()
    per_instance: bool = False


@dataclass(frozen=True)
class Contract:
    """What a member of one role must provide.

    Attributes:
        methods: methods every member defines (a member that is a plain function, not a class, is
            accepted only when this is empty and no capability is declared).
        capabilities: optional abilities, declared with a class attribute (see :class:`Capability`).
        attributes: class attributes every member carries (with their meaning), e.g. a data source's ``url``.
    """

    methods: tuple[str, ...] = ()
    capabilities: tuple[Capability, ...] = ()
    attributes: tuple[tuple[str, str], ...] = ()

    def check(self, role: str, name: str, factory: object) -> list[str]:
        """Problems of ``factory`` against this contract (an empty list when it conforms)."""
        if not inspect.isclass(factory):
            per_instance = tuple(c.flag for c in self.capabilities if c.per_instance)
            if self.methods or self.attributes or per_instance:
                needs = self.methods or tuple(a for a, _ in self.attributes) or per_instance
                return [f"must be a class with {', '.join(needs)}"]
            return []
        problems = []
        for m in self.methods:
            if not callable(getattr(factory, m, None)):
                problems.append(f"lacks method {m}()")
        for attr, _ in self.attributes:
            if not hasattr(factory, attr):
                problems.append(f"lacks class attribute {attr}")
        for cap in self.capabilities:
            if not hasattr(factory, cap.flag):
                if cap.per_instance:
                    problems.append(
                        f"lacks class attribute {cap.flag} ({cap.value_type.__name__}, default {cap.default!r}: "
                        f"{cap.description}); subclass the role's base class, which declares it"
                    )
                    continue
                declared = cap.default
            else:
                declared = getattr(factory, cap.flag)
            if not isinstance(declared, cap.value_type):
                problems.append(
                    f"{cap.flag} must be a {cap.value_type.__name__} (True or False), not {declared!r}"
                )
                continue
            if cap.method is not None:
                has = callable(getattr(factory, cap.method, None))
                if declared and not has:
                    problems.append(f"declares {cap.flag} = True but defines no {cap.method}()")
                elif has and not declared:
                    problems.append(
                        f"defines {cap.method}() but does not declare {cap.flag} = True "
                        f"({cap.description}); declare it, or remove the method"
                    )
            if declared and cap.context:
                missing = _unaccepted(factory, cap.context)
                if missing:
                    problems.append(
                        f"declares {cap.flag} = True, so the model passes {', '.join(cap.context)}, but its "
                        f"constructor does not accept {', '.join(missing)}"
                    )
        return problems

    def declared(self, factory: object) -> dict[str, bool]:
        """The capability values of a member that passed :meth:`check`, ``{flag: value}`` (the role's
        default where the member declares nothing)."""
        return {c.flag: bool(getattr(factory, c.flag)) if hasattr(factory, c.flag) else c.default
                for c in self.capabilities}

    def declares(self, factory: object, flag: str) -> bool:
        """``factory``'s declared value of the capability ``flag`` (the role's default where it declares
        nothing), read as registration reads it; a ``KeyError`` naming the capabilities for an unknown flag."""
        values = self.declared(factory)
        if flag not in values:
            raise KeyError(f"no capability {flag!r} (capabilities: {', '.join(values) or 'none'})")
        return values[flag]

    def check_instance(self, declared: dict[str, bool], obj: object) -> list[str]:
        """Problems of a built member ``obj`` with its per-instance capabilities: each must be a value of
        the capability's type and may narrow the class's declaration (``declared``) but never widen it."""
        problems = []
        for cap in self.capabilities:
            if not cap.per_instance:
                continue
            value = getattr(obj, cap.flag, None)
            if not isinstance(value, cap.value_type):
                problems.append(f"its instance's {cap.flag} must be a {cap.value_type.__name__}, not {value!r}")
            elif value and not declared.get(cap.flag, cap.default):
                problems.append(f"its instance sets {cap.flag} = True, but the class declares {cap.flag} = False")
        return problems


def _unaccepted(factory: Callable[..., object], names: tuple[str, ...]) -> list[str]:
    """The keywords of ``names`` that ``factory``'s constructor does not accept (none with ``**kwargs``)."""
    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):  # pragma: no cover - builtins without signatures
        return []
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return []
    return [n for n in names if n not in params or params[n].kind is inspect.Parameter.POSITIONAL_ONLY]


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
        Contract(methods=("forward",), capabilities=(
            Capability(
                "uses_relations", None,
                "reads the pair relations of the deleted genes (HeadInput.relations [B, K, K, R], with the "
                "columns its gene_values parameter names, if it has one; built with num_relations = R)",
                context=("num_relations",),
            ),
        )),
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
        Contract(methods=("forward",), capabilities=(
            Capability("uses_local", None, "True: needs a local head; False: refuses one", default=True),
            Capability(
                "uses_global", None,
                "False: reads the local head only, so the model runs message passing on the wildtype only "
                "(no pooling, no global head)",
                default=True,
            ),
        )),
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
        Contract(methods=("forward", "combine", "reset_parameters"), capabilities=(
            Capability(
                "uses_gene_values", None,
                "reads raw per-gene feature columns (HeadInput.values [B, K, V], HeadInput.genes [B, K]); built "
                "with num_values = V, num_genes and value_names",
                context=("num_values", "num_genes", "value_names"),
            ),
            Capability(
                "uses_seen", None,
                "combine() reads HeadInput.seen [B] (the set deletes a gene with training samples)",
                per_instance=True,
            ),
            Capability(
                "wants_memory", "set_memory",
                "the training code calls set_memory(genes, mask, y, values) with the training split",
                per_instance=True,
            ),
            Capability(
                "wants_ridge_init", "warm_start",
                "the training code calls warm_start(coef, intercept) with the ridge fit on the training split",
                per_instance=True,
            ),
        )),
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
