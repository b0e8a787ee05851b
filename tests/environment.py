"""How the tests' processes run: the repository root, XLA's flags, subprocess environments.

The tests' own compiles use XLA's backend optimisation level 0: most of a test's time is
XLA:CPU compiling (LLVM), which level 0 roughly halves, and what the tests check (results,
shapes, equalities between two programs, errors) holds at any level. Programs run ~2x
slower, which the unit tests, with their tiny models, do not feel. The learning tests train
as a user would, at the default level (`user_env`); so does the main job.
"""

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# Two forced CPU devices make the pmap paths run on this machine.
TEST_XLA_FLAGS = "--xla_force_host_platform_device_count=2 --xla_backend_optimization_level=0"


def child_env(**extra: str) -> dict[str, str]:
    """The environment of a subprocess of the tests: the tests' XLA flags, this checkout."""
    return {**os.environ, "XLA_FLAGS": TEST_XLA_FLAGS, "PYTHONPATH": str(REPO), **extra}


def user_env() -> dict[str, str]:
    """The environment of a subprocess that trains as a user's would: XLA's defaults, one
    CPU device (no XLA_FLAGS), this checkout."""
    env = {name: value for name, value in os.environ.items() if name != "XLA_FLAGS"}
    return {**env, "PYTHONPATH": str(REPO)}
