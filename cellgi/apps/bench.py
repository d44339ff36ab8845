"""Shared-adjacency vs per-sample-copies benchmark of the full lazy Dango model.

Two paths run on the same weights in the same process (or, on CPU, in fresh child processes so that
peak RSS is honest per measurement):

- ``shared``: the model's own forward: one shared adjacency, samples are index sets.
- ``shared_no_delta``: the same with ``first_layer_delta`` off (every layer over all ``N * (B+1)`` rows), to
  show what the first-layer delta buys in the same run (optional).
- ``fused`` / ``unfused``: the same with the per-edge-type convs forced to run fused (batched over the
  edge-type axis, ``cellgi.nn.convs.fused``) or one by one; ``shared`` takes the model's default (fused on
  accelerators, one by one on CPUs), so the two show what the fusion buys in the same run (optional).
- ``reference``: how the published lazy model batched: B per-sample copies of every graph with the
  deleted genes' edges removed, message passing through the convs' PyG-style single-graph forward.

The benchmark first checks that both give the same predictions (``equivalence_max_abs_diff``), then
times full training steps (forward + backward + AdamW) and inference after warm-up, median of several.

:func:`predict_benchmark` (``cellgi bench --predict RUN``) measures how fast a trained run scores gene
pairs through :mod:`cellgi.predictors.scoring` (what ``cellgi predict``, ``evaluate`` and ``screen`` use) against
the former per-batch forward, and projects a whole-genome pairs screen from the measured rate.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Callable

import torch
from torch import Tensor

from cellgi.data.batch import PerturbationBatch, collate_index_sets, iter_batches
from cellgi.data.cellgraph import CellGraph
from cellgi.data.synthetic import generate_graph
from cellgi.errors import CellgiError
from cellgi.nn.model import LazyDango
from cellgi.predictors.scoring import MESSAGE_PASSING_BATCH_SIZE, ModelScorer
from cellgi.runtime import host_allocator_state
from cellgi.spec import validate_spec
from cellgi.spec.model import ModelSpec

if TYPE_CHECKING:  # pragma: no cover - types only
    from cellgi.predictors.base import TrainedPredictor

__all__ = [
    "PATHS",
    "PUBLISHED_EDGE_COUNTS",
    "BenchConfig",
    "make_workload",
    "measure",
    "predict_benchmark",
    "run_benchmark",
    "screen_benchmark",
]

#: stored (directed) edge counts of the published lazy Dango yeast multigraph; undirected types hold
#: both directions, so an undirected count is twice its number of gene pairs
PUBLISHED_EDGE_COUNTS: dict[str, int] = {
    "physical": 139_463,
    "regulatory": 9_753,
    "tflink": 201_898,
    "string_neighborhood": 147_874,
    "string_fusion": 11_810,
    "string_cooccurence": 11_115,
    "string_coexpression": 1_002_538,
    "string_experimental": 825_101,
    "string_database": 73_818,
}
PUBLISHED_DIRECTED = frozenset({"regulatory", "tflink"})
YEAST_GENES = 6_607


@dataclass
class BenchConfig:
    """What to measure. ``scale`` shrinks genes and edges for quick runs (1.0 = yeast scale)."""

    device: str = "cpu"
    batch_sizes: list[int] = field(default_factory=lambda: [8])
    aggregator: str = "sum"
    paths: list[str] = field(default_factory=lambda: ["shared", "reference"])
    scale: float = 1.0
    warmup: int = 2
    steps: int = 5
    genes_per_sample: int = 3
    seed: int = 0
    isolate: bool | None = None  # CPU default: a child process per measurement
    precision: str = "32-true"  # or "bf16-mixed": forward under torch.autocast(dtype=bfloat16)
    model_overrides: dict[str, Any] = field(default_factory=dict)
    spec_model: dict[str, Any] | None = None  # a full model section; overrides the published default

    @property
    def num_genes(self) -> int:
        return max(50, int(round(YEAST_GENES * self.scale)))

    def edge_counts(self) -> dict[str, int]:
        return {k: max(10, int(round(v * self.scale))) for k, v in PUBLISHED_EDGE_COUNTS.items()}


def published_model_section(aggregator: str = "sum") -> dict[str, Any]:
    """The published lazy Dango configuration (H=64, 3 layers, GIN with 4 MLP layers, gelu, 8 heads)."""
    agg: dict[str, Any] = {"type": aggregator}
    if aggregator == "pairwise_interaction":
        agg["pairwise_hidden_dim"] = 32
    return {
        "hidden_dim": 64,
        "num_layers": 3,
        "conv": {"type": "masked_gin", "num_mlp_layers": 4},
        "aggregator": agg,
        "local_predictor": {"type": "hypergraph_attention", "num_heads": 8},
        "combiner": {"type": "gate"},
    }


class BenchSpecError(CellgiError):
    """A spec whose model section the benchmark cannot build on its generated graph."""

    exit_code = 2


def _model_spec(cfg: BenchConfig) -> ModelSpec:
    if cfg.spec_model is None:
        section = published_model_section(cfg.aggregator)
    else:
        section = dict(cfg.spec_model)
        if cfg.aggregator and section.get("aggregator", {}).get("type") != cfg.aggregator:
            section["aggregator"] = published_model_section(cfg.aggregator)["aggregator"]
    section.update(cfg.model_overrides)
    emb = section.get("embedding") or {}
    if emb.get("learnable") is False or emb.get("dim") == 0:
        # the benchmark's generated graph has no per-gene inputs: such a model would have no gene input at all
        raise BenchSpecError(
            "this spec's model reads only per-gene inputs (model.embedding.learnable: false), and the benchmark's "
            "generated graph has none (it has no data.features); benchmark a copy with "
            "'embedding: {learnable: true}' and without an additive_term that reads gene_values")
    spec = validate_spec({"name": "bench", "data": {"synthetic": {}}, "model": section})
    return spec.model


def make_workload(cfg: BenchConfig) -> tuple[CellGraph, ModelSpec]:
    """(graph, model spec) of the benchmark, deterministic given the config."""
    counts = cfg.edge_counts()
    # generate_graph takes gene pairs for undirected types (it stores both directions)
    pairs = {k: (v if k in PUBLISHED_DIRECTED else max(5, v // 2)) for k, v in counts.items()}
    # at small --scale the dense types would not fit: cap at 30% of the possible pairs
    n = cfg.num_genes
    cap = int(0.3 * n * (n - 1) / 2)
    pairs = {k: min(v, cap) for k, v in pairs.items()}
    graph = generate_graph(cfg.num_genes, pairs, set(PUBLISHED_DIRECTED), cfg.seed)
    return graph, _model_spec(cfg)


def _batch(num_genes: int, batch_size: int, k: int, seed: int) -> PerturbationBatch:
    g = torch.Generator().manual_seed(seed)
    sets = [torch.randperm(num_genes, generator=g)[:k] for _ in range(batch_size)]
    y = torch.randn(batch_size, 1, generator=g)
    return collate_index_sets(sets, y)


def _build_model(cfg: BenchConfig, graph: CellGraph, spec_model: ModelSpec, device: torch.device) -> LazyDango:
    torch.manual_seed(cfg.seed)
    return LazyDango.from_spec(spec_model, graph, num_targets=1).to(device)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


PATHS = ("shared", "shared_no_delta", "fused", "unfused", "reference")


def _forward_fn(model: LazyDango, path: str) -> Callable[[PerturbationBatch], tuple[Tensor, dict[str, Tensor | None]]]:
    if path == "shared":
        return model
    if path == "shared_no_delta":
        model.first_layer_delta = False
        return model
    if path in ("fused", "unfused"):
        model.fused_edge_types = path == "fused"
        return model
    if path == "reference":
        return model.reference_forward
    raise ValueError(f"unknown path {path!r} (one of {', '.join(PATHS)})")


def _autocast(cfg: BenchConfig, device: torch.device):
    if cfg.precision == "32-true":
        return contextlib.nullcontext()
    if cfg.precision == "bf16-mixed":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    raise ValueError(f"unknown precision {cfg.precision!r} (32-true or bf16-mixed)")


def _rss_gib() -> float:
    # ru_maxrss is KiB on Linux, bytes on macOS
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024**3 if sys.platform == "darwin" else 1024**2)


def measure(cfg: BenchConfig, path: str, batch_size: int, graph: CellGraph | None = None,
            spec_model: ModelSpec | None = None) -> dict[str, Any]:
    """One row: training and inference samples/s and peak memory of ``path`` at ``batch_size``."""
    device = torch.device(cfg.device)
    if graph is None:
        graph, spec_model = make_workload(cfg)
    row: dict[str, Any] = {"path": path, "batch_size": batch_size}
    try:
        model = _build_model(cfg, graph, spec_model, device)
        fwd = _forward_fn(model, path)
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
        batch = _batch(graph.num_nodes, batch_size, cfg.genes_per_sample, cfg.seed + 1).to(device)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        model.train()
        times = []
        for i in range(cfg.warmup + cfg.steps):
            _sync(device)
            t0 = time.perf_counter()
            opt.zero_grad(set_to_none=True)
            with _autocast(cfg, device):
                pred, _ = fwd(batch)
            loss = (pred.float() - batch.y).square().mean()
            loss.backward()
            opt.step()
            _sync(device)
            if i >= cfg.warmup:
                times.append(time.perf_counter() - t0)
        train_s = statistics.median(times)
        model.eval()
        times = []
        with torch.inference_mode(), _autocast(cfg, device):
            for i in range(cfg.warmup + cfg.steps):
                _sync(device)
                t0 = time.perf_counter()
                fwd(batch)
                _sync(device)
                if i >= cfg.warmup:
                    times.append(time.perf_counter() - t0)
        infer_s = statistics.median(times)
        peak = (
            torch.cuda.max_memory_allocated(device) / 1024**3 if device.type == "cuda" else _rss_gib()
        )
        row.update(
            train_samples_per_s=round(batch_size / train_s, 3),
            infer_samples_per_s=round(batch_size / infer_s, 3),
            train_step_ms=round(1000 * train_s, 2),
            peak_mem_gib=round(peak, 3),
        )
    except torch.cuda.OutOfMemoryError:
        row["oom"] = True
    except MemoryError:
        row["oom"] = True
    finally:
        gc.collect()
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return row


def _measure_in_child(cfg: BenchConfig, path: str, batch_size: int) -> dict[str, Any]:
    """Run :func:`measure` in a fresh interpreter so that peak RSS belongs to this measurement alone."""
    # the child allocates like this process: tuned if and only if this one is
    tune = host_allocator_state() != "default"
    payload = json.dumps({"cfg": asdict(cfg), "path": path, "batch_size": batch_size, "tune": tune})
    code = (
        "import json,sys; from cellgi.apps.bench import BenchConfig, measure; "
        "from cellgi.runtime import tune_host_allocator; "
        "a=json.loads(sys.stdin.read()); "
        "a['tune'] and tune_host_allocator(); "
        "print('CELLGI_BENCH_ROW ' + json.dumps(measure(BenchConfig(**a['cfg']), a['path'], a['batch_size'])))"
    )
    proc = subprocess.run([sys.executable, "-c", code], input=payload, capture_output=True, text=True)
    for line in proc.stdout.splitlines():
        if line.startswith("CELLGI_BENCH_ROW "):
            return json.loads(line.removeprefix("CELLGI_BENCH_ROW "))
    if proc.returncode in (-9, 137):  # killed by the kernel's OOM killer
        return {"path": path, "batch_size": batch_size, "oom": True}
    raise RuntimeError(f"benchmark child failed ({proc.returncode}):\n{proc.stderr[-2000:]}")


def equivalence(cfg: BenchConfig, graph: CellGraph, spec_model: ModelSpec) -> float:
    """max |shared - reference| over predictions of one batch, same weights, eval mode."""
    device = torch.device(cfg.device)
    model = _build_model(cfg, graph, spec_model, device).eval()
    batch = _batch(graph.num_nodes, min(cfg.batch_sizes), cfg.genes_per_sample, cfg.seed + 2).to(device)
    with torch.no_grad():
        a, _ = model(batch)
        b, _ = model.reference_forward(batch)
    return float((a - b).abs().max())


def data_path_ms(cfg: BenchConfig, num_genes: int, batch_size: int, reps: int = 50) -> float:
    """Median milliseconds to collate a batch of index sets and move it to the device."""
    device = torch.device(cfg.device)
    g = torch.Generator().manual_seed(cfg.seed)
    sets_all = [torch.randperm(num_genes, generator=g)[: cfg.genes_per_sample] for _ in range(batch_size)]
    y = torch.randn(batch_size, 1)
    times = []
    for _ in range(reps):
        _sync(device)
        t0 = time.perf_counter()
        collate_index_sets(sets_all, y).to(device, non_blocking=True)
        _sync(device)
        times.append(time.perf_counter() - t0)
    return 1000 * statistics.median(times)


def _ratios(rows: list[dict[str, Any]], batch_sizes: list[int], other: str, over: str = "shared"
            ) -> dict[str, dict[str, float]]:
    """``over`` over ``other`` samples/s per batch size (training and inference), rows of the same run."""
    out = {}
    for bs in batch_sizes:
        s = next((r for r in rows if r["batch_size"] == bs and r["path"] == over and not r.get("oom")), None)
        o = next((r for r in rows if r["batch_size"] == bs and r["path"] == other and not r.get("oom")), None)
        if s and o:
            out[str(bs)] = {
                "train": round(s["train_samples_per_s"] / o["train_samples_per_s"], 2),
                "infer": round(s["infer_samples_per_s"] / o["infer_samples_per_s"], 2),
            }
    return out


def _device_name(device: str) -> str:
    if device.startswith("cuda") and torch.cuda.is_available():
        return torch.cuda.get_device_name(torch.device(device))
    return f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def run_benchmark(cfg: BenchConfig, progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Equivalence check, then every (batch size, path) row; returns the JSON-ready report."""
    say = progress or (lambda _msg: None)
    isolate = cfg.isolate if cfg.isolate is not None else cfg.device == "cpu"
    t0 = time.perf_counter()
    graph, spec_model = make_workload(cfg)
    gen_s = time.perf_counter() - t0
    edges = {n: et.num_edges for n, et in graph.edge_types.items()}
    say(f"host allocator: {host_allocator_state()}")
    say(f"workload: {graph.num_nodes} genes, {sum(edges.values()):,} stored edges in {len(edges)} types "
        f"({gen_s:.1f} s to generate)")
    # null in the JSON when the reference path is not run (JSON has no NaN)
    eq = equivalence(cfg, graph, spec_model) if {"shared", "reference"} <= set(cfg.paths) else None
    say("equivalence_max_abs_diff = " + ("not measured (needs both paths)" if eq is None else f"{eq:.3g}"))
    rows = []
    for bs in cfg.batch_sizes:
        for path in cfg.paths:
            say(f"measuring {path} at B={bs} ...")
            row = _measure_in_child(cfg, path, bs) if isolate else measure(cfg, path, bs, graph, spec_model)
            rows.append(row)
            say("  " + json.dumps(row))
    ratios = _ratios(rows, cfg.batch_sizes, "reference")
    delta_gain = _ratios(rows, cfg.batch_sizes, "shared_no_delta")
    fused_gain = _ratios(rows, cfg.batch_sizes, "unfused", over="fused")
    step_ms = {r["batch_size"]: r["train_step_ms"] for r in rows if r["path"] == "shared" and not r.get("oom")}
    data_rows = []
    for bs in cfg.batch_sizes:
        ms = data_path_ms(cfg, graph.num_nodes, bs)
        frac = ms / step_ms[bs] if bs in step_ms else None
        data_rows.append({"batch_size": bs, "collate_h2d_ms": round(ms, 3),
                          "fraction_of_train_step": None if frac is None else float(f"{frac:.3g}")})
    return {
        "device": _device_name(cfg.device),
        "torch": torch.__version__,
        "date": time.strftime("%Y-%m-%d"),
        "config": {**asdict(cfg), "model": spec_model.model_dump(mode="json")},
        "workload": {"num_genes": graph.num_nodes, "edges": edges, "generate_s": round(gen_s, 2)},
        "equivalence_max_abs_diff": eq,
        "rows": rows,
        "ratio_shared_over_reference": ratios,
        **({"ratio_shared_over_shared_no_delta": delta_gain} if delta_gain else {}),
        **({"ratio_fused_over_unfused": fused_gain} if fused_gain else {}),
        "data_path": data_rows,
        "threads": torch.get_num_threads(),
        "host_allocator": host_allocator_state(),
        "pid": os.getpid(),
    }


