"""Test-wide setup: the tests' environment (tests/environment.py), one compilation cache,
and the `needs_devices` marker.

Two forced CPU devices make the multi-device paths run on this machine, and XLA's backend
optimisation level 0 with XLA:CPU's classic fusion emitters cuts the compiles to about a
quarter (tests/environment.py says why that is sound).
Many tests compile the same programs (the tiny training runs above all), so a persistent
compilation cache, fresh for each pytest run and shared by its xdist workers, compiles
each program once; it changes no result.

The suite is backend-aware: on a GPU host `bash scripts/test.sh` passes or skips with a
reason. The same environment (`TEST_ENV`) makes float32 matmuls float32 there (not TF32,
so the float32 tolerances hold unchanged), kernels deterministic (so the bit-for-bit tests
hold), each process take GPU memory only as needed (two workers and their subprocesses
share one GPU), and at most two GPUs visible; it leaves out the CPU-only compile flags.
A test that needs N devices carries `@pytest.mark.needs_devices(N)` and is skipped, saying
why, where fewer exist (never on the CPU, which has two). A test that holds only on the CPU
says so and skips elsewhere. A test of envpool's tasks carries `@pytest.mark.needs_envpool`
(a module of them `pytest.importorskip`) and is skipped, saying so, where envpool is not
installed: a GPU machine's own Python may lack it. `XLA_FLAGS= pytest ...` runs the suite on
one CPU device, the skips included, as on a one-GPU host.
"""

import os

from tests.environment import TEST_ENV

for _name, _value in TEST_ENV.items():
    os.environ.setdefault(_name, _value)

import jax  # noqa: E402  (after the environment, which jax reads when it starts)
import pytest  # noqa: E402
from jax.experimental.compilation_cache import compilation_cache  # noqa: E402

from gtrxl_jax.envs.registry import envpool_task_names  # noqa: E402
from tests.environment import ENVPOOL_MISSING  # noqa: E402

_CACHE_SETTINGS = {  # jax config name -> value ("{dir}": the cache folder)
    "jax_compilation_cache_dir": "{dir}",
    "jax_persistent_cache_min_compile_time_secs": 0.0,
    "jax_persistent_cache_min_entry_size_bytes": 0,
}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "needs_devices(n): skipped, with the reason, where jax has fewer than n "
                   "local devices (the CPU has 2: tests/environment.py)")
    config.addinivalue_line(
        "markers", "needs_envpool: skipped, with the reason, where envpool is not installed "
                   "(e.g. a GPU machine's own Python)")


@pytest.hookimpl(tryfirst=True)  # before the test's fixtures, which may build n-device meshes
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Skip a test marked `needs_devices(n)` where fewer than n local devices exist, and one
    marked `needs_envpool` where envpool is not installed."""
    marker = item.get_closest_marker("needs_devices")
    if marker is not None and jax.local_device_count() < marker.args[0]:
        pytest.skip(f"needs {marker.args[0]} devices, found {jax.local_device_count()} "
                    f"({jax.default_backend()}); tests/conftest.py forces 2 on the CPU")
    if item.get_closest_marker("needs_envpool") and envpool_task_names() is None:
        pytest.skip(ENVPOOL_MISSING)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Runs the slow tests first, so that the short ones fill in behind them.

    The slow learning runs take 1-2 minutes each; started last, one of them would run on
    one xdist worker while the other sits idle. The order is deterministic, as xdist needs.
    """
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)  # stable


@pytest.fixture(scope="session", autouse=True)
def compilation_cache_dir(tmp_path_factory) -> str:
    """The session's persistent compilation cache folder, shared by the xdist workers and,
    through the JAX_* variables jax reads at its start, by every subprocess they run (a
    training run killed and resumed compiles its programs once)."""
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):  # each worker's basetemp is in the run's folder
        root = root.parent
    directory = root / "jax_compilation_cache"
    directory.mkdir(exist_ok=True)
    for name, value in _CACHE_SETTINGS.items():
        value = str(directory) if value == "{dir}" else value
        jax.config.update(name, value)
        os.environ[name.upper()] = str(value)
    compilation_cache.reset_cache()  # use the folder even if jax decided on "no cache" already
    return str(directory)
