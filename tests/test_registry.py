"""Registry: registration rules, unknown names, params as the only constructor source."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import Field, ValidationError

from cellgi.registry import (
    ROLES,
    ComponentError,
    DuplicateComponentError,
    NoParams,
    Params,
    UnknownComponentError,
    get_registry,
    register,
)


class _P(Params):
    width: int = Field(3, ge=1, description="a width")


@pytest.fixture
def scratch():
    reg = get_registry("loss")
    added: list[str] = []
    yield reg, added
    for name in added:
        reg.remove(name)


def test_every_role_has_builtins():
    for role in ROLES:
        assert get_registry(role).names(), f"role {role} has no built-in member"


def test_builtin_provider_is_cellgi():
    entry = get_registry("loss").get("logcosh")
    assert entry.provider == "cellgi"
    assert entry.status == "ok"


def test_register_and_build_passes_params_and_context(scratch):
    reg, added = scratch

    @register("loss", "scratch_width", summary="test member", params=_P)
    class Member:
        def __init__(self, width: int = 3, *, dim: int = 0):
            self.width, self.dim = width, dim

    added.append("scratch_width")
    obj = reg.build({"type": "scratch_width", "width": 5}, dim=7)
    assert (obj.width, obj.dim) == (5, 7)
    assert reg.get("scratch_width").build().width == 3


def test_params_are_validated_on_build(scratch):
    reg, added = scratch
    register("loss", "scratch_v", summary="s", params=_P)(lambda width=3: width)
    added.append("scratch_v")
    with pytest.raises(ValidationError):
        reg.build({"type": "scratch_v", "width": 0})
    with pytest.raises(ValidationError):
        reg.build({"type": "scratch_v", "colour": 1})
    with pytest.raises(ValidationError):  # strict: no '3' -> 3 coercion
        reg.build({"type": "scratch_v", "width": "3"})


def test_duplicate_name_names_both_providers(scratch):
    reg, added = scratch

    def first(width=3):
        return width

    def second(width=3):
        return width

    register("loss", "scratch_dup", summary="s", params=_P)(first)
    added.append("scratch_dup")
    with pytest.raises(DuplicateComponentError) as exc:
        register("loss", "scratch_dup", summary="s", params=_P)(second)
    msg = str(exc.value)
    assert msg.count("test_registry") >= 2 and "already registered" in msg and "tried to register" in msg
    register("loss", "scratch_dup", summary="s", params=_P, override=True)(second)
    assert reg.get("scratch_dup").factory is second


def test_duplicate_of_builtin_refused():
    with pytest.raises(DuplicateComponentError, match="logcosh"):
        register("loss", "logcosh", summary="s", params=_P)(lambda width=3: width)


def test_unknown_name_lists_choices_and_closest():
    with pytest.raises(UnknownComponentError) as exc:
        get_registry("loss").get("logcos")
    msg = str(exc.value)
    assert "did you mean 'logcosh'" in msg and "mse" in msg


def test_params_field_not_accepted_by_constructor_is_refused():
    with pytest.raises(ComponentError, match="does not accept params"):
        register("loss", "scratch_bad", summary="s", params=_P)(lambda: None)
    assert "scratch_bad" not in get_registry("loss").names()


def test_params_may_not_define_type():
    class Bad(Params):
        type: str = "x"

    with pytest.raises(ComponentError, match="'type'"):
        register("loss", "scratch_type", summary="s", params=Bad)(lambda type="x": None)


def test_unknown_role():
    with pytest.raises(UnknownComponentError, match="role"):
        get_registry("convolution")


def test_describe_lists_types_defaults_descriptions():
    rows = {r["name"]: r for r in get_registry("loss").get("huber").describe()}
    assert rows["delta"]["default"] == 1.0
    assert rows["delta"]["type"] == "float"
    assert "quadratic" in rows["delta"]["description"]


def test_describe_shows_literal_choices():
    rows = {r["name"]: r for r in get_registry("conv").get("masked_gin").describe()}
    literal_rows = [r for r in rows.values() if r["type"].startswith("Literal")]
    assert literal_rows, "masked_gin has a choice-valued parameter"
    assert all("'" in r["type"] for r in literal_rows), literal_rows


# -- contracts and the data-format roles -----------------------------------------------------------


def test_contract_refuses_undeclared_or_missing_capability():
    from cellgi.nn.convs import MaskedGIN

    class Undeclared(MaskedGIN):  # inherits forward_shared but says it has none
        supports_shared = False

    from cellgi.registry import NoParams

    with pytest.raises(ComponentError, match=r"defines forward_shared\(\) but does not declare supports_shared"):
        register("conv", "scratch_undeclared", summary="s", params=NoParams)(Undeclared)

    from cellgi.nn.convs import MaskedGATv2

    class Claims(MaskedGATv2):
        supports_shared = True

    with pytest.raises(ComponentError, match=r"declares supports_shared = True but defines no forward_shared"):
        register("conv", "scratch_claims", summary="s", params=NoParams)(Claims)

    class NotAConv:
        def __init__(self, width=3, *, in_dim, out_dim):
            pass

    with pytest.raises(ComponentError, match=r"lacks method forward_batched\(\)"):
        register("conv", "scratch_notaconv", summary="s", params=_P)(NotAConv)
    assert not {"scratch_undeclared", "scratch_claims", "scratch_notaconv"} & set(get_registry("conv").names())


def test_builtin_capabilities_are_declared():
    convs = get_registry("conv")
    assert convs.get("masked_gin").capabilities == {
        "supports_shared": True, "supports_fused": True, "supports_masked_input": True, "row_independent": True
    }
    gat = convs.get("masked_gatv2").capabilities
    assert gat["supports_shared"] is False and gat["supports_fused"] is False
    assert gat["supports_masked_input"] is False


def test_a_conv_with_forward_fused_must_declare_it():
    from cellgi.registry.roles import ROLES

    class Undeclared:
        def forward(self): ...
        def forward_batched(self): ...
        def reset_parameters(self): ...
        def uses_dropout(self): ...
        @classmethod
        def forward_fused(cls): ...

    problems = ROLES["conv"].contract.check("conv", "undeclared", Undeclared)
    assert any("supports_fused" in p for p in problems)


def test_formats_are_listed_and_shown(capsys):
    import json

    from cellgi.cli.main import main

    assert main(["registry", "list", "--kind", "graph_format", "--json"]) == 0
    names = {r["name"] for r in json.loads(capsys.readouterr().out)}
    assert {"string_v9", "string_actions", "edgelist", "regulatory", "table"} <= names
    assert main(["registry", "show", "kuzmin", "--kind", "screen_format"]) == 0
    out = capsys.readouterr().out
    assert "data.screens entry {format: kuzmin" in out and "neutral_marker" in out


def test_format_declares_its_input_files(tmp_path):
    from cellgi.data.graphs import graph_input_files
    from cellgi.data.screens import screen_input_files
    from cellgi.spec.data import graph_entry, screen_entry

    g = graph_entry({"name": "s", "format": "string_v9", "path": "n.txt", "genes_path": "genes.txt"})
    assert graph_input_files(g, tmp_path) == [tmp_path / "n.txt", tmp_path / "genes.txt"]
    s = screen_entry({"format": "kuzmin", "path": "s.tsv", "strains": "st.tsv"})
    assert screen_input_files(s, tmp_path) == [tmp_path / "s.tsv", tmp_path / "st.tsv"]
    s = screen_entry({"format": "kuzmin", "path": "/abs/s.tsv"})
    assert screen_input_files(s, tmp_path) == [Path("/abs/s.tsv")]
    reg = graph_entry({"name": "r", "format": "regulatory", "path": "r.tsv"})
    assert reg.directed is True  # a format may change a shared field's default


def test_listing_prints_summaries_as_text_not_markup(capsys):
    # rich would swallow '[weight]' as a markup tag; plugin summaries and statuses are plain text
    from cellgi.cli.main import main

    assert main(["registry", "list", "edgelist"]) == 0
    assert "'ORF ORF [weight]'" in capsys.readouterr().out
    assert main(["registry", "show", "edgelist"]) == 0
    assert "'ORF ORF [weight]'" in capsys.readouterr().out


# -- declared capabilities of the head roles ---------------------------------------------------------


def test_head_capabilities_are_declared_with_their_defaults():
    local = get_registry("local_predictor")
    assert local.get("pair_relations").capabilities == {"uses_relations": True}
    assert local.get("hypergraph_attention").capabilities == {"uses_relations": False}
    combiners = get_registry("combiner")
    assert combiners.get("gate").capabilities == {"uses_local": True, "uses_global": True}
    assert combiners.get("global_only").capabilities == {"uses_local": False, "uses_global": True}
    assert combiners.get("local_only").capabilities == {"uses_local": True, "uses_global": False}
    terms = get_registry("additive_term")
    assert terms.get("gene_mlp").capabilities == dict.fromkeys(
        ("uses_gene_values", "uses_seen", "wants_memory", "wants_ridge_init"), False)
    assert all(terms.get("pair_values").capabilities.values())
    assert get_registry("aggregator").get("sum").declares("row_independent") is True
    with pytest.raises(ComponentError, match=r"the combiner role has no capability 'uses_relations' "
                                             r"\(its capabilities: uses_local, uses_global\)"):
        combiners.get("gate").declares("uses_relations")


def test_a_capability_of_the_wrong_type_is_refused_naming_component_and_provider():
    from cellgi.nn.heads import HypergraphAttention

    class Wrong(HypergraphAttention):
        uses_relations = "yes"  # type: ignore[assignment]

    with pytest.raises(ComponentError, match=r"local_predictor 'scratch_wrong' from <test_registry> local \(module "
                                             r"test_registry\) breaks the local_predictor contract: "
                                             r"uses_relations must be a bool .*'yes'"):
        register("local_predictor", "scratch_wrong", summary="s", params=NoParams)(Wrong)
    assert "scratch_wrong" not in get_registry("local_predictor").names()


def test_a_capability_needs_the_constructor_to_take_its_context():
    from torch import nn

    from cellgi.nn.additive import AdditiveTerm

    class NoNames(AdditiveTerm):  # declares uses_gene_values but predates value_names
        uses_gene_values = True

        def __init__(self, *, dim, num_targets, num_values=0, num_genes=0):
            super().__init__(dim=dim, num_targets=num_targets)
            self.lin = nn.Linear(num_values, num_targets)

    with pytest.raises(ComponentError, match=r"declares uses_gene_values = True, so the model passes num_values, "
                                             r"num_genes, value_names, but its constructor does not accept "
                                             r"value_names"):
        register("additive_term", "scratch_nonames", summary="s", params=NoParams)(NoNames)

    class NoRelations(get_registry("local_predictor").get("hypergraph_attention").factory):
        uses_relations = True

    with pytest.raises(ComponentError, match=r"constructor does not accept num_relations"):
        register("local_predictor", "scratch_norel", summary="s", params=NoParams)(NoRelations)


def test_per_instance_capabilities_are_class_attributes_and_never_widened_by_an_instance():
    from cellgi.nn.additive import AdditiveTerm

    class Bare:  # an additive term that does not subclass the base: lacks the per-instance attributes
        def forward(self): ...
        def combine(self): ...
        def reset_parameters(self): ...

    with pytest.raises(ComponentError, match=r"lacks class attribute uses_seen .*subclass the role's base class"):
        register("additive_term", "scratch_bare", summary="s", params=NoParams)(Bare)

    class Widens(AdditiveTerm):  # the class says it never reads seen, an instance turns it on
        def __init__(self, *, dim, num_targets):
            super().__init__(dim=dim, num_targets=num_targets)
            self.uses_seen = True

    register("additive_term", "scratch_widens", summary="s", params=NoParams)(Widens)
    try:
        with pytest.raises(ComponentError, match=r"additive_term 'scratch_widens' from <test_registry> local "
                                                 r"\(module test_registry\) breaks the "
                                                 r"additive_term contract: its instance sets uses_seen = True, but "
                                                 r"the class declares uses_seen = False"):
            get_registry("additive_term").build({"type": "scratch_widens"}, dim=4, num_targets=1)
    finally:
        get_registry("additive_term").remove("scratch_widens")


def test_pair_values_instance_narrows_its_capabilities_from_its_params():
    terms = get_registry("additive_term")
    plain = terms.build({"type": "pair_values", "gene_values": ["a"]}, dim=4, num_targets=1, num_values=1,
                        num_genes=5, value_names=["a"])
    assert (plain.uses_seen, plain.wants_memory, plain.wants_ridge_init) == (False, False, False)
    full = terms.build({"type": "pair_values", "gene_values": ["a"], "gene_bias": True, "partner_memory": 1.0,
                        "interaction_on_unseen": False}, dim=4, num_targets=1, num_values=1, num_genes=5,
                       value_names=["a"])
    assert (full.uses_seen, full.wants_memory, full.wants_ridge_init) == (True, True, True)
