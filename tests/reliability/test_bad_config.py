"""Bad configuration: each is refused before any expensive work (exit code 2), with a
message that names the key and what is allowed, and leaves nothing behind."""

import jax
import pytest

from gtrxl_jax.train.cli import main
from tests.train.helpers import TINY_AGENT

BASE = ["env.task=TMaze-L3", "env.num_envs=4", "learner.batch_size=4", "run.progress=false",
        *TINY_AGENT]


def refused(tmp_path, capsys, *argv: str) -> str:
    """Run the CLI; assert exit code 2 and no run folder; return its error message."""
    log_dir = tmp_path / "run"
    code = main([*argv, f"run.log_dir={log_dir}"])
    err = capsys.readouterr().err
    assert code == 2, err
    assert not log_dir.exists(), "a refused run left output behind"
    return err


@pytest.mark.parametrize("override, message", [
    # unknown keys, with close names suggested
    ("agent.transformer.num_layer=2",
     "Unknown config key 'agent.transformer.num_layer'. Did you mean 'num_layers'"),
    ("lerner.batch_size=8", "Unknown config key 'lerner'. Did you mean 'learner'"),
    ("agent.transformer.num_layers.x=1", "agent.transformer.num_layers is a value, not a section"),
    ("agent=1", "agent is a section; set its fields as agent.<field>=<value>"),
    ("noequals", "must look like section.field=value"),
    ("env.options.a=1 env.options.a.b=2", "env.options.a is a value, not a section"),
    # wrong types
    ("learner.batch_size=many", "learner.batch_size must be an int, got 'many'"),
    ("env.num_envs=2.5", "env.num_envs must be an int, got '2.5'"),
    ("loss.discount=high", "loss.discount must be a float, got 'high'"),
    ("run.progress=maybe", "run.progress must be true or false, got 'maybe'"),
    # impossible values
    ("env.num_envs=-4", "env.num_envs must be >= 1, got -4"),
    ("agent.transformer.d_model=-16", "d_model must be a positive int, got -16"),
    ("agent.transformer.num_heads=3", "num_heads=3 does not divide d_model=16"),
    ("agent.transformer.memory_len=0", "memory_len must be a positive int, got 0"),
    ("agent.transformer.gate=lstm", "gate='lstm' is not one of ('input', 'output', 'highway', "
                                    "'sigmoid_tanh', 'gru')"),
    ("agent.core=gated", "agent.core='gated' is not one of ('trxl', 'trxl_i', 'gtrxl', 'lstm', "
                         "'feedforward')"),
    ("agent.transformer.variant=gated", "variant='gated' is not one of ('trxl', 'trxl_i', "
                                        "'gtrxl')"),
    ("agent.transformer.variant=trxl", "agent.transformer.variant='trxl' contradicts "
                                       "agent.core='gtrxl': agent.core picks the transformer "
                                       "variant; set agent.core=trxl instead."),
    ("loss.discount=1.5", "loss.discount must be in [0, 1], got 1.5"),
    ("optimizer.name=sgd",
     "optimizer.name='sgd' is not one of ('adam', 'amsgrad', 'rmsprop')"),
    ("learner.segment_len=5", "learner.trajectory_len=32 must be a multiple of "
                              "learner.segment_len=5"),
    ("distributed.num_processes=2", "distributed.coordinator_address is required"),
    ("agent.torso_options.width=3", "agent: make_torso chose MLPTorso for observation"),
    ("agent.torso_options.hidden_sizes=16", "MLPTorso.hidden_sizes must be a non-empty "
                                            "sequence of positive ints, got 16"),
    ("learner.total_env_steps=1.25e1", "learner.total_env_steps must be an int, got '1.25e1'"),
    ("optimizer.learning_rate=inf", "optimizer.learning_rate must be a finite number, got inf"),
    ("optimizer.eps=nan", "optimizer.eps must be a finite number, got nan"),
    ("optimizer.max_grad_norm=0", "optimizer.max_grad_norm must be > 0 (or None: no clipping)"),
    ("agent.transformer.gate_bias=nan", "gate_bias must be a finite number or None, got nan"),
    # layouts that do not fit
    ("learner.batch_size=6", "must be a multiple of env.num_envs x learner.num_actor_threads"),
    ("env.groups_per_task=3", "env.num_envs=4 must be a multiple of the number of tasks"),
])
def test_a_bad_override_is_refused_naming_the_key(override, message, tmp_path, capsys):
    assert message in refused(tmp_path, capsys, *BASE, *override.split())


