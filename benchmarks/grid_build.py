"""Build time and peak memory of genome-wide SGA grids (format ``sga_grid``).

Two grids, each built in a fresh subprocess so that its peak memory is its own:

- ``dev``: the Costanzo 2010 stringent-cutoff development file (../shared/data/yeast), on the SGD gene list;
- ``full``: a generated grid of the Costanzo 2010 size, 1,711 query x 3,885 array *strains* (several
  temperature-sensitive alleles per essential query gene, query and array genes overlapping), about 1 %
  of the strain pairs listed, written in the 2010 listing layout and read back.

For each: reading, mapping (alleles, reciprocal and self pairs) to a :class:`~cellgi.data.grid.GridDataset`,
the ``gene_folds`` split, one epoch of the weighted sampler (share 0.05), cutting batches of 8,192 pairs,
the bytes of the compact store and of the processed-data cache entry, and the process's peak resident
memory (``ru_maxrss``) before and after. torch runs on one thread (``torch.set_num_threads(1)``).

    python benchmarks/grid_build.py            # both grids
    python benchmarks/grid_build.py --case dev
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
YEAST = Path(os.environ.get("CELLGI_YEAST_DATA", REPO.parent / "shared" / "data" / "yeast"))


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def generate_full(path: Path, seed: int = 0, num_query: int = 1711, num_array: int = 3885,
                  listed: float = 0.01) -> list[str]:
    """Write a Costanzo-2010-sized listing file; returns the gene list it uses."""
    import numpy as np

    rng = np.random.default_rng(seed)
    genes = [f"Y{i:05d}W" for i in range(6000)]
    # queries: 1,400 genes, 250 of them with 2-3 ts alleles -> 1,711 strains; arrays: 3,885 genes, 1,000 shared
    qgenes = rng.choice(6000, 1400, replace=False)
    extra = rng.choice(qgenes, 311, replace=True)
    qstrains = [f"{genes[g]}_sn{k}" for k, g in enumerate(qgenes)] + [f"{genes[g]}_tsq{k}" for k, g in enumerate(extra)]
    shared = rng.choice(qgenes, 1000, replace=False)
    rest = np.setdiff1d(np.arange(6000), qgenes)
    agenes = np.concatenate([shared, rng.choice(rest, num_array - shared.size, replace=False)])
    astrains = [f"{genes[g]}_dma{k}" for k, g in enumerate(agenes)]
    assert len(qstrains) == num_query and len(astrains) == num_array
    cells = rng.choice(num_query * num_array, int(listed * num_query * num_array), replace=False)
    q, a = cells // num_array, cells % num_array
    eps = np.where(rng.random(cells.size) < 0.9, rng.normal(-0.25, 0.1, cells.size), rng.normal(0.2, 0.05, cells.size))
    with path.open("w") as fh:
        for qi, ai, e in zip(q.tolist(), a.tolist(), eps.tolist()):
            qs, as_ = qstrains[qi], astrains[ai]
            fh.write(f"{qs}\t{qs.split('_')[0]}\t{as_}\t{as_.split('_')[0]}\t{e:.4f}\t0.05\t0.001\n")
    return genes


def run_case(case: str) -> dict:
    import torch

    torch.set_num_threads(1)
    from cellgi.data.genes import GeneMapper
    from cellgi.data.grid import map_grid
    from cellgi.data.grid_sampler import GridEpochSampler
    from cellgi.data.readers import read_sgd_features
    from cellgi.data.readers.sga_grid import read_sga_grid
    from cellgi.data.splits import make_splits

    out: dict = {"case": case, "torch_threads": torch.get_num_threads()}
    with tempfile.TemporaryDirectory() as tmp:
        if case == "dev":
            path = YEAST / "interactions" / "costanzo2010_sga_stringent_dev.txt"
            mapper = read_sgd_features(YEAST / "genes" / "SGD_features.tab",
                                       ["Verified", "Uncharacterized", "Dubious"]).mapper()
        else:
            path = Path(tmp) / "full_listing.txt"
            t = time.perf_counter()
            mapper = GeneMapper(generate_full(path))
            out["generate_s"] = round(time.perf_counter() - t, 2)
        out["rss_before_mb"] = round(_rss_mb(), 1)
        t0 = time.perf_counter()
        raw = read_sga_grid(path)
        t1 = time.perf_counter()
        load = map_grid(raw, mapper, ["gene_interaction"])
        t2 = time.perf_counter()
        ds = load.dataset
        split = make_splits(ds, "gene_folds", seed=0, num_folds=5, fold=0, val_fraction=0.1)
        t3 = time.perf_counter()
        sampler = GridEpochSampler(ds, split.splits["train"], 1024, share=0.05, seed=0)
        n_epoch = sum(b.indices.numel() for b in sampler)
        t4 = time.perf_counter()
        test = split.splits["test"]
        n_b = 0
        for lo in range(0, min(test.numel(), 40 * 8192), 8192):
            n_b += ds.batch(test[lo : lo + 8192]).num_samples
        t5 = time.perf_counter()
        buf = io.BytesIO()
        torch.save(ds.state_dict(), buf)
        c = load.counts
        out.update({
            "rows": c["rows"], "query_strains": c["query_strains"], "array_strains": c["array_strains"],
            "query_genes": c["query_genes"], "array_genes": c["array_genes"], "grid_pairs": c["grid_pairs"],
            "listed_pairs": c["listed_pairs"], "reciprocal_pairs": c["reciprocal_pairs"],
            "alleles_merged": c["alleles_merged"],
            "read_s": round(t1 - t0, 3), "map_s": round(t2 - t1, 3), "build_s": round(t2 - t0, 3),
            "gene_folds_split_s": round(t3 - t2, 3), "sampler_epoch_s": round(t4 - t3, 3),
            "sampler_epoch_pairs": n_epoch, "batch_pairs_per_s": round(n_b / max(t5 - t4, 1e-9)),
            "store_bytes": ds.nbytes(), "cache_entry_bytes": buf.getbuffer().nbytes,
            "flat_dataset_bytes_estimate": int(len(ds) * (2 * 4 + 8 + 4 + 4 + 1 + 2 + 4 + 1)),
            "rss_peak_mb": round(_rss_mb(), 1),
        })
        out["rss_increase_mb"] = round(out["rss_peak_mb"] - out["rss_before_mb"], 1)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--case", choices=["dev", "full"], help="one grid, in this process")
    ap.add_argument("--json", action="store_true", help="print JSON lines only")
    args = ap.parse_args()
    if args.case:
        print(json.dumps(run_case(args.case)))
        return
    results = []
    for case in ("dev", "full"):
        proc = subprocess.run([sys.executable, __file__, "--case", case], capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            sys.exit(f"{case}: failed\n{proc.stderr}")
        results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    if args.json:
        for r in results:
            print(json.dumps(r))
        return
    keys = [k for k in dict.fromkeys(k for r in results for k in r) if k != "case"]
    print(f"{'':28s}" + "".join(f"{r['case']:>16s}" for r in results))
    for k in keys:
        print(f"{k:28s}" + "".join(f"{r.get(k, '-')!s:>16s}" for r in results))


if __name__ == "__main__":
    main()
