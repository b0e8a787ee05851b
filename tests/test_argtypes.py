"""Counts on the command lines: zero or a negative number is a usage error naming the option."""

import pytest

from gtrxl_jax.bench import cli as bench_cli
from gtrxl_jax.bench import env_throughput
from gtrxl_jax.cli import demo_main
from gtrxl_jax.suite import random_policy
from gtrxl_jax.train import eval_cli


@pytest.mark.parametrize("main, argv, option", [
    (demo_main, ["--batch", "0"], "--batch"),
    (demo_main, ["--unroll", "-1"], "--unroll"),
    (bench_cli.main, ["--repeats", "0"], "--repeats"),
    (bench_cli.main, ["--only", "e2e", "--e2e-steps", "0"], "--e2e-steps"),
    (random_policy.main, ["TMaze-L4", "--num-envs", "0"], "--num-envs"),
    (eval_cli.main, ["runs/x", "--episodes", "0"], "--episodes"),
    (env_throughput.main, ["--steps", "0"], "--steps"),
])
def test_a_count_below_one_is_a_usage_error(main, argv, option, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {option}:" in err and "Traceback" not in err
