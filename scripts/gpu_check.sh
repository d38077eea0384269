#!/usr/bin/env bash
# The one prepared GPU check: every tiny pipeline on CUDA in bf16, in every memory mode, with
# VAE tiling and each step cache, under one timeout; prints the table (benchmarks/bench_gpu.py).
#
#   bash scripts/gpu_check.sh            # on a machine with an NVIDIA GPU
#   OUT=/some/folder LIMIT=480 bash scripts/gpu_check.sh
#
# Needs the model packages (requirements-models.txt) with the CUDA build of torch, and no
# network: the tiny pipelines are built from configs on the spot. The table, the rows as JSON
# and the environment go to $OUT (default /tmp/gpu-check). The exit status is the benchmark's: 0
# when no row is an error, 1 when some are, 124 when the timeout stopped it (the rows done by
# then are in $OUT/gpu_check.json and in the table printed so far).
set -uo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-}
if [[ -z "$PY" ]]; then
  if [[ -x .venv/bin/python ]]; then PY=.venv/bin/python; else PY=python3; fi
fi
OUT=${OUT:-/tmp/gpu-check}
LIMIT=${LIMIT:-540}  # seconds: one run under 10 minutes, with room to start and report
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1

{
  date -u +"%Y-%m-%dT%H:%M:%SZ"
  git rev-parse --short HEAD 2>/dev/null || true
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1 || true
  "$PY" -c 'import torch, diffusers, transformers; print("torch", torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available(), "| diffusers", diffusers.__version__, "| transformers", transformers.__version__)' 2>&1
} | tee "$OUT/environment.txt"

timeout --signal=TERM --kill-after=20 "$LIMIT" \
  "$PY" benchmarks/bench_gpu.py --device cuda --dtype bf16 --run-timeout 120 \
  --json "$OUT/gpu_check.json" "$@" 2>"$OUT/gpu_check.log" | tee "$OUT/gpu_check.txt"
status=${PIPESTATUS[0]}
if [[ $status -eq 124 ]]; then
  echo "stopped by the ${LIMIT}s timeout; the rows so far are in $OUT/gpu_check.json" >&2
elif [[ $status -ne 0 ]]; then
  echo "exit status $status; warnings and tracebacks are in $OUT/gpu_check.log" >&2
fi
exit "$status"
