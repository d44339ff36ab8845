"""Virtual screens: plans, exactness against the model's forward and ``cellgi predict``, streaming output,
top-K, resuming without writing a row twice, and the ``cellgi screen`` command."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

from cellgi.cli.main import main
from cellgi.data.batch import collate_index_sets
from cellgi.data.genes import GeneMapper
from cellgi.nn.model import LazyDango
from cellgi.apps.screen import ScreenError, ScreenInterrupted, plan_screen, run_screen
from cellgi.predictors.network import LoadedModel
from cellgi.predictors.scoring import ModelScorer

sys.path.insert(0, str(Path(__file__).parents[1] / "nn"))
from nn_helpers import model_spec_from_yaml, random_graph  # noqa: E402
from run_checks import assert_screen_equals_predict, read_tsv  # noqa: E402
from tiny_specs import tiny_spec  # noqa: E402

N = 30


LOCAL_ONLY = """
local_predictor: {type: pair_relations, num_layers: 1}
combiner: {type: local_only}"""


def tiny_loaded(agg: str = "sum", targets: int = 2, heads: str = "local_predictor: {type: hypergraph_attention, num_heads: 2}"):
    graph = random_graph(N)
    spec = model_spec_from_yaml(f"""
hidden_dim: 8
num_layers: 2
aggregator: {{type: {agg}}}
{heads.strip()}""")
    torch.manual_seed(0)
    model = LazyDango.from_spec(spec, graph, targets).eval()
    # a network without a spec or normaliser (predictions in model units)
    return LoadedModel(path=Path("tiny.pt"), model=model, spec=None, target_names=[f"t{i}" for i in range(targets)],
                       graph=graph, mapper=GeneMapper(graph.genes), normalizer=None, meta={})


def forward(model, sets):
    batch = collate_index_sets([torch.tensor(s) for s in sets], torch.zeros(len(sets), model.num_targets))
    with torch.no_grad():
        return model(batch)[0]


def test_plan_arrays_and_pairs():
    m = GeneMapper([f"G{i:03d}" for i in range(N)])
    plan = plan_screen(m, ["G001;G002", "g005"])
    assert plan.mode == "arrays" and plan.queries == ((1, 2), (5,))
    assert plan.count(0) == N - 2 and plan.count(1) == N - 1 and plan.total == 2 * N - 3
    assert list(plan.arrays_of(0))[:2] == [(0,), (3,)]  # query genes are never their own arrays
    assert list(plan.arrays_of(1, 4))[0] == (4,)
    pairs = plan_screen(m, ["G000"], pairs_of=["G000", "G001", "G002", "G003"])
    assert pairs.mode == "pairs" and pairs.total == 3 and list(pairs.arrays_of(0)) == [(1, 2), (1, 3), (2, 3)]
    alone = plan_screen(m, None, pairs_of=["G001", "G002", "G003"])
    assert alone.queries == ((),) and alone.total == 3
    assert plan.fingerprint() != plan_screen(m, ["G001;G002"]).fingerprint()


def test_plan_errors_say_where(tmp_path):
    m = GeneMapper([f"G{i:03d}" for i in range(N)])
    with pytest.raises(ScreenError, match="query 1: gene 'NOPE'"):
        plan_screen(m, ["NOPE;G001"])
    qf = tmp_path / "q.txt"
    qf.write_text("# queries\nG001;G002\n\nG003;G003\n")
    with pytest.raises(ScreenError, match=r"q.txt:4: 'G003;G003' names a gene twice"):
        plan_screen(m, queries_file=qf)
    af = tmp_path / "a.txt"
    af.write_text("G004\nG005\nG004\n")
    with pytest.raises(ScreenError, match=r"a.txt:3: gene 'G004' is listed twice \(first at .*a.txt:1\)"):
        plan_screen(m, ["G001"], arrays_file=af)
    with pytest.raises(ScreenError, match="not both"):
        plan_screen(m, ["G001"], arrays=["G002"], pairs_of=["G003", "G004"])
    with pytest.raises(ScreenError, match="no query"):
        plan_screen(m, [])
    with pytest.raises(ScreenError, match="no gene set"):
        plan_screen(m, ["G001"], arrays=["G001"])


@pytest.mark.parametrize(("agg", "heads"), [("sum", None), ("pairwise_interaction", None), ("sum", LOCAL_ONLY)])
def test_scorer_equals_model_forward(agg, heads):
    """Also a model whose heads read the wildtype states only (local_only: the wildtype is computed once)."""
    loaded = tiny_loaded(agg) if heads is None else tiny_loaded(agg, heads=heads)
    sets = [(1, 2, a) for a in range(3, 20)] + [(4, 7), (9,)]
    scorer = ModelScorer(loaded.model)
    got = torch.cat([scorer.score(sets[:5]), scorer.score(sets[5:])])
    torch.testing.assert_close(got, forward(loaded.model, sets), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("fmt", ["tsv", "parquet"])
def test_run_screen_rows_and_top_k(tmp_path, fmt):
    loaded = tiny_loaded()
    plan = plan_screen(loaded.mapper, ["G001;G002", "G010"])
    out = tmp_path / f"s.{fmt}"
    rep = run_screen(loaded, plan, out, top_k=3, batch_size=7, progress=False)
    assert rep.complete and rep.written == plan.total == 2 * N - 3
    if fmt == "tsv":
        rows = read_tsv(out)
    else:
        import pyarrow.parquet as pq

        rows = pq.read_table(out).to_pylist()
    assert [r["query"] for r in rows] == ["G001;G002"] * (N - 2) + ["G010"] * (N - 1)
    expected = forward(loaded.model, [(1, 2, a) for a in range(N) if a not in (1, 2)])
    got = torch.tensor([[float(r["t0"]), float(r["t1"])] for r in rows[: N - 2]])
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-4)
    top = read_tsv(tmp_path / "s.top.tsv")
    first = sorted(((float(r["t0"]), r["array"]) for r in rows[: N - 2]))
    neg = [r for r in top if r["query"] == "G001;G002" and r["direction"] == "negative"]
    pos = [r for r in top if r["query"] == "G001;G002" and r["direction"] == "positive"]
    assert [r["array"] for r in neg] == [a for v, a in first[:3] if v < 0]
    assert [r["array"] for r in pos] == [a for v, a in first[::-1][:3] if v > 0]
    assert {r["query"] for r in top} == {"G001;G002", "G010"}
    assert json.loads((tmp_path / "s.screen.json").read_text())["total"] == plan.total


@pytest.mark.parametrize("fmt", ["tsv", "parquet"])
def test_interrupted_screen_resumes_without_writing_twice(tmp_path, fmt):
    loaded = tiny_loaded()
    plan = plan_screen(loaded.mapper, ["G001;G002", "G010"], arrays=[f"G{i:03d}" for i in range(20)])
    whole = tmp_path / f"whole.{fmt}"
    run_screen(loaded, plan, whole, top_k=2, batch_size=4, progress=False)
    cut = tmp_path / f"cut.{fmt}"

    def stop_after_three(written, _todo):
        if written >= 12:
            raise KeyboardInterrupt

    with pytest.raises(ScreenInterrupted) as exc:
        run_screen(loaded, plan, cut, top_k=2, batch_size=4, progress=False, on_batch=stop_after_three)
    assert exc.value.report.written == 12
    if fmt == "tsv":
        with open(cut, "a") as fh:
            fh.write("G001;G002\tG0")  # a row cut mid-write by a crash
    with pytest.raises(ScreenError, match="exists"):
        run_screen(loaded, plan, cut, top_k=2, batch_size=4, progress=False)
    rep = run_screen(loaded, plan, cut, top_k=2, batch_size=5, progress=False, resume=True)
    assert rep.already_written == 12 and rep.written == plan.total - 12 and rep.complete
    if fmt == "tsv":
        a, b = read_tsv(cut), read_tsv(whole)
    else:
        import pyarrow.parquet as pq

        a, b = pq.read_table(cut).to_pylist(), pq.read_table(whole).to_pylist()
    # every row once, in plan order; values equal up to the rounding of another batch size
    assert [(r["query"], r["array"]) for r in a] == [(r["query"], r["array"]) for r in b]
    torch.testing.assert_close(torch.tensor([float(r["t0"]) for r in a]), torch.tensor([float(r["t0"]) for r in b]),
                               atol=1e-5, rtol=1e-4)
    ta, tb = read_tsv(tmp_path / "cut.top.tsv"), read_tsv(tmp_path / "whole.top.tsv")
    assert [(r["query"], r["direction"], r["array"]) for r in ta] == [(r["query"], r["direction"], r["array"]) for r in tb]
    # another plan in the same output is refused
    other = plan_screen(loaded.mapper, ["G003"])
    with pytest.raises(ScreenError, match="another screen"):
        run_screen(loaded, other, cut, progress=False, resume=True)


def test_cli_screen_equals_cli_predict(tmp_path, capsys):
    """`cellgi screen` writes what `cellgi predict` predicts for the same sets, on a trained tiny run."""
    (tmp_path / "t.yaml").write_text(tiny_spec("tiny-screen"))
    run = tmp_path / "run"
    assert main(["train", str(tmp_path / "t.yaml"), "--run-dir", str(run), "--no-progress"]) == 0
    assert_screen_equals_predict(run, tmp_path, capsys)
    assert main(["screen", str(run), "--query", "NOTAGENE", "-o", str(tmp_path / "x.tsv")]) == 2
    assert "query 1: gene 'NOTAGENE'" in capsys.readouterr().err


def test_resume_refuses_another_model_or_options_and_a_killed_parquet_part_is_redone(tmp_path):
    """A screen output records the model's digest, the plan and the options: a resume with another model
    or other options is refused (nothing appended); a part left open by a kill -9 is dropped and redone."""
    loaded = tiny_loaded()
    plan = plan_screen(loaded.mapper, ["G001;G002", "G010"])
    out = tmp_path / "s.parquet"

    def stop(written, _todo):
        if written >= 20:
            raise KeyboardInterrupt

    with pytest.raises(ScreenInterrupted):
        run_screen(loaded, plan, out, top_k=2, batch_size=10, progress=False, on_batch=stop)
    record = json.loads((tmp_path / "s.screen.json").read_text())
    assert record["model"]["digest"].startswith("sha256:") and record["options"]["top_k"] == 2
    other = tiny_loaded()
    torch.manual_seed(5)
    for p in other.model.parameters():
        p.data.normal_()
    with pytest.raises(ScreenError, match="model: the rows come from"):
        run_screen(other, plan, out, top_k=2, batch_size=10, progress=False, resume=True)
    with pytest.raises(ScreenError, match="option top_k: 2 then, 3 now"):
        run_screen(loaded, plan, out, top_k=3, batch_size=10, progress=False, resume=True)
    (out / "part-000001.parquet.tmp").write_bytes(b"PAR1 half a part")  # what a kill -9 leaves
    rep = run_screen(loaded, plan, out, top_k=2, batch_size=7, progress=False, resume=True)
    assert rep.already_written == 20 and rep.complete and not list(out.glob("*.tmp"))
    whole = tmp_path / "w.parquet"
    run_screen(loaded, plan, whole, top_k=2, batch_size=64, progress=False)
    import pyarrow.parquet as pq

    a, b = pq.read_table(out).to_pylist(), pq.read_table(whole).to_pylist()
    assert [(r["query"], r["array"]) for r in a] == [(r["query"], r["array"]) for r in b]  # none lost or doubled
    assert list(a[0]) == ["query", "query_names", "array", "array_names", "t0", "t1"]


def test_pairs_screen_blocks_and_names(tmp_path):
    """Pairs of a list, with or without a query (the CLI crashed on --pairs-of); rows in combinations
    order (vectorised blocks); standard names beside the genes."""
    graph_genes = [f"G{i:03d}" for i in range(N)]
    m = GeneMapper(graph_genes, names={"RAD52": "G003", "NTG1": "G004"})
    plan = plan_screen(m, None, pairs_of=["G003", "G004", "G005", "G006", "G007"])
    import itertools

    blocks = [plan.array_block(0, lo, 3) if lo + 3 <= plan.total else plan.array_block(0, lo, plan.total - lo)
              for lo in range(0, plan.total, 3)]
    got = [tuple(r) for b in blocks for r in b.tolist()]
    assert got == list(itertools.combinations([3, 4, 5, 6, 7], 2)) == list(plan.arrays_of(0))
    loaded = tiny_loaded()
    loaded.mapper = m
    run_screen(loaded, plan, tmp_path / "p.tsv", top_k=50, batch_size=4, progress=False)
    rows = read_tsv(tmp_path / "p.tsv")
    assert len(rows) == 10 and rows[0]["array"] == "G003;G004" and rows[0]["array_names"] == "RAD52;NTG1"
    assert rows[0]["query"] == "" and rows[5]["array_names"] == "NTG1;G006"
    top = read_tsv(tmp_path / "p.top.tsv")
    assert {r["array_names"] for r in top} <= {r["array_names"] for r in rows} and top


def test_cli_pairs_of_with_and_without_query(tmp_path, capsys):
    (tmp_path / "t.yaml").write_text(tiny_spec("tiny-pairs"))
    run = tmp_path / "run"
    assert main(["train", str(tmp_path / "t.yaml"), "--run-dir", str(run), "--no-progress"]) == 0
    genes = tmp_path / "genes.txt"
    genes.write_text("SYN0001\nSYN0002\nSYN0003\nSYN0004\n")
    assert main(["screen", str(run), "--pairs-of", str(genes), "-o", str(tmp_path / "a.tsv"), "--no-progress"]) == 0
    assert len(read_tsv(tmp_path / "a.tsv")) == 6
    assert main(["screen", str(run), "--pairs-of", str(genes), "--query", "SYN0010", "-o", str(tmp_path / "b.tsv"),
                 "--no-progress"]) == 0
    rows = read_tsv(tmp_path / "b.tsv")
    assert len(rows) == 6 and {r["query"] for r in rows} == {"SYN0010"}
    capsys.readouterr()


def test_kill_9_midway_then_resume_loses_and_doubles_nothing(tmp_path):
    """A real SIGKILL in the middle of a Parquet pairs screen (parts of 9 rows: batches of 3, a part closed at 8 or more): the parts
    renamed before the kill are kept, the open one is redone on --resume; every row once, in order."""
    import subprocess
    import textwrap

    genes = tmp_path / "genes.txt"
    genes.write_text("".join(f"G{i:03d}\n" for i in range(3, 12)))  # 36 pairs
    script = textwrap.dedent(f"""
        import os, signal, sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        sys.path.insert(0, {str(Path(__file__).parents[1])!r})
        from test_screen import tiny_loaded
        from cellgi.apps.screen import _ParquetRows, plan_screen, run_screen
        _ParquetRows.part_rows = 8
        loaded = tiny_loaded()
        plan = plan_screen(loaded.mapper, None, pairs_file={str(genes)!r})
        def kill(written, _todo):
            if written >= 21:
                os.kill(os.getpid(), signal.SIGKILL)
        run_screen(loaded, plan, {str(tmp_path / "cut.parquet")!r}, top_k=3, batch_size=3, progress=False,
                   on_batch=kill)
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert proc.returncode == -9, proc.stderr
    cut = tmp_path / "cut.parquet"
    assert len(list(cut.glob("part-*.parquet"))) == 2 and len(list(cut.glob("*.tmp"))) == 1  # 18 rows final
    loaded = tiny_loaded()
    plan = plan_screen(loaded.mapper, None, pairs_file=genes)
    rep = run_screen(loaded, plan, cut, top_k=3, batch_size=5, progress=False, resume=True)
    assert rep.already_written == 18 and rep.written == 18 and rep.complete
    run_screen(loaded, plan, tmp_path / "whole.parquet", top_k=3, batch_size=36, progress=False)
    import pyarrow.parquet as pq

    a = pq.read_table(cut).to_pylist()
    b = pq.read_table(tmp_path / "whole.parquet").to_pylist()
    assert [r["array"] for r in a] == [r["array"] for r in b] and len(a) == 36
    torch.testing.assert_close(torch.tensor([r["t0"] for r in a]), torch.tensor([r["t0"] for r in b]),
                               atol=1e-5, rtol=1e-4)
    ta, tb = read_tsv(tmp_path / "cut.top.tsv"), read_tsv(tmp_path / "whole.top.tsv")
    assert [r["array"] for r in ta] == [r["array"] for r in tb]
