#!/usr/bin/env bash
# The GPU figures of docs/performance.md's table in one run, prepared for a lent GPU.
#
#   bash scripts/gpu_bench.sh [OUT_DIR]     # OUT_DIR: default $OUT if set, else runs/gpu_bench
#
# In order of what the issues ask first, each step a separate process:
#   1. the paper's DMLab scale in bfloat16: the core's learn and act, the whole learner update
#      (the bf16 MFU target), then a profile of that learn (thunk_profile.py);
#   2. the on-device loop's env steps/s on the T-maze with the fast suite's model against the
#      number of environments (ON_DEVICE_ENVS; the 1M env steps/s target);
#   3. an end-to-end run: the main job's experiment on device (tmaze_on_device.py), its
#      metrics and time to solve;
#   4. the reference workload in bfloat16, then both workloads in float32, then the memory
#      sweep.
# The whole script keeps to BUDGET_S seconds (default 540: 9 minutes, compiles included):
# each step gets what is left of it, capped at STEP_TIMEOUT (default 300), and a step that
# would get under a minute is skipped. Records are appended as they come, so a run cut off
# still leaves what it measured. Learn and act report MFU where the chip's peak is known
# (gtrxl_jax/bench/peaks.py).
#
# PYTHON (default python3) needs JAX for the GPU and Flax; steps 1 (learn, act), 4 and the
# ceilings need nothing else, so a GPU machine's own Python will do for them. The learner
# update, the on-device loop and the training run also need the training stack (rlax, optax,
# orbax, tensorboardX, ...; envpool is not needed for these JAX tasks). It writes
# OUT_DIR/bench.jsonl (every record), summary.txt (a line per record, also printed), gpu.txt
# (nvidia-smi), errors.txt (stderr), profile.tgz (the profile's report.txt, trace.json.gz
# and hlo.txt) and the training run's metrics.jsonl and train_summary.json (8 files, what a
# lent machine gives back), and exits 1 if a step failed, timed out or was skipped.
# CONFIGS="tiny" ON_DEVICE_ENVS=4 TRAIN_STEPS=2048 checks the script itself on any machine
# in a few minutes.
set -uo pipefail

out=${1:-${OUT:-runs/gpu_bench}}
python=${PYTHON:-python3}
configs=${CONFIGS:-paper reference}
on_device_envs=${ON_DEVICE_ENVS:-1024,4096,16384,65536}
train_steps=${TRAIN_STEPS:-500000}
deadline=$((SECONDS + ${BUDGET_S:-540}))
mkdir -p "$out"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
nvidia-smi >"$out/gpu.txt" 2>&1 || echo "nvidia-smi did not run" >"$out/gpu.txt"

failed=0
# step NAME COMMAND...: runs COMMAND with what is left of the budget, logging to errors.txt.
step() {
  local name=$1 left=$((deadline - SECONDS))
  shift
  local limit=$((left < ${STEP_TIMEOUT:-300} ? left : ${STEP_TIMEOUT:-300}))
  if ((limit < 60)); then
    echo "== $name: skipped, ${left}s of the budget left" | tee -a "$out/errors.txt"
    failed=1
    return
  fi
  echo "== $name (at most ${limit}s)" | tee -a "$out/errors.txt"
  timeout "$limit" "$@" >/dev/null 2>>"$out/errors.txt"
  local status=$?
  if ((status != 0)); then
    echo "   failed with exit status $status (124: timed out); see $out/errors.txt"
    failed=1
  fi
}
bench() {
  step "gtrxl-bench $*" "$python" -m gtrxl_jax.bench.cli --out "$out/bench.jsonl" "$@"
}

first=${configs%% *}
bench --config "$first" --dtype bfloat16 --only learn,act,update
# Where that learn's time goes: the kernels' report, the trace and the compiled HLO that
# maps kernels to code, in one archive (docs/performance.md, "Where the paper-scale learn's
# time goes").
profile=$(mktemp -d)
step "profile learn --config $first --dtype bfloat16" bash -c '"$0" \
  experiments/bench/thunk_profile.py learn --config "$1" --dtype bfloat16 --calls 5 \
  --keep-trace "$2/trace.json.gz" --keep-hlo "$2/hlo.txt" >"$2/report.txt"' \
  "$python" "$first" "$profile"
if [[ -s $profile/report.txt ]]; then
  tar czf "$out/profile.tgz" -C "$profile" . && head -n 12 "$profile/report.txt"
fi
# --config sizes only the ceiling this sweep reports beside it: the first workload's, as above.
bench --config "$first" --only on_device_envs --on-device-envs "$on_device_envs"
run_dir=$(mktemp -d)/tmaze_on_device
step "train tmaze_on_device" "$python" -m gtrxl_jax.train \
  --config experiments/configs/tmaze_on_device.py "learner.total_env_steps=$train_steps" \
  "run.log_dir=$run_dir" run.progress=false
cp "$run_dir/metrics.jsonl" "$out/metrics.jsonl" 2>/dev/null
cp "$run_dir/summary.json" "$out/train_summary.json" 2>/dev/null
for config in ${configs#"$first"}; do
  bench --config "$config" --dtype bfloat16 --only learn,act,update
done
for config in $configs; do
  bench --config "$config" --dtype float32 --only learn,act,update
done
bench --config "${configs##* }" --dtype bfloat16 --only scaling

if [[ -s $out/bench.jsonl ]]; then
  "$python" -m gtrxl_jax.bench.cli --summarize "$out/bench.jsonl" | tee "$out/summary.txt"
fi
exit "$failed"
