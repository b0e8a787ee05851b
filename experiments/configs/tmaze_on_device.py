"""The default experiment on the on-device path: the same task, model and budget as tmaze.py.

GTrXL on the passive T-maze with a 16-step corridor, with the T-maze written in JAX stepping
inside the same compiled program as acting and learning (`learner.loop=on_device`). The
environments, the batch and the learner's settings are tmaze.py's, so the two paths can be
compared run for run (`gtrxl-bench --only on_device`).

    python -m gtrxl_jax.train --config experiments/configs/tmaze_on_device.py
"""

import dataclasses
from pathlib import Path

from gtrxl_jax.config import TrainConfig, load_config


def get_config() -> TrainConfig:
    """The T-maze experiment on device."""
    config = load_config(str(Path(__file__).with_name("tmaze.py")))
    return dataclasses.replace(
        config,
        learner=dataclasses.replace(config.learner, loop="on_device", actor_processes=False),
        run=dataclasses.replace(config.run, log_dir="runs/tmaze_on_device"),
    )
