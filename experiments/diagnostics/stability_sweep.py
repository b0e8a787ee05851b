"""Many seeds of one on-device configuration in one process: how often a solved run collapses.

Compiles the on-device update once, then trains each seed in turn (or, with --together, every
seed at once in one vmapped program: on a GPU about the cost of one) and writes one JSON line
per seed: its success curve (per log interval of `--interval` updates) and the stability
figures of the memory-results issue: the first interval at >= 95% success, the lowest
success of any later interval, whether the run held >= 90% after solving, and the final
parameters' greedy and sampled success on `--eval-episodes` fresh evaluation episodes.

    python experiments/diagnostics/stability_sweep.py --config experiments/configs/tmaze.py \
        --seeds 0-7 --steps 1000000 --out runs/sweep.jsonl env.task=TMaze-L20 \
        learner.trajectory_len=16 learner.segment_len=8 agent.transformer.memory_len=24
"""

import argparse
import json
import time

import jax
import numpy as np

from gtrxl_jax.config import load_config
from gtrxl_jax.train import builder, placement
from gtrxl_jax.train.evaluation import evaluate_on_device, evaluation_seed
from gtrxl_jax.train.on_device import OnDevice


def parse_seeds(text: str) -> list[int]:
    """Parse a seed list: "0-3,7" -> [0, 1, 2, 3, 7]."""
    seeds = []
    for part in text.split(","):
        low, _, high = part.partition("-")
        seeds.extend(range(int(low), int(high or low) + 1))
    return seeds


def stability(success: list[float], solved_at: float = 0.95, floor: float = 0.90) -> dict:
    """The stability figures of a success curve (one value per interval, NaN: no episode)."""
    curve = np.asarray(success, float)
    reached = np.flatnonzero(curve >= solved_at)
    if reached.size == 0:
        return {"solved_interval": None, "min_after_solved": None, "held": False,
                "final": float(np.nanmean(curve[-5:])) if curve.size else None}
    after = curve[reached[0]:]
    lowest = float(np.nanmin(after))
    return {"solved_interval": int(reached[0]), "min_after_solved": lowest,
            "held": lowest >= floor, "final": float(np.nanmean(curve[-5:]))}


def main() -> None:
    """Train every seed; print and write one JSON line each."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="experiments/configs/tmaze.py")
    parser.add_argument("--seeds", default="0-3")
    parser.add_argument("--steps", type=int, default=1_000_000)
    parser.add_argument("--interval", type=int, default=10, help="updates per curve point")
    parser.add_argument("--metrics", default="update_norm,grad_norm,entropy",
                        help="update metrics whose interval means the record keeps")
    parser.add_argument("--eval-episodes", type=int, default=200,
                        help="evaluation episodes per mode after training (0: none)")
    parser.add_argument("--together", action="store_true",
                        help="train every seed at once, vmapped in one program (cheap on "
                             "an accelerator); default: one seed after another")
    parser.add_argument("--max-seconds", type=float,
                        help="stop training after this many seconds (at least one update) "
                             "and record what ran")
    parser.add_argument("--out")
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_intermixed_args()  # options may follow overrides (gpu_stability.sh)
    config = load_config(args.config, ["learner.loop=on_device", "learner.actor_processes=false",
                                       f"learner.total_env_steps={args.steps}",
                                       *args.overrides])
    layout, spec = builder.check_config(config)
    agent = builder.make_agent(config, spec, num_tasks=1)
    program = OnDevice.for_config(config, agent, layout, jax.local_devices()[:1])
    seed_groups = ([parse_seeds(args.seeds)] if args.together
                   else [[seed] for seed in parse_seeds(args.seeds)])
    deadline = time.monotonic() + args.max_seconds if args.max_seconds else None
    out = open(args.out, "a") if args.out else None  # noqa: SIM115
    single_update = None  # one seed at a time: compiled once, for every seed
    for seeds in seed_groups:
        start = time.monotonic()
        if args.together:
            runners = program.init_seeds(seeds)
            update = program.compile_seeds_update(runners)
        else:
            runners = program.init(jax.random.PRNGKey(seeds[0]), seeds[0])
            single_update = single_update or program.compile_update(runners)
            update = with_seeds_axis(single_update)
        totals = np.zeros((layout.total_updates, len(seeds), 2))  # successes, episodes
        extra = {name: [] for name in args.metrics.split(",")}
        done = 0
        for u in range(layout.total_updates):
            if u and deadline and time.monotonic() > deadline:  # at least one update
                break
            runners, metrics = update(runners)
            metrics = jax.device_get(metrics)
            totals[u] = np.stack([metrics["success_sum"], metrics["episodes"]], -1)
            if u == 0 and (unknown := set(extra) - set(metrics)):
                parser.error(f"--metrics: {sorted(unknown)} are not update metrics; the "
                             f"update reports {sorted(metrics)}.")
            for key in extra:
                extra[key].append(np.asarray(metrics[key], float))
            done = u + 1
        seconds = time.monotonic() - start
        for i, seed in enumerate(seeds):
            params = (jax.tree.map(lambda leaf, i=i: leaf[i], runners.learner.params)
                      if args.together else runners.learner.params)
            record = seed_record(args, layout, agent, program.env, params, seed, totals[:done, i],
                                 {k: [v[i] for v in values] for k, values in extra.items()})
            record["seconds"] = seconds
            if done < layout.total_updates:
                record["stopped_at_env_steps"] = done * layout.steps_per_update
            print(json.dumps({k: v for k, v in record.items()
                              if k not in ("success", *extra)}), flush=True)
            if out:
                out.write(json.dumps(record) + "\n")
                out.flush()


def with_seeds_axis(update):
    """One run's update, its metrics given a seeds axis of 1 (as `compile_seeds_update`'s)."""
    def update_one(runner):
        runner, metrics = update(runner)
        return runner, jax.tree.map(lambda value: value[None], metrics)
    return update_one


def seed_record(args, layout, agent, env, params, seed: int, totals: np.ndarray,
                extra: dict[str, list[float]]) -> dict:
    """One seed's record: its success curve, stability figures and final evaluation.

    totals [U, 2]: successes and episodes per update; params: the run's final parameters.
    """
    per = totals[: len(totals) // args.interval * args.interval].reshape(
        -1, args.interval, 2).sum(1)
    success = np.where(per[:, 1] > 0, per[:, 0] / np.maximum(per[:, 1], 1), np.nan)
    final_eval = {}
    if args.eval_episodes:
        params = jax.device_get(placement.first_replica(params))
        results = evaluate_on_device(agent, params, env, args.eval_episodes,
                                     seed=evaluation_seed(seed))
        final_eval = {f"final_{mode}_success": round(float(values["success"]), 4)
                      for mode, values in results.items()}
    return {"seed": seed, "overrides": args.overrides, "steps": args.steps,
            "interval_env_steps": args.interval * layout.steps_per_update,
            **stability(success.tolist()), **final_eval,
            "success": [round(float(s), 3) for s in success],
            **{k: [round(float(np.mean(v[i:i + args.interval])), 5)
                  for i in range(0, len(v) - args.interval + 1, args.interval)]
               for k, v in extra.items()}}

if __name__ == "__main__":
    main()
