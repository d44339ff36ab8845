"""``cellgi bench``: shared-adjacency vs per-sample-copies benchmark (see docs/performance.md)."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

from cellgi.registry import get_registry
from cellgi.runtime import host_allocator_state

# The work of a command is imported inside its functions, for startup time: building the parser imports
# every command module, so a module-level import of torch or a layer below would slow every command.

#: the bench's --precision choices (same names as ``training.trainer.precision``)
PRECISIONS = ("32-true", "bf16-mixed")

__all__ = ["add_parser", "run"]


def _ints(text: str) -> list[int]:
    try:
        vals = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not vals or min(vals) < 1:
        raise argparse.ArgumentTypeError("batch sizes must be positive integers")
    return vals


def add_parser(sub: argparse._SubParsersAction) -> None:
    # no registry lookup here: listing the built-ins imports torch, and `cellgi --help` must stay fast
    p = sub.add_parser(
        "bench",
        help="benchmark the shared-adjacency model against per-sample graph copies",
        description=(
            "Times training steps (forward+backward+AdamW) and inference of the full lazy Dango model on a "
            "yeast-scale multigraph (6,607 genes, 9 edge types with the published edge counts), for the "
            "shared-adjacency path and the per-sample-copies reference, after checking both predict the same."
        ),
    )
    p.add_argument("spec", nargs="?", help="spec whose model section to benchmark (default: published config)")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1 ... (default cpu)")
    p.add_argument("--batch-size", type=_ints, default=None, help="comma-separated, e.g. 8,32 (default 8)")
    p.add_argument(
        "--aggregator",
        default=None,
        help="aggregator(s), comma-separated or 'all'; see 'cellgi registry list --kind aggregator' (default sum)",
    )
    p.add_argument(
        "--paths",
        default="shared,reference",
        help="comma-separated, from shared (the model's default), shared_no_delta (first-layer delta off), "
        "fused / unfused (per-edge-type convs forced batched / one by one), reference (default shared,reference)",
    )
    p.add_argument(
        "--precision",
        choices=PRECISIONS,
        default="32-true",
        help="32-true (fp32) or bf16-mixed (autocast to bfloat16 in forward; default 32-true)",
    )
    p.add_argument("--scale", type=float, default=1.0, help="shrink genes and edges (1.0 = yeast scale)")
    p.add_argument("--steps", type=int, default=5, help="timed steps per row (median reported)")
    p.add_argument("--warmup", type=int, default=2, help="untimed warm-up steps")
    p.add_argument("--quick", action="store_true", help="CI-sized: --scale 0.05 --steps 2 --warmup 1")
    p.add_argument("--no-isolate", action="store_true", help="CPU: measure in this process (peak RSS less exact)")
    p.add_argument(
        "--screen",
        action="store_true",
        help="measure virtual-screen throughput instead (one query pair x --screen-arrays genes; the screen "
        "path against the plain predict path on the same sets; batch size: the first --batch-size, default 32)",
    )
    p.add_argument("--screen-arrays", type=int, default=256, help="array genes of --screen (default 256)")
    p.add_argument("--predict", metavar="RUN",
                   help="measure how fast a trained run (a run, seed-series or stacked folder) scores random gene "
                   "pairs through cellgi predict/evaluate/screen's scorer, against the former per-batch forward, "
                   "and project a whole-genome pairs screen (--batch-size: the scorer's batch, default its own)")
    p.add_argument("--pairs", type=int, default=262_144, help="pairs scored by --predict (default 262144)")
    p.add_argument("--plain-pairs", type=int, default=4096,
                   help="of which scored by the former per-batch path too (default 4096)")
    p.add_argument("--genome-genes", type=int, default=None,
                   help="--predict: genes of the projected whole-genome screen (default: every gene of the "
                   "model; 5821 = the non-dubious ORFs of SGD_features.tab)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("-o", "--output", help="also write the JSON report to this file")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from cellgi.apps.bench import PATHS, BenchConfig, run_benchmark

    if args.device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            print("error: --device cuda but no CUDA device is available", file=sys.stderr)
            return 1
    spec_model = None
    if args.spec:
        from cellgi.spec import load_spec

        spec_model = load_spec(args.spec).model.model_dump(mode="json")
    reg = get_registry("aggregator")
    if args.aggregator in (None, ""):
        aggs = [spec_model["aggregator"]["type"]] if spec_model else ["sum"]
    elif args.aggregator == "all":
        aggs = reg.names()
    else:
        aggs = [a.strip() for a in args.aggregator.split(",") if a.strip()]
    for a in aggs:
        reg.get(a)  # unknown names: clear error with the valid ones
    paths = [x.strip() for x in args.paths.split(",") if x.strip()]
    bad = [x for x in paths if x not in PATHS]
    if bad or not paths:
        print(f"error: unknown path(s) {bad}; use one or more of {', '.join(PATHS)}", file=sys.stderr)
        return 2
    if args.predict:
        return _run_predict(args)
    scale, steps, warmup = args.scale, args.steps, args.warmup
    if args.quick:
        scale, steps, warmup = min(scale, 0.05), min(steps, 2), min(warmup, 1)
    say = (lambda m: print(m, file=sys.stderr)) if args.json else print
    if args.screen:
        return _run_screen(args, aggs, scale, spec_model, say)
    reports = []
    for agg in aggs:
        cfg = BenchConfig(
            device=args.device,
            batch_sizes=args.batch_size or [8],
            aggregator=agg,
            paths=paths,
            scale=scale,
            steps=steps,
            warmup=warmup,
            isolate=False if args.no_isolate else None,
            spec_model=spec_model,
            precision=args.precision,
        )
        say(f"== aggregator {agg}")
        reports.append(run_benchmark(cfg, progress=say))
    report = _merge(reports, aggs)
    if not _emit_json(args, report):
        _print_table(report)
    return 0


def _emit_json(args: argparse.Namespace, report: dict) -> bool:
    """Write ``report`` as JSON to ``--output`` when given, and to stdout with ``--json`` (returns
    whether it went to stdout, so that the caller prints its table otherwise)."""
    text = json.dumps(report, indent=2)
    if args.output:
        with open(args.output, "w", encoding="utf-8") as fh:
            fh.write(text + "\n")
    if args.json:
        print(text)
    return bool(args.json)


def _run_screen(args: argparse.Namespace, aggs: list[str], scale: float, spec_model, say) -> int:
    from cellgi.apps.bench import BenchConfig, _device_name, screen_benchmark

    if args.screen_arrays < 1:
        print("error: --screen-arrays must be at least 1", file=sys.stderr)
        return 2
    rows = []
    for agg in aggs:
        cfg = BenchConfig(device=args.device, batch_sizes=args.batch_size or [32], aggregator=agg, scale=scale,
                          spec_model=spec_model, precision=args.precision)
        say(f"== aggregator {agg}")
        rows.append(screen_benchmark(cfg, args.screen_arrays, progress=say))
    import torch

    report = {"device": _device_name(args.device), "torch": torch.__version__, "date": time.strftime("%Y-%m-%d"),
              "threads": torch.get_num_threads(), "host_allocator": host_allocator_state(), "screen": rows}
    if not _emit_json(args, report):
        for r in rows:
            print(f"{r['aggregator']}: screen {r['screen_predictions_per_s']:.2f} predictions/s, plain predict "
                  f"{r['plain_predictions_per_s']:.2f} ({r['ratio_screen_over_plain']}x), max |diff| "
                  f"{r['max_abs_diff']:.2g}; full screen of {r['num_genes']} genes ~ {r['projected_full_screen_s']:.0f} s")
    return 0


def _run_predict(args: argparse.Namespace) -> int:
    import torch

    from cellgi.apps.bench import _device_name, predict_benchmark
    from cellgi.cli._common import load_on_device

    if args.pairs < 1 or args.plain_pairs < 1:
        print("error: --pairs and --plain-pairs must be at least 1", file=sys.stderr)
        return 2
    say = (lambda m: print(m, file=sys.stderr)) if args.json else print
    loaded = load_on_device(args.predict, args.device)
    row = predict_benchmark(loaded, args.pairs, args.plain_pairs, batch_size=(args.batch_size or [None])[0],
                            genome_genes=args.genome_genes, progress=say)
    report = {"device": _device_name(args.device), "torch": torch.__version__, "date": time.strftime("%Y-%m-%d"),
              "threads": torch.get_num_threads(), "host_allocator": host_allocator_state(),
              "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "default"),
              "load_average": list(os.getloadavg()), "predict": row}
    if not _emit_json(args, report):
        print(f"{row['predictor']}: scorer {row['scorer_pairs_per_s']:,.0f} pairs/s, former per-batch forward "
              f"{row['plain_pairs_per_s']:,.0f} ({row['ratio_scorer_over_plain']}x), max |diff| {row['max_abs_diff']:.2g}; "
              f"all {row['genome_pairs']:,} pairs of {row['genome_genes']:,} genes ~ "
              f"{row['projected_genome_scoring_s']:,.0f} s of scoring (load average {report['load_average'][0]:.1f})")
    return 0


def _merge(reports: list[dict], aggs: list[str]) -> dict:
    if len(reports) == 1:
        rep = reports[0]
        for r in rep["rows"]:
            r["aggregator"] = aggs[0]
        return rep
    merged = dict(reports[0])
    merged["rows"] = [dict(r, aggregator=a) for rep, a in zip(reports, aggs) for r in rep["rows"]]
    eqs = {a: rep["equivalence_max_abs_diff"] for rep, a in zip(reports, aggs)}
    merged["equivalence_by_aggregator"] = eqs
    measured = [v for v in eqs.values() if v is not None]
    merged["equivalence_max_abs_diff"] = max(measured) if measured else None
    for key in ("ratio_shared_over_reference", "ratio_shared_over_shared_no_delta", "ratio_fused_over_unfused"):
        merged[key] = {a: rep.get(key, {}) for rep, a in zip(reports, aggs)}
    merged["data_path"] = reports[0]["data_path"]
    return merged


def _print_table(report: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    eq = report["equivalence_max_abs_diff"]
    console.print(f"device: {report['device']}; equivalence_max_abs_diff = "
                  + ("not measured" if eq is None else f"{eq:.3g}"))
    t = Table(title="training and inference throughput")
    for col in ("aggregator", "path", "B", "train samples/s", "infer samples/s", "peak mem GiB"):
        t.add_column(col, justify="right")
    for r in report["rows"]:
        if r.get("oom"):
            t.add_row(r.get("aggregator", ""), r["path"], str(r["batch_size"]), "OOM", "OOM", "-")
        else:
            t.add_row(r.get("aggregator", ""), r["path"], str(r["batch_size"]), f"{r['train_samples_per_s']:.2f}",
                      f"{r['infer_samples_per_s']:.2f}", f"{r['peak_mem_gib']:.2f}")
    console.print(t)
    console.print(f"shared / reference: {report['ratio_shared_over_reference']}")
    for key, label in (("ratio_fused_over_unfused", "fused / unfused"),
                       ("ratio_shared_over_shared_no_delta", "shared / shared_no_delta")):
        if report.get(key):
            console.print(f"{label}: {report[key]}")
    for d in report["data_path"]:
        console.print(f"data path at B={d['batch_size']}: collate + to(device) {d['collate_h2d_ms']:.3f} ms "
                      f"({d['fraction_of_train_step']} of a shared training step)")
