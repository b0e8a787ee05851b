"""Counts on the command lines: zero or a negative number is a usage error naming the option,
one line long on every tool."""

import pytest

from gtrxl_jax.bench import cli as bench_cli
from gtrxl_jax.bench import env_throughput
from gtrxl_jax.cli import demo_main
from gtrxl_jax.suite import cli as suite_cli
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
    assert len(err.splitlines()) == 1 and err.rstrip().endswith("--help)")  # no usage block


@pytest.mark.parametrize("argv", [["nosuch"], ["fast", "--seeds", "0,x"], ["fast", "--bogus"]])
def test_a_suite_usage_error_is_one_line(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        suite_cli.main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("gtrxl-suite: error: ") and len(err.splitlines()) == 1, err
