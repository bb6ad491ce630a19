#!/usr/bin/env bash
# The prepared GPU check (issue 6), for a machine with one CUDA GPU; written for an H200.
#
#     bash benchmarks/gpu.sh [OUT] [EPOCHS]        # OUT: runs/gpu, EPOCHS: 400 (the paper's)
#
# DEVICE=cpu SIZES=32 bash benchmarks/gpu.sh /tmp/smoke 1   runs the same steps on a CPU, as a check
# of the script itself (the gpu tests are then skipped).
#
# It needs torch with CUDA and piade's dependencies; it runs the source tree (PYTHONPATH=src).
#   1. the tests marked gpu (CUDA training with bf16 autocast, compile, detector on the GPU);
#   2. benchmarks/speed.py on the GPU at 120 and 256 px (batch 120 and 32, bf16 autocast);
#   3. benchmarks/fit_time.py: a whole `fit` of EPOCHS epochs on data shaped like one MVTec
#      category (209 images, 120 px) and one CIFAR-10 class (5000 images, 32 px), without and with
#      --compile. The targets: under 2 and under 5 minutes for 400 epochs.
# Every figure lands in OUT as JSON lines; docs/performance.md records them.
set -euo pipefail
OUT=${1:-runs/gpu}
EPOCHS=${2:-400}
PY=${PYTHON:-python3}
DEVICE=${DEVICE:-cuda}
SIZES=${SIZES:-120 256}
mkdir -p "$OUT"
export PYTHONPATH=src${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1

if [ "$DEVICE" != cpu ]; then
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"
fi
$PY -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)" | tee -a "$OUT/gpu.txt"
$PY -m pytest -q -m gpu -p no:cacheprovider tests 2>&1 | tee "$OUT/tests.log"
# shellcheck disable=SC2086  # SIZES is a list
$PY benchmarks/speed.py --device "$DEVICE" --sizes $SIZES --repeats 5 --steps 5 | tee "$OUT/speed.txt"
$PY benchmarks/fit_time.py --device "$DEVICE" --shape mvtec cifar10 --epochs "$EPOCHS" \
    | tee "$OUT/fit.jsonl"
$PY benchmarks/fit_time.py --device "$DEVICE" --shape mvtec cifar10 --epochs "$EPOCHS" --compile \
    | tee -a "$OUT/fit.jsonl"