def screen_benchmark(cfg: BenchConfig, num_arrays: int = 256, progress: Callable[[str], None] | None = None
                     ) -> dict[str, Any]:
    """Virtual-screen throughput: one query pair against ``num_arrays`` array genes, predicted by the
    screen path (:class:`cellgi.predictors.scoring.ModelScorer`: wildtype once, perturbed columns only) and by the
    plain predict path (``model(batch)`` per batch, as ``cellgi predict`` runs it) on the same sets, same
    weights, same batch size (``cfg.batch_sizes[0]``), in this process. Reports predictions/s of both, their
    ratio, the largest difference between their predictions, and the projected time of a full screen of
    the query against every gene (wildtype pass + genes / rate)."""
    say = progress or (lambda _msg: None)
    device = torch.device(cfg.device)
    graph, spec_model = make_workload(cfg)
    model = _build_model(cfg, graph, spec_model, device).eval()
    n = graph.num_nodes
    g = torch.Generator().manual_seed(cfg.seed + 3)
    order = torch.randperm(n, generator=g).tolist()
    query = tuple(order[:2])
    arrays = order[2 : 2 + min(num_arrays, n - 2)]
    sets = [query + (a,) for a in arrays]
    bs = cfg.batch_sizes[0]
    chunks = list(iter_batches(sets, bs))
    say(f"screen: query pair {query} x {len(arrays)} array genes, batch size {bs}, {cfg.aggregator}")

    def plain(chunk):
        batch = collate_index_sets([torch.tensor(s) for s in chunk], torch.zeros(len(chunk), 1)).to(device)
        with torch.no_grad(), _autocast(cfg, device):
            return model(batch)[0].float().cpu()

    with _autocast(cfg, device):
        _sync(device)
        t0 = time.perf_counter()
        scorer = ModelScorer(model, batch_size=bs)
        _sync(device)
        setup_s = time.perf_counter() - t0
        scorer.score(chunks[0])  # warm-up (allocator, kernels)
    plain(chunks[0])
    rows = {}
    preds = {}
    for name in ("screen", "plain"):
        _sync(device)
        t0 = time.perf_counter()
        with _autocast(cfg, device):
            out = [scorer.score(c) if name == "screen" else plain(c) for c in chunks]
        _sync(device)
        secs = time.perf_counter() - t0
        preds[name] = torch.cat(out)
        rows[name] = round(len(sets) / secs, 3)
        say(f"  {name}: {rows[name]:.2f} predictions/s ({secs:.1f} s)")
    rate = rows["screen"]
    return {
        "aggregator": cfg.aggregator,
        "batch_size": bs,
        "num_arrays": len(arrays),
        "precision": cfg.precision,
        "setup_s": round(setup_s, 2),
        "screen_predictions_per_s": rate,
        "plain_predictions_per_s": rows["plain"],
        "ratio_screen_over_plain": round(rate / rows["plain"], 2),
        "max_abs_diff": float((preds["screen"] - preds["plain"]).abs().max()),
        "projected_full_screen_s": round(setup_s + (n - 2) / rate, 1),
        "num_genes": n,
    }


