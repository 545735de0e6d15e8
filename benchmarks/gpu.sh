#!/usr/bin/env bash
# One prepared run for a lent GPU machine: the fast Fashion-MNIST recipe for 5 seeds on CUDA.
# Figures go to $OUT (default: runs/gpu):
#   $OUT/time_to_accuracy.txt   the table (test accuracy mean +- std, wall time per run)
#   $OUT/runs/<recipe>-seed<S>/ each run's metrics.csv, summary.json, env.json
#   $OUT/nvidia-smi.txt         the GPU it ran on
# Expected: well under 10 minutes in all (each run is a few epochs of a ~10 M MAC network).
#
#     bash benchmarks/gpu.sh            # from the repository root, with .venv installed
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-runs/gpu}"
PYTHON="${PYTHON:-.venv/bin/python}"
mkdir -p "$OUT"
nvidia-smi > "$OUT/nvidia-smi.txt" 2>&1 || echo "nvidia-smi not found" > "$OUT/nvidia-smi.txt"
"$PYTHON" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'error: torch sees no CUDA device.')"
timeout 540 "$PYTHON" benchmarks/time_to_accuracy.py --device cuda --seeds 5 --recipe fast-fashion-mnist \
    --output "$OUT/runs" --no-append | tee "$OUT/time_to_accuracy.txt"
# Keep only small files: the checkpoints are not figures.
find "$OUT/runs" -name '*.pt' -delete
