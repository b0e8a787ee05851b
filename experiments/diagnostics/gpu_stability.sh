#!/usr/bin/env bash
# MiniGrid-MemoryS9 stability variants on a lent GPU, with the test suite beside them.
#
#   bash experiments/diagnostics/gpu_stability.sh OUT_DIR
#
# Each variant trains each group of SEEDS (default "0-3"; "0-3 4-7" is two groups) in one
# process, the group's seeds at once (stability_sweep.py --together: vmapped in one program),
# for STEPS env steps (default 24M, 3x the slowest time to 0.95 of docs/stability.md),
# stopping after MAX_S seconds (default 400) and recording what ran in
# OUT_DIR/VARIANT_seedsGROUP.jsonl. Every process runs side by side on the one GPU; PYTHON
# (default python3) needs the training stack and xminigrid. With TESTS=1 the test suite runs
# beside them on the same GPU (`pytest -n 8`), its log in OUT_DIR/pytest.log.
set -uo pipefail
out=${1:?usage: gpu_stability.sh OUT_DIR}
python=${PYTHON:-python3}
mkdir -p "$out"
export PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
# The memory suite's MiniGrid-MemoryS9 GTrXL at Adam 5e-4 with the reconstruction loss and
# the recent-norm clip (docs/stability.md).
base=(env.task=MiniGrid-MemoryS9 env.num_envs=64 learner.batch_size=64
      learner.trajectory_len=32 agent.transformer.num_layers=2 agent.transformer.d_model=64
      agent.transformer.num_heads=4 agent.transformer.memory_len=64
      optimizer.learning_rate=5e-4 loss.reconstruction_cost=1.0 optimizer.recent_norm_clip=3)
declare -A variants=(
  [ent03]="loss.entropy_cost=0.03"
  [ent03_eps1e-5]="loss.entropy_cost=0.03 optimizer.eps=1e-5"
  [ent01_eps1e-5]="loss.entropy_cost=0.01 optimizer.eps=1e-5"
  # 4x the batch: 4x fewer steps of Adam's post-solving noise per env step. A curve point
  # every 2 updates (16,384 env steps), finer than the others' 10 x 2,048.
  [ent03_b256]="loss.entropy_cost=0.03 env.num_envs=256 learner.batch_size=256 --interval=2"
  # The suite's GTrXL rate on MiniGrid (1e-3), with Adam and with AMSGrad, whose second
  # moment never decays, so a solved run's steps shrink with its gradients: on the CPU,
  # seed 0 collapsed with Adam at 11.5M and held with AMSGrad (docs/stability.md).
  [lr1e-3]="optimizer.learning_rate=1e-3"
  [lr1e-3_amsgrad]="optimizer.learning_rate=1e-3 optimizer.name=amsgrad"
  [ent03_amsgrad]="loss.entropy_cost=0.03 optimizer.name=amsgrad"
)
pids=()
for name in ${VARIANTS:-ent03 ent03_eps1e-5 ent01_eps1e-5}; do
  for seeds in ${SEEDS:-0-3}; do
    # shellcheck disable=SC2086  # the variant's overrides are words
    "$python" experiments/diagnostics/stability_sweep.py --together --seeds "$seeds" \
      --steps "${STEPS:-24000000}" --max-seconds "${MAX_S:-400}" \
      --out "$out/${name}_seeds$seeds.jsonl" "${base[@]}" ${variants[$name]} \
      >"$out/${name}_seeds$seeds.log" 2>&1 &
    pids+=($!)
  done
done
if [[ ${TESTS:-0} == 1 ]]; then
  "$python" -m pytest -n 8 -q -p no:cacheprovider -rfEs >"$out/pytest.log" 2>&1 &
  pids+=($!)
fi
status=0
for pid in "${pids[@]}"; do wait "$pid" || status=1; done
nvidia-smi >"$out/gpu.txt" 2>&1
exit $status
