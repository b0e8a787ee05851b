"""A stand-in for gtrxl_jax.train.loop.train that writes the files train() writes."""

import json
import math
from pathlib import Path

from gtrxl_jax.config import TrainConfig, to_dict

# Final success of each core on the T-maze: memory cores solve it, feed-forward guesses.
FINAL = {"gtrxl_gru": 1.0, "trxl_i": 0.9, "trxl": 0.6, "lstm": 0.8, "feedforward": 0.5}


def final_success(config: TrainConfig) -> float:
    core = config.agent.core
    name = f"gtrxl_{config.agent.transformer.gate}" if core == "gtrxl" else core
    return FINAL.get(name, 0.7)


class FakeTrain:
    """Records the configs it was called with; writes metrics.jsonl and summary.json."""

    def __init__(self, interrupt: bool = False, fail_on: str | None = None,
                 best_rates: dict[str, float] | None = None):
        """best_rates: {core: learning rate}; each halving or doubling away costs 0.1."""
        self.calls: list[TrainConfig] = []
        self.interrupt = interrupt
        self.fail_on = fail_on
        self.best_rates = best_rates or {}

    def __call__(self, config: TrainConfig) -> None:
        self.calls.append(config)
        if self.fail_on and self.fail_on in config.run.log_dir:
            raise RuntimeError("simulated crash")
        log_dir = Path(config.run.log_dir)
        log_dir.mkdir(parents=True, exist_ok=True)
        (log_dir / "config.json").write_text(json.dumps(to_dict(config)))
        tasks = [t.strip() for t in config.env.task.split(",")]
        final = final_success(config) - 0.01 * config.run.seed
        best_rate = self.best_rates.get(config.agent.core)
        if best_rate:
            final -= 0.1 * abs(math.log2(config.optimizer.learning_rate / best_rate))
        total = config.learner.total_env_steps
        with open(log_dir / "metrics.jsonl", "w") as file:
            for i in range(1, 6):
                value = 0.5 + (final - 0.5) * i / 5
                record = {
                    "update": i,
                    "env_steps": total * i // 5,
                    "sps": 1000.0,
                    "episode_return": value,
                    "success": value,
                    "loss": 0.1,
                }
                if len(tasks) > 1:
                    for k, task in enumerate(tasks):
                        record[f"episode_return/{task}"] = value - 0.1 * k
                        record[f"success/{task}"] = value - 0.1 * k
                file.write(json.dumps(record) + "\n")
        if self.interrupt:
            (log_dir / "checkpoints" / "3").mkdir(parents=True)
        evaluation = {}
        for mode, drop in (("greedy", 0.0), ("sampled", 0.05)):
            per_task = {
                task: {
                    "episode_return": final - drop - 0.1 * k,
                    "success": final - drop - 0.1 * k,
                    "episode_length": 6.0,
                    "episodes": 100,
                }
                for k, task in enumerate(tasks)
            }
            if len(tasks) == 1:
                evaluation[mode] = per_task[tasks[0]]
            else:
                evaluation[mode] = {
                    "episode_return": 0.0,
                    "success": 0.0,
                    "episodes": 200,
                    "tasks": per_task,
                }
        summary = {
            "eval": evaluation,
            "env_steps": total,
            "wall_clock_s": 12.0,
            "sps": 1000.0,
            "interrupted": self.interrupt,
        }
        (log_dir / "summary.json").write_text(json.dumps(summary))


class FakeTrainSeeds:
    """A stand-in for gtrxl_jax.train.loop.train_seeds: FakeTrain on each of a group's configs."""

    def __init__(self, **kwargs):
        """kwargs: FakeTrain's."""
        self.train = FakeTrain(**kwargs)
        self.groups: list[list[TrainConfig]] = []

    def __call__(self, configs: list[TrainConfig]) -> None:
        self.groups.append(configs)
        for config in configs:
            self.train(config)
