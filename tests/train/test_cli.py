"""The command line: config errors exit with code 2 before any work (signals: tests/reliability)."""

import pytest

from gtrxl_jax.train.cli import main
from tests.environment import REPO


@pytest.mark.parametrize("override, message", [
    ("env.bogus=1", "Unknown config key 'env.bogus'"),
    ("learner.batch_size=many", "learner.batch_size must be an int"),
    ("learner.batch_size=48", "must be a multiple of env.num_envs"),
])
def test_config_errors_exit_with_code_2_and_a_message(override, message, capsys):
    assert main([override]) == 2
    assert message in capsys.readouterr().err


def test_an_unknown_config_file_exits_with_code_2(capsys):
    assert main(["--config", "experiments/configs/nope.py"]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_the_experiment_configs_load():
    from gtrxl_jax.config import load_config
    from gtrxl_jax.train.builder import check_config

    for name in ("tmaze", "cartpole"):
        check_config(load_config(str(REPO / "experiments" / "configs" / f"{name}.py")))
