"""The reliability suite's shared setup: a compilation cache, and one finished run.

Almost every test here trains a tiny agent, in this process or in a `gtrxl-train`
subprocess, and most of a tiny run's time is XLA compiling the same programs again. A
persistent compilation cache (a fresh folder per session, shared with the subprocesses
through JAX_* variables) compiles each program once; it changes no result. The previous
settings come back when the package's tests end. The tests that damage a run folder work on
copies of one finished run.
"""

import os
import shutil

import jax
import pytest
from jax.experimental.compilation_cache import compilation_cache

from gtrxl_jax.train.loop import train
from tests.reliability.helpers import REPO, quick_config

_SETTINGS = {  # jax config name -> the value this package runs with ("{dir}": the cache)
    "jax_compilation_cache_dir": "{dir}",
    "jax_persistent_cache_min_compile_time_secs": 0.0,
    "jax_persistent_cache_min_entry_size_bytes": 0,
}


@pytest.fixture(scope="package", autouse=True)
def compilation_cache_dir(tmp_path_factory):
    """A persistent compilation cache for the package (its folder)."""
    directory = str(tmp_path_factory.mktemp("jax_compilation_cache"))
    previous = {name: getattr(jax.config, name) for name in _SETTINGS}
    for name, value in _SETTINGS.items():
        jax.config.update(name, directory if value == "{dir}" else value)
    compilation_cache.reset_cache()  # an earlier test may have decided "no cache" already
    yield directory
    for name, value in previous.items():
        jax.config.update(name, value)
    compilation_cache.reset_cache()


@pytest.fixture(scope="package")
def subprocess_env(compilation_cache_dir):
    """The environment for `gtrxl-train` subprocesses: two CPU devices, the shared cache."""
    return {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "XLA_FLAGS": "--xla_force_host_platform_device_count=2",
        "JAX_COMPILATION_CACHE_DIR": compilation_cache_dir,
        "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
        "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "0",
    }


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
