"""`cellgi registry list|show` in-process."""

from __future__ import annotations

import json

from cellgi.cli.main import main

BUILTINS = {
    ("conv", "masked_gin"),
    ("conv", "masked_gatv2"),
    ("aggregator", "sum"),
    ("aggregator", "mean"),
    ("aggregator", "cross_attention"),
    ("aggregator", "pairwise_interaction"),
    ("local_predictor", "hypergraph_attention"),
    ("global_predictor", "mlp"),
    ("combiner", "gate"),
    ("pooling", "attentional"),
    ("loss", "logcosh"),
}


def test_list_json_has_builtins(capsys):
    assert main(["registry", "list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {"name", "kind", "provider", "version", "status"} <= set(rows[0])
    have = {(r["kind"], r["name"]) for r in rows}
    assert BUILTINS <= have
    for r in rows:
        if (r["kind"], r["name"]) in BUILTINS:
            assert r["provider"] == "cellgi" and r["status"] == "ok"


def test_list_pattern_and_kind(capsys):
    assert main(["registry", "list", "*attention*", "--kind", "aggregator", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows and all(r["kind"] == "aggregator" and "attention" in r["name"] for r in rows)


def test_list_table(capsys):
    assert main(["registry", "list", "masked_*"]) == 0
    out = capsys.readouterr().out
    assert "masked_gin" in out and "masked_gatv2" in out


def test_list_no_match(capsys):
    assert main(["registry", "list", "zzz*"]) == 1


def test_show_params(capsys):
    assert main(["registry", "show", "huber"]) == 0
    out = capsys.readouterr().out
    assert "delta" in out and "float" in out and "1.0" in out


def test_show_json(capsys):
    assert main(["registry", "show", "masked_gin", "--json"]) == 0
    (entry,) = json.loads(capsys.readouterr().out)
    assert entry["kind"] == "conv" and entry["params"]


def test_show_unknown_suggests(capsys):
    assert main(["registry", "show", "masked_gni"]) == 2
    assert "did you mean 'masked_gin'" in capsys.readouterr().err


def test_version(capsys):
    assert main(["--version"]) == 0
    assert "cellgi" in capsys.readouterr().out


def test_kind_choices_in_help(capsys):
    assert main(["registry", "list", "--help"]) == 0
    out = capsys.readouterr().out
    assert "aggregator" in out and "local_predictor" in out


def test_show_lists_the_declared_capabilities(capsys):
    assert main(["registry", "show", "pair_values"]) == 0
    out = " ".join(capsys.readouterr().out.split())  # rich may wrap long lines
    assert "uses_gene_values = True" in out and "wants_memory = True (may, each instance decides" in out
    assert main(["registry", "show", "local_only", "--json"]) == 0
    (entry,) = json.loads(capsys.readouterr().out)
    assert entry["capabilities"] == {"uses_local": True, "uses_global": False}
    assert main(["registry", "list", "--kind", "local_predictor", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["pair_relations"]["capabilities"] == {"uses_relations": True}
