"""Tasks the agent cannot train on: refused before any work (exit code 2), saying why and
what is allowed, with close names for a misspelt task; nothing is left behind."""

import pytest

from gtrxl_jax.train.cli import main

SUPPORTED = "supported observations are uint8 pixels"


ENVPOOL_CASES = [  # envpool's tasks: refused for what they are where envpool is installed
    ("CartPol-v1", ["unknown task 'CartPol-v1'; did you mean 'CartPole-v1'"]),
    ("Pong-v4", ["unknown task 'Pong-v4'; did you mean 'Pong-v5'"]),
    # observations without a torso: a [10, 5] float grid, a discrete state index
    ("Catch-v0", ["Catch-v0: its observation {'obs': ((10, 5), 'float32')} has no torso",
                  SUPPORTED]),
    ("FrozenLake-v1", ["FrozenLake-v1: its observation", "has no torso", SUPPORTED]),
    # continuous actions
    ("Pendulum-v1", ["Pendulum-v1: a continuous (Box) action space", "is not supported",
                     "needs a single Discrete(n) action"]),
    ("HalfCheetah-v4", ["a continuous (Box) action space"]),
    # tasks that cannot share one agent
    ("TMaze-L3,Acrobot-v1", ["Acrobot-v1 and TMaze-L3 differ in observation or action space"]),
]


@pytest.mark.parametrize("task, messages", [
    ("TMaze-3", ["unknown task 'TMaze-3'", "'TMaze-L<length>'"]),
    ("TMaze-L3,Pong-v4", ["unknown task 'Pong-v4'"]),
    *(pytest.param(*case, marks=pytest.mark.needs_envpool) for case in ENVPOOL_CASES),
])
def test_a_task_the_agent_cannot_play_is_refused(task, messages, tmp_path, capsys):
    log_dir = tmp_path / "run"
    code = main([f"env.task={task}", "env.num_envs=2", "learner.batch_size=2",
                 "learner.total_env_steps=64", "run.eval_episodes=0",  # short, should it run
                 "run.progress=false", f"run.log_dir={log_dir}"])
    err = capsys.readouterr().err
    assert code == 2, err
    for message in messages:
        assert message in err
    assert not log_dir.exists()


def test_an_unknown_env_option_is_refused_naming_the_allowed_ones(tmp_path, capsys):
    code = main(["env.task=TMaze-L3", "env.options.max_steps=9", f"run.log_dir={tmp_path / 'r'}"])
    err = capsys.readouterr().err
    assert code == 2
    assert "TMaze-L3 does not take the option(s) ['max_steps']; it takes ['batch_size']" in err