@pytest.mark.parametrize("overrides, message", [  # {n}: the local devices (2 on the CPU)
    # 3 rows cannot be split over the 2 CPU devices of tests/conftest.py
    pytest.param(["env.num_envs=3", "learner.batch_size=3"],
                 "= 3 rows must split evenly over the 2 learner devices",
                 marks=pytest.mark.needs_devices(2)),
    pytest.param(["learner.loop=on_device", "env.num_envs=3", "learner.batch_size=3"],
                 "= 3 rows must split evenly over the 2 learner devices",
                 marks=pytest.mark.needs_devices(2)),
    # PPO's minibatches split each device's rows: 4 rows (1 device) or 2 (2 devices)
    (["loss.name=ppo", "loss.ppo_minibatches=3"], "loss.ppo_minibatches=3 must divide the"),
    (["learner.loop=on_device", "loss.name=ppo", "loss.ppo_minibatches=3"],
     "loss.ppo_minibatches=3 must divide the"),
    (["learner.learner_devices=0,1,2"],
     "learner.learner_devices=(0, 1, 2) must be indices into the {n} local devices "
     "(0..{last})"),
    (["learner.actor_devices=7"], "learner.actor_devices=(7,) must be indices into the {n} local"),
])
def test_devices_that_do_not_fit_are_refused(overrides, message, tmp_path, capsys):
    n = jax.local_device_count()
    message = message.format(n=n, last=n - 1)
    assert message in refused(tmp_path, capsys, *BASE, *overrides)


@pytest.mark.parametrize("body, message", [
    ("TrainConfig(env=EnvConfig(tsk='TMaze-L3'))",
     "building the config failed: TypeError: EnvConfig.__init__() got an unexpected keyword "
     "argument 'tsk'"),
    ("TrainConfig(env=EnvConfig(num_envs='4'))", "env.num_envs must be an int, got '4'"),
    ("TrainConfig(env={'task': 'TMaze-L3'})", "env must be an EnvConfig, got {'task'"),
    ("TrainConfig(optimizer=OptimizerConfig(max_grad_norm='big'))",
     "optimizer.max_grad_norm must be a number or None, got 'big'"),
    ("TrainConfig(learner=LearnerConfig(actor_devices=[0]))",
     "learner.actor_devices must be a tuple of int values or None, got [0]"),
    ("1 / 0", "building the config failed: ZeroDivisionError"),
])
def test_a_bad_config_file_is_refused_naming_the_key(body, message, tmp_path, capsys):
    path = tmp_path / "experiment.py"
    path.write_text("from gtrxl_jax.config import *\n"
                    f"def get_config():\n    return {body}\n")
    assert message in refused(tmp_path, capsys, "--config", str(path))


def test_a_task_whose_optional_extra_is_missing_is_refused_saying_what_to_install(
        tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("gtrxl_jax.envs.memory_maze.missing_requirements", lambda gl: ["mujoco"])
    err = refused(tmp_path, capsys, *BASE, "env.task=MemoryMaze-9x9", "env.num_envs=4")
    assert "env.task: MemoryMaze-9x9 needs the optional Memory Maze extra" in err
    assert "pip install 'gtrxl_jax[memory_maze]'" in err
    assert "Traceback" not in err
