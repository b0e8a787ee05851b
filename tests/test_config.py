"""The training config: defaults, overrides, and errors that name the key."""

import pytest

from gtrxl_jax.config import (
    ConfigError,
    TrainConfig,
    apply_overrides,
    from_dict,
    load_config,
    to_dict,
)


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


def test_round_trip_through_dicts():
    config = apply_overrides(TrainConfig(), ["agent.core=lstm", "agent.lstm.hidden_size=32"])
    assert from_dict(TrainConfig, to_dict(config)) == config


@pytest.mark.parametrize(
    "override,match",
    [
        ("agent.cor=lstm", "Unknown config key 'agent.cor'. Did you mean 'core'"),
        ("agent.core=gru", "agent.core='gru' is not one of"),
        ("agent.transformer.num_heads=3", "num_heads=3 does not divide d_model=64"),
        ("agent.transformer.memory_len=0", "memory_len must be a positive int"),
        ("agent.transformer.gate=lstm", "gate='lstm' is not one of"),
        ("learner.segment_len=5", "must be a multiple of learner.segment_len=5"),
        ("learner.batch_size=-2", "learner.batch_size must be >= 1"),
        ("loss.discount=abc", "loss.discount must be a float"),
        ("env.num_envs=2.5", "env.num_envs must be an int"),
        ("env.task.x=1", "env.task is a value, not a section"),
        ("run.progress=maybe", "run.progress must be true or false"),
        ("agent=1", "agent is a section"),
        ("noequals", "must look like section.field=value"),
        ("distributed.num_processes=2", "coordinator_address is required"),
    ],
)
def test_bad_overrides_name_the_key(override, match):
    with pytest.raises(ConfigError, match=match):
        apply_overrides(TrainConfig(), [override])


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
