#!/usr/bin/env bash
# Memory-suite runs on a lent GPU: each task and core's seeds in one program, side by side.
#
#   bash experiments/suites/gpu_memory.sh OUT_DIR [SUITE_ARGS...]
#
# Every "TASK:CORE" word of RUNS (default: the group the memory suite still lacks,
# MiniGrid-MemoryS17 for TrXL-I) is one process,
# `gtrxl-suite memory --tasks TASK --cores CORE --seeds SEEDS --together` (SEEDS default
# 0,1,2: the suite's), in a suite folder of its own under WORK (default a fresh temporary
# folder), so each process's log and report stay apart.
# All processes share the GPU and stop at BUDGET_S seconds (default 520) with SIGTERM, which
# checkpoints the runs and marks them interrupted (a stop at the budget is not a failure:
# the exit status is 1 only if a process failed). Every 60 s the script prints each run's
# latest training record. At the end OUT_DIR holds runs.tgz (every suite folder without its
# checkpoints and compile cache: the run folders' config, metrics and summary, which
# `gtrxl-suite memory --report-only` reads, and each process's log) and gpu.txt
# (nvidia-smi): what a lent machine gives back. Checkpoints (~7 MB a run) exceed what comes
# back, so only finished runs are worth merging: a run stopped at the budget, merged, has
# output without a checkpoint and the suite trains it afresh. To merge into a slice here:
#
#   tar xzf runs.tgz -C /tmp/gpu && cp -r /tmp/gpu/*/runs/* SLICE/runs/ && \
#       gtrxl-suite memory --out SLICE --tasks ... --cores ... --seeds 0,1,2 --report-only
#
# SUITE_ARGS go to every gtrxl-suite call, e.g. `--set learner.total_env_steps=8192` to check
# the script on any machine in a few minutes. PYTHON (default python3) needs the training
# stack and xminigrid, not envpool.
set -uo pipefail
out=${1:?usage: gpu_memory.sh OUT_DIR [SUITE_ARGS...]}
shift
python=${PYTHON:-python3}
work=${WORK:-$(mktemp -d)}
runs=${RUNS:-"MiniGrid-MemoryS17:trxl_i"}
mkdir -p "$out" "$work"
# Processes share the GPU: none may take most of its memory up front.
export PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"

pids=()
for run in $runs; do
  task=${run%%:*} core=${run##*:}
  timeout --preserve-status -k 30 "${BUDGET_S:-520}" \
    "$python" -m gtrxl_jax.suite memory --tasks "$task" \
    --cores "$core" --seeds "${SEEDS:-0,1,2}" --together --out "$work/${task}_$core" "$@" \
    >"$work/${task}_$core.log" 2>&1 &
  pids+=($!)
done

# progress: each run's newest record (env steps, training success, env steps/s).
report() {
  "$python" - "$work" <<'EOF'
import json, pathlib, sys
for path in sorted(pathlib.Path(sys.argv[1]).glob("*/runs/*/*/seed*/metrics.jsonl")):
    try:  # the newest line may be half written
        r = json.loads(path.read_text().splitlines()[-1])
    except (IndexError, ValueError):
        continue
    if "env_steps" in r:
        print(f"{'/'.join(path.parts[-4:-1]):40s} {r['env_steps']:>10,d} steps  success "
              f"{r.get('success', float('nan')):.2f}  {r.get('sps', 0):>8,.0f} steps/s")
EOF
}
seconds=0
while [[ -n $(jobs -rp) ]]; do
  sleep 5
  if (((seconds += 5) % 60 == 0)); then
    echo "== ${seconds} s; GPU use, memory: $(nvidia-smi --query-gpu=utilization.gpu,memory.used \
      --format=csv,noheader 2>/dev/null)"
    report
  fi
done
status=0
for pid in "${pids[@]}"; do
  wait "$pid"
  code=$?
  # 130: the budget's SIGTERM stopped the training (checkpointed); 143: it came before the
  # training began (nothing to keep). Either is the budget's stop, not a failure.
  ((code == 0 || code == 130 || code == 143)) || status=1
done
report
grep -h "done in\|failed\|Error" "$work"/*.log
nvidia-smi >"$out/gpu.txt" 2>&1
tar czf "$out/runs.tgz" -C "$work" --exclude=checkpoints --exclude=jax_cache .
exit $status
