"""The command line: config errors exit with code 2 before any work, a start-up error is one
line on stderr (signals: tests/reliability)."""

import subprocess
import sys

import pytest

from gtrxl_jax.config import TrainConfig, describe_fields
from gtrxl_jax.train.cli import main
from tests.environment import REPO, child_env


@pytest.mark.parametrize("override, message", [
    ("env.bogus=1", "Unknown config key 'env.bogus'"),
    ("learner.batch_size=many", "learner.batch_size must be an int"),
    ("learner.batch_size=48", "must be a multiple of env.num_envs"),
])
def test_config_errors_exit_with_code_2_and_a_message(override, message, capsys):
    assert main([override]) == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("overrides", [
    ["--config", "experiments/configs/custom_env.py", "env.options.dleay=4"],
    ["env.factory=experiments.custom_env:make_jax", "env.options.foo=1"],
], ids=["host factory", "JAX factory"])
def test_an_environment_option_it_does_not_take_exits_with_code_2(overrides, capsys):
    assert main(overrides) == 2
    err = capsys.readouterr().err
    assert "with env.options {" in err and "unexpected keyword argument" in err
    assert "Traceback" not in err


@pytest.mark.parametrize("overrides, message", [
    (["env.task=RepeatPreviousEasy", "learner.loop=actor_learner"],
     "env.task: 'RepeatPreviousEasy' is a JAX task: it trains on device (learner.loop=on_device"),
    (["env.task=MemoryMaze-9x9", "learner.loop=on_device"],
     "env.task: 'MemoryMaze-9x9' is a host task: it trains with actors (learner.loop=actor_"),
])
def test_a_task_on_the_other_loop_names_the_loop_to_use(overrides, message, capsys):
    assert main(overrides) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_help_lists_every_config_key_with_its_default_and_description(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["--help"])
    assert stop.value.code == 0
    shown = capsys.readouterr().out
    fields = describe_fields(TrainConfig())
    assert len(fields) > 60  # every section, nested ones (agent.transformer.*) included
    for key, value, description in fields:
        assert f"\n  {key} = {value!r}\n" in shown, key
        assert description, f"{key} has no entry in its class's Attributes docstring"
    assert "  optimizer.learning_rate = 0.0002\n      the initial learning rate." in shown


def test_overrides_may_come_before_the_config_file(capsys):
    """Every override reaches the config wherever it stands beside --config."""
    assert main(["learner.batch_size=many", "--config", "experiments/configs/tmaze.py",
                 "env.num_envs=4"]) == 2
    assert "learner.batch_size must be an int" in capsys.readouterr().err


def test_an_unknown_config_file_exits_with_code_2(capsys):
    assert main(["--config", "experiments/configs/nope.py"]) == 2
    assert "does not exist" in capsys.readouterr().err


@pytest.mark.needs_envpool  # cartpole.py trains envpool's CartPole-v1
def test_the_experiment_configs_load():
    from gtrxl_jax.config import load_config
    from gtrxl_jax.train.builder import check_config

    for name in ("tmaze", "tmaze_on_device", "minigrid_memory", "cartpole", "custom_env"):
        check_config(load_config(str(REPO / "experiments" / "configs" / f"{name}.py")))


def test_resuming_without_a_checkpoint_prints_only_its_error(tmp_path):
    # orbax's background thread once printed a traceback after this line at the interpreter's
    # exit: only a real process shows what a user sees.
    log_dir = tmp_path / "run"
    done = subprocess.run(
        [sys.executable, "-m", "gtrxl_jax.train", "--config",
         str(REPO / "experiments" / "configs" / "tmaze.py"), "run.resume=true",
         "run.progress=false", f"run.log_dir={log_dir}"],
        env=child_env(), cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 1, done.stderr
    assert done.stderr == (f"gtrxl-train: error: run.resume=true, but {log_dir}/checkpoints "
                           "holds no complete checkpoint to resume from.\n")
