"""The reliability suite's shared setup: the environment of subprocess runs, one finished run.

Almost every test here trains a tiny agent, in this process or in a `gtrxl-train`
subprocess; the subprocesses share the session's compilation cache (tests/conftest.py). The
tests that damage a run folder work on copies of one finished run.
"""

import shutil

import pytest

from gtrxl_jax.train.loop import train
from tests.environment import child_env
from tests.reliability.helpers import quick_config


@pytest.fixture(scope="package")
def subprocess_env(compilation_cache_dir):
    """The environment for `gtrxl-train` subprocesses: the tests' XLA flags, the shared cache
    (which `compilation_cache_dir` hands on to every subprocess)."""
    return child_env()


@pytest.fixture(scope="package")
def finished_run(tmp_path_factory):
    """A finished 4-update tiny run (checkpoints at updates 2 and 4): (log_dir, TrainResult).

    Tests that change it work on a copy (`copy_run`).
    """
    log_dir = tmp_path_factory.mktemp("finished_run")
    return log_dir, train(quick_config(log_dir))


@pytest.fixture
def copy_run(finished_run, tmp_path):
    """A copy of `finished_run`'s folder that a test may damage."""
    shutil.copytree(finished_run[0], tmp_path / "run")
    return tmp_path / "run"
