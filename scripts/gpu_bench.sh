#!/usr/bin/env bash
# The GPU figures of the README's performance table in one run, prepared for a lent GPU.
#
#   bash scripts/gpu_bench.sh [OUT_DIR]     # OUT_DIR: default $OUT if set, else runs/gpu_bench
#
# For each workload (the reference, then the paper's DMLab scale): learn and act in
# bfloat16 and in float32, each run with the ceilings it is given against; then the
# reference's memory sweep in bfloat16.
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
configs=${CONFIGS:-reference paper}
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

for config in $configs; do
  bench --config "$config" --dtype bfloat16 --only learn,act
  bench --config "$config" --dtype float32 --only learn,act
done
bench --config "${configs%% *}" --dtype bfloat16 --only scaling

"$python" -m gtrxl_jax.bench.cli --summarize "$out/bench.jsonl" | tee "$out/summary.txt"
exit "$failed"
