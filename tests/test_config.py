"""The training config: defaults, overrides and config files.

Bad keys, types and values are tested in tests/reliability/test_bad_config.py.
"""

import json

import jax.numpy as jnp
import numpy as np
import pytest

from gtrxl_jax.config import (
    AgentConfig,
    ConfigError,
    TrainConfig,
    apply_overrides,
    config_differences,
    from_dict,
    load_config,
    to_dict,
    with_new_keys,
)
from gtrxl_jax.nn import GTrXLConfig


def test_overrides_convert_types_and_nest():
    config = apply_overrides(
        TrainConfig(),
        [
            "agent.core=trxl_i",
            "agent.transformer.memory_len=64",
            "env.options.max_episode_steps=500",
            "learner.segment_len=8",
            "learner.actor_devices=0,1",
            "optimizer.max_grad_norm=none",
            "loss.popart=true",
            "loss.discount=0.9",
        ],
    )
    assert config.agent.core_config().variant == "trxl_i"
    assert config.agent.core_config().memory_len == 64
    assert config.env.options == {"max_episode_steps": 500}
    assert config.learner.segment_len == 8 and config.learner.actor_devices == (0, 1)
    assert config.optimizer.max_grad_norm is None and config.loss.popart
    assert config.loss.discount == 0.9


def test_an_int_may_be_written_as_an_integral_float():
    config = apply_overrides(TrainConfig(), ["learner.total_env_steps=1e6"])
    assert config.learner.total_env_steps == 1_000_000
    assert isinstance(config.learner.total_env_steps, int)


def test_a_dict_entry_written_as_a_power_of_ten_is_an_int():
    """As numbers may be written elsewhere (learner.total_env_steps=1e6): an environment
    option such as max_episode_steps=1e3 reaches the environment as 1000, not 1000.0."""
    config = apply_overrides(TrainConfig(), ["env.options.max_episode_steps=1e3",
                                             "env.options.scale=2.5e-1", "env.options.gain=1.0"])
    assert config.env.options == {"max_episode_steps": 1000, "scale": 0.25, "gain": 1.0}
    assert isinstance(config.env.options["max_episode_steps"], int)
    assert isinstance(config.env.options["gain"], float)


def test_a_comma_separated_dict_entry_is_a_tuple():
    config = apply_overrides(TrainConfig(), ["agent.torso_options.hidden_sizes=32,16",
                                             "env.options.sizes=8,", "env.options.name=a"])
    assert config.agent.torso_options == {"hidden_sizes": (32, 16)}
    assert config.env.options == {"sizes": (8,), "name": "a"}


def test_a_dtype_given_as_a_dtype_is_kept_by_name_and_saves():
    transformer = GTrXLConfig(num_layers=1, d_model=16, num_heads=2, memory_len=4,
                              dtype=jnp.bfloat16, param_dtype=np.float32)
    assert (transformer.dtype, transformer.param_dtype) == ("bfloat16", "float32")
    config = TrainConfig(agent=AgentConfig(transformer=transformer))
    assert from_dict(TrainConfig, json.loads(json.dumps(to_dict(config)))) == config


def test_round_trip_through_dicts():
    config = apply_overrides(TrainConfig(), ["agent.core=lstm", "agent.lstm.hidden_size=32"])
    assert from_dict(TrainConfig, to_dict(config)) == config


def test_load_config_file(tmp_path):
    path = tmp_path / "exp.py"
    path.write_text(
        "from gtrxl_jax.config import TrainConfig, EnvConfig\n"
        "def get_config():\n"
        "    return TrainConfig(env=EnvConfig(task='TMaze-L4', num_envs=4))\n"
    )
    config = load_config(str(path), ["env.num_envs=8"])
    assert config.env.task == "TMaze-L4" and config.env.num_envs == 8
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(str(tmp_path / "missing.py"))
    (tmp_path / "empty.py").write_text("x = 1\n")
    with pytest.raises(ConfigError, match="must define get_config"):
        load_config(str(tmp_path / "empty.py"))


def test_a_key_the_saved_config_predates_counts_at_its_default():
    saved = to_dict(TrainConfig())
    del saved["optimizer"]["recent_norm_clip"]  # a key added since the run was saved
    at_default = to_dict(apply_overrides(TrainConfig(), ["loss.entropy_cost=0.03"]))
    assert config_differences(with_new_keys(saved), at_default, saved_as="then") == [
        "loss.entropy_cost: 0.01 then, 0.03 now"]
    set_now = to_dict(apply_overrides(TrainConfig(), ["optimizer.recent_norm_clip=3"]))
    assert config_differences(with_new_keys(saved), set_now, saved_as="then") == [
        "optimizer.recent_norm_clip: None then, 3.0 now"]
    assert config_differences(saved, set_now) == [
        "optimizer.recent_norm_clip: '<absent>' in the checkpoint, 3.0 now"]
    assert "recent_norm_clip" not in saved["optimizer"]  # with_new_keys copies
