#!/usr/bin/env bash
# Every GPU measurement of docs/performance.md in one prepared run, for a session lent a device machine.
#
#   1. here (with internet to PyPI):   bash benchmarks/gpu_session.sh --fetch-wheels
#      downloads pydantic and rich (and their dependencies) as wheels into .wheels/ (git-ignored), for
#      the device image that has torch, PyG and Lightning but not these;
#   2. on the device, carrying .wheels:  bash benchmarks/gpu_session.sh
#      (about 6-8 minutes on an H100/H200 at STEPS=5: order the row sets by priority when time is short)
#      installs the wheels offline, prints the device, then runs the benchmarks below; the JSON reports
#      land in $OUT (the device tool's output folder) or benchmarks/results/gpu-run/.
#
# Settings: SCALE (1.0 = yeast scale), STEPS, WARMUP; DEVICE (default cuda) lets the script be tried on
# a CPU at small scale: DEVICE=cpu SCALE=0.05 STEPS=1 WARMUP=1 bash benchmarks/gpu_session.sh
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ "${1:-}" == "--fetch-wheels" ]]; then
    for py in 3.10 3.11 3.12 3.13; do
        python -m pip download --quiet --only-binary=:all: --python-version "$py" \
            --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 --platform any \
            -d .wheels "pydantic>=2.7,<3" "rich>=13"
    done
    ls .wheels
    exit 0
fi

DEVICE=${DEVICE:-cuda}
SCALE=${SCALE:-1.0}
STEPS=${STEPS:-5}
WARMUP=${WARMUP:-2}
RESULTS=${OUT:-benchmarks/results/gpu-run}
mkdir -p "$RESULTS"
if ! python -c "import pydantic, rich" 2>/dev/null; then
    python -m pip install --quiet --no-index --find-links .wheels pydantic rich
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
python - <<'PY' | tee "$RESULTS/environment.txt"
import torch, torch_geometric, lightning, pydantic
print("torch", torch.__version__, "pyg", torch_geometric.__version__, "lightning", lightning.__version__,
      "pydantic", pydantic.__version__)
print("cuda", torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else "-")
PY

bench() {  # name, then cellgi bench arguments; one failing row set does not stop the others
    local name=$1
    shift
    echo "== $name: cellgi bench $*"
    python -m cellgi.cli.main bench --device "$DEVICE" --scale "$SCALE" --steps "$STEPS" --warmup "$WARMUP" \
        --json -o "$RESULTS/$name.json" "$@" > /dev/null 2> "$RESULTS/$name.log" || echo "   FAILED (see $name.log)"
    tail -n 2 "$RESULTS/$name.log" | sed 's/^/   /'
}

# sum (the published default of `cellgi bench`): >= 20x the reference at B=32 (fused and unfused, with
# and without the first-layer delta in the same run)
bench sum-b32 --aggregator sum --batch-size 32 --paths shared,unfused,shared_no_delta,reference
# >= 1,000 training samples/s at B=256 in fp32, the fused-vs-unfused ratio there, and B=512 / 1,024 fit
bench sum-large --aggregator sum --batch-size 256,512,1024 --paths shared,unfused
# >= 2,000 training samples/s at B=256 in bf16-mixed (and B=1,024 in bf16)
bench sum-large-bf16 --aggregator sum --batch-size 256,1024 --paths shared,unfused --precision bf16-mixed
# pairwise_interaction: >= 500 samples/s at B=128 (fused and unfused), fp32 and bf16-mixed
bench pairwise-b128 --aggregator pairwise_interaction --batch-size 128 --paths shared,unfused,shared_no_delta
bench pairwise-b128-bf16 --aggregator pairwise_interaction --batch-size 128 --paths shared,unfused --precision bf16-mixed
# virtual screen: one query pair against every gene (the full screen), screen path vs plain predict path
bench screen-sum --screen --screen-arrays 6605 --aggregator sum --batch-size 256
bench screen-pairwise --screen --screen-arrays 6605 --aggregator pairwise_interaction --batch-size 256
bench screen-pairwise-bf16 --screen --screen-arrays 6605 --aggregator pairwise_interaction --batch-size 256 \
    --precision bf16-mixed
# genome scale (issue 24, item 9): one epoch of the Costanzo 2010 grid (every listed training pair and 5 % of the
# neutral ones, about 80,000 pairs), the shipped local-only model against the same model with the global head
# (per-sample masked message passing over the whole cell, gated with the local head); validation and test on
# uniform samples of 20,000 pairs; training pairs/s from each run's log. Needs the yeast data: $CELLGI_YEAST_DATA
# or ../shared/data/yeast beside the checkout.
YEAST=${CELLGI_YEAST_DATA:-../shared/data/yeast}
if [ -f "$YEAST/interactions/costanzo2010_sga_stringent_dev.txt" ]; then
    for variant in local gate; do
        extra=()
        if [ "$variant" = gate ]; then
            extra=(model.combiner.type=gate "model.global_predictor={type: mlp}" "model.pooling={type: attentional}")
        fi
        echo "== costanzo-epoch-$variant"
        ( time python -m cellgi.cli.main train configs/costanzo_genome.yaml "data.root=$(cd "$YEAST" && pwd)" \
            name="costanzo-epoch-$variant" training.max_epochs=1 training.early_stopping=null "training.baselines=[]" \
            training.stack=null training.trainer.accelerator="${DEVICE%%:*}" data.batch_size=256 \
            data.neutral_sampling.val_pairs=20000 data.neutral_sampling.test_pairs=20000 "${extra[@]}" \
            --runs-root "$RESULTS/runs" ) > "$RESULTS/costanzo-epoch-$variant.log" 2>&1 || echo "   FAILED"
        grep -a -E "^epoch|samples/s|^real" "$RESULTS/costanzo-epoch-$variant.log" | tail -n 3 | sed 's/^/   /'
    done
else
    echo "== costanzo-epoch: skipped, no yeast data at $YEAST"
fi
echo "results in $RESULTS"
