"""Replay one on-device run and log, per update, what its gradient is made of.

For each update: the gradient norm of each loss term alone (policy gradient, value,
entropy), the largest |advantage|, how many actions had a behaviour probability under 5%
(rare, sampled actions) and the advantage they carried, and the batch's success. On-device
runs are deterministic on one machine, so the run replays the sweep's seed exactly (same
code and settings) and shows what a collapse's gradient spike consists of.

    python experiments/diagnostics/spike_probe.py --seed 5 --updates 400 --out spikes.jsonl \
        env.task=TMaze-L20 learner.trajectory_len=16 learner.segment_len=8 \
        agent.transformer.memory_len=24
"""

import argparse
import dataclasses
import json

import jax
import jax.numpy as jnp
import optax

from gtrxl_jax import losses
from gtrxl_jax.config import load_config
from gtrxl_jax.train import builder, placement
from gtrxl_jax.train.learning import Learning, transitions
from gtrxl_jax.train.on_device import OnDevice


@dataclasses.dataclass(frozen=True)
class ProbedLearning(Learning):
    """Learning whose update also reports each loss term's gradient norm and the rare actions."""

    def update(self, state, batch, axis_name=None):
        """`Learning.update`, plus the probe's metrics (computed on the same batch)."""
        new_state, metrics = super().update(state, batch, axis_name)
        metrics.update(self._probe(state.params, state.popart, batch, axis_name))
        return new_state, metrics

    def _probe(self, params, popart, batch, axis_name):
        cfg = self.loss_config

        def terms(p):
            outputs, _ = self.agent.unroll(p, batch.inputs, batch.core_state,
                                           segment_len=self.segment_len)
            tr = transitions(batch, cfg.discount)
            logits = outputs.logits[:-1]
            values = losses.select_task_values(outputs.values, batch.task_id)
            rhos = losses.importance_ratios(logits, batch.behaviour_logits[:-1],
                                            batch.actions[:-1], tr["mask"])
            targets = losses.vtrace_targets(values, tr["rewards"], tr["discounts"], rhos,
                                            tr["mask"], rho_bar=cfg.rho_bar, c_bar=cfg.c_bar)
            _, m = losses.vtrace_actor_critic_loss(logits, values, batch.actions[:-1], rhos,
                                                   targets, tr["mask"])
            return m, targets, tr["mask"]

        def term(name, scale):
            def f(p):
                return terms(p)[0][name] * scale
            grads = jax.grad(f)(params)
            if axis_name is not None:
                grads = jax.lax.pmean(grads, axis_name)
            return optax.global_norm(grads)

        m, targets, mask = terms(params)
        behaviour = jax.nn.softmax(batch.behaviour_logits[:-1])
        taken = jnp.take_along_axis(behaviour, batch.actions[:-1, ..., None], -1)[..., 0]
        rare = (taken < 0.05) & mask
        advantages = jnp.abs(targets.pg_advantages)
        return {
            "grad_pg": term("pg_loss", 1.0),
            "grad_value": term("baseline_loss", cfg.baseline_cost),
            "grad_entropy": term("entropy", cfg.entropy_cost),
            "max_abs_advantage": advantages.max(),
            "rare_actions": rare.sum().astype(jnp.float32),
            "rare_abs_advantage": jnp.where(rare, advantages, 0.0).sum() / jnp.maximum(
                rare.sum(), 1),
        }


def main() -> None:
    """Replay one seed; print and write one JSON line per update."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="experiments/configs/tmaze.py")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--updates", type=int, default=400)
    parser.add_argument("--out")
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()
    config = load_config(args.config, ["learner.loop=on_device", "learner.actor_processes=false",
                                       "learner.total_env_steps=1000000", *args.overrides])
    layout, spec = builder.check_config(config)
    agent = builder.make_agent(config, spec, num_tasks=1)
    base = builder.make_learning(config, agent, layout)
    learning = ProbedLearning(base.agent, base.loss_config, base.optimizer,
                              segment_len=base.segment_len, num_tasks=base.num_tasks)
    program = OnDevice(learning, builder.make_jax_task(config),
                       num_envs=config.learner.batch_size,
                       trajectory_len=config.learner.trajectory_len,
                       mesh=placement.make_mesh(jax.local_devices()[:1]))
    runner = program.init(jax.random.PRNGKey(args.seed), args.seed)
    update = program.compile_update(runner)
    out = open(args.out, "w") if args.out else None  # noqa: SIM115
    for u in range(args.updates):
        runner, metrics = update(runner)
        metrics = {k: float(v) for k, v in jax.device_get(metrics).items()}
        record = {"update": u + 1,
                  "success": metrics["success_sum"] / max(metrics["episodes"], 1.0),
                  **{k: metrics[k] for k in ("grad_norm", "grad_pg", "grad_value",
                                             "grad_entropy", "update_norm", "entropy",
                                             "max_abs_advantage", "rare_actions",
                                             "rare_abs_advantage")}}
        if out:
            out.write(json.dumps(record) + "\n")
    if out:
        out.close()


if __name__ == "__main__":
    main()
