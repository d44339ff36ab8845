"""cellgi.nn.columns: feature columns named by exact name or fnmatch pattern."""

from __future__ import annotations

from cellgi.nn.columns import match_columns


def test_patterns_pick_columns_in_feature_order_and_report_the_unmatched():
    names = ["smf.fitness", "emap.single_phenotype", "smf.fitness_sd", "go.GO:0005783"]
    assert match_columns(["emap.*", "smf.fitness"], names) == ([0, 1], [])
    assert match_columns(["smf.*"], names) == ([0, 2], [])
    assert match_columns(["nope.*", "smf.fitness_sd"], names) == ([2], ["nope.*"])
