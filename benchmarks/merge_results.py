"""Merge result files of ``benchmarks/real_data.py`` that ran folds of one spec in separate processes
(``--folds 0,1`` and ``--folds 2``, say) into one file with the summaries recomputed.

    python benchmarks/merge_results.py -o benchmarks/results/emap_real_gene_folds.json part_a.json part_b.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from real_data import summarize  # noqa: E402


def merge(paths: list[str]) -> dict:
    parts = [json.loads(Path(p).read_text()) for p in paths]
    first = parts[0]
    for p in parts[1:]:
        for key in ("spec", "split", "seeds", "split_seed", "max_epochs", "patience", "overrides"):
            if p.get(key) != first.get(key):
                raise SystemExit(f"cannot merge: {key} differs ({p.get(key)!r} vs {first.get(key)!r})")
    out = dict(first)
    out["folds"] = sorted(f for p in parts for f in p["folds"])
    out["seconds"] = round(sum(p["seconds"] for p in parts), 1)
    out["replicates"] = [r for p in parts for r in p["replicates"]]
    out["summary"] = summarize(out["replicates"])
    for key in ("ensemble", "stack"):
        reps = [r for p in parts for r in p.get(key, {}).get("replicates", [])]
        if reps:
            out[key] = {"replicates": reps, "summary": summarize(reps)["model"]}
    out["merged_from"] = [Path(p).name for p in paths]
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("parts", nargs="+")
    ap.add_argument("-o", "--output", required=True)
    args = ap.parse_args(argv)
    Path(args.output).write_text(json.dumps(merge(args.parts), indent=1, default=lambda o: None))
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
