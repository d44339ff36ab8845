"""``cellgi predict`` on many gene sets: throughput and peak memory, to show that nothing grows with the input.

    python benchmarks/predict_stream.py RUN_DIR_OR_CKPT --sets 1000000 --batch-size 1024

Writes ``--sets`` random pairs and triples of the model's genes to a temporary file, predicts them with
:func:`cellgi.apps.predict.predict_file` (the ``cellgi predict`` core) and prints sets per second and the
process's peak resident memory after 1/10 of the sets and at the end: with streaming, the peak does not
grow with the number of sets.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import numpy as np


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _write_sets(path: Path, genes: list[str], n: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    g = np.asarray(genes)
    with path.open("w") as fh:
        for lo in range(0, n, 100_000):
            m = min(100_000, n - lo)
            idx = rng.choice(len(genes), size=(m, 3))
            sizes = rng.integers(2, 4, size=m)
            lines = [";".join(dict.fromkeys(g[row[:k]])) for row, k in zip(idx, sizes)]
            fh.write("\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint")
    parser.add_argument("--sets", type=int, default=1_000_000)
    parser.add_argument("--batch-size", type=int, default=1024)
    args = parser.parse_args()

    from cellgi.apps.predict import predict_file
    from cellgi.predictors import load_predictor

    loaded = load_predictor(args.checkpoint)
    with tempfile.TemporaryDirectory() as tmp:
        inp, out = Path(tmp) / "sets.txt", Path(tmp) / "out.tsv"
        _write_sets(inp, loaded.mapper.genes, args.sets)
        print(f"input: {args.sets:,} sets, {inp.stat().st_size / 2**20:.1f} MiB; peak RSS before: {_peak_mib():.0f} MiB")
        tenth = inp.with_name("tenth.txt")
        with inp.open() as src, tenth.open("w") as dst:
            for i, line in enumerate(src):
                if i >= args.sets // 10:
                    break
                dst.write(line)
        t0 = time.perf_counter()
        r = predict_file(loaded, tenth, out, batch_size=args.batch_size, overwrite=True)
        dt = time.perf_counter() - t0
        print(f"{r.written:,} sets: {r.written / dt:,.0f} sets/s, peak RSS {_peak_mib():.0f} MiB")
        t0 = time.perf_counter()
        r = predict_file(loaded, inp, out, batch_size=args.batch_size, overwrite=True)
        dt = time.perf_counter() - t0
        print(f"{r.written:,} sets: {r.written / dt:,.0f} sets/s, peak RSS {_peak_mib():.0f} MiB, "
              f"output {out.stat().st_size / 2**20:.1f} MiB, skipped {r.skipped}")


if __name__ == "__main__":
    main()
