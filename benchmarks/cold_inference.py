"""Inference passes of the benchmark's yeast-scale model in a fresh process, with and without the host
allocator settings of the ``cellgi`` command (docs/performance.md, "The host allocator").

    python benchmarks/cold_inference.py                                   # tuned, as the cellgi command
    CELLGI_HOST_ALLOCATOR=default python benchmarks/cold_inference.py     # glibc's own malloc

Prints milliseconds per pass for the first passes after start (no training before them, unlike
``cellgi bench``, whose inference rows follow the training steps) and their median.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from cellgi.apps.bench import BenchConfig, _batch, _build_model, make_workload
from cellgi.runtime import host_allocator_state, tune_host_allocator


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--passes", type=int, default=6)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--aggregator", default="sum")
    args = parser.parse_args()
    tune_host_allocator()
    cfg = BenchConfig(batch_sizes=[args.batch_size], scale=args.scale, aggregator=args.aggregator)
    graph, spec = make_workload(cfg)
    model = _build_model(cfg, graph, spec, torch.device("cpu")).eval()
    batch = _batch(graph.num_nodes, args.batch_size, cfg.genes_per_sample, cfg.seed + 1)
    times = []
    with torch.inference_mode():
        for _ in range(args.passes):
            t0 = time.perf_counter()
            model(batch)
            times.append(1000 * (time.perf_counter() - t0))
    print(f"host allocator: {host_allocator_state()}")
    print(f"B={args.batch_size}, {graph.num_nodes} genes: ms per pass {[round(t) for t in times]}; "
          f"median {statistics.median(times):.0f} ms = {args.batch_size * 1000 / statistics.median(times):.2f} "
          f"samples/s")


if __name__ == "__main__":
    main()
