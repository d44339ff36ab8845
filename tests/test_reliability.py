"""Bad input ends in a located error before work starts (docs/reliability.md lists each case and its test).

Spec cases run through ``parse_spec``/the CLI; data cases build a tiny files-based data set (12 genes,
one edge list, one screen table) with one defect each and check the error names file and line.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from tiny_specs import tiny_spec

from cellgi.cli.main import main
from cellgi.data.errors import DataError
from cellgi.spec import SpecError, parse_spec

# ----------------------------------------------------------------------------------------------- specs


@pytest.mark.parametrize(
    "old, new, path",
    [
        ("max_epochs: 1", "max_epochs: 1\n  optimizer: {lr: .inf}", "training.optimizer.lr"),
        ("max_epochs: 1", "max_epochs: 1\n  optimizer: {lr: .nan}", "training.optimizer.lr"),
        ("max_epochs: 1", "max_epochs: 1\n  optimizer: {lr: 1e999}", "training.optimizer.lr"),
        ("max_epochs: 1", "max_epochs: 1\n  optimizer: {weight_decay: .inf}", "training.optimizer.weight_decay"),
        ("max_epochs: 1", "max_epochs: 1\n  optimizer: {betas: [.nan, 0.9]}", "training.optimizer.betas.0"),
        ("max_epochs: 1", "max_epochs: 1\n  gradient_clip_val: .inf", "training.gradient_clip_val"),
        ("hidden_dim: 16", "hidden_dim: 16\n  embedding: {init_std: .inf}", "model.embedding.init_std"),
        ("num_samples: 500", "num_samples: 500\n    noise: .inf", "data.synthetic.noise"),
        ("num_samples: 500", "num_samples: 500\n    noise: -.inf", "data.synthetic.noise"),
    ],
)
def test_non_finite_spec_numbers_are_refused_with_line(old, new, path):
    text = tiny_spec("nf").replace(old, new, 1)
    with pytest.raises(SpecError) as exc:
        parse_spec(text, "nf.yaml")
    issue = next(i for i in exc.value.issues if i.path == path)
    assert "finite" in issue.message
    key = new.split("\n")[1].strip(" {").split(":")[0].split("{")[-1].strip()
    assert issue.line == next(n for n, row in enumerate(text.splitlines(), 1) if key in row)


@pytest.mark.parametrize(
    "old, new, path",
    [
        ("hidden_dim: 16", "hidden_dim: 16\n  conv: {type: masked_gin, eps: .inf}", "model.conv.eps"),
        ("max_epochs: 1", "max_epochs: 1\n  loss: {type: huber, delta: .inf}", "training.loss.delta"),
    ],
)
def test_non_finite_component_param_is_refused(old, new, path):
    text = tiny_spec("nf").replace(old, new, 1)
    with pytest.raises(SpecError) as exc:
        parse_spec(text, "nf.yaml")
    issue = next(i for i in exc.value.issues if i.path == path)
    assert "finite" in issue.message and issue.line == text.splitlines().index(new.split("\n")[1]) + 1


@pytest.mark.parametrize(
    "betas, path, words",
    [
        ("[]", "training.optimizer.betas", "at least 2"),
        ("[0.9]", "training.optimizer.betas", "at least 2"),
        ("[0.9, 0.99, 0.999]", "training.optimizer.betas", "at most 2"),
        ("[.nan, 5.0]", "training.optimizer.betas.1", "less than 1"),
        ("[-0.1, 0.9]", "training.optimizer.betas.0", "greater than or equal to 0"),
    ],
)
def test_bad_betas_are_spec_errors(betas, path, words):
    text = tiny_spec("b").replace("max_epochs: 1", f"max_epochs: 1\n  optimizer: {{betas: {betas}}}")
    with pytest.raises(SpecError) as exc:
        parse_spec(text, "b.yaml")
    assert any(i.path == path and words in i.message for i in exc.value.issues), exc.value.render()


@pytest.mark.parametrize("seed", ["-1", "4294967296"])
@pytest.mark.parametrize(
    "old, path",
    [("seed: 0\ndata:", "seed"), ("seed: 0}", "data.split.seed"), ("num_samples: 500", "data.synthetic.seed")],
)
def test_seed_out_of_range(seed, old, path):
    new = {"seed": f"seed: {seed}\ndata:", "data.split.seed": f"seed: {seed}}}",
           "data.synthetic.seed": f"num_samples: 500\n    seed: {seed}"}[path]
    text = tiny_spec("s").replace(old, new, 1)
    with pytest.raises(SpecError) as exc:
        parse_spec(text, "s.yaml")
    assert [i.path for i in exc.value.issues] == [path]


def test_spec_validate_refuses_an_alias_bomb(tmp_path, capsys):
    bomb = 'a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]\n'
    for prev, name in zip("abcdefgh", "bcdefghi"):
        bomb += f"{name}: &{name} [" + ", ".join([f"*{prev}"] * 9) + "]\n"
    p = tmp_path / "bomb.yaml"
    p.write_text(bomb)
    t0 = time.perf_counter()
    assert main(["spec", "validate", str(p)]) == 2
    assert time.perf_counter() - t0 < 30  # a hang guard only; the measured time is in docs/reliability.md
    err = capsys.readouterr().err
    assert f"{p}:6:" in err and "alias" in err


def test_train_with_a_model_too_large_fails_before_the_run_folder(tmp_path, capsys):
    spec = tmp_path / "big.yaml"
    spec.write_text(tiny_spec("big").replace("hidden_dim: 16", "hidden_dim: 100000"))
    run_dir = tmp_path / "run"
    assert main(["train", str(spec), "--run-dir", str(run_dir), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert f"{spec}:" in err and "model.hidden_dim" in err and "GB" in err
    assert not run_dir.exists()


# ------------------------------------------------------------------------------------------------ data

GENES = [f"Y{c}R{i:03d}W" for c in "AB" for i in range(1, 7)]


def _dataset(tmp_path: Path, *, genes: str | None = None, edges: str | None = None, screen: str | None = None,
             weighted: bool = False) -> Path:
    """A 12-gene data set with files that the arguments replace; returns the spec path."""
    (tmp_path / "genes.txt").write_text(genes if genes is not None else "\n".join(GENES) + "\n")
    ring = "".join(f"{GENES[i]}\t{GENES[(i + 1) % 12]}\t{0.5 if weighted else ''}".rstrip() + "\n" for i in range(12))
    (tmp_path / "edges.txt").write_text(edges if edges is not None else ring)
    rows = "".join(f"{GENES[i]};{GENES[j]}\t{0.01 * (i - j):.3f}\n" for i in range(12) for j in range(i + 1, 12))
    (tmp_path / "screen.tsv").write_text(screen if screen is not None else "genes\tgene_interaction\n" + rows)
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        "name: d\ndata:\n  root: .\n  genes: {source: list, path: genes.txt}\n"
        f"  graphs: [{{name: ring, format: edgelist, path: edges.txt{', weighted: true' if weighted else ''}}}]\n"
        "  screens: [{format: table, path: screen.tsv, genes_column: genes, target_columns: {gene_interaction: gene_interaction}}]\n"
        "  cache: false\n"
    )
    return spec


def _build(spec_path: Path):
    from cellgi.data.build import build_data
    from cellgi.spec import load_spec

    return build_data(load_spec(spec_path).data, progress=False, cache=False)


def test_the_clean_data_set_builds(tmp_path):
    bundle = _build(_dataset(tmp_path))
    assert bundle.graph.num_nodes == 12 and len(bundle.dataset) == 66


@pytest.mark.parametrize("value", ["inf", "-inf", "1e999", "Infinity"])
def test_non_finite_screen_score_names_file_and_line(tmp_path, value):
    screen = f"genes\tgene_interaction\n{GENES[0]};{GENES[1]}\t0.1\n{GENES[2]};{GENES[3]}\t{value}\n"
    with pytest.raises(DataError) as exc:
        _build(_dataset(tmp_path, screen=screen))
    assert exc.value.line == 3 and exc.value.path.endswith("screen.tsv") and "finite" in exc.value.message


def test_non_finite_kuzmin_score_names_file_and_line(tmp_path):
    from cellgi.data.screens import load_screen
    from cellgi.data.genes import GeneMapper

    p = tmp_path / "k.tsv"
    p.write_text(
        "Query Strain ID\tArray Strain ID\tAdjusted genetic interaction score (epsilon or tau)\tP-value\n"
        f"{GENES[0]}+YDL227C_tm1\t{GENES[1]}_dma1\t0.1\t0.01\n"
        f"{GENES[2]}+YDL227C_tm1\t{GENES[3]}_dma1\t1e999\t0.01\n"
    )
    with pytest.raises(DataError) as exc:
        load_screen({"format": "kuzmin", "path": str(p)}, GeneMapper(GENES), ["gene_interaction"])
    assert exc.value.line == 3 and "finite" in exc.value.message


@pytest.mark.parametrize("value", ["inf", "nan", "1e999"])
def test_non_finite_edge_weight_names_file_and_line(tmp_path, value):
    edges = f"{GENES[0]}\t{GENES[1]}\t0.5\n{GENES[1]}\t{GENES[2]}\t{value}\n"
    with pytest.raises(DataError) as exc:
        _build(_dataset(tmp_path, edges=edges, weighted=True))
    assert exc.value.line == 2 and exc.value.path.endswith("edges.txt") and "finite" in exc.value.message


def test_case_variants_in_a_gene_list_are_one_gene(tmp_path):
    genes = "\n".join(GENES) + "\n" + GENES[3].lower() + "\n"
    with pytest.raises(DataError) as exc:
        _build(_dataset(tmp_path, genes=genes))
    assert exc.value.line == 13 and "listed twice (first on line 4 as" in exc.value.message


def test_case_variants_never_become_two_nodes():
    from cellgi.data.cellgraph import CellGraph
    from cellgi.data.genes import GeneMapper

    with pytest.raises(DataError, match="ignoring case"):
        GeneMapper(["YAL001C", "YBR002W", "yal001c"])
    with pytest.raises(ValueError, match="ignoring case"):
        CellGraph(["YAL001C", "yal001c"])


def test_case_variants_in_sgd_features_are_refused(tmp_path):
    from cellgi.data.readers import read_sgd_features

    row = "S1\tORF\tVerified\t{}\tABC1\t\tchr\n"
    p = tmp_path / "SGD_features.tab"
    p.write_text(row.format("YAL001C") + row.format("yal001c").replace("ABC1", "ABC2"))
    with pytest.raises(DataError) as exc:
        read_sgd_features(p)
    assert exc.value.line == 2 and "listed twice" in exc.value.message


def test_no_edge_left_says_the_edges_were_self_loops(tmp_path):
    edges = "".join(f"{g}\t{g}\n" for g in GENES)
    with pytest.raises(DataError) as exc:
        _build(_dataset(tmp_path, edges=edges))
    assert "no edge left" in exc.value.message and "12 self-loops dropped" in exc.value.message


def test_no_edge_left_says_the_genes_were_unknown(tmp_path):
    with pytest.raises(DataError) as exc:
        _build(_dataset(tmp_path, edges="YZZ999W\tYZZ998W\n"))
    assert "1 rows with unmapped identifiers" in exc.value.message


def test_two_same_named_target_columns_are_refused(tmp_path):
    screen = f"genes\tgene_interaction\tGene_Interaction\n{GENES[0]};{GENES[1]}\t0.1\t0.2\n"
    with pytest.raises(DataError) as exc:
        _build(_dataset(tmp_path, screen=screen))
    assert exc.value.line == 1 and "appears 2 times" in exc.value.message and "columns 2 and 3" in exc.value.message


def test_non_finite_feature_value_names_file_and_line(tmp_path):
    spec = _dataset(tmp_path)
    (tmp_path / "feats.tsv").write_text(f"gene\tf1\n{GENES[0]}\t0.5\n{GENES[1]}\t1e999\n")
    spec.write_text(spec.read_text() + "  features: [{type: table, path: feats.tsv}]\n")
    with pytest.raises(DataError) as exc:
        _build(spec)
    assert exc.value.line == 3 and exc.value.path.endswith("feats.tsv") and "non-finite" in exc.value.message


# ------------------------------------------------------------------------------------------- run folders


class _StopAfterFirstEpoch:
    """A Lightning callback that sends SIGTERM at the start of the second epoch (one checkpoint written)."""

    def __new__(cls):
        from lightning.pytorch.callbacks import Callback

        class Stop(Callback):
            def on_train_epoch_start(self, trainer, pl_module):
                if trainer.current_epoch == 1:
                    import os
                    import signal

                    os.kill(os.getpid(), signal.SIGTERM)

        return Stop()


def _run_spec(tmp_path: Path, epochs: int = 3) -> Path:
    """The 12-gene files data set as a small training spec (no baselines, H=8)."""
    spec = _dataset(tmp_path)
    spec.write_text(spec.read_text().replace("  cache: false\n", "  cache: false\n  batch_size: 16\n")
                    + "model: {hidden_dim: 8, num_layers: 1}\n"
                    f"training: {{max_epochs: {epochs}, baselines: [], trainer: {{accelerator: cpu}}}}\n")
    return spec


def _interrupted_run(tmp_path: Path) -> Path:
    from rich.console import Console

    from cellgi.spec import load_spec
    from cellgi.training.runner import TrainingInterrupted, train

    run = tmp_path / "run"
    with pytest.raises(TrainingInterrupted):
        train(load_spec(_run_spec(tmp_path)), run_dir=run, progress=False,
              console=Console(file=open(tmp_path / "out.txt", "a")), callbacks=[_StopAfterFirstEpoch()])
    return run


def _gene_sets(bundle, idx) -> set[frozenset[str]]:
    genes = bundle.graph.genes
    return {frozenset(genes[int(g)] for g in bundle.dataset.genes_of(int(i))) for i in idx}


def test_resume_onto_a_screen_with_rows_added_keeps_each_sample_in_its_split(tmp_path, capsys):
    from cellgi.data.splits import load_splits
    from cellgi.training.runner import apply_saved_splits
    from cellgi.runfolder.runs import read_json

    run = _interrupted_run(tmp_path)
    before = _build(run / "spec.yaml")
    saved = load_splits(run / "splits.npz")
    want = {k: _gene_sets(before, saved[k]) for k in ("train", "val", "test")}
    screen = tmp_path / "screen.tsv"
    head, *rows = screen.read_text().splitlines(keepends=True)
    added = [f"{GENES[i]};{GENES[i + 1]};{GENES[i + 2]}\t0.5\n" for i in range(0, 9, 3)]
    screen.write_text(head + "".join(added) + "".join(rows))
    after = _build(run / "spec.yaml")
    apply_saved_splits(after, run, None)
    for k in ("train", "val", "test"):
        assert _gene_sets(after, after.splits[k]) == want[k], k  # the same samples, not the same row numbers
    capsys.readouterr()
    assert main(["train", "--resume", str(run), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "3 sample(s) new since are left out" in out and "screen.tsv: 3 sample(s)" in out
    assert read_json(run / "metrics.json")["test.n"] == len(want["test"])


def test_resume_onto_a_screen_with_rows_removed_is_refused_naming_the_file(tmp_path, capsys):
    from cellgi.runfolder.runs import read_json

    run = _interrupted_run(tmp_path)
    screen = tmp_path / "screen.tsv"
    lines = screen.read_text().splitlines(keepends=True)
    screen.write_text("".join(lines[:1] + lines[6:]))
    capsys.readouterr()
    assert main(["train", "--resume", str(run), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "no longer in" in err and "screen.tsv" in err and "5 sample(s)" in err
    assert "Traceback" not in err
    assert read_json(run / "run.json")["status"] != "completed"


def test_a_run_whose_spec_was_in_the_current_folder_resumes(tmp_path, monkeypatch, capsys):
    from cellgi.spec import load_spec

    data = tmp_path / "data"
    data.mkdir()
    _run_spec(data)
    monkeypatch.chdir(data)
    assert load_spec("spec.yaml").data.root == str(data.resolve())  # made absolute, never '.'
    run = tmp_path / "elsewhere" / "r"
    from rich.console import Console

    from cellgi.training.runner import TrainingInterrupted, train

    with pytest.raises(TrainingInterrupted):
        train(load_spec("spec.yaml"), run_dir=run, progress=False, console=Console(file=open(tmp_path / "o", "a")),
              callbacks=[_StopAfterFirstEpoch()])
    monkeypatch.chdir(tmp_path)
    capsys.readouterr()
    assert main(["train", "--resume", str(run), "--no-progress"]) == 0, capsys.readouterr().err


@pytest.mark.parametrize("value", ["1e39", "-3.5e38"])
def test_a_score_beyond_float32_names_file_and_line(tmp_path, value):
    screen = f"genes\tgene_interaction\n{GENES[0]};{GENES[1]}\t0.1\n{GENES[2]};{GENES[3]}\t{value}\n"
    with pytest.raises(DataError) as exc:
        _build(_dataset(tmp_path, screen=screen))
    assert exc.value.line == 3 and exc.value.path.endswith("screen.tsv") and "float32" in exc.value.message


@pytest.mark.parametrize("cell", ["edges", "features"])
def test_edge_weights_and_features_beyond_float32_name_file_and_line(tmp_path, cell):
    if cell == "edges":
        spec = _dataset(tmp_path, edges=f"{GENES[0]}\t{GENES[1]}\t0.5\n{GENES[1]}\t{GENES[2]}\t1e39\n", weighted=True)
        line, name = 2, "edges.txt"
    else:
        spec = _dataset(tmp_path)
        (tmp_path / "feats.tsv").write_text(f"gene\tf1\n{GENES[0]}\t0.5\n{GENES[1]}\t-1e39\n")
        spec.write_text(spec.read_text() + "  features: [{type: table, path: feats.tsv}]\n")
        line, name = 3, "feats.tsv"
    with pytest.raises(DataError) as exc:
        _build(spec)
    assert exc.value.line == line and exc.value.path.endswith(name) and "float32" in exc.value.message


@pytest.mark.parametrize(
    "old, new, path",
    [
        ("num_samples: 500", "num_samples: 500\n    noise: 1e300", "data.synthetic.noise"),
        ("max_epochs: 1", "max_epochs: 1\n  optimizer: {lr: 1e300}", "training.optimizer.lr"),
        ("hidden_dim: 16", "hidden_dim: 16\n  conv: {type: masked_gin, eps: 1e300}", "model.conv.eps"),
        ("hidden_dim: 16", "hidden_dim: 16\n  embedding: {init_std: 4e38}", "model.embedding.init_std"),
    ],
)
def test_spec_numbers_beyond_float32_are_refused_with_line(old, new, path):
    text = tiny_spec("o").replace(old, new, 1)
    with pytest.raises(SpecError) as exc:
        parse_spec(text, "o.yaml")
    issue = next(i for i in exc.value.issues if i.path == path)
    assert "float32" in issue.message and issue.line == text.splitlines().index(new.split("\n")[1]) + 1


@pytest.mark.parametrize("old, new, path", [
    ("batch_size: 32", "batch_size: 100000000000000000000", "data.batch_size"),
    ("max_epochs: 1", "max_epochs: 9223372036854775808", "training.max_epochs"),
])
def test_spec_integers_beyond_int64_are_refused_with_line(old, new, path):
    text = tiny_spec("i").replace(old, new, 1)
    with pytest.raises(SpecError) as exc:
        parse_spec(text, "i.yaml")
    issue = next(i for i in exc.value.issues if i.path == path)
    assert "int64" in issue.message and issue.line == next(n for n, r in enumerate(text.splitlines(), 1) if new in r)


def test_a_run_whose_loss_becomes_non_finite_fails(tmp_path, capsys):
    from cellgi.runfolder.runs import read_json

    spec = _run_spec(tmp_path, epochs=2)
    rows = "".join(f"{GENES[i]};{GENES[j]}\t{3e38 if (i + j) % 2 else -3e38:g}\n" for i in range(12) for j in range(i + 1, 12))
    (tmp_path / "screen.tsv").write_text("genes\tgene_interaction\n" + rows)
    run = tmp_path / "run"
    code = main(["train", str(spec), "--run-dir", str(run), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 1, err
    assert "non-finite" in err or "diverged" in err
    assert read_json(run / "run.json")["status"] == "failed" and not (run / "metrics.json").exists()


# ------------------------------------------------------------------------------------- validate first


@pytest.mark.parametrize("where", ["checkpoint", "early_stopping"])
def test_a_misspelt_monitor_is_a_located_spec_error(tmp_path, where, capsys):
    text = tiny_spec("m").replace("max_epochs: 1", f"max_epochs: 1\n  {where}: {{monitor: val/pearsn}}")
    with pytest.raises(SpecError) as exc:
        parse_spec(text, "m.yaml")
    issue = exc.value.issues[0]
    assert issue.path == f"training.{where}.monitor" and "'val/pearson'" in issue.message
    assert issue.line == text.splitlines().index(f"  {where}: {{monitor: val/pearsn}}") + 1
    spec = tmp_path / "m.yaml"
    spec.write_text(tiny_spec("m"))
    run = tmp_path / "run"
    assert main(["train", str(spec), f"training.{where}.monitor=val/pearsn", "--run-dir", str(run)]) == 2
    err = capsys.readouterr().err
    assert f"override 1 (training.{where}.monitor=val/pearsn)" in err and "Traceback" not in err
    assert not run.exists()


def test_a_misspelt_monitor_of_a_library_spec_fails_before_data(tmp_path, monkeypatch):
    from cellgi.spec import validate_spec
    from cellgi.training.runner import TrainerConfigError, train

    spec = parse_spec(tiny_spec("m"), "m.yaml")
    bad = validate_spec({**spec.model_dump(mode="json"), "training": {
        **spec.training.model_dump(mode="json"), "early_stopping": {"monitor": "val/person"}}})

    def no_data(*a, **k):
        raise AssertionError("data read before the monitor was checked")

    monkeypatch.setattr("cellgi.training.runner.build_data", no_data)
    with pytest.raises(TrainerConfigError, match="val/person"):
        train(bad, run_dir=tmp_path / "r", progress=False)
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("value", ["0", "0.0", "1.5", "-2"])
def test_limit_train_batches_that_trains_nothing_is_refused(value):
    text = tiny_spec("l").replace("max_epochs: 1", f"max_epochs: 1\n  limit_train_batches: {value}")
    with pytest.raises(SpecError) as exc:
        parse_spec(text, "l.yaml")
    assert exc.value.issues[0].path == "training.limit_train_batches"


def test_a_feature_column_named_twice_is_refused(tmp_path):
    spec = _dataset(tmp_path)
    (tmp_path / "feats.tsv").write_text(f"gene\tf1\tF1\n{GENES[0]}\t0.5\t0.7\n")
    spec.write_text(spec.read_text() + "  features: [{type: table, path: feats.tsv, columns: [f1]}]\n")
    with pytest.raises(DataError) as exc:
        _build(spec)
    assert exc.value.line == 1 and "appears 2 times" in exc.value.message and "columns 2 and 3" in exc.value.message
    from cellgi.spec import load_spec

    spec.write_text(spec.read_text().replace("columns: [f1]", "columns: [f1, F1]"))
    with pytest.raises(SpecError) as exc2:
        load_spec(spec)
    assert "more than once" in exc2.value.render()


def test_an_error_a_section_check_finds_names_the_override_that_caused_it(tmp_path, capsys):
    spec = tmp_path / "s.yaml"
    spec.write_text(tiny_spec("s"))
    assert main(["spec", "validate", str(spec), "training.stack={baselines: [nope]}"]) == 2
    err = capsys.readouterr().err
    assert "override 1 (training.stack={baselines: [nope]})" in err and f"{spec}:" not in err


# ------------------------------------------------------------------------------------ runs, pipes, state


class _ClosesAfterFirstLine:
    """A standard output whose reader leaves after the first line (``cellgi train ... | head -1``)."""

    def __init__(self):
        self.lines: list[str] = []

    def write(self, text: str) -> int:
        if self.lines:
            raise BrokenPipeError(32, "Broken pipe")
        self.lines.append(text)
        return len(text)

    def flush(self) -> None:
        if len(self.lines) > 1:
            raise BrokenPipeError(32, "Broken pipe")

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:
        raise OSError("no file descriptor")


def test_train_piped_into_head_completes_its_run(tmp_path, capsys, monkeypatch):
    import sys

    from cellgi.runfolder.runs import read_json

    spec = _run_spec(tmp_path, epochs=2)
    run = tmp_path / "run"
    fake = _ClosesAfterFirstLine()
    monkeypatch.setattr(sys, "stdout", fake)
    assert main(["train", str(spec), "--run-dir", str(run), "--no-progress"]) == 0
    assert "standard output was closed" in capsys.readouterr().err
    status = read_json(run / "run.json")
    assert status["status"] == "completed" and (run / "metrics.json").is_file()


def test_a_relative_run_folder_records_its_best_checkpoint(tmp_path, monkeypatch):
    from cellgi.runfolder.runs import read_json

    spec = _run_spec(tmp_path, epochs=1)
    monkeypatch.chdir(tmp_path)
    assert main(["train", str(spec), "--runs-root", "rel", "--no-progress"]) == 0
    (run,) = (tmp_path / "rel" / "d").iterdir()
    assert read_json(run / "run.json")["best_checkpoint"] == "checkpoints/best.ckpt"


def test_a_run_stopped_early_says_so(tmp_path, capsys):
    from cellgi.runfolder.runs import read_json

    spec = _run_spec(tmp_path, epochs=30)
    # min_delta beyond any change: the monitor never improves, so patience 1 stops after epoch 2
    spec.write_text(spec.read_text().replace("max_epochs: 30,", "max_epochs: 30, early_stopping: "
                                             "{monitor: train/loss_epoch, mode: min, patience: 1, min_delta: 1000.0},"))
    run = tmp_path / "run"
    assert main(["train", str(spec), "--run-dir", str(run), "--no-progress"]) == 0
    out = capsys.readouterr().out
    status = read_json(run / "run.json")
    assert status["stopped_early"]["after_epoch"] == status["epochs"] < 30
    assert status["stopped_early"]["monitor"] == "train/loss_epoch"
    assert f"stopped after epoch {status['epochs']} of 30" in out


def test_replicate_logs_in_a_file_have_no_wide_rules(tmp_path):
    from rich.console import Console

    from cellgi.spec import load_spec
    from cellgi.experiments.series import train_series

    log = tmp_path / "log.txt"
    with open(log, "w") as fh:
        console = Console(file=fh, width=4000, soft_wrap=True)  # what a pipe gets (COLUMNS=4000)
        import cellgi.experiments.series as rep

        real = rep.Console
        rep.Console = lambda *a, **k: console  # type: ignore[assignment]
        try:
            train_series(load_spec(_run_spec(tmp_path, epochs=1)), [0, 1], run_dir=tmp_path / "reps",
                             progress=False)
        finally:
            rep.Console = real  # type: ignore[assignment]
    lines = log.read_text().splitlines()
    assert any("seed 1" in ln for ln in lines)
    assert max(len(ln) for ln in lines if "─" in ln) <= 100


def test_train_leaves_global_state_as_it_found_it(tmp_path):
    import logging
    import os
    import signal
    import warnings

    import torch
    from rich.console import Console

    from cellgi.spec import load_spec
    from cellgi.training.runner import train

    spec = _run_spec(tmp_path, epochs=1)
    spec.write_text(spec.read_text().replace("trainer: {accelerator: cpu}", "trainer: {accelerator: cpu, deterministic: true}"))
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    filters = list(warnings.filters)
    env = dict(os.environ)
    levels = {n: logging.getLogger(n).level for n in logging.root.manager.loggerDict}
    deterministic = torch.are_deterministic_algorithms_enabled()
    train(load_spec(spec), run_dir=tmp_path / "run", progress=False, console=Console(file=open(tmp_path / "o", "w")))
    assert {s: signal.getsignal(s) for s in handlers} == handlers
    assert warnings.filters == filters
    assert dict(os.environ) == env
    assert {n: logging.getLogger(n).level for n in levels} == levels
    assert torch.are_deterministic_algorithms_enabled() == deterministic


def test_a_run_interrupted_before_its_first_checkpoint_is_not_offered_a_resume(tmp_path, monkeypatch, capsys):
    import signal

    from cellgi.training.runner import TrainingInterrupted

    spec = _run_spec(tmp_path)
    run = tmp_path / "run"

    def stopped(*a, **k):
        run.mkdir()
        raise TrainingInterrupted(signal.SIGTERM, run)

    monkeypatch.setattr("cellgi.training.runner.train", stopped)
    assert main(["train", str(spec), "--run-dir", str(run)]) == 143
    err = capsys.readouterr().err
    assert "stopped before its first checkpoint: start the run again" in err and "--resume" not in err
