#!/usr/bin/env bash
# The GPU figures of docs/performance.md's table in one run, prepared for a lent GPU.
#
#   bash scripts/gpu_bench.sh [OUT_DIR]     # OUT_DIR: default $OUT if set, else runs/gpu_bench
#
# Learn and act in bfloat16, then in float32, each for the paper's DMLab scale and then the
# reference workload (each run with the ceilings it is given against); then the last
# workload's memory sweep in bfloat16. The GPU target (bf16 MFU at the paper's
# scale) comes first, and records are appended as they come, so a run stopped at its time
# limit still leaves what it measured.
# Learn and act report MFU where the chip's peak is known (gtrxl_jax/bench/peaks.py).
#
# It needs a Python with JAX for the GPU and Flax (PYTHON, default python3): the core's
# measurements do not import envpool or the rest of the training stack, so a GPU machine's
# own Python will do. It writes OUT_DIR/bench.jsonl (every record), summary.txt (a line per
# record, also printed), gpu.txt (nvidia-smi) and errors.txt (stderr), and exits 1 if a
# step failed or ran past STEP_TIMEOUT seconds (default 300). CONFIGS="tiny" checks the
# script itself on any machine in a minute.
set -uo pipefail

out=${1:-${OUT:-runs/gpu_bench}}
python=${PYTHON:-python3}
configs=${CONFIGS:-paper reference}
mkdir -p "$out"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
nvidia-smi >"$out/gpu.txt" 2>&1 || echo "nvidia-smi did not run" >"$out/gpu.txt"

failed=0
bench() {
  echo "== gtrxl-bench $*" | tee -a "$out/errors.txt"
  timeout "${STEP_TIMEOUT:-300}" "$python" -m gtrxl_jax.bench.cli --out "$out/bench.jsonl" "$@" \
    >/dev/null 2>>"$out/errors.txt"
  local status=$?
  if ((status != 0)); then
    echo "   failed with exit status $status (124: timed out); see $out/errors.txt"
    failed=1
  fi
}

for dtype in bfloat16 float32; do
  for config in $configs; do
    bench --config "$config" --dtype "$dtype" --only learn,act
  done
done
bench --config "${configs##* }" --dtype bfloat16 --only scaling

"$python" -m gtrxl_jax.bench.cli --summarize "$out/bench.jsonl" | tee "$out/summary.txt"
exit "$failed"
