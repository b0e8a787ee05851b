"""Test-wide setup: the tests' XLA flags (tests/environment.py), one compilation cache.

Two forced CPU devices make the pmap paths run on this machine, and XLA's backend
optimisation level 0 halves the compiles (tests/environment.py says why that is sound).
Many tests compile the same programs (the tiny training runs above all), so a persistent
compilation cache, fresh for each pytest run and shared by its xdist workers, compiles
each program once; it changes no result.
"""

import os

from tests.environment import TEST_XLA_FLAGS

os.environ.setdefault("XLA_FLAGS", TEST_XLA_FLAGS)

import jax  # noqa: E402  (after XLA_FLAGS, which jax reads when its backend starts)
import pytest  # noqa: E402
from jax.experimental.compilation_cache import compilation_cache  # noqa: E402

_CACHE_SETTINGS = {  # jax config name -> value ("{dir}": the cache folder)
    "jax_compilation_cache_dir": "{dir}",
    "jax_persistent_cache_min_compile_time_secs": 0.0,
    "jax_persistent_cache_min_entry_size_bytes": 0,
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Runs the slow tests first, so that the short ones fill in behind them.

    The slow learning runs take 1-2 minutes each; started last, one of them would run on
    one xdist worker while the other sits idle. The order is deterministic, as xdist needs.
    """
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)  # stable


@pytest.fixture(scope="session", autouse=True)
def compilation_cache_dir(tmp_path_factory) -> str:
    """The session's persistent compilation cache folder (shared by the xdist workers)."""
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):  # each worker's basetemp is in the run's folder
        root = root.parent
    directory = root / "jax_compilation_cache"
    directory.mkdir(exist_ok=True)
    for name, value in _CACHE_SETTINGS.items():
        jax.config.update(name, str(directory) if value == "{dir}" else value)
    compilation_cache.reset_cache()  # use the folder even if jax decided on "no cache" already
    return str(directory)