def predict_benchmark(loaded: TrainedPredictor, num_pairs: int = 262_144, plain_pairs: int = 4096, *, batch_size: int | None = None,
                      genome_genes: int | None = None, seed: int = 0,
                      progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Throughput of scoring gene pairs with a trained run (one model, a seed ensemble or a stacked
    folder, a plugin's kind), as ``cellgi predict``, ``evaluate`` and ``screen`` score them (its
    :meth:`~cellgi.predictors.base.TrainedPredictor.scorer`: the wildtype cell once, big batches), against the former per-batch path (``loaded.predict`` on
    batches of 256, the model's forward recomputing the wildtype each batch) on the first ``plain_pairs``
    of the same random pairs. Reports pairs/s of both, their ratio, the largest difference of their
    predictions, the setup time (wildtype pass and relation tables), and the projected wall time of a
    whole-genome pairs screen of ``genome_genes`` genes (default: every gene of the model) at the
    measured rate (scoring only; ``cellgi screen`` also writes the rows)."""
    say = progress or (lambda _msg: None)
    n = len(loaded.mapper.genes)
    g = torch.Generator().manual_seed(seed)
    a = torch.randint(0, n, (num_pairs,), generator=g)
    b = (a + torch.randint(1, n, (num_pairs,), generator=g)) % n  # never the same gene twice
    pairs = torch.stack([a, b], 1)
    mask = torch.ones(pairs.shape, dtype=torch.bool)
    t0 = time.perf_counter()
    scorer = loaded.scorer(batch_size)
    setup_s = time.perf_counter() - t0
    bs = scorer.batch_size
    scorer.score_padded(pairs[:bs], mask[:bs])  # warm-up (allocator)
    say(f"predict: {num_pairs:,} random pairs of {n:,} genes, batch size {bs:,} (setup {setup_s:.1f} s)")
    t0 = time.perf_counter()
    fast = torch.cat([scorer.score_padded(p, m)["pred"] for p, m in zip(iter_batches(pairs, bs), iter_batches(mask, bs))])
    fast_s = time.perf_counter() - t0
    say(f"  scorer: {num_pairs / fast_s:,.0f} pairs/s ({fast_s:.1f} s)")
    k = min(plain_pairs, num_pairs)
    t0 = time.perf_counter()
    plain = []
    for chunk in iter_batches(pairs[:k], MESSAGE_PASSING_BATCH_SIZE):
        batch = collate_index_sets(list(chunk), torch.full((chunk.shape[0], len(loaded.target_names)), float("nan")))
        plain.append(loaded.predict(batch)[0].float().cpu())
    plain_s = time.perf_counter() - t0
    say(f"  per-batch forward: {k / plain_s:,.0f} pairs/s ({plain_s:.1f} s for {k:,})")
    m = genome_genes or n
    genome_pairs = m * (m - 1) // 2
    rate = num_pairs / fast_s
    return {
        "predictor": loaded.describe(),
        "num_genes": n,
        "batch_size": bs,
        "num_pairs": num_pairs,
        "setup_s": round(setup_s, 2),
        "scorer_pairs_per_s": round(rate, 1),
        "plain_pairs": k,
        "plain_pairs_per_s": round(k / plain_s, 1),
        "ratio_scorer_over_plain": round(rate / (k / plain_s), 1),
        "max_abs_diff": float((fast[:k] - torch.cat(plain)).abs().max()),
        "genome_genes": m,
        "genome_pairs": genome_pairs,
        "projected_genome_scoring_s": round(setup_s + genome_pairs / rate, 1),
    }

